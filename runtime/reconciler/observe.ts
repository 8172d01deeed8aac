/**
 * One observation for the reconciler's plan, read with as few calls as the tables allow:
 * - active tasks: the by-status index, one query (page) per active status;
 * - finished tasks not yet released: the by-status index per terminal status, limited to the look-back window
 *   (created_at is the index's sort key), filtered on released_at;
 * - slot holders: a scan of the concurrency table (one item per user, so small; it has no index to query);
 * - leases: the by-fleet-state index, one query per fleet and state (BUSY to repair, READY for the capacity metric);
 * - tasks a slot or lease names that were not seen above: BatchGetItem, 100 keys per call.
 * The orchestrators are listed first, so a task seen without one has had the dispatch grace to get one.
 */
import { paginatedBatchGet, paginateQuery, paginateScan } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../runtime";
import { fleetState } from "../fleet/lease";
import { LEASES_BY_FLEET_STATE_INDEX, TASKS_BY_STATUS_INDEX } from "../tables";
import { documentClient } from "../aws/dynamodb";
import { ACTIVE_STATUSES, TERMINAL_STATUSES, type TaskStatus } from "../tasks/status";
import type { OrchestratorExecutions } from "./executions";
import type { Observation, ObservedTask } from "./plan";

const TASK_FIELDS = [
  "task_id",
  "user_id",
  "status",
  "created_at",
  "updated_at",
  "started_at",
  "finished_at",
  "agent_heartbeat_at",
  "execution_arn",
  "released_at",
  "fleet",
  "capacity_error",
] as const;

/** BatchGetItem takes at most 100 keys. */
const BATCH_GET_MAX = 100;

export interface ObserveOptions {
  /** Finished tasks created longer ago than this are not looked at (their TTL is coming anyway). */
  lookBackSeconds: number;
}

export async function observe(rt: Runtime, executions: OrchestratorExecutions | undefined, options: ObserveOptions): Promise<Observation> {
  const runningOrchestrators = executions ? await executions.running() : undefined;
  const now = rt.now();
  const db = documentClient(rt.config);
  const projection = {
    ProjectionExpression: TASK_FIELDS.map((_, i) => `#p${i}`).join(", "),
    names: Object.fromEntries(TASK_FIELDS.map((f, i) => [`#p${i}`, f])),
  };

  const byStatus = async (status: TaskStatus, since?: string): Promise<ObservedTask[]> => {
    const items: ObservedTask[] = [];
    const pages = paginateQuery(
      { client: db },
      {
        TableName: rt.config.tables.tasks,
        IndexName: TASKS_BY_STATUS_INDEX,
        KeyConditionExpression: since ? "#s = :s AND #c >= :since" : "#s = :s",
        ...(since ? { FilterExpression: "attribute_not_exists(#r)" } : {}),
        ProjectionExpression: projection.ProjectionExpression,
        ExpressionAttributeNames: { ...projection.names, "#s": "status", ...(since ? { "#c": "created_at", "#r": "released_at" } : {}) },
        ExpressionAttributeValues: { ":s": status, ...(since ? { ":since": since } : {}) },
      },
    );
    for await (const page of pages) items.push(...((page.Items ?? []) as ObservedTask[]));
    return items;
  };

  const since = new Date(now.getTime() - options.lookBackSeconds * 1000).toISOString();
  const active = (await Promise.all(ACTIVE_STATUSES.map((s) => byStatus(s)))).flat();
  const unreleased = (await Promise.all(TERMINAL_STATUSES.map((s) => byStatus(s, since)))).flat();

  const slots: { userId: string; taskId: string }[] = [];
  for await (const page of paginateScan({ client: db }, { TableName: rt.config.tables.concurrency, ConsistentRead: true })) {
    for (const item of page.Items ?? []) {
      for (const taskId of (item.task_ids as Set<string> | undefined) ?? []) slots.push({ userId: item.user_id as string, taskId });
    }
  }

  const leases: { instanceId: string; taskId: string }[] = [];
  const fleetInstances: Record<string, Record<string, number>> = {};
  for (const fleet of Object.keys(rt.config.ec2?.fleets ?? {})) {
    fleetInstances[fleet] = {};
    for (const state of ["BUSY", "READY"] as const) {
      const pages = paginateQuery(
        { client: db },
        {
          TableName: rt.config.tables.leases,
          IndexName: LEASES_BY_FLEET_STATE_INDEX,
          KeyConditionExpression: "fleet_state = :fs",
          ExpressionAttributeValues: { ":fs": fleetState(fleet, state) },
          ProjectionExpression: "instance_id, task_id",
        },
      );
      let n = 0;
      for await (const page of pages) {
        for (const item of page.Items ?? []) {
          n++;
          if (state === "BUSY" && item.task_id) leases.push({ instanceId: item.instance_id as string, taskId: item.task_id as string });
        }
      }
      fleetInstances[fleet][state] = n;
    }
  }

  const seen = new Set([...active, ...unreleased].map((t) => t.task_id));
  const unknown = [...new Set([...slots, ...leases].map((h) => h.taskId))].filter((id) => !seen.has(id));
  const others = new Map<string, ObservedTask | undefined>(unknown.map((id) => [id, undefined]));
  for (let i = 0; i < unknown.length; i += BATCH_GET_MAX) {
    const keys = unknown.slice(i, i + BATCH_GET_MAX).map((task_id) => ({ task_id }));
    const input = {
      RequestItems: {
        [rt.config.tables.tasks]: { Keys: keys, ConsistentRead: true, ProjectionExpression: projection.ProjectionExpression, ExpressionAttributeNames: projection.names },
      },
    };
    for await (const page of paginatedBatchGet({ client: db }, input)) {
      for (const item of page.Responses?.[rt.config.tables.tasks] ?? []) others.set(item.task_id as string, item as ObservedTask);
    }
  }
  return { now, active, unreleased, ...(runningOrchestrators ? { runningOrchestrators } : {}), slots, leases, fleetInstances, others };
}
