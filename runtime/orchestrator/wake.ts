/**
 * Waking a task's orchestrator between its polls. Between two polls the orchestrator waits on a durable callback
 * whose id it records on the task (wake_callback_id) before it reads the task; whoever ends the task (the agent's
 * terminal report, cancel) wakes it here, so the orchestrator finalizes at once instead of at its next safety-net
 * poll. A wake is only ever an optimisation: when it is lost (no callback yet, already timed out, the API
 * refused), the next poll sees the same state.
 *
 * The local orchestrator runs in this process and registers a direct waker instead of a callback.
 */
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";
import type { FleetHooks } from "../fleet/lease";
import type { Runtime } from "../runtime";

/** Completes a durable execution callback (SendDurableExecutionCallbackSuccess in AWS; the local runner in tests). */
export interface DurableCallbacks {
  succeed(callbackId: string, result: string): Promise<void>;
}

export class LambdaDurableCallbacks implements DurableCallbacks {
  constructor(private readonly config: Pick<RuntimeConfig, "region">) {}

  async succeed(callbackId: string, result: string): Promise<void> {
    // Loaded on first use: the runtime (and every Lambda that builds one) stays light at import.
    const { LambdaClient, SendDurableExecutionCallbackSuccessCommand } = await import("@aws-sdk/client-lambda");
    await awsClient(LambdaClient, { region: this.config.region }).send(
      new SendDurableExecutionCallbackSuccessCommand({ CallbackId: callbackId, Result: new TextEncoder().encode(result) }),
    );
  }
}

/** Orchestrators of this process waiting between polls, by task id (the local platform). */
const localWaiters = new Map<string, () => void>();

/** Register this process's waker for a task; returns the function that unregisters it. */
export function registerLocalWaker(taskId: string, wake: () => void): () => void {
  localWaiters.set(taskId, wake);
  return () => {
    if (localWaiters.get(taskId) === wake) localWaiters.delete(taskId);
  };
}

export type WakeResult = { woken: true; via: "local" | "callback" } | { woken: false; why: string };

/** Wake the orchestrator of `taskId` if it is waiting. Never throws: a lost wake costs one poll interval, nothing more. */
export async function wakeOrchestrator(rt: Runtime, taskId: string): Promise<WakeResult> {
  const local = localWaiters.get(taskId);
  if (local) {
    local();
    return { woken: true, via: "local" };
  }
  try {
    const callbackId = (await rt.tasks.get(taskId))?.wake_callback_id;
    if (!callbackId) return { woken: false, why: "the orchestrator has not recorded a wake callback" };
    await rt.callbacks.succeed(callbackId, JSON.stringify({ wake: taskId }));
    return { woken: true, via: "callback" };
  } catch (err) {
    // Typically the callback already completed or timed out: the orchestrator is polling now anyway.
    return { woken: false, why: (err as Error).message ?? String(err) };
  }
}

/** Lease table hooks that wake a waiting task's orchestrator when the fleet binds it to an instance. */
export function fleetWakeHooks(rt: Runtime): FleetHooks {
  return { bound: (b) => void wakeOrchestrator(rt, b.taskId) };
}
