/**
 * Per-user concurrency slots in the concurrency table: one item per user holding the *set* of task ids that
 * hold a slot. A set rather than a number makes claim and release idempotent, which a durable step needs —
 * a replayed claim finds its id already present instead of counting twice, a replayed release removes nothing.
 */
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { documentClient, isConditionalCheckFailed } from "../aws/dynamodb";
import type { RuntimeConfig } from "../config";

export class ConcurrencySlots {
  constructor(private readonly config: Pick<RuntimeConfig, "region" | "endpoints" | "tables">) {}

  /**
   * Take a slot for the task unless the user already holds `cap` of them. True if the task holds a slot after
   * the call (including when it already held one). One conditional write: two tasks racing for the last slot
   * cannot both win.
   */
  async claim(userId: string, taskId: string, cap: number): Promise<boolean> {
    try {
      await documentClient(this.config).send(
        new UpdateCommand({
          TableName: this.config.tables.concurrency,
          Key: { user_id: userId },
          UpdateExpression: "ADD task_ids :ids",
          ConditionExpression: "attribute_not_exists(task_ids) OR contains(task_ids, :id) OR size(task_ids) < :cap",
          ExpressionAttributeValues: { ":ids": new Set([taskId]), ":id": taskId, ":cap": cap },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailed(err)) return false;
      throw err;
    }
  }

  /** Give the task's slot back; a task that holds none is not an error. */
  async release(userId: string, taskId: string): Promise<void> {
    await documentClient(this.config).send(
      new UpdateCommand({
        TableName: this.config.tables.concurrency,
        Key: { user_id: userId },
        UpdateExpression: "DELETE task_ids :ids",
        ExpressionAttributeValues: { ":ids": new Set([taskId]) },
      }),
    );
  }

  /** Give the task's slot back only if it holds one; true when this call released it (the reconciler's conditional write). */
  async releaseHeld(userId: string, taskId: string): Promise<boolean> {
    try {
      await documentClient(this.config).send(
        new UpdateCommand({
          TableName: this.config.tables.concurrency,
          Key: { user_id: userId },
          UpdateExpression: "DELETE task_ids :ids",
          ConditionExpression: "contains(task_ids, :id)",
          ExpressionAttributeValues: { ":ids": new Set([taskId]), ":id": taskId },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailed(err)) return false;
      throw err;
    }
  }

  /** Task ids holding one of the user's slots. */
  async holders(userId: string): Promise<string[]> {
    const out = await documentClient(this.config).send(
      new GetCommand({ TableName: this.config.tables.concurrency, Key: { user_id: userId }, ConsistentRead: true }),
    );
    const ids = out.Item?.task_ids as Set<string> | undefined;
    return ids ? [...ids].sort() : [];
  }
}
