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
    // A queued task is woken when one of its user's slots frees up (finalize, cancel, the reconciler); the wait is
    // only the safety net, so it backs off like the polls and the queue's durable history stays bounded the same
    // way. Most tasks are admitted at once, so the first admission arms nothing: its one re-check is a plain wait.
    const wake = n === 0 ? undefined : await driver.armWake(`queued-${n}`, pollDelaySeconds(n, s.base, s.ceiling));
    const admitted = await driver.step(`admit-${n}`, () => admitTask(rt, taskId, { wakeToken: wake?.token }));
    if (admitted.outcome === "ended") return;
    if (admitted.outcome === "admitted") break;
    if (wake) await wake.wait();
    else await driver.wait(`queued-${n}`, s.base);
  }

  // One pass per attempt: an attempt whose compute infrastructure lost is re-queued and started again. Step
  // names of the first attempt are unchanged; later ones carry the attempt.
  for (let attempt = 0; ; attempt++) {
    const at = attempt === 0 ? "" : `a${attempt}-`;
    let started;
    let firstPoll: ArmedWake | undefined;
    for (let n = 0; ; n++) {
      // A task waiting for an EC2 instance is woken when the fleet binds one to it; the wait is only the safety
      // net, so it backs off like the polls (and bounds the durable history the same way). The start records the
      // wake on the task before it starts anything, so the first wake also serves the wait before the first poll.
      const wake = await driver.armWake(`${at}capacity-${n}`, pollDelaySeconds(n, s.base, s.ceiling));
      started = await driver.step(`${at}start-${n}`, () => startTask(rt, taskId, { wakeToken: wake.token }));
      if (started.outcome === "ended") return;
      if (started.outcome === "started") {
        // Its timeout is the first poll's wait only when no wait for capacity came before.
        if (n === 0) firstPoll = wake;
        break;
      }
      await wake.wait();
    }

    const handle = started.handle;
    let counters: PollCounters = FRESH_COUNTERS;
    // A just-started compute may not be visible yet (ECS DescribeTasks, SSM invocations): the first poll waits one
    // interval, unless the agent's terminal report (or a cancel) wakes it first: a short task ends at once. After a
    // wait for capacity the start's wake has a longer timeout: a wake of one interval is armed and recorded instead.
    if (!firstPoll) {
      const wake = await driver.armWake(`${at}first-poll`, s.base);
      const listening = await driver.step(`${at}listen`, () => recordWake(rt, taskId, wake.token));
      if (listening.outcome === "ended") return;
      firstPoll = wake;
    }
    await firstPoll.wait();
    for (let n = 0; ; n++) {
      const wake = await driver.armWake(`${at}wake-${n}`, pollDelaySeconds(n, s.base, s.ceiling));
      const polled = await driver.step(`${at}poll-${n}`, () =>
        pollTask(rt, taskId, handle, counters, { startupGraceSeconds: s.startupGraceSeconds, wakeToken: wake.token }),
      );
      if (polled.outcome === "ended") return;
      if (polled.outcome === "requeued") break;
      counters = polled.counters;
      await wake.wait();
    }
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

/**
 * Record the wake the orchestrator is about to wait on. The write is conditional on an active status, so either
 * whoever ends the task later finds this wake, or the task has already ended and there is nothing to wait for.
 */
export async function recordWake(rt: Runtime, taskId: string, token: string | undefined): Promise<{ outcome: "listening" } | { outcome: "ended"; status: string }> {
  if (!token) return { outcome: "listening" };
  try {
    await rt.tasks.update(taskId, { wake_callback_id: token }, ACTIVE_STATUSES);
  } catch (err) {
    if (err instanceof IllegalTransitionError && err.actual !== undefined && isTerminal(err.actual)) return { outcome: "ended", status: err.actual };
    throw err;
  }
  return { outcome: "listening" };
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
