/**
 * The local platform: everything a deployed stack does, on one machine with no AWS account.
 *   - the task store: dynalite in-process (embedded-store.ts), so the cloud's store code runs unchanged;
 *   - the task API: the same handleApiRequest, over HTTP on 127.0.0.1, the caller being the OS user;
 *   - the orchestrator: the local loop over the same workflow steps as the durable Lambda;
 *   - the compute: the local backend only (the agent as a child process), payloads as files.
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { handleApiRequest } from "../api/router";
import type { ApiRequest, ApiResponse } from "../api/http";
import type { RepoCredentialsProvider } from "../channel/credentials";
import { checkRuntimeConfig, type LimitsConfig, type RuntimeConfig } from "../config";
import { DEFAULT_LIMITS } from "../limits";
import { createRuntime, type Runtime } from "../runtime";
import { ACTIVE_STATUSES } from "../tasks/status";
import { LocalOrchestratorExecutions } from "../reconciler/executions";
import { reconcileOnce } from "../reconciler/reconcile";
import { LocalDispatcher } from "./dispatcher";
import { startEmbeddedStore, type EmbeddedStore } from "./embedded-store";
import { serveApi } from "./http-server";

/**
 * Seconds between the local orchestrator's polls. The cloud's 5 s floor (clampPollInterval) protects AWS APIs
 * from per-task polling at scale; here a poll is a read of an in-process store and a check of a child process,
 * so a 1 s interval costs nothing and makes the lifecycle visible as it happens.
 */
export const LOCAL_POLL_SECONDS = 1;

export const LOCAL_HEARTBEAT_SECONDS = 2;

/**
 * Longest sleep between polls of a local task. In the cloud the ceiling bounds durable history; here a poll is
 * free, and the agent's terminal write does not wake the loop, so it stays short.
 */
export const LOCAL_MAX_WAIT_SECONDS = 5;

/** Seconds between the local reconciler's passes (the cloud's runs on a schedule). */
export const LOCAL_RECONCILE_SECONDS = 60;

/** Liveness limits for local runs: an agent process starts in about a second, not a Fargate minute. */
export const LOCAL_LIMITS: LimitsConfig = {
  ...DEFAULT_LIMITS,
  pollIntervalSeconds: LOCAL_POLL_SECONDS,
  heartbeatTimeoutSeconds: 60,
};

export const LOCAL_STATE_FILE = "local.json";

export interface LocalPlatformOptions {
  /** Port of the API; 0 (the default) picks a free one. */
  port?: number;
  /** Folder for the state file, payloads and agent run folders. Default: ./.agent-compute */
  stateDir?: string;
  /** Write <stateDir>/local.json ({url, pid}) so the CLI finds this platform; removed on close. */
  writeStateFile?: boolean;
  /** The caller every request is attributed to. Default: the OS user name. */
  userId?: string;
  /** Seconds between orchestrator polls. Default LOCAL_POLL_SECONDS. */
  pollSeconds?: number;
  /** argv of the agent process; the reference agent when omitted. */
  agentCommand?: string[];
  /** Extra environment for the agent process (local.env), e.g. the runner's AGENT_DRIVER and git url rewrites. */
  agentEnv?: Record<string, string>;
  limits?: Partial<LimitsConfig>;
  /** Repository credentials agents may fetch through the channel (default: the operator's token from the environment, if any). */
  repoCredentials?: RepoCredentialsProvider;
  /** Seconds between reconciler passes; default LOCAL_RECONCILE_SECONDS. */
  reconcileSeconds?: number;
  log?: (line: string) => void;
}

export interface LocalPlatform {
  /** http://127.0.0.1:<port> */
  url: string;
  userId: string;
  config: RuntimeConfig;
  runtime: Runtime;
  dispatcher: LocalDispatcher;
  store: EmbeddedStore;
  /**
   * Shut down: tasks still running are cancelled (their agents stopped) — the in-memory store goes away with the
   * platform, so nothing could ever resume them — then the API, the orchestrator loops and the store stop.
   */
  close(): Promise<void>;
}

export function localUserName(): string {
  try {
    return os.userInfo().username || "local";
  } catch {
    // No passwd entry (some containers): still one user on this machine.
    return process.env.USER ?? "local";
  }
}

/**
 * The runtime config of a local run: only the local backend, payloads as files under `stateDir`, the embedded
 * store as the task store. The agent never touches that store: it reports through the agent channel of the local
 * API at `channelUrl`, and its environment holds no store endpoint or credentials.
 */
export function localRuntimeConfig(
  store: EmbeddedStore,
  stateDir: string,
  options: { agentCommand?: string[]; agentEnv?: Record<string, string>; heartbeatSeconds?: number; limits?: Partial<LimitsConfig>; channelUrl?: string } = {},
): RuntimeConfig {
  return checkRuntimeConfig({
    region: store.region,
    endpoints: { dynamodb: store.endpoint },
    tables: store.tableNames,
    payload: { kind: "file", dir: path.join(stateDir, "payloads") },
    defaultBackend: "local",
    enabledBackends: ["local"],
    local: {
      workDir: path.join(stateDir, "runs"),
      // A 2 s heartbeat by default (the contract's ceiling is 45 s) so a short local run shows its heartbeats.
      env: { ...options.agentEnv, AGENT_HEARTBEAT_SECONDS: String(options.heartbeatSeconds ?? LOCAL_HEARTBEAT_SECONDS) },
      ...(options.agentCommand ? { command: options.agentCommand } : {}),
    },
    ...(options.channelUrl ? { agentChannel: { url: options.channelUrl } } : {}),
    // The operator's own token (AGENT_COMPUTE_GIT_TOKEN or _FILE), when set, through the channel's credentials route.
    credentials: { kind: "local" },
    limits: { ...DEFAULT_LIMITS, ...options.limits },
  });
}

