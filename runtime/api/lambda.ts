/**
 * Lambda entry of the task API: API Gateway HTTP API (or a Lambda function URL) payload format 2.0 with
 * AWS_IAM auth. The caller is the IAM principal API Gateway verified (requestContext.authorizer.iam), mapped to a
 * user by runtime/identity.ts; a request without one is refused before any handler code runs. The agent channel
 * (/agent/v1/…) is the one exception: it has no IAM auth, and each request carries its task's token instead.
 *
 * Light at import time: the runtime, stores and dispatcher are loaded on the first invocation and reused by
 * later ones in the same execution environment.
 */
import { isChannelPath } from "../channel/paths";
import { userOf } from "../identity";
import type { Runtime } from "../runtime";
import type { ApiResponse, TaskDispatcher } from "./router";

/** The subset of the v2 event this adapter reads. */
export interface HttpApiEventV2 {
  rawPath?: string;
  rawQueryString?: string;
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined>;
  body?: string;
  isBase64Encoded?: boolean;
  requestContext?: {
    stage?: string;
    http?: { method?: string; path?: string };
    authorizer?: { iam?: { userArn?: string; userId?: string } };
  };
}

export interface ApiDependencies {
  runtime: Runtime;
  dispatcher: TaskDispatcher;
}

export function createLambdaHandler(load: () => Promise<ApiDependencies>) {
  let deps: Promise<ApiDependencies> | undefined;
  return async (event: HttpApiEventV2): Promise<ApiResponse> => {
    const path = stripStage(event.rawPath ?? event.requestContext?.http?.path ?? "/", event.requestContext?.stage);
    const agentRoute = isChannelPath(path);
    const callerArn = event.requestContext?.authorizer?.iam?.userArn;
    if (!callerArn && !agentRoute) return refuse(403, "no IAM caller identity on the request: sign it with SigV4 (AWS_IAM auth)");
    // A failed load is not cached: the next invocation tries again.
    deps ??= load().catch((err) => {
      deps = undefined;
      throw err;
    });
    const { runtime, dispatcher } = await deps;
    let userId = "";
    if (!agentRoute) {
      const user = userOf(callerArn!, runtime.config.identity);
      if (!user.ok) return refuse(403, user.reason);
      userId = user.userId;
    }
    const { handleApiRequest } = await import("./router");
    return handleApiRequest(runtime, dispatcher, {
      method: event.requestContext?.http?.method ?? "GET",
      path,
      query: parseQuery(event.rawQueryString, event.queryStringParameters),
      headers: event.headers ?? {},
      body: event.body !== undefined && event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body,
      userId,
    });
  };
}

function refuse(statusCode: number, error: string): ApiResponse {
  return { statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify({ error }) };
}

/** A named stage prefixes rawPath (/prod/tasks); the $default stage does not. */
function stripStage(path: string, stage: string | undefined): string {
  if (stage && stage !== "$default" && (path === `/${stage}` || path.startsWith(`/${stage}/`))) {
    return path.slice(stage.length + 1) || "/";
  }
  return path;
}

/** rawQueryString keeps repeated keys apart; queryStringParameters joins them with commas. The first wins. */
function parseQuery(raw: string | undefined, parsed: Record<string, string | undefined> | undefined): Record<string, string | undefined> {
  if (raw === undefined) return { ...(parsed ?? {}) };
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(raw)) if (!(k in out)) out[k] = v;
  return out;
}

export const handler = createLambdaHandler(async () => {
  const [{ loadRuntimeConfig }, { createRuntime }, { LambdaDispatcher }] = await Promise.all([
    import("../config"),
    import("../runtime"),
    import("../orchestrator/dispatch"),
  ]);
  const config = loadRuntimeConfig();
  return { runtime: createRuntime(config), dispatcher: new LambdaDispatcher(config) };
});
