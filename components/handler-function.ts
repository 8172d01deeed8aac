/**
 * A runtime handler deployed as an aws.lambda.CallbackFunction: arm64, Node 22, its own log group, its own role
 * (allowed to write its own logs plus the caller's statements, nothing else), the code from lambda-code.ts (the
 * handler bundled with only the modules it reaches; no node_modules).
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { checkRuntimeConfig, CONFIG_ENV, type RuntimeConfig } from "../runtime/config";
import { LAMBDA_ENVIRONMENT_MAX_BYTES } from "./config/aws-quotas";
import { assumeRolePolicy, logsStatement, policyDocument, type Statement } from "./iam";
import { buildHandlerCode, codePathOptions, handlerFactory, type HandlerCode } from "./lambda-code";

export const LAMBDA_RUNTIME = aws.lambda.Runtime.NodeJS22dX;

/** `T` with any value, at any depth, possibly not known yet (a resource output): how the runtime config is written. */
export type Resolvable<T> = T extends string | number | boolean | null | undefined
  ? pulumi.Input<T>
  : T extends readonly (infer U)[]
    ? pulumi.Input<Resolvable<U>[]>
    : pulumi.Input<{ [K in keyof T]: Resolvable<T[K]> }>;

/**
 * The runtime config as the runtime's own type, from parts that may be resource outputs: a setting the runtime
 * does not know, or one it needs and is missing, fails to compile here instead of at a Lambda's cold start.
 */
export function runtimeConfigOf(config: Resolvable<RuntimeConfig>): pulumi.Output<RuntimeConfig> {
  // pulumi.output resolves every nested input; that the result is a RuntimeConfig is what the parameter's type says.
  return pulumi.output(config) as unknown as pulumi.Output<RuntimeConfig>;
}

/** `base` with more settings (the orchestrator's ARN, where credentials come from) for one Lambda. */
export function withRuntimeSettings(base: pulumi.Output<RuntimeConfig>, more: Resolvable<Partial<RuntimeConfig>>): pulumi.Output<RuntimeConfig> {
  return pulumi.all([base, pulumi.output(more) as unknown as pulumi.Output<Partial<RuntimeConfig>>]).apply(([b, m]) => ({ ...b, ...m }));
}

export interface HandlerFunctionArgs {
  /** Runtime module exporting `handler`, relative to the project root. */
  readonly handlerFile: string;
  readonly runtimeConfig: pulumi.Output<RuntimeConfig>;
  readonly timeoutSeconds: number;
  readonly memoryMiB: number;
  readonly logRetentionDays: number;
  /** What the function may do besides writing its own logs; given the function (for grants on itself). */
  readonly statements: (fn: aws.lambda.CallbackFunction<unknown, unknown>) => Statement[];
  readonly durableConfig?: aws.types.input.lambda.FunctionDurableConfig;
  readonly publish?: boolean;
}

/**
 * Bytes of a function's environment as Lambda measures it against its 4 KB limit (the JSON of the variables map).
 * The stack config bounds it at preview (components/config/deploy-limits.ts); this is the check on the real values.
 */
export function environmentBytes(variables: Record<string, string>): number {
  return Buffer.byteLength(JSON.stringify(variables), "utf8");
}

function checkedEnvironment(name: string, variables: Record<string, string>): Record<string, string> {
  const bytes = environmentBytes(variables);
  if (bytes > LAMBDA_ENVIRONMENT_MAX_BYTES) {
    throw new Error(`${name}: the Lambda environment is ${bytes} bytes; Lambda allows ${LAMBDA_ENVIRONMENT_MAX_BYTES} (fewer fleets or a smaller identity map)`);
  }
  return variables;
}

export interface HandlerFunction {
  fn: aws.lambda.CallbackFunction<unknown, unknown>;
  code: HandlerCode;
  role: aws.iam.Role;
  logGroup: aws.cloudwatch.LogGroup;
}

export function createHandlerFunction(name: string, args: HandlerFunctionArgs, parent: pulumi.Resource): HandlerFunction {
  const role = new aws.iam.Role(`${name}-role`, { assumeRolePolicy: assumeRolePolicy("lambda.amazonaws.com") }, { parent });
  const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, { retentionInDays: args.logRetentionDays }, { parent });
  const code = buildHandlerCode(name, args.handlerFile);
  const fn = new aws.lambda.CallbackFunction<unknown, unknown>(
    `${name}`,
    {
      callbackFactory: handlerFactory(code.entry),
      codePathOptions: codePathOptions(code),
      role,
      runtime: LAMBDA_RUNTIME,
      architectures: ["arm64"],
      timeout: args.timeoutSeconds,
      memorySize: args.memoryMiB,
      publish: args.publish ?? false,
      durableConfig: args.durableConfig,
      loggingConfig: { logFormat: "JSON", logGroup: logGroup.name },
      // Checked as the Lambda will check it, so a config it would refuse fails the deployment, not each invocation;
      // and within Lambda's 4 KB for the environment.
      environment: { variables: args.runtimeConfig.apply((c) => checkedEnvironment(name, { [CONFIG_ENV]: JSON.stringify(checkedRuntimeConfig(c)) })) },
    },
    { parent },
  );
  new aws.iam.RolePolicy(
    `${name}-policy`,
    { role: role.id, policy: policyDocument([logsStatement("OwnLogs", logGroup.arn), ...args.statements(fn)]) },
    { parent },
  );
  return { fn, code, role, logGroup };
}

/** `config` itself, once the runtime's own check (loadRuntimeConfig's) accepts it. */
function checkedRuntimeConfig(config: RuntimeConfig): RuntimeConfig {
  checkRuntimeConfig(config);
  return config;
}
