/**
 * The local platform's orchestrator: the same workflow and step functions as the durable Lambda, driven by a
 * plain async loop that calls each step once and sleeps between polls.
 */
import type { Runtime } from "../runtime";
import { registerLocalWaker } from "./wake";
import { runWorkflow, StepFailedError, type WorkflowDriver, type WorkflowOptions, type WorkflowResult } from "./workflow";

export interface LocalRunOptions extends WorkflowOptions {
  /** Sleep for `ms` (tests inject a fake clock); must reject or resolve promptly when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Stops the loop between steps (platform shutdown); the task itself is left as it is. */
  signal?: AbortSignal;
}

export class OrchestrationAbortedError extends Error {
  constructor(readonly taskId: string) {
    super(`orchestration of task ${taskId} was stopped before the task finished; run it again to resume`);
    this.name = "OrchestrationAbortedError";
  }
}

export function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Drive one task from wherever it is (SUBMITTED, QUEUED, STARTING, RUNNING) to a finalized terminal status. */
export function runTaskLocally(rt: Runtime, taskId: string, options: LocalRunOptions = {}): Promise<WorkflowResult> {
  const sleep = options.sleep ?? sleepFor;
  const { signal } = options;
  const driver: WorkflowDriver = {
    step: (name, fn) => {
      if (signal?.aborted) return Promise.reject(new OrchestrationAbortedError(taskId));
      // No retries here: a step that throws fails the task (the workflow's failure path), as a durable step does
      // once its retries are spent.
      return fn().catch((err) => {
        throw new StepFailedError(name, err);
      });
    },
    wait: (_name, seconds) => sleep(seconds * 1000, signal),
    // A direct wake: wakeOrchestrator in this process ends the sleep at once.
    armWake: async (_name, seconds) => {
      let woken = false;
      let wake!: () => void;
      const woke = new Promise<void>((resolve) => (wake = resolve));
      const unregister = registerLocalWaker(taskId, () => {
        woken = true;
        wake();
      });
      return {
        wait: async () => {
          try {
            if (!woken) await Promise.race([sleep(seconds * 1000, signal), woke]);
          } finally {
            unregister();
          }
        },
      };
    },
  };
  return runWorkflow(driver, rt, taskId, options);
}
