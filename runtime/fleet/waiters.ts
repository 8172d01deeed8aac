/**
 * The per-fleet queue of tasks waiting for an instance (table config.tables.waiters, hash key fleet, range key
 * position = "<created_at>#<task_id>"). Reads are Queries of the table itself with ConsistentRead, so the oldest
 * waiter read is the true oldest at that moment: what makes the hand-out first come, first served.
 * Waiters are written and removed only inside LeaseTable transactions, together with the task's item in the
 * lease table, so a task is either waiting, bound to one instance, or neither — never two of these.
 */
import { ConfigError, type RuntimeConfig } from "../config";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { paginateQuery, QueryCommand } from "@aws-sdk/lib-dynamodb";

export interface Waiter {
  fleet: string;
  /** "<created_at>#<task_id>": ISO timestamps sort as text, and the task id breaks ties. */
  position: string;
  taskId: string;
  enqueuedAt: string;
}

export interface WaiterItem {
  fleet: string;
  position: string;
  task_id: string;
  enqueued_at: string;
}

export function waiterPosition(createdAt: string, taskId: string): string {
  return `${createdAt}#${taskId}`;
}

export function waitersTable(config: RuntimeConfig): string {
  const name = config.tables.waiters;
  if (!name) throw new ConfigError("backend 'ec2' needs tables.waiters (the fleet capacity queue) in the runtime config");
  return name;
}

export function toWaiter(item: WaiterItem): Waiter {
  return { fleet: item.fleet, position: item.position, taskId: item.task_id, enqueuedAt: item.enqueued_at };
}

/** The `limit` oldest waiters of `fleet`, oldest first (one strongly consistent Query). */
export async function oldestWaiters(db: DynamoDBDocumentClient, table: string, fleet: string, limit: number): Promise<Waiter[]> {
  const out = await db.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: "fleet = :f",
      ExpressionAttributeValues: { ":f": fleet },
      ConsistentRead: true,
      ScanIndexForward: true,
      Limit: limit,
    }),
  );
  return ((out.Items ?? []) as WaiterItem[]).map(toWaiter);
}

/** How many tasks wait for `fleet` (a COUNT Query: one call per 1 MB of keys read). */
export async function countWaiters(db: DynamoDBDocumentClient, table: string, fleet: string): Promise<number> {
  let count = 0;
  const pages = paginateQuery(
    { client: db },
    { TableName: table, KeyConditionExpression: "fleet = :f", ExpressionAttributeValues: { ":f": fleet }, Select: "COUNT", ConsistentRead: true },
  );
  for await (const page of pages) count += page.Count ?? 0;
  return count;
}
