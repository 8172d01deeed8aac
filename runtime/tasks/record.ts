import type { BackendType, SessionHandle } from "../compute/handle";
import type { TaskStatus } from "./status";

/** One task as stored in the tasks table (snake_case attribute names, as the agent contract uses). */
export interface TaskRecord {
  task_id: string;
  user_id: string;
  status: TaskStatus;
  repo_url: string;
  prompt: string;
  issue_number?: number;
  branch?: string;
  max_turns?: number;
  max_budget_usd?: number;
  model?: string;
  /**
   * Backend chosen for this task (request, repo blueprint, or stack default): fixed at submit when the request
   * names one, else written by the start step with start_sent_at.
   */
  backend?: BackendType;
  /** Named EC2 fleet, when backend is ec2. */
  fleet?: string;
  compute_type?: BackendType;
  compute_metadata?: SessionHandle;
  session_id?: string;
  payload_uri?: string;
  idempotency_key?: string;
  created_at: string;
  updated_at: string;
  started_at?: string;
  finished_at?: string;
  agent_heartbeat_at?: string;
  pr_url?: string;
  error_message?: string;
  cost_usd?: number;
  exit_code?: number;
  /** Agent turns and its closing summary, as the agent reported them. */
  turns?: number;
  summary?: string;
  /** SHA-256 (hex) of the agent's capability token; the token itself is never stored. */
  agent_token_sha256?: string;
  /** The durable execution driving this task (GetDurableExecution); absent on the local platform. */
  execution_arn?: string;
  /** The durable callback the orchestrator waits on between polls; completing it wakes it (orchestrator/wake.ts). */
  wake_callback_id?: string;
  /** When the start step was about to send the start request: a re-run can tell "maybe sent" from "not sent". */
  start_sent_at?: string;
  /**
   * The newest capacity error EC2 gave the task's fleet while the task waited for an instance (insufficient
   * capacity, a quota, a full subnet); a task that times out waiting fails with it as its reason.
   */
  capacity_error?: string;
  /** When finalize had given everything back (slot, lease, payload, compute); the reconciler re-finalizes tasks without it. */
  released_at?: string;
  /** Epoch seconds; DynamoDB TTL removes finished records after the retention period. */
  ttl?: number;
  /** Re-queues after an infrastructure loss so far (0 or absent: the first attempt runs). */
  attempt?: number;
  /** Earlier attempts, oldest first: what ran and why it was lost. */
  attempts?: AttemptRecord[];
}

/** One attempt that infrastructure ended (Spot interruption, instance lost, undeliverable command). */
export interface AttemptRecord {
  attempt: number;
  compute_type?: BackendType;
  session_id?: string;
  reason: string;
  ended_at: string;
}

/**
 * Fields an actor may set together with a status transition. A field given as null is removed (a re-queued task
 * forgets the compute of its lost attempt).
 */
export type TaskResultFields = {
  [K in ResultKey]?: TaskRecord[K] | null;
};

type ResultKey = keyof Pick<
  TaskRecord,
    | "pr_url"
    | "error_message"
    | "cost_usd"
    | "exit_code"
    | "started_at"
    | "finished_at"
    | "agent_heartbeat_at"
    | "compute_type"
    | "compute_metadata"
    | "session_id"
    | "payload_uri"
    | "turns"
    | "summary"
    | "agent_token_sha256"
    | "execution_arn"
    | "wake_callback_id"
    | "start_sent_at"
    | "backend"
    | "fleet"
    | "capacity_error"
    | "released_at"
    | "attempt"
    | "attempts"
>;

export type TaskEventType = "status" | "dispatch" | "heartbeat" | "error" | "info" | "progress";

export interface TaskEvent {
  task_id: string;
  /** Sortable: ISO timestamp + sequence, so events read newest-last. */
  event_id: string;
  type: TaskEventType;
  message: string;
  status?: TaskStatus;
  at: string;
  data?: Record<string, unknown>;
  /** "agent" when the agent wrote it through the channel: what the platform says and what an agent says stay apart. */
  source?: "agent";
  ttl?: number;
}
