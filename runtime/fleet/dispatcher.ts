/**
 * The per-fleet dispatcher: pairs the oldest waiting tasks with ready instances, one DynamoDB transaction per
 * pair. Only one process dispatches a fleet at a time (a lock item in the lease table, with an expiry so a crashed
 * holder is replaced), so concurrent claimers never race for the same instance or the same waiter: a task that
 * arrives while another process dispatches only bumps the lock's kick counter (one UpdateItem) and returns. The
 * holder releases the lock only if no kick arrived since it last looked, so no waiter is left unserved while an
 * instance is ready (no lost wake-up).
 *
 * Cost per kick: 2 calls when someone else holds the lock; otherwise 2 to take and give back the lock, plus
 * 2 Queries per round of up to DISPATCH_BATCH pairs, plus one transaction and one tag write per pair.
 */
import { randomUUID } from "node:crypto";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { RecordedCapacityError } from "./capacity-error";
import type { Waiter } from "./waiters";

/** Waiters and candidates read per round. */
export const DISPATCH_BATCH = 25;
/** How long a dispatcher may hold a fleet's lock before another process may take it over. */
export const DISPATCH_LOCK_MS = 60_000;
/** Pairs one holding makes at most; the rest is left to the next kick (the fleet manager kicks every pass). */
export const MAX_BINDS_PER_HOLDING = 500;

export type BindOutcome =
  /** The instance now runs the waiter's task. */
  | { kind: "bound"; claimedAt: string }
  /** The instance is no longer ready (a stale index entry, or drained): try the next instance. */
  | { kind: "instance-taken" }
  /** The waiter is gone (bound by a release hand-over, or its task ended): try the next waiter. */
  | { kind: "waiter-gone" }
  /** The tags or scale-in protection could not be applied; the pair was undone: try the next instance. */
  | { kind: "mirror-failed"; error: Error };

/** What the dispatcher needs from the lease table. */
export interface DispatchTarget {
  readonly db: DynamoDBDocumentClient;
  readonly leasesTableName: string;
  now(): Date;
  oldestWaiters(fleet: string, limit: number): Promise<Waiter[]>;
  readyInstanceIds(fleet: string, limit: number): Promise<string[]>;
  /** `tell`: wake the waiter's task once bound (false when that task is the one dispatching). */
  bind(fleet: string, instanceId: string, waiter: Waiter, tell: boolean): Promise<BindOutcome>;
}

export interface Bound {
  taskId: string;
  instanceId: string;
  claimedAt: string;
}

export interface KickResult {
  /** True when this call held the lock and dispatched. */
  dispatched: boolean;
  /** The tasks this call bound to instances. */
  bound: Bound[];
  /** The fleet's capacity error as the lock item held it (capacity-error.ts), read with the kick at no cost. */
  capacity?: RecordedCapacityError;
}

function lockKey(fleet: string): string {
  return `dispatch#${fleet}`;
}

function isConditionalFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as { name?: string })?.name === "ConditionalCheckFailedException";
}

/**
 * Ask for `fleet` to be dispatched. Returns at once if another process is dispatching it (that process sees the
 * kick before it lets go); otherwise dispatches until no waiter or no ready instance is left.
 */
