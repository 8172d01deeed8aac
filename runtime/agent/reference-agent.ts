/**
 * The reference agent: the smallest program that honours the agent contract (docs/agent-contract.md). It is not
 * an LLM. Its "work" is real and harmless: it measures the prompt (SHA-256, bytes, lines, words), reports
 * progress as task events for payload.context.work_seconds, and reports a terminal result. It never executes,
 * evaluates or shell-expands the prompt. payload.context.fail_with_exit_code makes it fail on purpose (demos and
 * tests of the FAILED path).
 *
 * It speaks only the agent channel, with plain fetch: no AWS SDK, no table names, no AWS credentials.
 *
 * Run as a process: `node -r ts-node/register/transpile-only runtime/agent/reference-agent.ts` (or the compiled
 * .js) with the contract's environment.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { AgentPayload } from "../ports";
import { AgentChannelClient, fetchPayload, type ChannelAnswer, type Fetch } from "./channel-client";

/** Exit codes of the reference agent (an agent's own failures use any other non-zero code). */
export const EXIT = {
  OK: 0,
  /** An unexpected error after the agent started. */
  ERROR: 1,
  /** The environment or the payload is unusable, or the channel refused the agent. */
  SETUP: 2,
} as const;

export const DEFAULT_HEARTBEAT_SECONDS = 30;
/** The contract requires a heartbeat at least this often. */
export const MAX_HEARTBEAT_SECONDS = 45;
export const DEFAULT_WORK_SECONDS = 1;
export const MAX_WORK_SECONDS = 3600;

const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

export class AgentSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgentSetupError";
  }
}

export interface AgentEnvironment {
  taskId: string;
  /** An https:// presigned URL or an absolute file path. A secret: never logged. */
  payloadUrl: string;
  heartbeatSeconds: number;
}

/** The contract's environment, checked: every missing or malformed variable is named at once. */
export function readAgentEnvironment(env: NodeJS.ProcessEnv): AgentEnvironment {
  const missing = ["TASK_ID", "AGENT_PAYLOAD_URL"].filter((k) => !env[k]);
  const problems = missing.length ? [`missing environment variable(s): ${missing.join(", ")}`] : [];
  const rawBeat = env.AGENT_HEARTBEAT_SECONDS;
  const heartbeatSeconds = rawBeat === undefined || rawBeat === "" ? DEFAULT_HEARTBEAT_SECONDS : Number(rawBeat);
  if (!(heartbeatSeconds > 0 && heartbeatSeconds <= MAX_HEARTBEAT_SECONDS)) {
    problems.push(`AGENT_HEARTBEAT_SECONDS must be a number in (0, ${MAX_HEARTBEAT_SECONDS}], got '${rawBeat}'`);
  }
  if (problems.length) throw new AgentSetupError(problems.join("; "));
  return { taskId: env.TASK_ID!, payloadUrl: env.AGENT_PAYLOAD_URL!, heartbeatSeconds };
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
  /** The HTTP client for the payload URL and the channel (tests pass their own). */
  fetch?: Fetch;
  log?: (line: string) => void;
}

/** Thrown inside the run when the task left the agent's hands (cancelled, timed out, failed by the orchestrator). */
class Stopped extends Error {
  constructor(readonly status: string) {
    super(`task is ${status}`);
  }
}

