/**
 * A runtime handler deployed as an aws.lambda.CallbackFunction: arm64, Node 22, its own log group, its own role
 * (allowed to write its own logs plus the caller's statements, nothing else), the code from lambda-code.ts (the
 * handler bundled with only the modules it reaches; no node_modules).
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { CONFIG_ENV, type RuntimeConfig } from "../runtime/config";
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
      environment: { variables: { [CONFIG_ENV]: pulumi.jsonStringify(args.runtimeConfig) } },
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
