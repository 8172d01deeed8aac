/**
 * The orchestrator: the durable Lambda (runtime/orchestrator/durable-handler.ts) that drives one task from load
 * to finalize. Published as a version behind a "live" alias: durable executions run on a fixed version, and the
 * API invokes the alias. Its role grants only what the enabled backends need.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import type { RuntimeConfig } from "../runtime/config";
import type { ComputeBackend } from "./compute-backend";
import { computeStatements, payloadStatement, tableStatement, type Statement, type TableArns } from "./iam";
import { DURABLE_EXECUTION_TIMEOUT_BOUNDS, DURABLE_RETENTION_DAYS_BOUNDS } from "./config/aws-quotas";
import { createHandlerFunction } from "./handler-function";
import type { HandlerCode } from "./lambda-code";

export const ORCHESTRATOR_HANDLER = "runtime/orchestrator/durable-handler.ts";
export const ORCHESTRATOR_ALIAS = "live";
/** An hour past the task timeout covers stopping the compute and finalizing. */
export const FINALIZE_MARGIN_SECONDS = 3600;
/** Days a finished durable execution's history stays readable (GetDurableExecution, the reconciler). */
export const DURABLE_RETENTION_DAYS = 14;

/** The orchestrator's DurableConfig: a whole task is one durable execution. Refuses values Lambda would refuse. */
export function orchestratorDurableConfig(taskTimeoutSeconds: number, retentionDays: number = DURABLE_RETENTION_DAYS) {
  const executionTimeout = taskTimeoutSeconds + FINALIZE_MARGIN_SECONDS;
  const errors: pulumi.InputPropertyErrorDetails[] = [];
  const within = (v: number, b: { min: number; max: number }) => Number.isInteger(v) && v >= b.min && v <= b.max;
  if (!within(executionTimeout, DURABLE_EXECUTION_TIMEOUT_BOUNDS)) {
    errors.push({
      propertyPath: "taskTimeoutSeconds",
      reason: `(${taskTimeoutSeconds}) plus the ${FINALIZE_MARGIN_SECONDS} s finalize margin is ${executionTimeout}; a durable execution runs ${DURABLE_EXECUTION_TIMEOUT_BOUNDS.min}–${DURABLE_EXECUTION_TIMEOUT_BOUNDS.max} s`,
    });
  }
  if (!within(retentionDays, DURABLE_RETENTION_DAYS_BOUNDS)) {
    errors.push({ propertyPath: "retentionPeriod", reason: `is ${retentionDays}; Lambda keeps durable execution history ${DURABLE_RETENTION_DAYS_BOUNDS.min}–${DURABLE_RETENTION_DAYS_BOUNDS.max} days` });
  }
  if (errors.length) throw new pulumi.InputPropertiesError({ message: "TaskOrchestrator: invalid durable config", errors });
  return { executionTimeout, retentionPeriod: retentionDays };
}

export interface TaskOrchestratorArgs {
  readonly runtimeConfig: pulumi.Output<RuntimeConfig>;
  readonly tableArns: TableArns;
  readonly payloadBucketArn: pulumi.Input<string>;
  /** The enabled backends, whose control-plane grants this role gets. */
  readonly computeBackends: readonly ComputeBackend[];
  /** Longest a task may live; the durable execution gets this plus a margin for finalize. */
  readonly taskTimeoutSeconds: number;
  readonly logRetentionDays: number;
}

export class TaskOrchestrator extends pulumi.ComponentResource {
  readonly function: aws.lambda.CallbackFunction<unknown, unknown>;
  readonly alias: aws.lambda.Alias;
  /** Qualified ARN of the alias: what the API invokes. */
  readonly aliasArn: pulumi.Output<string>;
  readonly role: aws.iam.Role;
  readonly code: HandlerCode;

  constructor(name: string, args: TaskOrchestratorArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:orchestrator:TaskOrchestrator", name, {}, opts);
    const built = createOrchestrator(name, args, this);
    this.function = built.fn;
    this.alias = built.alias;
    this.aliasArn = built.alias.arn;
    this.role = built.role;
    this.code = built.code;
    this.registerOutputs({ functionName: this.function.name, aliasArn: this.aliasArn });
  }
}

export function createOrchestrator(name: string, args: TaskOrchestratorArgs, parent: pulumi.Resource) {
  const { fn, code, role, logGroup } = createHandlerFunction(
    name,
    {
      handlerFile: ORCHESTRATOR_HANDLER,
      runtimeConfig: args.runtimeConfig,
      timeoutSeconds: 300,
      memoryMiB: 512,
      logRetentionDays: args.logRetentionDays,
      publish: true,
      durableConfig: orchestratorDurableConfig(args.taskTimeoutSeconds),
      statements: (self) => [
        {
          Sid: "OwnDurableExecutions",
          Effect: "Allow",
          // SendDurableExecutionCallbackSuccess: releasing an EC2 instance hands it to the next waiting task and wakes
          // that task's execution (runtime/runtime.ts, the lease table's `bound`); only its own executions.
          Action: ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState", "lambda:SendDurableExecutionCallbackSuccess"],
          // Durable execution ARNs extend a qualified function ARN; ":*" matches every version's executions.
          Resource: [pulumi.interpolate`${self.arn}:*`],
        },
        tableStatement("TaskTables", args.tableArns, ["tasks", "events", "leases", "concurrency", "repos", "waiters"], true),
        // put: the start step writes the agent's token into the payload; get: it presigns the agent's URL with it.
        payloadStatement("Payloads", args.payloadBucketArn, ["get", "put", "delete"]),
        ...computeStatements(args.computeBackends, true),
      ],
    },
    parent,
  );
  const alias = new aws.lambda.Alias(`${name}-alias`, { name: ORCHESTRATOR_ALIAS, functionName: fn.name, functionVersion: fn.version }, { parent });
  return { fn, alias, role, logGroup, code };
}

/**
 * What touching a task's orchestrator needs: GetDurableExecution and SendDurableExecutionCallbackSuccess act on the
 * durable execution (its ARN extends a version's ARN, hence ":*"); ListDurableExecutionsByFunction on the function.
 */
export function orchestratorExecutionStatements(functionArn: pulumi.Input<string>, actions: { list?: boolean; get?: boolean; wake?: boolean }): Statement[] {
  const onExecutions = [...(actions.get ? ["lambda:GetDurableExecution"] : []), ...(actions.wake ? ["lambda:SendDurableExecutionCallbackSuccess"] : [])];
  return [
    ...(onExecutions.length
      ? [{ Sid: "OrchestratorExecutions", Effect: "Allow" as const, Action: onExecutions, Resource: [pulumi.interpolate`${functionArn}:*`] }]
      : []),
    ...(actions.list
      ? [{ Sid: "ListOrchestratorExecutions", Effect: "Allow" as const, Action: ["lambda:ListDurableExecutionsByFunction"], Resource: [functionArn, pulumi.interpolate`${functionArn}:*`] }]
      : []),
  ];
}
