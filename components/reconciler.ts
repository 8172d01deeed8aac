/**
 * The task reconciler (runtime/reconciler/lambda.ts) on a schedule: one pass per run repairs tasks whose
 * orchestrator is gone, deadlines missed, and slots, leases and compute a crash left held. Its role may read the
 * orchestrator's durable executions and start one (a re-drive), poll and stop compute, and write the task tables.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import type { RuntimeConfig } from "../runtime/config";
import type { ComputeBackend } from "./compute-backend";
import { computeStatements, payloadStatement, tableStatement, type TableArns } from "./iam";
import { createHandlerFunction } from "./handler-function";
import { orchestratorExecutionStatements } from "./task-orchestrator";

export const RECONCILER_HANDLER = "runtime/reconciler/lambda.ts";

export interface ReconcilerArgs {
  /** The runtime config, with orchestrator.functionArn set (the alias a re-drive invokes). */
  readonly runtimeConfig: pulumi.Output<RuntimeConfig>;
  readonly tableArns: TableArns;
  readonly payloadBucketArn: pulumi.Input<string>;
  /** The enabled backends, whose control-plane grants this role gets. */
  readonly computeBackends: readonly ComputeBackend[];
  /** Unqualified ARN of the orchestrator function and the alias executions are started through. */
  readonly orchestratorFunctionArn: pulumi.Input<string>;
  readonly orchestratorAliasArn: pulumi.Input<string>;
  readonly schedule: string;
  readonly logRetentionDays: number;
}

export class Reconciler extends pulumi.ComponentResource {
  readonly function: aws.lambda.CallbackFunction<unknown, unknown>;

  constructor(name: string, args: ReconcilerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:orchestrator:Reconciler", name, {}, opts);
    this.function = createReconciler(name, args, this).fn;
    this.registerOutputs({ functionName: this.function.name });
  }
}

export function createReconciler(name: string, args: ReconcilerArgs, parent: pulumi.Resource) {
  const { fn, role } = createHandlerFunction(
    name,
    {
      handlerFile: RECONCILER_HANDLER,
      runtimeConfig: args.runtimeConfig,
      timeoutSeconds: 300,
      memoryMiB: 512,
      logRetentionDays: args.logRetentionDays,
      statements: () => [
        // Waiters: releasing a finished task's EC2 capacity drops its queue entry or hands the instance on.
        tableStatement("TaskTables", args.tableArns, ["tasks", "events", "leases", "concurrency", ...(args.computeBackends.some((b) => b.backend === "ec2") ? (["waiters"] as const) : [])], true),
        // Each pass reads every held slot (runtime/reconciler/observe.ts).
        { Sid: "ScanSlots", Effect: "Allow", Action: ["dynamodb:Scan"], Resource: [args.tableArns.concurrency] },
        payloadStatement("Payloads", args.payloadBucketArn, ["delete"]),
        ...orchestratorExecutionStatements(args.orchestratorFunctionArn, { list: true, get: true, wake: true }),
        { Sid: "RedriveOrchestration", Effect: "Allow", Action: ["lambda:InvokeFunction"], Resource: [args.orchestratorAliasArn] },
        ...computeStatements(args.computeBackends, false),
      ],
    },
    parent,
  );
  const rule = new aws.cloudwatch.EventRule(`${name}-schedule`, { scheduleExpression: args.schedule, description: "agent-compute task reconciler" }, { parent });
  // A fixed target id (per rule, at most 64 characters), not one auto-named from the stack's name.
  new aws.cloudwatch.EventTarget(`${name}-target`, { rule: rule.name, targetId: "reconciler", arn: fn.arn }, { parent });
  new aws.lambda.Permission(`${name}-invoke`, { action: "lambda:InvokeFunction", function: fn.name, principal: "events.amazonaws.com", sourceArn: rule.arn }, { parent });
  return { fn, rule, role };
}
