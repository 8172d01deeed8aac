/**
 * The scheduled fleet manager (an EventBridge-scheduled Lambda): for each named fleet, register the instances
 * that finished booting and drop the ones that are gone, release leases whose task is finished or missing, then
 * set the Auto Scaling group's desired capacity from the demand.
 */
import { loadRuntimeConfig, type RuntimeConfig } from "../config";
import { createLogger, LOG_SERVICES, taskLogger } from "../logger";
import type { TaskStore } from "../ports";
import type { TaskStatus } from "../tasks/status";
import { DynamoTaskStore } from "../tasks/store";
import { LeaseTable } from "./lease";
import { executeReconcile, planReconcile, type ReconcileOutcome } from "./reconcile";
import { applyScaling, type ScalingOutcome } from "./scaling";
import { syncFleet, type SyncResult } from "./sync";

/** Statuses of a task that wants an instance and may not have one yet (QUEUED tasks wait for a user slot, not capacity). */
const WAITING_STATUSES: readonly TaskStatus[] = ["SUBMITTED", "STARTING"];

export interface FleetReport {
  fleet: string;
  sync: SyncResult;
  reconcile: ReconcileOutcome;
  scaling: ScalingOutcome;
}

/** Task statuses by id (consistent reads); a task that does not exist maps to undefined. */
async function readStatuses(tasks: TaskStore, taskIds: readonly string[]): Promise<Map<string, TaskStatus | undefined>> {
  const statuses = new Map<string, TaskStatus | undefined>();
  for (const taskId of new Set(taskIds)) statuses.set(taskId, (await tasks.get(taskId))?.status);
  return statuses;
}

/** Tasks of `fleet` that want an instance and hold none. */
async function waitingTasks(config: RuntimeConfig, tasks: TaskStore, fleet: string, leasedTaskIds: ReadonlySet<string>): Promise<number> {
  let count = 0;
  for (const status of WAITING_STATUSES) {
    for await (const t of tasks.eachInStatus(status)) {
      const taskFleet = t.fleet ?? config.ec2?.defaultFleet;
      if (t.backend === "ec2" && taskFleet === fleet && !leasedTaskIds.has(t.task_id)) count++;
    }
  }
  return count;
}

/** One pass over every fleet. Exported for tests and for running it by hand. */
export async function manageFleets(
  config: RuntimeConfig,
  leases = new LeaseTable(config),
  tasks: TaskStore = new DynamoTaskStore(config),
): Promise<FleetReport[]> {
  const reports: FleetReport[] = [];
  for (const fleet of Object.keys(config.ec2?.fleets ?? {})) {
    const sync = await syncFleet(config, fleet, leases);
    const current = await leases.list(fleet);
    const busy = current.filter((l) => l.state === "BUSY" && l.taskId);
    const statuses = await readStatuses(tasks, busy.map((l) => l.taskId!));
    const reconcile = await executeReconcile(leases, planReconcile({ leases: current, tasks: statuses }));

    const released = new Set(reconcile.released.map((r) => r.instanceId));
    const stillBusy = busy.filter((l) => !released.has(l.instanceId));
    const ready = current.length - stillBusy.length;
    const queued = await waitingTasks(config, tasks, fleet, new Set(stillBusy.map((l) => l.taskId!)));
    const scaling = await applyScaling(config, fleet, { queued, busyInstanceIds: stillBusy.map((l) => l.instanceId), ready });
    reports.push({ fleet, sync, reconcile, scaling });
  }
  return reports;
}

export const handler = async (): Promise<FleetReport[]> => {
  const logger = createLogger(LOG_SERVICES.fleet);
  const config = loadRuntimeConfig();
  const reports = await manageFleets(config);
  for (const r of reports) {
    for (const lost of r.sync.lostTasks) {
      taskLogger(logger, lost.taskId).warn("instance lost while running the task; the orchestrator will fail it", {
        fleet: r.fleet,
        instance_id: lost.instanceId,
      });
    }
    logger.info("fleet managed", {
      fleet: r.fleet,
      registered: r.sync.registered,
      dropped: r.sync.dropped,
      released: r.reconcile.released,
      desired: r.scaling.desired,
      previous: r.scaling.previous,
      skipped: r.scaling.skipped,
    });
  }
  return reports;
};
