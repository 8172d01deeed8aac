/**
 * `npm run bench:admission`: what one admission check costs with 10,000 queued tasks, before and after the
 * per-user queue index. Prints requests and DynamoDB read units per check (mean and worst over the users), as the
 * embedded DynamoDB (dynalite) computes them from item sizes; no timing.
 *
 *   before: the by-status index (status, created_at) holds every user's QUEUED tasks; the user's oldest one is
 *           found with a filter on user_id, page by page (1 MB pages, filtered after they are read).
 *   after:  the by-user-waiting index (user_id, waiting_since; keys and status only) holds that user's waiting
 *           tasks alone: admission reads the user's queue, the submit cap counts it.
 *
 * Two ways to queue 10,000 tasks: 100 users × 100 interleaved in time, and one user with 9,901 ahead of 99 users
 * with one each (the user who would crowd everyone out).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, paginateQuery } from "@aws-sdk/lib-dynamodb";
import { awsClient } from "../../runtime/aws/clients";
import { documentClient } from "../../runtime/aws/dynamodb";
import type { RuntimeConfig } from "../../runtime/config";
import { DEFAULT_LIMITS } from "../../runtime/limits";
import { startEmbeddedStore, type EmbeddedStore } from "../../runtime/local/embedded-store";
import { TASKS_BY_STATUS_INDEX, WAITING_SINCE } from "../../runtime/tables";
import type { TaskRecord } from "../../runtime/tasks/record";
import { DynamoTaskStore } from "../../runtime/tasks/store";
import { emptyTally, meterDynamo, type Tally } from "../cost/meter";

export const QUEUED_TASKS = 10_000;
export const USERS = 100;
/** A prompt preview of typical size (the record keeps at most 4,096 characters of it). */
const PROMPT = "Fix the flaky integration test in the payments module and explain the root cause. ".repeat(12);

export interface AdmissionCost {
  layout: string;
  query: "before" | "after: oldest queued" | "after: queue count (submit cap)";
  checks: number;
  requestsMean: number;
  requestsMax: number;
  readUnitsMean: number;
  readUnitsMax: number;
}

/** The admission query as it was: everyone's QUEUED tasks, filtered to one user's, oldest first. */
async function oldestQueuedBefore(config: RuntimeConfig, userId: string): Promise<TaskRecord | undefined> {
  const pages = paginateQuery(
    { client: documentClient(config) },
    {
      TableName: config.tables.tasks,
      IndexName: TASKS_BY_STATUS_INDEX,
      KeyConditionExpression: "#status = :q",
      FilterExpression: "user_id = :u",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":q": "QUEUED", ":u": userId },
      ScanIndexForward: true,
    },
  );
  for await (const page of pages) if (page.Items?.length) return page.Items[0] as TaskRecord;
  return undefined;
}

/** Queue `owners.length` tasks, owners[i] owning the i-th oldest, as the store writes them (with the index key). */
async function fill(config: RuntimeConfig, owners: string[]): Promise<void> {
  const t0 = Date.parse("2030-01-01T00:00:00.000Z");
  const doc = documentClient(config);
  for (let i = 0; i < owners.length; i += 25) {
    const items = owners.slice(i, i + 25).map((user, j) => {
      const at = new Date(t0 + (i + j) * 1000).toISOString();
      const record: TaskRecord & Record<string, unknown> = {
        task_id: `q-${String(i + j).padStart(6, "0")}`,
        user_id: user,
        status: "QUEUED",
        repo_url: "https://github.com/acme/payments",
        prompt: PROMPT,
        backend: "ecs",
        payload_uri: `s3://agent-compute-payloads/payloads/q-${i + j}/payload.json`,
        created_at: at,
        updated_at: at,
        [WAITING_SINCE]: at,
      };
      return { PutRequest: { Item: record } };
    });
    let pending: typeof items | undefined = items;
    while (pending?.length) {
      const out = await doc.send(new BatchWriteCommand({ RequestItems: { [config.tables.tasks]: pending } }));
      pending = out.UnprocessedItems?.[config.tables.tasks] as typeof items | undefined;
    }
  }
}

async function measure(label: string, query: AdmissionCost["query"], users: string[], tally: { current: Tally }, check: (user: string) => Promise<unknown>): Promise<AdmissionCost> {
  const requests: number[] = [];
  const units: number[] = [];
  for (const user of users) {
    tally.current = emptyTally();
    await check(user);
    requests.push(Object.values(tally.current.requests).reduce((a, b) => a + b, 0));
    units.push(tally.current.readUnits);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    layout: label,
    query,
    checks: users.length,
    requestsMean: mean(requests),
    requestsMax: Math.max(...requests),
    readUnitsMean: mean(units),
    readUnitsMax: Math.max(...units),
  };
}

export async function runAdmissionBench(options: { tasks?: number; users?: number } = {}): Promise<AdmissionCost[]> {
  const tasks = options.tasks ?? QUEUED_TASKS;
  const users = options.users ?? USERS;
  const userIds = Array.from({ length: users }, (_, u) => `user-${String(u).padStart(3, "0")}`);
  const layouts: [string, string[]][] = [
    [`${users} users × ${tasks / users}, interleaved`, Array.from({ length: tasks }, (_, i) => userIds[i % users])],
    [`one user's ${tasks - users + 1} ahead of ${users - 1} users × 1`, [...Array(tasks - users + 1).fill(userIds[0]), ...userIds.slice(1)]],
  ];
  const out: AdmissionCost[] = [];
  for (const [label, owners] of layouts) {
    const store: EmbeddedStore = await startEmbeddedStore({ tablePrefix: `adm-${out.length}` });
    try {
      const config: RuntimeConfig = {
        region: store.region,
        endpoints: { dynamodb: store.endpoint },
        tables: store.tableNames,
        payload: { kind: "file", dir: "/nonexistent" },
        defaultBackend: "local",
        enabledBackends: ["local"],
        limits: DEFAULT_LIMITS,
      };
      await fill(config, owners);
      const tally = { current: emptyTally() };
      meterDynamo(awsClient(DynamoDBClient, { region: store.region, endpoint: store.endpoint }), store.endpoint, store.region, () => tally.current);
      const tasksStore = new DynamoTaskStore(config);
      out.push(await measure(label, "before", userIds, tally, (u) => oldestQueuedBefore(config, u)));
      out.push(await measure(label, "after: oldest queued", userIds, tally, (u) => tasksStore.oldestQueued(u)));
      out.push(await measure(label, "after: queue count (submit cap)", userIds, tally, (u) => tasksStore.countWaiting(u, DEFAULT_LIMITS.maxQueuedPerUser)));
    } finally {
      await store.close();
    }
  }
  return out;
}

export function formatAdmission(rows: AdmissionCost[]): string {
  const lines = [
    "| queued tasks | query | checks | requests per check (mean / max) | read units per check (mean / max) |",
    "|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.layout} | ${r.query} | ${r.checks} | ${r.requestsMean.toFixed(2)} / ${r.requestsMax} | ${r.readUnitsMean.toFixed(1)} / ${r.readUnitsMax.toFixed(1)} |`,
    ),
  ];
  return lines.join("\n");
}

if (require.main === module) {
  runAdmissionBench().then(
    (rows) => {
      console.log(`admission cost with ${QUEUED_TASKS} queued tasks over ${USERS} users (dynalite's read units, from item sizes):`);
      console.log(formatAdmission(rows));
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
