/**
 * A runtime handler deployed as an aws.lambda.CallbackFunction: arm64, Node 22, its own log group, its own role,
 * the code from lambda-code.ts (the handler bundled with only the modules it reaches; no node_modules).
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { CONFIG_ENV, type RuntimeConfig } from "../runtime/config";
import { buildHandlerCode, codePathOptions, handlerFactory, type HandlerCode } from "./lambda-code";

export const LAMBDA_RUNTIME = aws.lambda.Runtime.NodeJS22dX;

/** RuntimeConfig whose values may still be unknown (resource outputs). */
export type RuntimeConfigInput = pulumi.Input<{ [K in keyof RuntimeConfig]: pulumi.Input<RuntimeConfig[K]> } | RuntimeConfig>;

export interface HandlerFunctionArgs {
  /** Runtime module exporting `handler`, relative to the project root. */
  readonly handlerFile: string;
  readonly role: aws.iam.Role;
  readonly runtimeConfig: pulumi.Input<object>;
  readonly timeoutSeconds: number;
  readonly memoryMiB: number;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly durableConfig?: aws.types.input.lambda.FunctionDurableConfig;
  readonly publish?: boolean;
}

export function createHandlerFunction(name: string, args: HandlerFunctionArgs, parent: pulumi.Resource): { fn: aws.lambda.CallbackFunction<unknown, unknown>; code: HandlerCode } {
  const code = buildHandlerCode(name, args.handlerFile);
  const fn = new aws.lambda.CallbackFunction<unknown, unknown>(
    `${name}`,
    {
      callbackFactory: handlerFactory(code.entry),
      codePathOptions: codePathOptions(code),
      role: args.role,
      runtime: LAMBDA_RUNTIME,
      architectures: ["arm64"],
      timeout: args.timeoutSeconds,
      memorySize: args.memoryMiB,
      publish: args.publish ?? false,
      durableConfig: args.durableConfig,
      loggingConfig: { logFormat: "JSON", logGroup: args.logGroup.name },
      environment: { variables: { [CONFIG_ENV]: pulumi.jsonStringify(args.runtimeConfig) } },
    },
    { parent },
  );
  return { fn, code };
}
