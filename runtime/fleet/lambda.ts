/**
 * The scheduled fleet manager (an EventBridge-scheduled Lambda): for each named fleet, register the instances
 * that finished booting and drop the ones that are gone, release leases whose task is finished or missing, then
 * set the Auto Scaling group's desired capacity from the demand.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { awsClient } from "../aws/clients";
import { loadRuntimeConfig, type RuntimeConfig } from "../config";
import { TASKS_BY_STATUS_INDEX } from "../tables";
import type { TaskRecord } from "../tasks/record";
import type { TaskStatus } from "../tasks/status";
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

function documents(config: RuntimeConfig): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(awsClient(DynamoDBClient, { region: config.region, endpoint: config.endpoints?.dynamodb }));
}

/** Task statuses by id (consistent reads); a task that does not exist maps to undefined. */
async function readStatuses(config: RuntimeConfig, taskIds: readonly string[]): Promise<Map<string, TaskStatus | undefined>> {
  const db = documents(config);
  const statuses = new Map<string, TaskStatus | undefined>();
  for (const taskId of new Set(taskIds)) {
    const out = await db.send(
      new GetCommand({ TableName: config.tables.tasks, Key: { task_id: taskId }, ProjectionExpression: "#s", ExpressionAttributeNames: { "#s": "status" }, ConsistentRead: true }),
    );
    statuses.set(taskId, out.Item?.status as TaskStatus | undefined);
  }
  return statuses;
}

/** Tasks of `fleet` that want an instance and hold none. */
async function waitingTasks(config: RuntimeConfig, fleet: string, leasedTaskIds: ReadonlySet<string>): Promise<number> {
  const db = documents(config);
  let count = 0;
  for (const status of WAITING_STATUSES) {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await db.send(
        new QueryCommand({
          TableName: config.tables.tasks,
          IndexName: TASKS_BY_STATUS_INDEX,
          KeyConditionExpression: "#s = :s",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: { ":s": status },
          ProjectionExpression: "task_id, backend, fleet",
          ExclusiveStartKey: start,
        }),
      );
      for (const t of (out.Items ?? []) as Pick<TaskRecord, "task_id" | "backend" | "fleet">[]) {
        const taskFleet = t.fleet ?? config.ec2?.defaultFleet;
        if (t.backend === "ec2" && taskFleet === fleet && !leasedTaskIds.has(t.task_id)) count++;
      }
      start = out.LastEvaluatedKey;
    } while (start);
  }
  return count;
}

/** One pass over every fleet. Exported for tests and for running it by hand. */
export async function manageFleets(config: RuntimeConfig, leases = new LeaseTable(config)): Promise<FleetReport[]> {
  const reports: FleetReport[] = [];
  for (const fleet of Object.keys(config.ec2?.fleets ?? {})) {
    const sync = await syncFleet(config, fleet, leases);
    const current = await leases.list(fleet);
    const busy = current.filter((l) => l.state === "BUSY" && l.taskId);
    const statuses = await readStatuses(config, busy.map((l) => l.taskId!));
    const reconcile = await executeReconcile(leases, planReconcile({ leases: current, tasks: statuses }));

    const released = new Set(reconcile.released.map((r) => r.instanceId));
    const stillBusy = busy.filter((l) => !released.has(l.instanceId));
    const ready = current.length - stillBusy.length;
    const queued = await waitingTasks(config, fleet, new Set(stillBusy.map((l) => l.taskId!)));
    const scaling = await applyScaling(config, fleet, { queued, busyInstanceIds: stillBusy.map((l) => l.instanceId), ready });
    reports.push({ fleet, sync, reconcile, scaling });
  }
  return reports;
}

export const handler = async (): Promise<FleetReport[]> => {
  const logger = new Logger({ serviceName: "agent-compute-fleet" });
  const config = loadRuntimeConfig();
  const reports = await manageFleets(config);
  for (const r of reports) {
    for (const lost of r.sync.lostTasks) {
      logger.warn("instance lost while running a task; the orchestrator will fail it", { fleet: r.fleet, ...lost });
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
