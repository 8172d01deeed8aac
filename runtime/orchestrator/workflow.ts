/**
 * The orchestration of one task, written once: load → admit (wait while QUEUED) → start (wait while an EC2 fleet
 * has no capacity) → await (poll, wait, poll …) → finalize. It runs on a driver: the durable handler's driver
 * makes each step a checkpointed durable step and each wait a durable wait; the local orchestrator's driver
 * calls the steps directly and sleeps. The control flow depends only on step results, so a durable replay
 * takes exactly the same path.
 */
import type { Runtime } from "../runtime";
import { isTerminal } from "../tasks/status";
import { admitTask } from "./admission";
import { FRESH_COUNTERS, pollTask, type PollCounters } from "./await";
import { finalizeTask, type FinalizeResult } from "./finalize";
import { loadTask } from "./load";
import { startTask } from "./start";

export interface WorkflowDriver {
  /** Run one step; a durable driver runs it at most once per execution and replays its recorded result. */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  wait(name: string, seconds: number): Promise<void>;
}

export interface WorkflowOptions {
  /**
   * Seconds between polls and between admission/capacity re-checks. Default: the task's poll interval (repo
   * blueprint or stack, clamped to 5–300 s). Tests set small values; this one is not clamped.
   */
  waitSeconds?: number;
  /** How long a started session may take to report RUNNING (see DEFAULT_STARTUP_GRACE_SECONDS). */
  startupGraceSeconds?: number;
}

export type WorkflowResult = FinalizeResult;

export async function runWorkflow(driver: WorkflowDriver, rt: Runtime, taskId: string, options: WorkflowOptions = {}): Promise<WorkflowResult> {
  const loaded = await driver.step("load", () => loadTask(rt, taskId));
  const waitSeconds = options.waitSeconds ?? loaded.pollIntervalSeconds;
  if (!isTerminal(loaded.status)) await drive(driver, rt, taskId, waitSeconds, options);
  return driver.step("finalize", () => finalizeTask(rt, taskId));
}

/** Runs the task up to a terminal status; returns when there is something to finalize. */
async function drive(driver: WorkflowDriver, rt: Runtime, taskId: string, waitSeconds: number, options: WorkflowOptions): Promise<void> {
  for (let n = 0; ; n++) {
    const admitted = await driver.step(`admit-${n}`, () => admitTask(rt, taskId));
    if (admitted.outcome === "ended") return;
    if (admitted.outcome === "admitted") break;
    await driver.wait(`queued-${n}`, waitSeconds);
  }

  // One pass per attempt: an attempt whose compute infrastructure lost is re-queued and started again. Step
  // names of the first attempt are unchanged; later ones carry the attempt.
  for (let attempt = 0; ; attempt++) {
    const at = attempt === 0 ? "" : `a${attempt}-`;
    let started;
    for (let n = 0; ; n++) {
      started = await driver.step(`${at}start-${n}`, () => startTask(rt, taskId));
      if (started.outcome === "ended") return;
      if (started.outcome === "started") break;
      await driver.wait(`${at}capacity-${n}`, waitSeconds);
    }

    const handle = started.handle;
    let counters: PollCounters = FRESH_COUNTERS;
    for (let n = 0; ; n++) {
      await driver.wait(`${at}poll-wait-${n}`, waitSeconds);
      const polled = await driver.step(`${at}poll-${n}`, () =>
        pollTask(rt, taskId, handle, counters, { startupGraceSeconds: options.startupGraceSeconds }),
      );
      if (polled.outcome === "ended") return;
      if (polled.outcome === "requeued") break;
      counters = polled.counters;
    }
  }
}
