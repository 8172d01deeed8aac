/**
 * The reference agent: the smallest program that honours the agent contract (docs/agent-contract.md). It is not
 * an LLM. Its "work" is real and harmless: it measures the prompt (SHA-256, bytes, lines, words), reports
 * progress as task events for payload.context.work_seconds, and writes a terminal result. It never executes,
 * evaluates or shell-expands the prompt. payload.context.fail_with_exit_code makes it fail on purpose (demos and
 * tests of the FAILED path).
 *
 * Run as a process: `node -r ts-node/register/transpile-only runtime/agent/reference-agent.ts` (or the compiled
 * .js) with the contract's environment.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_LIMITS } from "../limits";
import { IllegalTransitionError } from "../errors";
import { readPayload } from "../payload";
import type { AgentPayload, TaskEventLog, TaskStore } from "../ports";
import { isTerminal, type TaskStatus } from "../tasks/status";
import { DynamoEventLog } from "../tasks/events";
import { DynamoTaskStore } from "../tasks/store";

/** Exit codes of the reference agent (an agent's own failures use any other non-zero code). */
export const EXIT = {
  OK: 0,
  /** An unexpected error after the agent started. */
  ERROR: 1,
  /** The environment or the payload is unusable. */
  SETUP: 2,
} as const;

export const DEFAULT_HEARTBEAT_SECONDS = 30;
/** The contract requires a heartbeat at least this often. */
export const MAX_HEARTBEAT_SECONDS = 45;
export const DEFAULT_WORK_SECONDS = 1;
export const MAX_WORK_SECONDS = 3600;

export class AgentSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgentSetupError";
  }
}

export interface AgentEnvironment {
  taskId: string;
  taskTable: string;
  eventsTable: string;
  region: string;
  payloadUri: string;
  heartbeatSeconds: number;
}

/** The contract's environment, checked: every missing or malformed variable is named at once. */
export function readAgentEnvironment(env: NodeJS.ProcessEnv): AgentEnvironment {
  const missing = ["TASK_ID", "TASK_TABLE_NAME", "TASK_EVENTS_TABLE_NAME", "AWS_REGION", "AGENT_PAYLOAD_URI"].filter(
    (k) => !env[k],
  );
  const problems = missing.length ? [`missing environment variable(s): ${missing.join(", ")}`] : [];
  const rawBeat = env.AGENT_HEARTBEAT_SECONDS;
  const heartbeatSeconds = rawBeat === undefined || rawBeat === "" ? DEFAULT_HEARTBEAT_SECONDS : Number(rawBeat);
  if (!(heartbeatSeconds > 0 && heartbeatSeconds <= MAX_HEARTBEAT_SECONDS)) {
    problems.push(`AGENT_HEARTBEAT_SECONDS must be a number in (0, ${MAX_HEARTBEAT_SECONDS}], got '${rawBeat}'`);
  }
  if (problems.length) throw new AgentSetupError(problems.join("; "));
  return {
    taskId: env.TASK_ID!,
    taskTable: env.TASK_TABLE_NAME!,
    eventsTable: env.TASK_EVENTS_TABLE_NAME!,
    region: env.AWS_REGION!,
    payloadUri: env.AGENT_PAYLOAD_URI!,
    heartbeatSeconds,
  };
}

export interface PromptFacts {
  sha256: string;
  bytes: number;
  lines: number;
  words: number;
}

/** The agent's work product: facts about the prompt, computed without interpreting it. */
export function describePrompt(prompt: string): PromptFacts {
  return {
    sha256: createHash("sha256").update(prompt, "utf8").digest("hex"),
    bytes: Buffer.byteLength(prompt, "utf8"),
    lines: prompt === "" ? 0 : prompt.split("\n").length,
    words: prompt.split(/\s+/).filter(Boolean).length,
  };
}

export interface WorkPlan {
  workSeconds: number;
  /** Exit code the agent was asked to fail with, if any. */
  failWithExitCode?: number;
}

/** What payload.context asks of the reference agent; invalid values are refused, not guessed at. */
export function planWork(context: Record<string, unknown> | undefined): WorkPlan {
  const ws = context?.work_seconds;
  if (ws !== undefined && !(typeof ws === "number" && ws >= 0 && ws <= MAX_WORK_SECONDS)) {
    throw new AgentSetupError(`context.work_seconds must be a number of seconds in [0, ${MAX_WORK_SECONDS}], got ${JSON.stringify(ws)}`);
  }
  const fail = context?.fail_with_exit_code;
  if (fail !== undefined && !(Number.isInteger(fail) && (fail as number) >= 1 && (fail as number) <= 255)) {
    throw new AgentSetupError(`context.fail_with_exit_code must be an integer in [1, 255], got ${JSON.stringify(fail)}`);
  }
  return { workSeconds: (ws as number | undefined) ?? DEFAULT_WORK_SECONDS, failWithExitCode: fail as number | undefined };
}

export interface AgentDeps {
  tasks?: TaskStore;
  events?: TaskEventLog;
  readPayload?: (uri: string, region: string) => Promise<AgentPayload>;
  log?: (line: string) => void;
}

/** Thrown inside the run when the task left the agent's hands (cancelled, timed out, failed by the orchestrator). */
class Stopped extends Error {
  constructor(readonly status: TaskStatus) {
    super(`task is ${status}`);
  }
}

/**
 * Run one task to its end and return the process exit code. Never throws: every outcome is a code, and every
 * outcome the agent owns is also written to the task record.
 */