export async function kickDispatcher(target: DispatchTarget, fleet: string, self?: string): Promise<KickResult> {
  const key = { instance_id: lockKey(fleet) };
  const now = target.now().getTime();
  const me = randomUUID();
  let kicks: number;
  let capacity: RecordedCapacityError;
  try {
    // One call when nobody dispatches: take the lock and count the kick together.
    const taken = await target.db.send(
      new UpdateCommand({
        TableName: target.leasesTableName,
        Key: key,
        UpdateExpression: "SET kind = :kind, holder = :me, #until = :until ADD kicks :one",
        ConditionExpression: "attribute_not_exists(holder) OR #until < :now",
        ExpressionAttributeNames: { "#until": "until" },
        ExpressionAttributeValues: { ":kind": "dispatcher", ":me": me, ":until": now + DISPATCH_LOCK_MS, ":now": now, ":one": 1 },
        ReturnValues: "ALL_NEW",
      }),
    );
    kicks = (taken.Attributes as { kicks: number }).kicks;
    capacity = taken.Attributes as RecordedCapacityError;
  } catch (err) {
    if (!isConditionalFailure(err)) throw err;
    // Someone dispatches: count our kick, so that they look again before they let go (two calls in all).
    const counted = await target.db.send(
      new UpdateCommand({
        TableName: target.leasesTableName,
        Key: key,
        UpdateExpression: "ADD kicks :one",
        ExpressionAttributeValues: { ":one": 1 },
        ReturnValues: "ALL_NEW",
      }),
    );
    return { dispatched: false, bound: [], capacity: counted.Attributes as RecordedCapacityError };
  }

  const bound: Bound[] = [];
  try {
    for (;;) {
      bound.push(...(await dispatchRounds(target, fleet, MAX_BINDS_PER_HOLDING - bound.length, self)));
      // Let go only if no kick arrived meanwhile: a kick bumps `kicks`, and then we must look again.
      if (await unlock(target, key, me, kicks)) return { dispatched: true, bound, capacity };
      // A kick arrived while we dispatched (or our lock expired and was taken over): look again.
      const current = (
        await target.db.send(new GetCommand({ TableName: target.leasesTableName, Key: key, ConsistentRead: true }))
      ).Item as { holder?: string; kicks: number } | undefined;
      if (current?.holder !== me) return { dispatched: true, bound, capacity };
      kicks = current.kicks;
      if (bound.length >= MAX_BINDS_PER_HOLDING) {
        await unlock(target, key, me);
        return { dispatched: true, bound, capacity };
      }
    }
  } catch (err) {
    await unlock(target, key, me).catch(() => false);
    throw err;
  }
}

/** Remove our hold on the lock, if we still hold it (and, with `kicks`, if nobody kicked since). */
async function unlock(target: DispatchTarget, key: Record<string, string>, me: string, kicks?: number): Promise<boolean> {
  try {
    await target.db.send(
      new UpdateCommand({
        TableName: target.leasesTableName,
        Key: key,
        UpdateExpression: "REMOVE holder, #until",
        ConditionExpression: kicks === undefined ? "holder = :me" : "holder = :me AND kicks = :k",
        ExpressionAttributeNames: { "#until": "until" },
        ExpressionAttributeValues: { ":me": me, ...(kicks === undefined ? {} : { ":k": kicks }) },
      }),
    );
    return true;
  } catch (err) {
    if (!isConditionalFailure(err)) throw err;
    return false;
  }
}

/** What pairing needs: the two ordered reads and the one write per pair (the lock is kickDispatcher's). */
export type PairingTarget = Pick<DispatchTarget, "oldestWaiters" | "readyInstanceIds" | "bind">;

/**
 * Pair oldest waiters with ready instances until one of the two runs out (or `budget` pairs were made). Only the
 * lock holder calls it; exported so that a simulation of the fleet runs the same pairing over its own store.
 */
export async function dispatchRounds(target: PairingTarget, fleet: string, budget: number, self: string | undefined): Promise<Bound[]> {
  const bound: Bound[] = [];
  // Instances bound or refused in this holding: the by-fleet-state index may still list them as ready for a moment.
  const skip = new Set<string>();
  while (bound.length < budget) {
    const waiters = await target.oldestWaiters(fleet, DISPATCH_BATCH);
    if (waiters.length === 0) break;
    const candidates = (await target.readyInstanceIds(fleet, DISPATCH_BATCH + skip.size)).filter((id) => !skip.has(id));
    if (candidates.length === 0) break;
    let w = 0;
    let c = 0;
    let progress = false;
    while (w < waiters.length && c < candidates.length && bound.length < budget) {
      const outcome = await target.bind(fleet, candidates[c], waiters[w], waiters[w].taskId !== self);
      if (outcome.kind === "bound") {
        bound.push({ taskId: waiters[w].taskId, instanceId: candidates[c], claimedAt: outcome.claimedAt });
        skip.add(candidates[c]);
        w++;
        c++;
        progress = true;
      } else if (outcome.kind === "waiter-gone") {
        // The instance is still free: offer it to the next waiter.
        w++;
        progress = true;
      } else {
        skip.add(candidates[c]);
        c++;
      }
    }
    if (!progress) break;
    // Everything that was waiting got an instance, or every ready instance was offered: nothing is left to pair
    // as of these reads, and anything newer kicked the lock, which makes the holder look again.
    if ((w === waiters.length && waiters.length < DISPATCH_BATCH) || (c === candidates.length && candidates.length < DISPATCH_BATCH)) break;
  }
  return bound;
}
