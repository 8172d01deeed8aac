/**
 * The EC2 instance lease table: which instance of which fleet runs which task. Binding a task to an instance is
 * a DynamoDB conditional write, never tag-then-check; EC2 tags and Auto Scaling scale-in protection only mirror
 * what this table says.
 *
 * Items (table config.tables.leases, hash key instance_id):
 * - one per registered instance: { instance_id: "i-…", kind: "instance", fleet, fleet_state: "<fleet>#READY|BUSY",
 *   registered_at, task_id?, command_id?, claimed_at? } — fleet_state + registered_at feed the by-fleet-state index;
 * - one per leased task: { instance_id: "task#<taskId>", kind: "task", task_id, lease_instance_id, fleet, claimed_at }.
 *   It is written in the same transaction as the claim, so "one lease per task" is enforced by DynamoDB itself (a
 *   replayed or concurrent start of one task cannot claim a second instance), and a task's lease is found with a
 *   strongly consistent GetItem instead of an eventually consistent index.
 * EC2 tags and scale-in protection follow each change through the mirror (lease-mirror.ts).
 */
import type { Instance } from "@aws-sdk/client-ec2";
import {
  DeleteCommand,
  GetCommand,
  paginateQuery,
  paginateScan,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { documentClient, isConditionalCheckFailed, transactionCancellation } from "../aws/dynamodb";
import type { RuntimeConfig } from "../config";
import { LEASES_BY_FLEET_STATE_INDEX } from "../tables";
import { LeaseMirror, notReadyReason } from "./lease-mirror";
import { INSTANCE_ID_PATTERN } from "./tags";

export type LeaseState = "READY" | "BUSY";

export interface Lease {
  instanceId: string;
  fleet: string;
  state: LeaseState;
  registeredAt: string;
  taskId?: string;
  /** The SSM command sent for the task, once dispatched: a replayed start finds it here instead of sending again. */
  commandId?: string;
  claimedAt?: string;
}

export type BusyLease = Lease & { state: "BUSY"; taskId: string };

export type ClaimResult =
  | {
      ok: true;
      lease: BusyLease;
      /** True when the task already held this lease (a replayed start): nothing new was claimed. */
      resumed: boolean;
    }
  | { ok: false; reason: "no-capacity"; fleet: string };

export type RegisterResult = { registered: true; created: boolean } | { registered: false; reason: string };

/** Candidates read per query; shuffled so that concurrent claimers spread over them instead of colliding. */
const CANDIDATES_PER_QUERY = 25;
/**
 * Re-queries after a page of candidates was all taken by others. Bounded because the index is eventually
 * consistent: an instance claimed a moment ago may still be listed as READY, and the conditional write is what
 * rejects it.
 */
const CLAIM_ROUNDS = 6;

const TASK_KEY_PREFIX = "task#";

/** The claim transaction's items, in the order written: TransactionCanceledException reports a reason for each. */
const CLAIM_ITEMS = ["taskMarker", "instance"] as const;

interface InstanceItem {
  instance_id: string;
  kind: "instance";
  fleet: string;
  fleet_state: string;
  registered_at: string;
  task_id?: string;
  command_id?: string;
  claimed_at?: string;
}

interface TaskItem {
  instance_id: string;
  kind: "task";
  task_id: string;
  lease_instance_id: string;
  fleet: string;
  claimed_at: string;
}

export function fleetState(fleet: string, state: LeaseState): string {
  return `${fleet}#${state}`;
}

function taskKey(taskId: string): string {
  return `${TASK_KEY_PREFIX}${taskId}`;
}

function toLease(item: InstanceItem): Lease {
  const state = item.fleet_state.endsWith("#BUSY") ? "BUSY" : "READY";
  return {
    instanceId: item.instance_id,
    fleet: item.fleet,
    state,
    registeredAt: item.registered_at,
    ...(item.task_id ? { taskId: item.task_id } : {}),
    ...(item.command_id ? { commandId: item.command_id } : {}),
    ...(item.claimed_at ? { claimedAt: item.claimed_at } : {}),
  };
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export class LeaseTable {
  private readonly tableName: string;
  private readonly mirror: LeaseMirror;

  constructor(
    private readonly config: RuntimeConfig,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.tableName = config.tables.leases;
    this.mirror = new LeaseMirror(config);
  }

  private get db() {
    return documentClient(this.config);
  }

  /**
   * Register an instance as capacity of `fleet`. Only a running instance of that fleet whose boot finished
   * (tag agent-compute:boot=ready) is accepted: an instance still booting, or whose boot failed, never counts.
   * Idempotent: registering an already registered instance changes nothing.
   * `observed` is the instance as DescribeInstances just returned it (fleet sync); without it, it is described.
   */
  async registerInstance(fleet: string, instanceId: string, observed?: Instance): Promise<RegisterResult> {
    if (!INSTANCE_ID_PATTERN.test(instanceId)) {
      return { registered: false, reason: `'${instanceId}' is not an EC2 instance id (i-…)` };
    }
    let instance = observed;
    if (!instance || instance.InstanceId !== instanceId) {
      instance = await this.mirror.describe(instanceId);
      if (!instance) return { registered: false, reason: `instance ${instanceId} does not exist` };
    }
    const reason = notReadyReason(fleet, instance);
    if (reason) return { registered: false, reason };

    const item: InstanceItem = {
      instance_id: instanceId,
      kind: "instance",
      fleet,
      fleet_state: fleetState(fleet, "READY"),
      registered_at: this.now().toISOString(),
    };
    try {
      await this.db.send(
        new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: "attribute_not_exists(instance_id)" }),
      );
    } catch (err) {
      if (isConditionalCheckFailed(err)) return { registered: true, created: false };
      throw err;
    }
    await this.mirror.registered(instanceId);
    return { registered: true, created: true };
  }

  /**
   * Bind one ready instance of `fleet` to `taskId`, atomically. Idempotent per task: if the task already holds a
   * lease it is returned (resumed: true). No ready instance is a normal result ({ ok: false, reason: "no-capacity" }).
   * The tags and the scale-in protection are applied before returning; if that fails the lease is released again.
   */
  async claimInstance(fleet: string, taskId: string): Promise<ClaimResult> {
    const held = await this.leaseOfTask(taskId);
    if (held) return { ok: true, lease: held, resumed: true };

    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      const candidates = await this.readyCandidates(fleet);
      if (candidates.length === 0) break;
      for (const instanceId of shuffle(candidates)) {
        const claimedAt = this.now().toISOString();
        try {
          await this.db.send(
            new TransactWriteCommand({
              TransactItems: [
                {
                  Put: {
                    TableName: this.tableName,
                    Item: {
                      instance_id: taskKey(taskId),
                      kind: "task",
                      task_id: taskId,
                      lease_instance_id: instanceId,
                      fleet,
                      claimed_at: claimedAt,
                    } satisfies TaskItem,
                    ConditionExpression: "attribute_not_exists(instance_id)",
                  },
                },
                {
                  Update: {
                    TableName: this.tableName,
                    Key: { instance_id: instanceId },
                    UpdateExpression: "SET fleet_state = :busy, task_id = :task, claimed_at = :at REMOVE command_id",
                    ConditionExpression: "fleet_state = :ready AND attribute_not_exists(task_id)",
                    ExpressionAttributeValues: {
                      ":busy": fleetState(fleet, "BUSY"),
                      ":ready": fleetState(fleet, "READY"),
                      ":task": taskId,
                      ":at": claimedAt,
                    },
                  },
                },
              ],
            }),
          );
        } catch (err) {
          const cancelled = transactionCancellation(err, CLAIM_ITEMS);
          if (!cancelled) throw err;
          if (cancelled.taskMarker === "ConditionalCheckFailed") {
            // A concurrent start of the same task won: its lease is this task's lease.
            const winner = await this.leaseOfTask(taskId);
            if (winner) return { ok: true, lease: winner, resumed: true };
            continue;
          }
          // The instance was taken (ConditionalCheckFailed) or is being written by another claim
          // (TransactionConflict): try the next candidate.
          continue;
        }
        const lease: BusyLease = {
          instanceId,
          fleet,
          state: "BUSY",
          taskId,
          claimedAt,
          registeredAt: "",
        };
        try {
          await this.mirror.busy(instanceId, fleet, taskId);
        } catch (err) {
          await this.releaseInstance(instanceId, taskId).catch(() => undefined);
          throw new Error(
            `claimed instance ${instanceId} for task ${taskId} but could not tag/protect it, so the lease was released: ${(err as Error).message}`,
            { cause: err },
          );
        }
        const stored = await this.get(instanceId);
        return { ok: true, lease: { ...lease, registeredAt: stored?.registeredAt ?? "" }, resumed: false };
      }
    }
    return { ok: false, reason: "no-capacity", fleet };
  }

  /** The lease a task holds, read with strong consistency; undefined if it holds none. */
  async leaseOfTask(taskId: string): Promise<BusyLease | undefined> {
    const marker = (
      await this.db.send(new GetCommand({ TableName: this.tableName, Key: { instance_id: taskKey(taskId) }, ConsistentRead: true }))
    ).Item as TaskItem | undefined;
    if (!marker) return undefined;
    const lease = await this.get(marker.lease_instance_id);
    if (lease?.state === "BUSY" && lease.taskId === taskId) return lease as BusyLease;
    // The marker outlived its lease (a crash between the two writes of a release, or the instance was dropped):
    // remove it so the task can claim again.
    await this.deleteTaskMarker(taskId, marker.lease_instance_id);
    return undefined;
  }

  /** One instance's lease, strongly consistent. */
  async get(instanceId: string): Promise<Lease | undefined> {
    const item = (
      await this.db.send(new GetCommand({ TableName: this.tableName, Key: { instance_id: instanceId }, ConsistentRead: true }))
    ).Item as InstanceItem | undefined;
    return item?.kind === "instance" ? toLease(item) : undefined;
  }

  /**
   * Record the SSM command sent for the task, so that a replayed start finds it instead of sending a second one.
   * Fails if the instance is no longer leased to this task.
   */
  async recordCommand(instanceId: string, taskId: string, commandId: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { instance_id: instanceId },
          UpdateExpression: "SET command_id = :cmd",
          ConditionExpression: "task_id = :task",
          ExpressionAttributeValues: { ":cmd": commandId, ":task": taskId },
        }),
      );
    } catch (err) {
      if (isConditionalCheckFailed(err)) {
        throw new Error(`cannot record command ${commandId}: instance ${instanceId} is not leased to task ${taskId}`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Return the instance to its fleet's ready pool, only if it is still leased to `taskId`. Releasing twice, or
   * after another task claimed the instance, is a no-op ({ released: false }).
   */
  async releaseInstance(instanceId: string, taskId: string): Promise<{ released: boolean }> {
    const current = await this.get(instanceId);
    let released = false;
    if (current && current.taskId === taskId) {
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { instance_id: instanceId },
            UpdateExpression: "SET fleet_state = :ready REMOVE task_id, command_id, claimed_at",
            ConditionExpression: "task_id = :task",
            ExpressionAttributeValues: { ":ready": fleetState(current.fleet, "READY"), ":task": taskId },
          }),
        );
        released = true;
      } catch (err) {
        if (!isConditionalCheckFailed(err)) throw err;
      }
    }
    await this.deleteTaskMarker(taskId, instanceId);
    if (released) await this.mirror.ready(instanceId, current!.fleet);
    return { released };
  }

  /** Release whatever instance `taskId` holds; a task without a lease is a no-op. */
  async releaseTask(taskId: string): Promise<{ released: boolean; instanceId?: string }> {
    const marker = (
      await this.db.send(new GetCommand({ TableName: this.tableName, Key: { instance_id: taskKey(taskId) }, ConsistentRead: true }))
    ).Item as TaskItem | undefined;
    if (!marker) return { released: false };
    const { released } = await this.releaseInstance(marker.lease_instance_id, taskId);
    return { released, instanceId: marker.lease_instance_id };
  }

  /**
   * Forget an instance that is gone (terminated, stopped): its lease item and the marker of the task it ran.
   * Returns the lease it had, so the caller can report that task as lost.
   */
  async dropInstance(instanceId: string): Promise<Lease | undefined> {
    const out = await this.db.send(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { instance_id: instanceId },
        ConditionExpression: "kind = :instance",
        ExpressionAttributeValues: { ":instance": "instance" },
        ReturnValues: "ALL_OLD",
      }),
    ).catch((err) => {
      if (isConditionalCheckFailed(err)) return { Attributes: undefined };
      throw err;
    });
    const old = out.Attributes as InstanceItem | undefined;
    if (old?.task_id) await this.deleteTaskMarker(old.task_id, instanceId);
    return old ? toLease(old) : undefined;
  }

  /** Leases of one fleet (both states), or of every fleet. */
  async list(fleet?: string): Promise<Lease[]> {
    const items: InstanceItem[] = [];
    const client = { client: this.db };
    if (fleet) {
      for (const state of ["READY", "BUSY"] as const) {
        const pages = paginateQuery(client, {
          TableName: this.tableName,
          IndexName: LEASES_BY_FLEET_STATE_INDEX,
          KeyConditionExpression: "fleet_state = :fs",
          ExpressionAttributeValues: { ":fs": fleetState(fleet, state) },
        });
        for await (const page of pages) items.push(...((page.Items ?? []) as InstanceItem[]));
      }
    } else {
      const pages = paginateScan(client, {
        TableName: this.tableName,
        FilterExpression: "kind = :instance",
        ExpressionAttributeValues: { ":instance": "instance" },
        ConsistentRead: true,
      });
      for await (const page of pages) items.push(...((page.Items ?? []) as InstanceItem[]));
    }
    return items.map(toLease).sort((a, b) => a.registeredAt.localeCompare(b.registeredAt) || a.instanceId.localeCompare(b.instanceId));
  }

  private async readyCandidates(fleet: string): Promise<string[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: LEASES_BY_FLEET_STATE_INDEX,
        KeyConditionExpression: "fleet_state = :fs",
        ExpressionAttributeValues: { ":fs": fleetState(fleet, "READY") },
        ProjectionExpression: "instance_id",
        Limit: CANDIDATES_PER_QUERY,
      }),
    );
    return (out.Items ?? []).map((i) => i.instance_id as string);
  }

  private async deleteTaskMarker(taskId: string, instanceId: string): Promise<void> {
    try {
      await this.db.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { instance_id: taskKey(taskId) },
          ConditionExpression: "lease_instance_id = :id",
          ExpressionAttributeValues: { ":id": instanceId },
        }),
      );
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
    }
  }
}
