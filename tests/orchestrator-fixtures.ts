/**
 * Shared by the orchestrator and cancel tests: a runtime over real DynamoDB tables in moto (unique names per
 * suite), a payload folder, a settable clock, and a scriptable fake compute strategy per backend.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalDurableTestRunner } from "@aws/durable-execution-sdk-js-testing";
import type { BackendType, HandleOf, SessionHandle } from "../runtime/compute/handle";
import type { ComputeStrategy, SessionStatus, StartRequest } from "../runtime/compute/strategy";
import type { LimitsConfig, RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { createRuntime, type Runtime, type RuntimeOverrides } from "../runtime/runtime";
import { wakeOrchestrator, type DurableCallbacks } from "../runtime/orchestrator/wake";
import type { TaskRecord } from "../runtime/tasks/record";
import { ec2Settings, runtimeConfig, suffix } from "./fixtures";

export { createTables, suffix } from "./fixtures";

/** Every backend enabled (their strategies are the fakes below), the local one by default. */
export function testConfig(limits: Partial<LimitsConfig> = {}): RuntimeConfig {
  return runtimeConfig("orch", {
    payload: { kind: "file", dir: mkdtempSync(join(tmpdir(), "orch-payload-")) },
    enabledBackends: ["agentcore", "ecs", "ec2", "local"],
    ecs: { cluster: "agents", taskDefinition: "agent", containerName: "agent", subnets: ["subnet-1"], securityGroups: ["sg-1"] },
    ec2: ec2Settings(["default"], { documentName: "agent-compute-run", deliveryTimeoutSeconds: 60 }),
    agentcore: { runtimeArn: "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agent-abc" },
    local: { workDir: mkdtempSync(join(tmpdir(), "orch-local-")) },
    agentChannel: { url: "https://api.example.test" },
    limits: { ...DEFAULT_LIMITS, ...limits },
  });
}

/** A clock the test moves by hand; the runtime, the fake agent and the records all read it. */
export class FakeClock {
  constructor(private t = Date.parse("2030-01-01T00:00:00.000Z")) {}
  now = (): Date => new Date(this.t);
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

let taskCounter = 0;

export async function createTask(rt: Runtime, fields: Partial<TaskRecord> = {}): Promise<TaskRecord> {
  const at = rt.now().toISOString();
  const record: TaskRecord = {
    task_id: `t-${suffix()}-${String(++taskCounter).padStart(4, "0")}`,
    user_id: "alice",
    status: "SUBMITTED",
    repo_url: "https://github.com/example/repo",
    prompt: "fix the bug",
    created_at: at,
    updated_at: at,
    ...fields,
  };
  if (!record.payload_uri) {
    record.payload_uri = await rt.payloads.put(record.task_id, {
      task_id: record.task_id,
      repo_url: record.repo_url,
      prompt: record.prompt,
    });
  }
  await rt.tasks.create(record);
  return record;
}

export function handleFor(type: BackendType, taskId: string): SessionHandle {
  switch (type) {
    case "agentcore":
      return { type, runtimeArn: "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agent-abc", sessionId: `${taskId}-session-000000000000000000000` };
    case "ecs":
      return { type, cluster: "agents", taskArn: `arn:aws:ecs:us-east-1:123456789012:task/agents/${taskId}` };
    case "ec2":
      return { type, fleet: "default", instanceId: "i-0123456789abcdef0", commandId: `cmd-${taskId}`, documentName: "agent-compute-run" };
    case "local":
      return { type, pid: 4242, runDir: `/tmp/runs/${taskId}` };
  }
}

/** What one poll returns: a status, or an error the poll throws. */
export type PollScript = (ctx: { taskId: string; n: number; rt: Runtime; clock: FakeClock }) => Promise<SessionStatus | Error>;

/**
 * A compute strategy that runs nothing: start returns the same handle for the same task (as the real strategies
 * do, by task id), poll follows the test's script, and every call is recorded.
 */
export class FakeStrategy<T extends BackendType> implements ComputeStrategy<T> {
  readonly starts: string[] = [];
  readonly stops: { handle: SessionHandle; reason: string }[] = [];
  /** Task ids releaseTask was called for, in order. */
  readonly releases: string[] = [];
  readonly polls = new Map<string, number>();
  /** Sessions started and neither stopped nor reported finished (EXITED/LOST), by task id. */
  readonly live = new Set<string>();
  /** Runs inside startSession, before it returns (a cancel racing the start, a start error). */
  onStart?: (request: StartRequest) => Promise<void>;
  /**
   * Wake the orchestrator after every poll, as if the next poll's time had come: the durable runner spends a
   * callback's timeout in real time, so tests whose scripts move the clock themselves wake it instead.
   */
  wakeAfterPoll = false;

