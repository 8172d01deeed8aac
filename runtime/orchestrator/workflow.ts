/**
 * The orchestration of one task, written once: load → admit (wait while QUEUED) → start (wait while an EC2 fleet
 * has no capacity) → await (poll, then sleep until woken or the next safety-net poll) → finalize. It runs on a
 * driver: the durable handler's driver makes each step a checkpointed durable step, each wait a durable wait and
 * each wake a durable callback; the local orchestrator's driver calls the steps directly and sleeps. The control
 * flow depends only on step results, so a durable replay takes exactly the same path.
 *
 * A step that fails for good (its retries spent) does not strand the task: the task ends FAILED, naming the step
 * and the error, and is finalized like any other. If even that cannot be written, the reconciler repairs it.
 */
import type { Runtime } from "../runtime";
import { IllegalTransitionError } from "../errors";
import { ACTIVE_STATUSES, isTerminal } from "../tasks/status";
import { admitTask } from "./admission";
import { FRESH_COUNTERS, pollTask, type PollCounters } from "./await";
import { graceRounds, pollCeilingSeconds, pollDelaySeconds } from "./await-schedule";
import { finalizeTask, type FinalizeResult } from "./finalize";
import { loadTask } from "./load";
import { startTask } from "./start";

/** A wake armed before a poll: `token` is what the poll records on the task; `wait` sleeps until woken or timed out. */
export interface ArmedWake {
  token?: string;
  wait(): Promise<void>;
}

export interface WorkflowDriver {
  /** Run one step; a durable driver runs it at most once per execution and replays its recorded result. */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  wait(name: string, seconds: number): Promise<void>;
  /** Prepare to sleep at most `seconds` after the coming poll, unless wakeOrchestrator wakes it first. */
  armWake(name: string, seconds: number): Promise<ArmedWake>;
  /** The durable execution running this workflow, when there is one. */
  readonly executionArn?: string;
}

/** A step whose error ended its retries: the workflow fails the task with this, naming the step. */
export class StepFailedError extends Error {
  constructor(
    readonly step: string,
    readonly cause: unknown,
  ) {
    super(`the orchestrator's ${step} step failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = "StepFailedError";
  }
}

export interface WorkflowOptions {
  /**
   * Seconds between polls and between admission/capacity re-checks. Default: the task's poll interval (repo
   * blueprint or stack, clamped to 5–300 s). Tests set small values; this one is not clamped.
   */
  waitSeconds?: number;
  /** Longest sleep between two polls; default from the limits (see await-schedule.ts). */
  maxWaitSeconds?: number;
  /** How long a started session may take to report RUNNING; default the blueprint's, else the stack's. */
  startupGraceSeconds?: number;
}

export type WorkflowResult = FinalizeResult;


export async function runWorkflow(driver: WorkflowDriver, rt: Runtime, taskId: string, options: WorkflowOptions = {}): Promise<WorkflowResult> {
  let base = options.waitSeconds ?? rt.config.limits.pollIntervalSeconds;
  try {
    const loaded = await driver.step("load", () => loadTask(rt, taskId, driver.executionArn));
    if (!isTerminal(loaded.status)) {
      base = options.waitSeconds ?? loaded.pollIntervalSeconds;
      await drive(driver, rt, taskId, {
        base,
        ceiling: options.maxWaitSeconds ?? pollCeilingSeconds(rt.config.limits, base),
        startupGraceSeconds: options.startupGraceSeconds ?? loaded.startupGraceSeconds,
      });
    }
  } catch (err) {
    if (!(err instanceof StepFailedError)) throw err;
    await driver.step("fail", () => failTask(rt, taskId, err.message));
  }
  return finalizeWithGrace(driver, rt, taskId, base);
}

interface DriveSettings {
  base: number;
  ceiling: number;
  startupGraceSeconds: number;
}

/** Runs the task up to a terminal status; returns when there is something to finalize. */
async function drive(driver: WorkflowDriver, rt: Runtime, taskId: string, s: DriveSettings): Promise<void> {
  for (let n = 0; ; n++) {
    const admitted = await driver.step(`admit-${n}`, () => admitTask(rt, taskId));
    if (admitted.outcome === "ended") return;
    if (admitted.outcome === "admitted") break;
    await driver.wait(`queued-${n}`, s.base);
  }

  let started;
  for (let n = 0; ; n++) {
    started = await driver.step(`start-${n}`, () => startTask(rt, taskId));
    if (started.outcome === "ended") return;
    if (started.outcome === "started") break;
    await driver.wait(`capacity-${n}`, s.base);
  }

  const handle = started.handle;
  let counters: PollCounters = FRESH_COUNTERS;
  // A just-started compute may not be visible yet (ECS DescribeTasks, SSM invocations): the first poll waits.
  await driver.wait("first-poll", s.base);
  for (let n = 0; ; n++) {
    const wake = await driver.armWake(`wake-${n}`, pollDelaySeconds(n, s.base, s.ceiling));
    const polled = await driver.step(`poll-${n}`, () =>
      pollTask(rt, taskId, handle, counters, { startupGraceSeconds: s.startupGraceSeconds, wakeToken: wake.token }),
    );
    if (polled.outcome === "ended") return;
    counters = polled.counters;
    await wake.wait();
  }
}

/**
 * Finalize; while a finished task's compute is within its grace to exit, look again after one poll interval
 * (most agents exit a moment after their result), then after twice as long, and so on; once the grace is spent,
 * stop it. The rounds are bounded (graceRounds).
 */
async function finalizeWithGrace(driver: WorkflowDriver, rt: Runtime, taskId: string, base: number): Promise<WorkflowResult> {
  const rounds = graceRounds(rt.config.limits.computeStopGraceSeconds, base);
  let result = await driver.step("finalize", () => finalizeTask(rt, taskId));
  for (let n = 1; result.stopComputeInSeconds !== undefined; n++) {
    await driver.wait(`compute-grace-${n}`, Math.min(result.stopComputeInSeconds, base * 2 ** (n - 1)));
    const force = n >= rounds;
    result = await driver.step(`finalize-${n}`, () => finalizeTask(rt, taskId, { stopRunningCompute: force }));
  }
  const { stopComputeInSeconds: _, ...final } = result;
  return final;
}

/** The orchestrator's own failure path: end the task FAILED with the reason, unless it already ended. */
export async function failTask(rt: Runtime, taskId: string, reason: string): Promise<{ status: string }> {
  try {
    await rt.tasks.transition(taskId, "FAILED", { error_message: reason }, ACTIVE_STATUSES);
  } catch (err) {
    if (err instanceof IllegalTransitionError && err.actual !== undefined && isTerminal(err.actual)) return { status: err.actual };
    throw err;
  }
  await rt.events.append(taskId, "status", reason, { status: "FAILED" });
  return { status: "FAILED" };
}
