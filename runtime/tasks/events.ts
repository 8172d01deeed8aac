/** The DynamoDB task event log: status changes, dispatch, errors and agent events of each task, newest-last. */
import { paginateQuery, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { documentClient } from "../aws/dynamodb";
import type { Page, PageRequest, TaskEventLog } from "../ports";
import { decodePageToken, encodePageToken, pageLimit } from "./paging";
import type { TaskEvent, TaskEventType } from "./record";
import type { TaskStatus } from "./status";
import { expiresAt, type StoreConfig, type StoreOptions } from "./store";

/**
 * Event ids: `<ISO time>#<sequence>#<random>`. The time never goes backwards within a process and the sequence
 * orders events written in the same millisecond, so a task's events read newest-last; the random part keeps
 * ids from two processes (orchestrator and agent) writing in the same millisecond distinct.
 */
export class EventIdGenerator {
  private lastMs = 0;
  private seq = 0;

  constructor(private readonly now: () => Date = () => new Date()) {}

  next(): { id: string; at: string } {
    const ms = Math.max(this.now().getTime(), this.lastMs);
    this.seq = ms === this.lastMs ? this.seq + 1 : 0;
    this.lastMs = ms;
    const at = new Date(ms).toISOString();
    const rand = Math.floor(Math.random() * 0x1000000)
      .toString(16)
      .padStart(6, "0");
    return { id: `${at}#${String(this.seq).padStart(6, "0")}#${rand}`, at };
  }
}

export class DynamoEventLog implements TaskEventLog {
  private readonly ids: EventIdGenerator;

  constructor(
    private readonly config: StoreConfig,
    options: StoreOptions = {},
  ) {
    this.ids = new EventIdGenerator(options.now ?? (() => new Date()));
  }

  private get doc() {
    return documentClient(this.config);
  }

  async append(
    taskId: string,
    type: TaskEventType,
    message: string,
    extra: { status?: TaskStatus; data?: Record<string, unknown>; source?: "agent" } = {},
  ): Promise<TaskEvent> {
    const { id, at } = this.ids.next();
    const event: TaskEvent = {
      task_id: taskId,
      event_id: id,
      type,
      message,
      at,
      ...(extra.status ? { status: extra.status } : {}),
      ...(extra.data ? { data: extra.data } : {}),
      ...(extra.source ? { source: extra.source } : {}),
      ttl: expiresAt(new Date(at), this.config.limits.retentionDays),
    };
    await this.doc.send(
      new PutCommand({
        TableName: this.config.tables.events,
        Item: event,
        ConditionExpression: "attribute_not_exists(event_id)",
      }),
    );
    return event;
  }

  async list(taskId: string, options: PageRequest = {}): Promise<Page<TaskEvent>> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.config.tables.events,
        KeyConditionExpression: "task_id = :t",
        ExpressionAttributeValues: { ":t": taskId },
        ScanIndexForward: true,
        ConsistentRead: true,
        Limit: pageLimit(options.limit),
        ExclusiveStartKey: decodePageToken(options.nextToken),
      }),
    );
    return { items: (out.Items ?? []) as TaskEvent[], nextToken: encodePageToken(out.LastEvaluatedKey) };
  }

  async *each(taskId: string): AsyncIterable<TaskEvent> {
    const pages = paginateQuery(
      { client: this.doc },
      {
        TableName: this.config.tables.events,
        KeyConditionExpression: "task_id = :t",
        ExpressionAttributeValues: { ":t": taskId },
        ScanIndexForward: true,
        ConsistentRead: true,
      },
    );
    for await (const page of pages) yield* (page.Items ?? []) as TaskEvent[];
  }
}