  constructor(
    readonly type: T,
    private readonly rt: () => Runtime,
    private readonly clock: FakeClock,
    public script: PollScript,
  ) {}

  async startSession(request: StartRequest): Promise<HandleOf<T>> {
    this.starts.push(request.task.task_id);
    await this.onStart?.(request);
    this.live.add(request.task.task_id);
    return handleFor(this.type, request.task.task_id) as HandleOf<T>;
  }

  async pollSession(handle: HandleOf<T>): Promise<SessionStatus> {
    const taskId = taskIdOf(handle);
    const n = this.polls.get(taskId) ?? 0;
    this.polls.set(taskId, n + 1);
    const out = await this.script({ taskId, n, rt: this.rt(), clock: this.clock });
    if (this.wakeAfterPoll) await wakeOrchestrator(this.rt(), taskId);
    if (out instanceof Error) throw out;
    // Compute that reports itself finished runs no more.
    if (out.state === "EXITED" || out.state === "LOST") this.live.delete(taskId);
    return out;
  }

  async stopSession(handle: HandleOf<T>, reason: string): Promise<void> {
    this.stops.push({ handle, reason });
    this.live.delete(taskIdOf(handle));
  }

  async releaseTask(task: TaskRecord): Promise<void> {
    this.releases.push(task.task_id);
  }
}

function taskIdOf(handle: SessionHandle): string {
  switch (handle.type) {
    case "agentcore":
      return handle.sessionId.replace(/-session-0+$/, "");
    case "ecs":
      return handle.taskArn.split("/").pop()!;
    case "ec2":
      return handle.commandId.replace(/^cmd-/, "");
    case "local":
      return handle.runDir.split("/").pop()!;
  }
}

/** Completes callbacks of executions the SDK's local durable runner is running (what SendDurableExecutionCallbackSuccess does in AWS). */
export function localRunnerCallbacks(): DurableCallbacks {
  // The runner's own API for its callbacks; its operations' sendCallbackSuccess goes through the same object.
  const api = (LocalDurableTestRunner as unknown as { createDurableApi(): { sendCallbackSuccess(r: { CallbackId: string; Result: string }): Promise<unknown> } }).createDurableApi();
  return {
    async succeed(callbackId, result) {
      await api.sendCallbackSuccess({ CallbackId: callbackId, Result: result });
    },
  };
}

export interface Harness<T extends BackendType> {
  rt: Runtime;
  clock: FakeClock;
  strategy: FakeStrategy<T>;
}

export function harness<T extends BackendType>(
  config: RuntimeConfig,
  type: T,
  script: PollScript,
  overridesOrFactory: RuntimeOverrides | ((clock: FakeClock) => RuntimeOverrides) = {},
): Harness<T> {
  const clock = new FakeClock();
  const overrides = typeof overridesOrFactory === "function" ? overridesOrFactory(clock) : overridesOrFactory;
  let rt: Runtime;
  const strategy = new FakeStrategy(type, () => rt, clock, script);
  rt = createRuntime(config, { now: clock.now, callbacks: localRunnerCallbacks(), ...overrides, strategies: { [type]: strategy } as RuntimeOverrides["strategies"] });
  return { rt, clock, strategy };
}

/** The agent's side of the contract, as a script step: RUNNING, heartbeats, a terminal status. */
export const agent = {
  async running(rt: Runtime, taskId: string, at: Date): Promise<void> {
    const task = await rt.tasks.get(taskId);
    if (!task || (task.status !== "STARTING" && task.status !== "RUNNING")) return; // it stops when it sees CANCELLED
    if (task.status === "STARTING") await rt.tasks.transition(taskId, "RUNNING", {}, ["STARTING"]);
    await rt.tasks.heartbeat(taskId, at);
  },
  async complete(rt: Runtime, taskId: string): Promise<void> {
    const task = await rt.tasks.get(taskId);
    if (task && task.status !== "STARTING" && task.status !== "RUNNING") return; // it reported once already
    await rt.tasks.transition(taskId, "COMPLETED", { pr_url: `https://github.com/example/repo/pull/1` }, ["STARTING", "RUNNING"]);
  },
};

/** Wait (briefly, in real time) until an asynchronous condition holds; for loops running in the background. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 25,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
