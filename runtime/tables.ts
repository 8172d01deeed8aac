/**
 * The DynamoDB tables, described once: the Pulumi TaskTables component, the local platform's embedded
 * store and the tests all create them from these definitions, so key and index names cannot drift.
 */

export type AttributeType = "S" | "N";

export interface IndexSchema {
  name: string;
  hashKey: string;
  rangeKey?: string;
  /** Non-key attributes the index holds (INCLUDE); every attribute (ALL) when absent. */
  include?: string[];
}

export interface TableSchema {
  hashKey: string;
  rangeKey?: string;
  attributes: Record<string, AttributeType>;
  indexes: IndexSchema[];
  /** Attribute DynamoDB TTL expires items by, if any. */
  ttlAttribute?: string;
}

export type TableName = "tasks" | "events" | "leases" | "concurrency" | "repos";

export const TASKS_BY_USER_INDEX = "by-user";
export const TASKS_BY_STATUS_INDEX = "by-status";
export const TASKS_BY_USER_WAITING_INDEX = "by-user-waiting";
/**
 * Set to created_at while a task waits (SUBMITTED or QUEUED), removed when it leaves: the by-user-waiting index
 * holds only waiting tasks, so a user's queue is read without touching anyone else's.
 */
export const WAITING_SINCE = "waiting_since";
export const LEASES_BY_FLEET_STATE_INDEX = "by-fleet-state";

export const TABLE_SCHEMAS: Readonly<Record<TableName, TableSchema>> = {
  /**
   * One item per task. A user's waiting tasks are read oldest first from by-user-waiting (user_id, waiting_since;
   * sparse, keys and status only): admission and the queue cap cost a read of that user's queue alone.
   */
  tasks: {
    hashKey: "task_id",
    attributes: { task_id: "S", user_id: "S", status: "S", created_at: "S", [WAITING_SINCE]: "S" },
    indexes: [
      { name: TASKS_BY_USER_INDEX, hashKey: "user_id", rangeKey: "created_at" },
      { name: TASKS_BY_STATUS_INDEX, hashKey: "status", rangeKey: "created_at" },
      { name: TASKS_BY_USER_WAITING_INDEX, hashKey: "user_id", rangeKey: WAITING_SINCE, include: ["status", "created_at"] },
    ],
    ttlAttribute: "ttl",
  },
  /** Task events, newest-last by event_id (ISO time + sequence). */
  events: {
    hashKey: "task_id",
    rangeKey: "event_id",
    attributes: { task_id: "S", event_id: "S" },
    indexes: [],
    ttlAttribute: "ttl",
  },
  /** EC2 instance leases: one item per registered instance; fleet_state = "<fleet>#READY|BUSY". */
  leases: {
    hashKey: "instance_id",
    attributes: { instance_id: "S", fleet_state: "S", registered_at: "S" },
    indexes: [{ name: LEASES_BY_FLEET_STATE_INDEX, hashKey: "fleet_state", rangeKey: "registered_at" }],
  },
  /** Per-user running-task counters for the admission cap. */
  concurrency: {
    hashKey: "user_id",
    attributes: { user_id: "S" },
    indexes: [],
  },
  /** Per-repository blueprints (backend, fleet, model, limits), keyed by normalised repo URL. */
  repos: {
    hashKey: "repo_url",
    attributes: { repo_url: "S" },
    indexes: [],
  },
};

/** CreateTable input for a schema, in on-demand mode (used by the embedded store and by tests). */
export function createTableInput(tableName: string, schema: TableSchema) {
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST" as const,
    AttributeDefinitions: Object.entries(schema.attributes).map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType,
    })),
    KeySchema: [
      { AttributeName: schema.hashKey, KeyType: "HASH" as const },
      ...(schema.rangeKey ? [{ AttributeName: schema.rangeKey, KeyType: "RANGE" as const }] : []),
    ],
    ...(schema.indexes.length
      ? {
          GlobalSecondaryIndexes: schema.indexes.map((ix) => ({
            IndexName: ix.name,
            KeySchema: [
              { AttributeName: ix.hashKey, KeyType: "HASH" as const },
              ...(ix.rangeKey ? [{ AttributeName: ix.rangeKey, KeyType: "RANGE" as const }] : []),
            ],
            Projection: ix.include
              ? { ProjectionType: "INCLUDE" as const, NonKeyAttributes: ix.include }
              : { ProjectionType: "ALL" as const },
          })),
        }
      : {}),
  };
}

/**
 * Create any missing tables and wait until they are ACTIVE (the SDK's own waiter). For the embedded
 * local store and tests only: deployed stacks get their tables from Pulumi.
 */
export async function ensureTables(
  client: import("@aws-sdk/client-dynamodb").DynamoDBClient,
  names: Readonly<Record<TableName, string>>,
): Promise<void> {
  const { CreateTableCommand, ResourceInUseException, waitUntilTableExists } = await import(
    "@aws-sdk/client-dynamodb"
  );
  await Promise.all(
    (Object.keys(names) as TableName[]).map(async (key) => {
      try {
        await client.send(new CreateTableCommand(createTableInput(names[key], TABLE_SCHEMAS[key])));
      } catch (err) {
        if (!(err instanceof ResourceInUseException)) throw err;
      }
      await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1 }, { TableName: names[key] });
    }),
  );
}
