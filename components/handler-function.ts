/**
 * A runtime handler deployed as an aws.lambda.CallbackFunction: arm64, Node 22, its own log group, its own role
 * (allowed to write its own logs plus the caller's statements, nothing else), the code from lambda-code.ts (the
 * handler bundled with only the modules it reaches; no node_modules).
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { CONFIG_ENV, type RuntimeConfig } from "../runtime/config";
import { LAMBDA_ENVIRONMENT_MAX_BYTES } from "./config/aws-quotas";
import { assumeRolePolicy, logsStatement, policyDocument, type Statement } from "./iam";
import { buildHandlerCode, codePathOptions, handlerFactory, type HandlerCode } from "./lambda-code";

export const LAMBDA_RUNTIME = aws.lambda.Runtime.NodeJS22dX;

/** RuntimeConfig whose values may still be unknown (resource outputs). */
export type RuntimeConfigInput = pulumi.Input<{ [K in keyof RuntimeConfig]: pulumi.Input<RuntimeConfig[K]> } | RuntimeConfig>;

export interface HandlerFunctionArgs {
  /** Runtime module exporting `handler`, relative to the project root. */
  readonly handlerFile: string;
  readonly runtimeConfig: pulumi.Input<object>;
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
      environment: { variables: pulumi.jsonStringify(args.runtimeConfig).apply((json) => checkedEnvironment(name, { [CONFIG_ENV]: json })) },
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
