/**
 * The task API: an API Gateway HTTP API (HTTPS only) in front of the API Lambda (runtime/api/lambda.ts), which
 * starts one orchestrator execution per task through the orchestrator's alias. Every user route is AWS_IAM-
 * authorized; the agent channel (/agent/v1/…) has no IAM auth: each request carries its task's token, which the
 * Lambda checks against the hash on the task record.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import type { RuntimeConfig } from "../runtime/config";
import type { ComputeBackend } from "./compute-backend";
import { computeStatements, payloadStatement, tableStatement, type TableArns } from "./iam";
import { HTTP_API_INTEGRATION_TIMEOUT_SECONDS } from "./config/aws-quotas";
import { createHandlerFunction } from "./handler-function";
import type { RepoCredentialSecrets } from "./repo-credentials";
import { orchestratorExecutionStatements } from "./task-orchestrator";

export const API_HANDLER = "runtime/api/lambda.ts";
/**
 * Below the HTTP API's 30 s integration timeout, which cannot be raised: a request the Lambda cannot finish in time
 * ends in the handler's own error, not in a gateway 503 while the Lambda keeps running.
 */
export const API_TIMEOUT_SECONDS = 29;

/** A Lambda timeout the API's integration can wait out; anything else is refused before any resource exists. */
export function apiTimeoutErrors(timeoutSeconds: number): pulumi.InputPropertyErrorDetails[] {
  return Number.isInteger(timeoutSeconds) && timeoutSeconds >= 1 && timeoutSeconds < HTTP_API_INTEGRATION_TIMEOUT_SECONDS
    ? []
    : [{ propertyPath: "timeoutSeconds", reason: `is ${timeoutSeconds}; the API Lambda must finish within the HTTP API's ${HTTP_API_INTEGRATION_TIMEOUT_SECONDS} s integration timeout (1–${HTTP_API_INTEGRATION_TIMEOUT_SECONDS - 1})` }];
}

export interface TaskApiArgs {
  /**
   * The HTTP API itself, made first (ApiEndpoint): its endpoint is the agents' channel URL, which the
   * orchestrator's config needs before this component (which needs the orchestrator) exists.
   */
  readonly api: aws.apigatewayv2.Api;
  readonly runtimeConfig: pulumi.Output<RuntimeConfig>;
  readonly tableArns: TableArns;
  readonly payloadBucketArn: pulumi.Input<string>;
  /** Qualified alias ARN of the orchestrator. */
  readonly orchestratorAliasArn: pulumi.Input<string>;
  /** Unqualified ARN of the orchestrator function (its durable executions extend it). */
  readonly orchestratorFunctionArn: pulumi.Input<string>;
  /** Cancel stops compute directly: poll/stop rights only, never start. */
  /** The enabled backends, whose control-plane grants this role gets. */
  readonly computeBackends: readonly ComputeBackend[];
  readonly logRetentionDays: number;
  /** The repository credential secrets: the API (the agent channel's credentials route) alone reads them. */
  readonly credentialSecrets?: RepoCredentialSecrets;
  /** The API Lambda's timeout (default API_TIMEOUT_SECONDS). */
  readonly timeoutSeconds?: number;
}

export class TaskApi extends pulumi.ComponentResource {
  readonly url: pulumi.Output<string>;
  readonly function: aws.lambda.CallbackFunction<unknown, unknown>;
  readonly api: aws.apigatewayv2.Api;

  constructor(name: string, args: TaskApiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:api:TaskApi", name, {}, opts);
    const errors = apiTimeoutErrors(args.timeoutSeconds ?? API_TIMEOUT_SECONDS);
    if (errors.length) throw new pulumi.InputPropertiesError({ message: `TaskApi ${name}: invalid arguments`, errors });
    const built = createTaskApi(name, args, this);
    this.function = built.fn;
    this.api = built.api;
    this.url = built.stage.invokeUrl;
    this.registerOutputs({ url: this.url });
  }
}

export function createTaskApi(name: string, args: TaskApiArgs, parent: pulumi.Resource) {
  const { fn, role } = createHandlerFunction(
    name,
    {
      handlerFile: API_HANDLER,
      runtimeConfig: args.runtimeConfig,
      timeoutSeconds: args.timeoutSeconds ?? API_TIMEOUT_SECONDS,
      memoryMiB: 512,
      logRetentionDays: args.logRetentionDays,
      statements: () => [
        tableStatement("TaskTables", args.tableArns, ["tasks", "events", "leases", "concurrency", "repos", "waiters"], true),
        payloadStatement("Payloads", args.payloadBucketArn, ["put", "delete"]),
        { Sid: "StartOrchestration", Effect: "Allow", Action: ["lambda:InvokeFunction"], Resource: [args.orchestratorAliasArn] },
        // Cancel wakes the task's orchestrator (runtime/orchestrator/wake.ts).
        ...orchestratorExecutionStatements(args.orchestratorFunctionArn, { wake: true }),
        ...computeStatements(args.computeBackends, false),
        ...(args.credentialSecrets ? [args.credentialSecrets.readStatement()] : []),
      ],
    },
    parent,
  );
  args.credentialSecrets?.restrictReadsTo([role.arn]);
  const api = args.api;
  const integration = new aws.apigatewayv2.Integration(
    `${name}-lambda`,
    { apiId: api.id, integrationType: "AWS_PROXY", integrationUri: fn.arn, payloadFormatVersion: "2.0" },
    { parent },
  );
  // One catch-all route: the handler does its own routing; AWS_IAM means unsigned requests never reach it.
  const route = new aws.apigatewayv2.Route(
    `${name}-route`,
    { apiId: api.id, routeKey: "ANY /{proxy+}", target: pulumi.interpolate`integrations/${integration.id}`, authorizationType: "AWS_IAM" },
    { parent },
  );
  // The agent channel: more specific than /{proxy+}, so API Gateway routes agents here, with no IAM auth.
  const agentRoute = new aws.apigatewayv2.Route(
    `${name}-agent-route`,
    { apiId: api.id, routeKey: "ANY /agent/v1/{proxy+}", target: pulumi.interpolate`integrations/${integration.id}`, authorizationType: "NONE" },
    { parent },
  );
  const stage = new aws.apigatewayv2.Stage(`${name}-stage`, { apiId: api.id, name: "$default", autoDeploy: true }, { parent, dependsOn: [route, agentRoute] });
  new aws.lambda.Permission(
    `${name}-invoke`,
    { action: "lambda:InvokeFunction", function: fn.name, principal: "apigateway.amazonaws.com", sourceArn: pulumi.interpolate`${api.executionArn}/*/*` },
    { parent },
  );
  return { fn, api, stage, role };
}
