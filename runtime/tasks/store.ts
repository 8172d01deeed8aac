/**
 * The DynamoDB task store. Every status change is one conditional write whose condition is
 * "the current status is one the transition table allows this move from", so two actors racing (orchestrator,
 * agent, cancel API) can never both win, and a refused write reports the status that actually stopped it.
 */
import {
  BatchGetCommand,
  GetCommand,
  paginateQuery,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type QueryCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { documentClient, isConditionalCheckFailed } from "../aws/dynamodb";
import type { LimitsConfig, RuntimeConfig } from "../config";
import { IllegalTransitionError, TaskExistsError } from "../errors";
import type { Page, PageRequest, QueuedTaskKey, TaskStore } from "../ports";
import { TASKS_BY_STATUS_INDEX, TASKS_BY_USER_INDEX, TASKS_BY_USER_WAITING_INDEX, WAITING_SINCE } from "../tables";
import { decodePageToken, encodePageToken, pageLimit } from "./paging";
import type { TaskRecord, TaskResultFields } from "./record";
import { allowedPredecessors, isTaskStatus, isTerminal, type TaskStatus } from "./status";

/** Statuses in which an agent may heartbeat. */
export const HEARTBEAT_STATUSES: readonly TaskStatus[] = ["STARTING", "RUNNING"];

/** Statuses of a task waiting to start: the ones a user's queue (by-user-waiting, maxQueuedPerUser) counts. */
export const WAITING_STATUSES: readonly TaskStatus[] = ["SUBMITTED", "QUEUED"];

/** Attributes a caller may never set through `fields`: they are the key and the state machine itself. */
const PROTECTED_FIELDS = new Set(["task_id", "status", "user_id", "created_at", "updated_at", WAITING_SINCE]);

/** An update or heartbeat refused because the task was not in one of the statuses it requires. */
export class TaskNotInStatusError extends IllegalTransitionError {
  constructor(
    taskId: string,
    readonly required: readonly TaskStatus[],
    actual: TaskStatus | undefined,
    what: string,
  ) {
    super(taskId, actual ?? required[0], actual);
    this.message =
      actual === undefined
        ? `task ${taskId} does not exist (cannot ${what})`
        : `task ${taskId} is ${actual}; ${what} requires one of ${required.join(", ")}`;
    this.name = "TaskNotInStatusError";
  }
}

/** The part of the runtime config the stores read (an agent builds it from its environment alone). */
export type StoreConfig = Pick<RuntimeConfig, "region" | "endpoints"> & {
  tables: Pick<RuntimeConfig["tables"], "tasks" | "events">;
  limits: Pick<LimitsConfig, "retentionDays">;
};

export interface StoreOptions {
  /** Clock for timestamps (tests). */
  now?: () => Date;
}

/** The status held in a ConditionalCheckFailedException's ALL_OLD item (raw attribute-value form), if any. */
function statusFromFailure(err: unknown): TaskStatus | undefined {
  const item = (err as { Item?: Record<string, unknown> }).Item;
  const raw = item?.status as { S?: unknown } | string | undefined;
  const value = typeof raw === "string" ? raw : raw?.S;
  return isTaskStatus(value) ? value : undefined;
}

/** The DynamoDB TTL (epoch seconds) of an item written at `at` and kept `retentionDays`. */
export function expiresAt(at: Date, retentionDays: number): number {
  return Math.floor(at.getTime() / 1000) + retentionDays * 86400;
}

export class DynamoTaskStore implements TaskStore {
  private readonly now: () => Date;

  constructor(
    private readonly config: StoreConfig,
    options: StoreOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  private get doc() {
    return documentClient(this.config);
  }

  private get table(): string {
    return this.config.tables.tasks;
  }

  async create(record: TaskRecord): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          // A waiting task enters the user's queue index (by-user-waiting) with the write that creates it.
          Item: WAITING_STATUSES.includes(record.status) ? { ...record, [WAITING_SINCE]: record.created_at } : record,
          ConditionExpression: "attribute_not_exists(task_id)",
        }),
      );
    } catch (err) {
      if (isConditionalCheckFailed(err)) throw new TaskExistsError(record.task_id);
      throw err;
    }
  }

  async get(taskId: string): Promise<TaskRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { task_id: taskId }, ConsistentRead: true }));
    return out.Item as TaskRecord | undefined;
  }

  async statuses(taskIds: readonly string[]): Promise<Map<string, TaskStatus | undefined>> {
    const ids = [...new Set(taskIds)];
    const statuses = new Map<string, TaskStatus | undefined>(ids.map((id) => [id, undefined]));
    // BatchGetItem reads at most 100 keys a call; what it leaves unprocessed is asked again.
    for (let i = 0; i < ids.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = ids.slice(i, i + 100).map((task_id) => ({ task_id }));
      while (keys?.length) {
        const out = await this.doc.send(
          new BatchGetCommand({
            RequestItems: { [this.table]: { Keys: keys, ProjectionExpression: "task_id, #s", ExpressionAttributeNames: { "#s": "status" }, ConsistentRead: true } },
          }),
        );
        for (const item of out.Responses?.[this.table] ?? []) statuses.set(item.task_id as string, item.status as TaskStatus);
        keys = out.UnprocessedKeys?.[this.table]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return statuses;
  }

  async transition(
    taskId: string,
    to: TaskStatus,
    fields: TaskResultFields = {},
    from?: readonly TaskStatus[],
  ): Promise<TaskRecord> {
    const legal = allowedPredecessors(to);
    const predecessors = from ? legal.filter((s) => from.includes(s)) : legal;
    if (predecessors.length === 0) {
      // Nothing could satisfy the condition; report the real status without writing.
      throw new IllegalTransitionError(taskId, to, (await this.get(taskId))?.status);
    }
    const now = this.now();
    const set: Record<string, unknown> = { ...fields };
    if (isTerminal(to)) {
      set.finished_at ??= now.toISOString();
      set.ttl = expiresAt(now, this.config.limits.retentionDays);
    }
    try {
      return await this.conditionalUpdate(taskId, set, predecessors, now, to, to === "RUNNING");
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      const actual = statusFromFailure(err) ?? (await this.get(taskId))?.status;
      throw new IllegalTransitionError(taskId, to, actual);
    }
  }

  async update(taskId: string, fields: TaskResultFields, whileIn: readonly TaskStatus[]): Promise<TaskRecord> {
    if (whileIn.length === 0) throw new RangeError("update needs at least one status in whileIn");
    try {
      return await this.conditionalUpdate(taskId, { ...fields }, whileIn, this.now());
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      const actual = statusFromFailure(err) ?? (await this.get(taskId))?.status;
      throw new TaskNotInStatusError(taskId, whileIn, actual, "update");
    }
  }

  async heartbeat(taskId: string, at: Date = this.now()): Promise<void> {
    try {
      await this.conditionalUpdate(taskId, { agent_heartbeat_at: at.toISOString() }, HEARTBEAT_STATUSES, at);
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      const actual = statusFromFailure(err) ?? (await this.get(taskId))?.status;
      throw new TaskNotInStatusError(taskId, HEARTBEAT_STATUSES, actual, "heartbeat");
    }
  }

  /**
   * SET the given fields (and status, when moving) only if the item exists with a status in `whileIn`.
   * A refusal carries the old item (ReturnValuesOnConditionCheckFailure) so the caller can name the real status
   * without a second read; emulators that ignore that option fall back to a consistent read.
   */
  private async conditionalUpdate(
    taskId: string,
    fields: Record<string, unknown>,
    whileIn: readonly TaskStatus[],
    now: Date,
    to?: TaskStatus,
    stampStarted = false,
  ): Promise<TaskRecord> {
    const names: Record<string, string> = { "#status": "status", "#updated_at": "updated_at" };
    const values: Record<string, unknown> = { ":updated_at": now.toISOString() };
    const sets = ["#updated_at = :updated_at"];
    const removes: string[] = [];
    let i = 0;
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (PROTECTED_FIELDS.has(key)) {
        throw new RangeError(`field '${key}' cannot be set by an update; it is managed by the store`);
      }
      names[`#f${i}`] = key;
      if (value === null) {
        removes.push(`#f${i}`);
      } else {
        values[`:f${i}`] = value;
        sets.push(`#f${i} = :f${i}`);
      }
      i++;
    }
    if (to) {
      values[":to"] = to;
      sets.push("#status = :to");
    }
    if (stampStarted && fields.started_at === undefined) {
      names["#started_at"] = "started_at";
      values[":started_at"] = now.toISOString();
      sets.push("#started_at = if_not_exists(#started_at, :started_at)");
    }
    const allowed = whileIn.map((s, n) => {
      values[`:w${n}`] = s;
      return `:w${n}`;
    });
    // A task that stops waiting leaves the user's queue index in the same write.
    const leavesQueue = to !== undefined && !WAITING_STATUSES.includes(to);
    if (leavesQueue) names["#waiting"] = WAITING_SINCE;
    const out = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { task_id: taskId },
        UpdateExpression: `SET ${sets.join(", ")}${removes.length || leavesQueue ? ` REMOVE ${[...removes, ...(leavesQueue ? ["#waiting"] : [])].join(", ")}` : ""}`,
        ConditionExpression: `attribute_exists(task_id) AND #status IN (${allowed.join(", ")})`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: "ALL_NEW",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return out.Attributes as TaskRecord;
  }

  /** A user's tasks, newest first; optionally only those in one status. */
  async listByUser(userId: string, options: PageRequest & { status?: TaskStatus } = {}): Promise<Page<TaskRecord>> {
    const input: QueryCommandInput = {
      TableName: this.table,
      IndexName: TASKS_BY_USER_INDEX,
      KeyConditionExpression: "user_id = :u",
      ExpressionAttributeValues: { ":u": userId },
      ScanIndexForward: false,
      Limit: pageLimit(options.limit),
      ExclusiveStartKey: decodePageToken(options.nextToken),
    };
    if (options.status) {
      input.FilterExpression = "#status = :s";
      input.ExpressionAttributeNames = { "#status": "status" };
      input.ExpressionAttributeValues = { ...input.ExpressionAttributeValues, ":s": options.status };
    }
    const out = await this.doc.send(new QueryCommand(input));
    return { items: (out.Items ?? []) as TaskRecord[], nextToken: encodePageToken(out.LastEvaluatedKey) };
  }

  /** Tasks in one status, oldest first (QUEUED tasks are admitted first-in first-out from here). */
  async listByStatus(status: TaskStatus, options: PageRequest = {}): Promise<Page<TaskRecord>> {
    const out = await this.doc.send(
      new QueryCommand({ ...this.byStatus(status), Limit: pageLimit(options.limit), ExclusiveStartKey: decodePageToken(options.nextToken) }),
    );
    return { items: (out.Items ?? []) as TaskRecord[], nextToken: encodePageToken(out.LastEvaluatedKey) };
  }

  async *eachInStatus(status: TaskStatus): AsyncIterable<TaskRecord> {
    for await (const page of paginateQuery({ client: this.doc }, this.byStatus(status))) yield* (page.Items ?? []) as TaskRecord[];
  }

  /**
   * The user's oldest QUEUED task, from that user's own waiting tasks (by-user-waiting): the read is bounded by the
   * user's queue (at most maxQueuedPerUser tasks, small index items), whatever other users have queued.
   */
  async oldestQueued(userId: string): Promise<QueuedTaskKey | undefined> {
    const input: QueryCommandInput = {
      ...this.waitingOf(userId),
      FilterExpression: "#status = :q",
      ExpressionAttributeNames: { "#status": "status" },
    };
    input.ExpressionAttributeValues = { ...input.ExpressionAttributeValues, ":q": "QUEUED" };
    for await (const page of paginateQuery({ client: this.doc }, input)) {
      if (page.Items?.length) return page.Items[0] as QueuedTaskKey;
    }
    return undefined;
  }

  /** How many tasks the user has waiting (SUBMITTED or QUEUED), counting no further than `atMost`. */
  async countWaiting(userId: string, atMost: number): Promise<number> {
    let count = 0;
    const input: QueryCommandInput = { ...this.waitingOf(userId), Select: "COUNT", Limit: atMost };
    for await (const page of paginateQuery({ client: this.doc, pageSize: atMost }, input)) {
      count += page.Count ?? 0;
      if (count >= atMost) return atMost;
    }
    return count;
  }

  private waitingOf(userId: string): QueryCommandInput {
    return {
      TableName: this.table,
      IndexName: TASKS_BY_USER_WAITING_INDEX,
      KeyConditionExpression: "user_id = :u",
      ExpressionAttributeValues: { ":u": userId },
      ScanIndexForward: true,
    };
  }

  /** The by-status query, oldest first. */
  private byStatus(status: TaskStatus): QueryCommandInput {
    return {
      TableName: this.table,
      IndexName: TASKS_BY_STATUS_INDEX,
      KeyConditionExpression: "#status = :s",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: { ":s": status },
      ScanIndexForward: true,
    };
  }
}
