/**
 * The contracts between the parts of the runtime and their stores. Implementations: tasks/store.ts (DynamoDB
 * task store), tasks/events.ts (DynamoDB event log), payload/ (S3 and local-file payload stores).
 */
import type { TaskEvent, TaskEventType, TaskRecord, TaskResultFields } from "./tasks/record";
import type { TaskStatus } from "./tasks/status";

export interface Page<T> {
  items: T[];
  /** Opaque; pass back to get the next page. Absent on the last page. */
  nextToken?: string;
}

export interface PageRequest {
  limit?: number;
  nextToken?: string;
}

export interface TaskStore {
  /** Insert a new task; fails with TaskExistsError if the id is taken (how idempotent submit is made atomic). */
  create(record: TaskRecord): Promise<void>;
  get(taskId: string): Promise<TaskRecord | undefined>;
  /** The status of each task (consistent reads); a task that does not exist maps to undefined. */
  statuses(taskIds: readonly string[]): Promise<Map<string, TaskStatus | undefined>>;
  /**
   * Move a task to `to` by a conditional write: succeeds only if its current status is one from which `to`
   * is legal (and, if given, one of `from`). Throws IllegalTransitionError otherwise, with the actual status.
   */
  transition(taskId: string, to: TaskStatus, fields?: TaskResultFields, from?: readonly TaskStatus[]): Promise<TaskRecord>;
  /** Set non-status fields, only while the task's status is one of `whileIn`. */
  update(taskId: string, fields: TaskResultFields, whileIn: readonly TaskStatus[]): Promise<TaskRecord>;
  /** Record an agent heartbeat (agent_heartbeat_at = now); only while STARTING or RUNNING. */
  heartbeat(taskId: string, at?: Date): Promise<void>;
  listByUser(userId: string, options?: PageRequest & { status?: TaskStatus }): Promise<Page<TaskRecord>>;
  /** Oldest first: QUEUED tasks are admitted first-in first-out from here. */
  listByStatus(status: TaskStatus, options?: PageRequest): Promise<Page<TaskRecord>>;
  /** Every task in one status, oldest first, read page by page as iterated. */
  eachInStatus(status: TaskStatus): AsyncIterable<TaskRecord>;
  /** The user's oldest QUEUED task (its keys), read from that user's queue alone. */
  oldestQueued(userId: string): Promise<QueuedTaskKey | undefined>;
  /** How many tasks the user has waiting (SUBMITTED or QUEUED), counting no further than `atMost`. */
  countWaiting(userId: string, atMost: number): Promise<number>;
}

/** What the user-queue index holds of a waiting task. */
export type QueuedTaskKey = Pick<TaskRecord, "task_id" | "user_id" | "status" | "created_at">;

export interface TaskEventLog {
  append(
    taskId: string,
    type: TaskEventType,
    message: string,
    extra?: { status?: TaskStatus; data?: Record<string, unknown>; source?: "agent" },
  ): Promise<TaskEvent>;
  /** Oldest first (newest-last). */
  list(taskId: string, options?: PageRequest): Promise<Page<TaskEvent>>;
  /** Every event of a task, oldest first, read page by page as iterated. */
  each(taskId: string): AsyncIterable<TaskEvent>;
}

export interface PayloadStore {
  /** Largest payload accepted, in bytes. */
  readonly maxBytes: number;
  /** Store a task's payload; returns the URI the agent reads (s3://… or an absolute path). Throws PayloadTooLargeError. */
  put(taskId: string, payload: AgentPayload): Promise<string>;
  get(uri: string): Promise<AgentPayload>;
  /** Write `payload` in place of the one at `uri` (a payload this store wrote). */
  replace(uri: string, payload: AgentPayload): Promise<void>;
  /**
   * What the agent is handed to read the payload at `uri`: a presigned HTTPS GET valid for `expiresInSeconds`
   * (S3), or the absolute path (files). The result opens the payload alone: it is a secret while it lasts.
   */
  agentLocator(uri: string, expiresInSeconds: number): Promise<string>;
  /** Remove it; a missing payload is not an error. */
  delete(uri: string): Promise<void>;
}

/** Where and how the agent reports: the task API's agent routes and the task's capability token. */
export interface AgentChannelRef {
  /** Base URL, no trailing slash; the routes are under /agent/v1. */
  url: string;
  token: string;
}

/** What the agent reads from AGENT_PAYLOAD_URL (docs/agent-contract.md). */
export interface AgentPayload {
  task_id: string;
  repo_url: string;
  prompt: string;
  branch?: string;
  issue_number?: number;
  model?: string;
  max_turns?: number;
  max_budget_usd?: number;
  /** Free-form extra context for the agent (may be large). */
  context?: Record<string, unknown>;
  /** Added when the compute is started; absent from the payload the API stores at submit. */
  channel?: AgentChannelRef;
}
