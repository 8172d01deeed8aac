/**
 * How often one task's agent may write events: a token bucket kept on the task record, so the limit holds across
 * every Lambda instance that serves the channel. The decision is a pure function; the write that takes a token is
 * conditional on the bucket being as it was read, so two concurrent reports cannot both spend the same token.
 */
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { documentClient, isConditionalCheckFailed } from "../aws/dynamodb";

export interface RateRule {
  /** Tokens added per minute. */
  perMinute: number;
  /** Bucket size: how many reports may arrive at once after a quiet spell. */
  burst: number;
}

/** 60 reports a minute, 120 at once (the agent channel's published limit). */
export const AGENT_REPORT_RATE: RateRule = { perMinute: 60, burst: 120 };

export interface BucketState {
  /** Tokens left at `atMs`; absent on a task that never reported (a full bucket). */
  tokens?: number;
  atMs?: number;
}

export type RateDecision =
  | { allowed: true; next: { tokens: number; atMs: number } }
  | { allowed: false; retryAfterSeconds: number };

export function takeToken(state: BucketState, nowMs: number, rule: RateRule = AGENT_REPORT_RATE): RateDecision {
  const perMs = rule.perMinute / 60_000;
  const elapsed = state.atMs === undefined ? Infinity : Math.max(0, nowMs - state.atMs);
  const available = Math.min(rule.burst, (state.tokens ?? rule.burst) + elapsed * perMs);
  if (available >= 1) return { allowed: true, next: { tokens: available - 1, atMs: nowMs } };
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - available) / perMs / 1000)) };
}

/** Attribute names of the bucket on the task record. */
const TOKENS = "agent_report_tokens";
const AT = "agent_report_at_ms";

/** Attempts when concurrent reports keep moving the bucket under us; after them the report is told to retry. */
const MAX_ATTEMPTS = 3;

export function bucketOf(task: TaskRecord): BucketState {
  const t = task as TaskRecord & Record<string, unknown>;
  return {
    ...(typeof t[TOKENS] === "number" ? { tokens: t[TOKENS] as number } : {}),
    ...(typeof t[AT] === "number" ? { atMs: t[AT] as number } : {}),
  };
}

/**
 * Spend one token of the task's bucket, or say how long to wait. `task` is the record as just read; on a lost race
 * the record is read again. Only while the task is STARTING or RUNNING.
 */
export async function spendReportToken(rt: Runtime, task: TaskRecord, rule: RateRule = AGENT_REPORT_RATE): Promise<RateDecision> {
  let current: TaskRecord | undefined = task;
  for (let attempt = 0; attempt < MAX_ATTEMPTS && current; attempt++) {
    const before = bucketOf(current);
    const decision = takeToken(before, rt.now().getTime(), rule);
    if (!decision.allowed) return decision;
    try {
      await documentClient(rt.config).send(
        new UpdateCommand({
          TableName: rt.config.tables.tasks,
          Key: { task_id: task.task_id },
          UpdateExpression: "SET #tokens = :tokens, #at = :at",
          ConditionExpression:
            before.atMs === undefined
              ? "#status IN (:starting, :running) AND attribute_not_exists(#at)"
              : "#status IN (:starting, :running) AND #at = :before",
          ExpressionAttributeNames: { "#status": "status", "#tokens": TOKENS, "#at": AT },
          ExpressionAttributeValues: {
            ":starting": "STARTING",
            ":running": "RUNNING",
            ":tokens": decision.next.tokens,
            ":at": decision.next.atMs,
            ...(before.atMs === undefined ? {} : { ":before": before.atMs }),
          },
        }),
      );
      return decision;
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
      current = await rt.tasks.get(task.task_id);
    }
  }
  return { allowed: false, retryAfterSeconds: 1 };
}
