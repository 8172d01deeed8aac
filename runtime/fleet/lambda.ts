/**
 * The fleet manager Lambda. Invoked every minute by a schedule, it runs a pass over every fleet every
 * `passSeconds` (10 s by default) for most of the minute, so queue changes reach the group within one pass; it
 * is also invoked by the groups' termination lifecycle events, which it handles at once.
 * A pass (manager.ts): register booted instances, replace failed or late boots, repair leases and orphans in two
 * phases, release leases of finished tasks, scale out by raising the desired capacity, scale in by draining idle
 * instances and terminating them through the group, retire old instances.
 */
import { loadRuntimeConfig, type RuntimeConfig } from "../config";
import { createLogger, LOG_SERVICES, taskLogger } from "../logger";
import type { TaskStore } from "../ports";
import { createMetrics } from "../metrics";
import { DynamoEventLog } from "../tasks/events";
import { DynamoTaskStore } from "../tasks/store";
import { LeaseTable } from "./lease";
import { handleTerminationHook, managePass, type ManagerDeps, type PassReport, type TerminationHookEvent } from "./manager";
import { executeReconcile, planReconcile, type ReconcileOutcome } from "./reconcile";

export interface FleetReport extends PassReport {
  reconcile: ReconcileOutcome;
}

export type ManageOptions = Omit<ManagerDeps, "config" | "leases"> & { tasks?: TaskStore };

/** One pass over every fleet. Exported for tests and for running it by hand. */
export async function manageFleets(config: RuntimeConfig, leases = new LeaseTable(config), options: ManageOptions = {}): Promise<FleetReport[]> {
  const reports: FleetReport[] = [];
  const tasks = options.tasks ?? new DynamoTaskStore(config);
  for (const fleet of Object.keys(config.ec2?.fleets ?? {})) {
    // Leases still held by finished or vanished tasks go back first, so the pass sees them as capacity.
    const busy = (await leases.list(fleet)).filter((l) => l.taskId);
    // One read per 100 busy instances, not one per instance: a pass runs every 10 s.
    const statuses = await tasks.statuses(busy.map((l) => l.taskId!));
    const reconcile = await executeReconcile(leases, planReconcile({ leases: busy, tasks: statuses }));
    const pass = await managePass({ config, leases, ...options }, fleet);
    reports.push({ ...pass, reconcile });
  }
  return reports;
}

/** Seconds between passes within one invocation, and seconds of passes per invocation (the schedule's minute). */
export const PASS_SECONDS = 10;
export const PASS_BUDGET_SECONDS = 50;

export interface LoopOptions extends ManageOptions {
  /** Seconds between passes (default 10). */
  passSeconds?: number;
  /** Seconds of passes per invocation (default 50: the schedule invokes every minute, the timeout is 120 s). */
  budgetSeconds?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Passes every `passSeconds` until the budget is spent; a pass that throws is logged and the loop goes on. */
export async function manageFleetsFor(config: RuntimeConfig, leases: LeaseTable, options: LoopOptions = {}): Promise<FleetReport[][]> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const passMs = (options.passSeconds ?? PASS_SECONDS) * 1000;
  const until = now() + (options.budgetSeconds ?? PASS_BUDGET_SECONDS) * 1000;
  const passes: FleetReport[][] = [];
  for (;;) {
    const started = now();
    try {
      passes.push(await manageFleets(config, leases, options));
    } catch (err) {
      options.log?.("fleet pass failed; the next pass tries again", { error: (err as Error).message });
    }
    const next = started + passMs;
    if (next >= until) return passes;
    await sleep(Math.max(0, next - now()));
  }
}

interface LifecycleEvent {
  "detail-type"?: string;
  detail?: TerminationHookEvent;
}

export const handler = async (event?: LifecycleEvent): Promise<unknown> => {
  const logger = createLogger(LOG_SERVICES.fleet);
  const metrics = createMetrics("agent-compute-fleet");
  const config = loadRuntimeConfig();
  const leases = new LeaseTable(config);
  const options: LoopOptions = { events: new DynamoEventLog(config), metrics, log: (message, fields) => {
      // A line about one task's instance names the task, like every other line of that task's work.
      const taskId = typeof fields.taskId === "string" ? fields.taskId : undefined;
      (taskId ? taskLogger(logger, taskId) : logger).info(message, fields);
    } };
  try {
    if (event?.["detail-type"] === "EC2 Instance-terminate Lifecycle Action" && event.detail) {
      return await handleTerminationHook({ config, leases, ...options }, event.detail);
    }
    const passes = await manageFleetsFor(config, leases, options);
    const last = passes[passes.length - 1] ?? [];
    for (const r of last) {
      logger.info("fleet managed", { fleet: r.fleet, actions: r.actions.length, registered: r.registered, lost: r.lostTasks, failures: r.failures, capacityError: r.capacityError });
    }
    return { passes: passes.length };
  } finally {
    metrics.flush();
  }
};
