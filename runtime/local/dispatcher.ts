/**
 * The local platform's dispatcher: each submitted task gets one run of the local orchestrator loop (the same
 * workflow and steps as the durable Lambda) in this process. Dispatching a task that already has a run is a
 * no-op, as the durable dispatcher's named executions make it in the cloud.
 */
import type { Dispatcher } from "../orchestrator/dispatch";
import { OrchestrationAbortedError, runTaskLocally } from "../orchestrator/local-orchestrator";
import type { Runtime } from "../runtime";

export interface LocalDispatcherOptions {
  /** Seconds between polls (and admission / capacity re-checks). */
  waitSeconds: number;
  startupGraceSeconds?: number;
  /** Longest sleep between two polls (no durable history to bound here, so short). */
  maxWaitSeconds?: number;
  /** Where a run's unexpected failure is reported (besides the task's events). */
  log?: (line: string) => void;
}

export class LocalDispatcher implements Dispatcher {
  private readonly runs = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();

  constructor(
    private readonly runtime: Runtime,
    private readonly options: LocalDispatcherOptions,
  ) {}

  async dispatch(taskId: string): Promise<void> {
    if (this.abort.signal.aborted) throw new Error("the local platform is shutting down; it accepts no new tasks");
    if (this.runs.has(taskId)) return;
    const run = runTaskLocally(this.runtime, taskId, {
      waitSeconds: this.options.waitSeconds,
      ...(this.options.startupGraceSeconds !== undefined ? { startupGraceSeconds: this.options.startupGraceSeconds } : {}),
      ...(this.options.maxWaitSeconds !== undefined ? { maxWaitSeconds: this.options.maxWaitSeconds } : {}),
      signal: this.abort.signal,
    })
      .then(() => undefined)
      .catch(async (err) => {
        if (err instanceof OrchestrationAbortedError) return;
        const message = `local orchestration of task ${taskId} failed: ${(err as Error).message}`;
        this.options.log?.(message);
        await this.runtime.events.append(taskId, "error", message).catch(() => undefined);
      })
      .finally(() => this.runs.delete(taskId));
    this.runs.set(taskId, run);
  }

  /** Task ids whose orchestration is running in this process. */
  active(): string[] {
    return [...this.runs.keys()];
  }

  /** Resolves when every current run has ended (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.runs.size) await Promise.all(this.runs.values());
  }

  /** Stop every run between steps and wait for them; the tasks are left in whatever status they reached. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.idle();
  }
}