export async function runReferenceAgent(env: NodeJS.ProcessEnv, deps: AgentDeps = {}): Promise<number> {
  const log = deps.log ?? ((line: string) => process.stdout.write(`[reference-agent] ${line}\n`));
  let e: AgentEnvironment;
  try {
    e = readAgentEnvironment(env);
  } catch (err) {
    log((err as Error).message);
    return EXIT.SETUP;
  }
  const storeConfig = {
    region: e.region,
    tables: { tasks: e.taskTable, events: e.eventsTable },
    // The agent does not know the stack's retention; the orchestrator's own writes carry the stack's value.
    limits: { retentionDays: DEFAULT_LIMITS.retentionDays },
  };
  const tasks = deps.tasks ?? new DynamoTaskStore(storeConfig);
  const events = deps.events ?? new DynamoEventLog(storeConfig);
  const read = deps.readPayload ?? readPayload;

  let payload: AgentPayload;
  let plan: WorkPlan;
  try {
    payload = await read(e.payloadUri, e.region);
    if (payload.task_id !== e.taskId) {
      throw new AgentSetupError(`payload at ${e.payloadUri} is for task ${payload.task_id}, not TASK_ID ${e.taskId}`);
    }
    plan = planWork(payload.context);
  } catch (err) {
    const message = `reference agent could not use its payload: ${(err as Error).message}`;
    log(message);
    return finishFailed(tasks, e.taskId, message, EXIT.SETUP, ["STARTING", "RUNNING"], log);
  }

  // STARTING → RUNNING. A task already RUNNING is this agent's own earlier attempt (a redelivered command).
  try {
    await tasks.transition(e.taskId, "RUNNING", { agent_heartbeat_at: new Date().toISOString() }, ["STARTING"]);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError)) {
      log(`could not write RUNNING: ${(err as Error).message}`);
      return EXIT.ERROR;
    }
    if (err.actual && isTerminal(err.actual)) {
      log(`task is already ${err.actual}; nothing to do`);
      return EXIT.OK;
    }
    if (err.actual !== "RUNNING") {
      log(`task is ${err.actual ?? "missing"}, not STARTING; an agent runs only tasks the platform started`);
      return EXIT.SETUP;
    }
  }

  const stop = new AbortController();
  let stoppedBy: TaskStatus | undefined;
  const beat = setInterval(() => {
    tasks.heartbeat(e.taskId).catch((err) => {
      if (err instanceof IllegalTransitionError && err.actual && isTerminal(err.actual)) {
        stoppedBy = err.actual;
        stop.abort();
      } else {
        // A missed beat is not fatal: the next one may pass, and the platform allows several.
        log(`heartbeat failed: ${(err as Error).message}`);
      }
    });
  }, e.heartbeatSeconds * 1000);

  try {
    const facts = describePrompt(payload.prompt);
    await events.append(e.taskId, "info", `reference agent started: prompt of ${facts.bytes} bytes, ${facts.lines} lines`, {
      data: { repo_url: payload.repo_url, work_seconds: plan.workSeconds },
    });
    await doWork(plan.workSeconds, stop.signal, (step, of) =>
      events.append(e.taskId, "info", `reference agent progress ${step}/${of}`).then(() => undefined),
    );
    if (plan.failWithExitCode !== undefined) {
      const message = `reference agent failed on request (context.fail_with_exit_code = ${plan.failWithExitCode})`;
      log(message);
      return await finishFailed(tasks, e.taskId, message, plan.failWithExitCode, ["RUNNING"], log);
    }
    await events.append(e.taskId, "info", `prompt sha256 ${facts.sha256}`, { data: { ...facts } });
    await tasks.transition(e.taskId, "COMPLETED", { exit_code: EXIT.OK, cost_usd: 0 }, ["RUNNING"]);
    log("task COMPLETED");
    return EXIT.OK;
  } catch (err) {
    const status = stoppedBy ?? (err instanceof Stopped ? err.status : undefined);
    if (status) {
      log(`task is ${status}; stopping without writing`);
      return EXIT.OK;
    }
    if (err instanceof IllegalTransitionError && err.actual && isTerminal(err.actual)) {
      log(`task became ${err.actual} before the agent finished; stopping without writing`);
      return EXIT.OK;
    }
    const message = `reference agent error: ${(err as Error).message}`;
    log(message);
    return finishFailed(tasks, e.taskId, message, EXIT.ERROR, ["RUNNING"], log);
  } finally {
    clearInterval(beat);
  }
}

/** Spend `seconds` in a few progress steps; an abort (the task was cancelled) ends it at once. */
async function doWork(seconds: number, signal: AbortSignal, progress: (step: number, of: number) => Promise<void>): Promise<void> {
  const steps = seconds > 0 ? Math.max(1, Math.min(5, Math.ceil(seconds))) : 0;
  for (let step = 1; step <= steps; step++) {
    try {
      await sleep((seconds * 1000) / steps, undefined, { signal });
    } catch {
      throw new Stopped("CANCELLED");
    }
    await progress(step, steps);
  }
  if (signal.aborted) throw new Stopped("CANCELLED");
}

async function finishFailed(
  tasks: TaskStore,
  taskId: string,
  message: string,
  exitCode: number,
  from: TaskStatus[],
  log: (line: string) => void,
): Promise<number> {
  try {
    await tasks.transition(taskId, "FAILED", { error_message: message, exit_code: exitCode }, from);
  } catch (err) {
    // Already terminal (cancelled meanwhile) or unreachable: the exit code still tells the platform.
    log(`could not write FAILED: ${(err as Error).message}`);
  }
  return exitCode;
}

if (require.main === module) {
  runReferenceAgent(process.env).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`[reference-agent] ${(err as Error).stack ?? String(err)}\n`);
      process.exit(EXIT.ERROR);
    },
  );
}