/**
 * Run one task to its end and return the process exit code. Never throws: every outcome is a code, and every
 * outcome the agent owns is also reported through the channel.
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

  let payload: AgentPayload;
  try {
    payload = await fetchPayload(e.payloadUrl, deps.fetch);
  } catch (err) {
    // Without the payload there is no channel to report through: the exit code is the only signal left.
    log(`could not read the payload: ${(err as Error).message}`);
    return EXIT.SETUP;
  }
  if (payload.task_id !== e.taskId || !payload.channel?.url || !payload.channel.token) {
    log(payload.task_id !== e.taskId ? `the payload is for task ${payload.task_id}, not TASK_ID ${e.taskId}` : "the payload has no channel to report through");
    return EXIT.SETUP;
  }
  const channel = new AgentChannelClient(payload.channel, e.taskId, deps.fetch);

  let plan: WorkPlan;
  try {
    plan = planWork(payload.context);
  } catch (err) {
    const message = `reference agent could not use its payload: ${(err as Error).message}`;
    log(message);
    return finishFailed(channel, message, EXIT.SETUP, log);
  }

  // STARTING → RUNNING. RUNNING already is this agent's own earlier attempt (a redelivered command).
  let answer: ChannelAnswer;
  try {
    answer = await channel.running();
  } catch (err) {
    log(`could not report RUNNING: ${(err as Error).message}`);
    return EXIT.ERROR;
  }
  if (answer.status === 409 && TERMINAL.includes(String(answer.body.status))) {
    log(`task is already ${answer.body.status}; nothing to do`);
    return EXIT.OK;
  }
  if (answer.status === 401) {
    // A token dies with its task: the task ended before this agent started (cancelled while starting, say).
    log(`the channel refused this agent's token (${String(answer.body.error ?? "")}); nothing to do`);
    return EXIT.OK;
  }
  if (answer.status !== 200) {
    log(`the channel refused RUNNING (HTTP ${answer.status}${answer.body.status ? `, task ${answer.body.status}` : ""}); an agent runs only tasks the platform started`);
    return EXIT.SETUP;
  }

  const stop = new AbortController();
  let stoppedBy: string | undefined;
  const beat = setInterval(() => {
    channel.heartbeat().then(
      (a) => {
        // 409: the task ended (cancelled, timed out); 401: its token died with it. Either way: stop, write nothing.
        if (a.status === 409 || a.status === 401) {
          stoppedBy = String(a.body.status ?? "ended");
          stop.abort();
        } else if (a.status !== 200) log(`heartbeat answered HTTP ${a.status}`);
      },
      // A missed beat is not fatal: the next one may pass, and the platform allows several.
      (err) => log(`heartbeat failed: ${(err as Error).message}`),
    );
  }, e.heartbeatSeconds * 1000);

  try {
    const facts = describePrompt(payload.prompt);
    await report(channel, "info", `reference agent started: prompt of ${facts.bytes} bytes, ${facts.lines} lines`, log, {
      repo_url: payload.repo_url,
      work_seconds: plan.workSeconds,
    });
    await doWork(plan.workSeconds, stop.signal, (step, of) => report(channel, "progress", `reference agent progress ${step}/${of}`, log));
    if (plan.failWithExitCode !== undefined) {
      const message = `reference agent failed on request (context.fail_with_exit_code = ${plan.failWithExitCode})`;
      log(message);
      return await finishFailed(channel, message, plan.failWithExitCode, log);
    }
    await report(channel, "info", `prompt sha256 ${facts.sha256}`, log, { ...facts });
    const done = await channel.result({ status: "COMPLETED", exit_code: EXIT.OK, cost_usd: 0, turns: 0, summary: `measured the prompt: sha256 ${facts.sha256}` });
    if (done.status === 409 || done.status === 401) {
      log(`task became ${done.body.status ?? "ended"} before the agent finished; stopping`);
      return EXIT.OK;
    }
    if (done.status !== 200) throw new Error(`the channel refused the result (HTTP ${done.status}: ${String(done.body.error ?? "")})`);
    log("task COMPLETED");
    return EXIT.OK;
  } catch (err) {
    const status = stoppedBy ?? (err instanceof Stopped ? err.status : undefined);
    if (status) {
      log(`task is ${status}; stopping without writing`);
      return EXIT.OK;
    }
    const message = `reference agent error: ${(err as Error).message}`;
    log(message);
    return finishFailed(channel, message, EXIT.ERROR, log);
  } finally {
    clearInterval(beat);
  }
}

/** Events are for people watching: one refused (over the rate, say) is logged and the work goes on. */
async function report(channel: AgentChannelClient, type: "info" | "progress", message: string, log: (line: string) => void, data?: Record<string, unknown>): Promise<void> {
  const a = await channel.event(type, message, data);
  if (a.status !== 202) log(`event not recorded (HTTP ${a.status})`);
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

async function finishFailed(channel: AgentChannelClient, message: string, exitCode: number, log: (line: string) => void): Promise<number> {
  try {
    const a = await channel.result({ status: "FAILED", exit_code: exitCode, error_message: message.slice(0, 2000) });
    if (a.status !== 200) log(`FAILED not recorded (HTTP ${a.status}${a.body.status ? `, task ${a.body.status}` : ""})`);
  } catch (err) {
    // Unreachable: the exit code still tells the platform.
    log(`could not report FAILED: ${(err as Error).message}`);
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