export async function startLocalPlatform(options: LocalPlatformOptions = {}): Promise<LocalPlatform> {
  const stateDir = path.resolve(options.stateDir ?? ".agent-compute");
  const log = options.log ?? (() => undefined);
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });

  const store = await startEmbeddedStore({ region: "us-east-1" });
  const cleanups: (() => Promise<void>)[] = [() => store.close()];
  try {
    // The API listens first: its URL is the agents' channel, which the config hands to every agent. Nobody can
    // call it before it answers with its URL, so the handler's runtime is always set by then.
    let handler: ((request: ApiRequest) => Promise<ApiResponse>) | undefined;
    const userId = options.userId ?? localUserName();
    const http = await serveApi((request) => handler!(request), { host: "127.0.0.1", port: options.port ?? 0, userId, log });
    cleanups.unshift(() => http.close());
    const config = localRuntimeConfig(store, stateDir, {
      agentCommand: options.agentCommand,
      agentEnv: options.agentEnv,
      limits: { ...LOCAL_LIMITS, ...options.limits },
      channelUrl: http.url,
    });
    const runtime = createRuntime(config, options.repoCredentials ? { repoCredentials: options.repoCredentials } : {});
    const pollSeconds = options.pollSeconds ?? LOCAL_POLL_SECONDS;
    const dispatcher = new LocalDispatcher(runtime, { waitSeconds: pollSeconds, maxWaitSeconds: Math.max(pollSeconds, LOCAL_MAX_WAIT_SECONDS), log });
    cleanups.unshift(() => dispatcher.close());
    handler = (request) => handleApiRequest(runtime, dispatcher, request);
    // The same reconciler pass as the cloud's scheduled Lambda, on an interval.
    const executions = new LocalOrchestratorExecutions(dispatcher);
    const reconciling = setInterval(() => {
      reconcileOnce(runtime, { executions }).then(
        (report) => {
          for (const a of report.applied) if (a.outcome !== "skipped") log(`reconciler ${a.action.kind} ${a.action.taskId}: ${a.outcome} (${a.action.reason})`);
        },
        (err) => log(`reconciler pass failed: ${(err as Error).message}`),
      );
    }, (options.reconcileSeconds ?? LOCAL_RECONCILE_SECONDS) * 1000);
    reconciling.unref();
    cleanups.unshift(async () => clearInterval(reconciling));

    const stateFile = path.join(stateDir, LOCAL_STATE_FILE);
    if (options.writeStateFile) {
      await fs.writeFile(stateFile, `${JSON.stringify({ url: http.url, pid: process.pid, user: userId }, null, 2)}\n`, { mode: 0o600 });
      cleanups.unshift(() => removeStateFileIfOurs(stateFile));
    }

    let closing: Promise<void> | undefined;
    return {
      url: http.url,
      userId,
      config,
      runtime,
      dispatcher,
      store,
      close: () =>
        (closing ??= (async () => {
          if (await cancelActive(runtime, dispatcher, log)) {
            // Let the cancelled tasks' loops see CANCELLED and finalize (payload, events) before stopping them.
            await waitAtMost(dispatcher.idle(), (pollSeconds * 3 + 2) * 1000);
          }
          for (const cleanup of cleanups) await cleanup().catch((err) => log(`shutdown: ${(err as Error).message}`));
        })()),
    };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    throw err;
  }
}

/** Cancels the tasks this platform is still running; returns how many it cancelled. */
async function cancelActive(runtime: Runtime, dispatcher: LocalDispatcher, log: (line: string) => void): Promise<number> {
  const { cancelTask } = await import("../orchestrator/cancel");
  let cancelled = 0;
  for (const taskId of dispatcher.active()) {
    const task = await runtime.tasks.get(taskId).catch(() => undefined);
    if (!task || !ACTIVE_STATUSES.includes(task.status)) continue;
    await cancelTask(runtime, taskId, { reason: "the local platform shut down" }).then(
      () => {
        cancelled++;
        log(`cancelled task ${taskId}: the local platform shut down`);
      },
      (err) => log(`could not cancel task ${taskId} on shutdown: ${(err as Error).message}`),
    );
  }
  return cancelled;
}

function waitAtMost(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

/** Another `local` may have replaced the file since; only remove the one this process wrote. */
async function removeStateFileIfOurs(file: string): Promise<void> {
  try {
    const state = JSON.parse(await fs.readFile(file, "utf8"));
    if (state.pid === process.pid) await fs.rm(file, { force: true });
  } catch {
    // Already gone.
  }
}
