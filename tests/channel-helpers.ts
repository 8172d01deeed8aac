/**
 * For tests that run real agents outside the full local platform: the embedded store's runtime with the agent
 * channel served on a loopback port (the same handler the platform serves), and what the orchestrator's start step
 * does before a strategy runs (payload written, token issued, locator handed out).
 */
import { handleApiRequest } from "../runtime/api/router";
import { prepareAgentChannel } from "../runtime/channel/dispatch";
import type { LimitsConfig, RuntimeConfig } from "../runtime/config";
import type { EmbeddedStore } from "../runtime/local/embedded-store";
import { serveApi, type LocalHttpServer } from "../runtime/local/http-server";
import { localRuntimeConfig } from "../runtime/local/platform";
import type { AgentPayload } from "../runtime/ports";
import { createRuntime, type Runtime, type RuntimeOverrides } from "../runtime/runtime";
import type { TaskRecord } from "../runtime/tasks/record";

export interface LocalChannel {
  config: RuntimeConfig;
  rt: Runtime;
  http: LocalHttpServer;
  /** Create the STARTING record, write its payload, issue its token: what startSession is handed. */
  prepare(task: TaskRecord, payload: AgentPayload): Promise<{ task: TaskRecord; payloadUrl: string }>;
  close(): Promise<void>;
}

export async function startLocalChannel(
  store: EmbeddedStore,
  workDir: string,
  options: { heartbeatSeconds?: number; limits?: Partial<LimitsConfig>; overrides?: RuntimeOverrides } = {},
): Promise<LocalChannel> {
  let rt: Runtime | undefined;
  const noDispatch = { dispatch: async () => undefined };
  const http = await serveApi((req) => handleApiRequest(rt!, noDispatch, req), { host: "127.0.0.1", port: 0, userId: "dev" });
  const config = localRuntimeConfig(store, workDir, { heartbeatSeconds: options.heartbeatSeconds, limits: options.limits, channelUrl: http.url });
  rt = createRuntime(config, options.overrides);
  const runtime = rt;
  return {
    config,
    rt: runtime,
    http,
    async prepare(task, payload) {
      await runtime.tasks.create(task);
      const uri = await runtime.payloads.put(task.task_id, payload);
      await runtime.tasks.update(task.task_id, { payload_uri: uri }, ["STARTING"]);
      const payloadUrl = await prepareAgentChannel(runtime, (await runtime.tasks.get(task.task_id))!, uri);
      return { task: (await runtime.tasks.get(task.task_id))!, payloadUrl };
    },
    close: () => http.close(),
  };
}
