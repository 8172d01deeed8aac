/**
 * The EC2 instance lease table: which instance of which fleet runs which task, and which tasks wait for one.
 * Binding a task to an instance is a DynamoDB transaction, never tag-then-check; EC2 tags and Auto Scaling
 * scale-in protection only mirror what this table says.
 *
 * Items (table config.tables.leases, hash key instance_id):
 * - one per registered instance: { instance_id: "i-…", kind: "instance", fleet, fleet_state:
 *   "<fleet>#READY|BUSY|DRAINING", registered_at, task_count, task_id?, command_id?, claimed_at?, drain_reason? }.
 *   fleet_state + registered_at feed the by-fleet-state index. DRAINING instances take no task: the manager is
 *   removing them (scale-in, retirement, a group-initiated termination).
 * - one per task that waits or holds an instance: { instance_id: "task#<taskId>", kind: "task", task_id, fleet,
 *   position, lease_instance_id?, claimed_at?, command_id? }. Without lease_instance_id the task is waiting and
 *   has a twin item in the waiters table (same transaction); with it, the task holds that instance. Because every
 *   bind, release and drop changes the instance item and the task item in one transaction, the task item alone
 *   says which instance a task holds ("one lease per task" is enforced by DynamoDB itself).
 * - one per fleet for the dispatcher's lock: { instance_id: "dispatch#<fleet>", kind: "dispatcher", … }.
 *
 * First come, first served: a task that finds no instance is queued by its submission time; every instance that
 * becomes ready (registered, or released with nobody to hand it to) is given to the oldest waiter by the
 * dispatcher, and a released instance is handed straight to the oldest waiter in the release's own transaction.
 * The bound task is told through `hooks.bound` (the orchestrator's wake-up) instead of waiting for its next poll.
 */
import type { Instance } from "@aws-sdk/client-ec2";
import {
  GetCommand,
  PutCommand,
  paginateQuery,
  paginateScan,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type TransactWriteCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { documentClient, isConditionalCheckFailed, transactionCancellation } from "../aws/dynamodb";
import type { RuntimeConfig } from "../config";
import { FLEET_DEFAULTS } from "../limits";
import { LEASES_BY_FLEET_STATE_INDEX } from "../tables";
import { currentCapacityError } from "./capacity-error";
import { kickDispatcher, type BindOutcome, type KickResult } from "./dispatcher";
import { LeaseMirror, notReadyReason } from "./lease-mirror";
import { INSTANCE_ID_PATTERN } from "./tags";
import { oldestWaiters, waiterPosition, waitersTable, type Waiter, type WaiterItem } from "./waiters";

export { notReadyReason };

export type LeaseState = "READY" | "BUSY" | "DRAINING";
export const LEASE_STATES: readonly LeaseState[] = ["READY", "BUSY", "DRAINING"];

/** Why an instance is draining: the manager acts on each differently. */
export type DrainReason =
  /** Scale-in: terminate and lower the desired capacity. */
  | "scale-in"
  /** Lifetime or task count reached: terminate and let the group replace it. */
  | "retire"
  /** The group is terminating it (lifecycle hook): complete the hook once no task holds it. */
  | "terminating";

export interface Lease {
  instanceId: string;
  fleet: string;
  state: LeaseState;
  registeredAt: string;
  /** Tasks this instance was bound to so far (0 when absent). */
  taskCount?: number;
  taskId?: string;
  /** The SSM command sent for the task, once dispatched: a replayed start finds it here instead of sending again. */
  commandId?: string;
  claimedAt?: string;
  drainReason?: DrainReason;
  drainedAt?: string;
  /** When its last task let go of it (absent: idle since registration). Scale-in waits for an idle grace. */
  idleSince?: string;
  /** Set by the fleet manager when it did not see the instance running: dropped if still missing next pass. */
  missingSince?: string;
}

export type BusyLease = Pick<Lease, "instanceId" | "fleet" | "commandId" | "claimedAt"> & { state: "BUSY"; taskId: string };

export type ClaimResult =
  | {
      ok: true;
      lease: BusyLease;
      /** True when the task already held this lease when the claim began (a replayed or woken start). */
      resumed: boolean;
    }
  /** capacityError: EC2's reason the fleet cannot grow, while current (capacity-error.ts). */
  | { ok: false; reason: "no-capacity"; fleet: string; position: string; capacityError?: string };

export type RegisterResult = { registered: true; created: boolean } | { registered: false; reason: string };

/** A task bound to an instance by the dispatcher or by a release's hand-over. */
export interface Binding {
  fleet: string;
  taskId: string;
  instanceId: string;
  position: string;
  /** When the bind was written (this process's clock). */
  claimedAt: string;
  /** How the binding happened. */
  via: "dispatch" | "hand-over";
}

export interface FleetHooks {
  /** A waiting task was bound: wake its orchestrator. Errors are swallowed (the task's next poll finds it anyway). */
  bound?(binding: Binding): Promise<void> | void;
  /** A task joined its fleet's queue. */
  enqueued?(waiter: Waiter): void;
}

const TASK_KEY_PREFIX = "task#";

interface InstanceItem {
  instance_id: string;
  kind: "instance";
  fleet: string;
  fleet_state: string;
  registered_at: string;
  task_count?: number;
  task_id?: string;
  command_id?: string;
  claimed_at?: string;
  drain_reason?: DrainReason;
  drained_at?: string;
  idle_since?: string;
  missing_since?: string;
}

interface TaskItem {
  instance_id: string;
  kind: "task";
  task_id: string;
  fleet: string;
  position: string;
  enqueued_at: string;
  lease_instance_id?: string;
  claimed_at?: string;
  command_id?: string;
}

export function fleetState(fleet: string, state: LeaseState): string {
  return `${fleet}#${state}`;
}

function taskKey(taskId: string): string {
  return `${TASK_KEY_PREFIX}${taskId}`;
}

function stateOf(fleetStateValue: string): LeaseState {
  const state = fleetStateValue.slice(fleetStateValue.lastIndexOf("#") + 1);
  return (LEASE_STATES as readonly string[]).includes(state) ? (state as LeaseState) : "DRAINING";
}

function toLease(item: InstanceItem): Lease {
  return {
    instanceId: item.instance_id,
    fleet: item.fleet,
    state: stateOf(item.fleet_state),
    registeredAt: item.registered_at,
    taskCount: item.task_count ?? 0,
    ...(item.task_id ? { taskId: item.task_id } : {}),
    ...(item.command_id ? { commandId: item.command_id } : {}),
    ...(item.claimed_at ? { claimedAt: item.claimed_at } : {}),
    ...(item.drain_reason ? { drainReason: item.drain_reason } : {}),
    ...(item.drained_at ? { drainedAt: item.drained_at } : {}),
    ...(item.idle_since ? { idleSince: item.idle_since } : {}),
    ...(item.missing_since ? { missingSince: item.missing_since } : {}),
  };
}

function busyLeaseOf(item: TaskItem): BusyLease {
  return {
    instanceId: item.lease_instance_id!,
    fleet: item.fleet,
    state: "BUSY",
    taskId: item.task_id,
    ...(item.claimed_at ? { claimedAt: item.claimed_at } : {}),
    ...(item.command_id ? { commandId: item.command_id } : {}),
  };
}

/**
 * Should an instance that just finished a task be retired instead of taking another? Pure: lifetime and task
 * count against the fleet's limits.
 */
export function shouldRetire(
  lease: Pick<Lease, "registeredAt" | "taskCount">,
  limits: { maxInstanceLifetimeSeconds?: number; maxTasksPerInstance?: number },
  now: Date,
): "lifetime" | "task-count" | undefined {
  const lifetime = limits.maxInstanceLifetimeSeconds ?? FLEET_DEFAULTS.maxInstanceLifetimeSeconds;
  const age = (now.getTime() - Date.parse(lease.registeredAt)) / 1000;
  if (Number.isFinite(age) && age >= lifetime) return "lifetime";
  if (limits.maxTasksPerInstance !== undefined && (lease.taskCount ?? 0) >= limits.maxTasksPerInstance) return "task-count";
  return undefined;
}

/** Where an instance goes when its task lets go of it (pure; releaseInstance applies it). */
export type ReleaseTarget =
  /** Offer it to the oldest waiter first (hand-over, it stays protected); READY if nobody waits. */
  | { offer: true; to: "READY" }
  /** No new task: it is draining already, or `retire` says it reached its lifetime or task count. */
  | { offer: false; to: "DRAINING"; retire?: "lifetime" | "task-count" };

export function releaseTarget(
  lease: Pick<Lease, "state" | "registeredAt" | "taskCount">,
  limits: { maxInstanceLifetimeSeconds?: number; maxTasksPerInstance?: number },
  now: Date,
): ReleaseTarget {
  if (lease.state === "DRAINING") return { offer: false, to: "DRAINING" };
  const retire = shouldRetire(lease, limits, now);
  return retire ? { offer: false, to: "DRAINING", retire } : { offer: true, to: "READY" };
}

/** A transaction clause's cancellation reason when its own condition did not hold (transactionCancellation). */
const REFUSED = "ConditionalCheckFailed";

export class LeaseTable {
  readonly leasesTableName: string;
  private readonly mirror: LeaseMirror;

  constructor(
    private readonly config: RuntimeConfig,
    private readonly clock: () => Date = () => new Date(),
    private readonly hooks: FleetHooks = {},
  ) {
    this.leasesTableName = config.tables.leases;
    this.mirror = new LeaseMirror(config);
  }

  now(): Date {
    return this.clock();
  }

  get db(): DynamoDBDocumentClient {
    return documentClient(this.config);
  }

  private get waitersTableName(): string {
    return waitersTable(this.config);
  }

  // The transaction clauses below recur across bind, hand-over, release and drop: each names one rule of the
  // table (a task item is removed only by the instance it points at, a waiter is bound only at its own place).

  /** One all-or-nothing write; a refused clause surfaces as TransactionCanceledException (read by clause name with transactionCancellation). */
  private async transact(items: NonNullable<TransactWriteCommandInput["TransactItems"]>): Promise<void> {
    await this.db.send(new TransactWriteCommand({ TransactItems: items }));
  }

  /** Delete the task's item, only while it points at `instanceId`. */
  private deleteTaskItemBoundTo(taskId: string, instanceId: string) {
    return {
      Delete: {
        TableName: this.leasesTableName,
        Key: { instance_id: taskKey(taskId) },
        ConditionExpression: "lease_instance_id = :i",
        ExpressionAttributeValues: { ":i": instanceId },
      },
    };
  }

  /** Bind the waiting task's item to `instanceId`, only if it is unbound and still waits at `position`. */
  private bindTaskItem(waiter: Waiter, instanceId: string, claimedAt: string) {
    return {
      Update: {
        TableName: this.leasesTableName,
        Key: { instance_id: taskKey(waiter.taskId) },
        UpdateExpression: "SET lease_instance_id = :i, claimed_at = :at",
        ConditionExpression: "attribute_not_exists(lease_instance_id) AND #pos = :pos",
        ExpressionAttributeNames: { "#pos": "position" },
        ExpressionAttributeValues: { ":i": instanceId, ":at": claimedAt, ":pos": waiter.position },
      },
    };
  }

  /** Remove a waiter; with `mustExist`, the transaction fails if someone else removed it first. */
  private deleteWaiter(fleet: string, position: string, mustExist: boolean) {
    return {
      Delete: {
        TableName: this.waitersTableName,
        Key: { fleet, position },
        ...(mustExist ? { ConditionExpression: "attribute_exists(task_id)" } : {}),
      },
    };
  }

  /**
   * Register an instance as capacity of `fleet`. Only a running instance of that fleet whose boot finished
   * (tag agent-compute:boot=ready) is accepted: an instance still booting, or whose boot failed, never counts.
   * Idempotent: registering an already registered instance changes nothing. The caller kicks the dispatcher.
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
      // Registration time: the instance's lifetime (maxInstanceLifetimeSeconds) counts from here.
      registered_at: this.now().toISOString(),
      task_count: 0,
    };
    // Protected before it is capacity: a failure here leaves it unregistered, and the next sync tries again.
    await this.mirror.protect(fleet, [instanceId], true);
    try {
      await this.db.send(
        new PutCommand({ TableName: this.leasesTableName, Item: item, ConditionExpression: "attribute_not_exists(instance_id)" }),
      );
    } catch (err) {
      if (isConditionalCheckFailed(err)) return { registered: true, created: false };
      throw err;
    }
    await this.mirror.ready(instanceId);
    return { registered: true, created: true };
  }

  /**
   * Get `taskId` an instance of `fleet`, first come, first served. Idempotent per task: a task that already holds
   * a lease gets it back (resumed: true). Otherwise the task joins the fleet's queue (at `createdAt`, its
   * submission time) and the dispatcher is kicked; if that binds the task at once the lease is returned, else
   * { ok: false, reason: "no-capacity" }: the task stays queued and is bound, and told, when an instance frees up.
   * A call costs at most 6 AWS calls for this task, whatever the number of waiters and instances (plus, when it
   * becomes the fleet's dispatcher, the binds it makes for others).
   */
  async claimInstance(fleet: string, taskId: string, createdAt?: string): Promise<ClaimResult> {
    // Queue first: for a new task that is the only read or write before the kick; a task that is already queued
    // or bound learns so from the refused write (and one read).
    const { item, created } = await this.enqueue(fleet, taskId, waiterPosition(createdAt ?? this.now().toISOString(), taskId));
    if (item.lease_instance_id) return { ok: true, lease: busyLeaseOf(item), resumed: true };
    const kicked: KickResult = await this.kick(item.fleet, taskId);
    const mine = kicked.bound.find((b) => b.taskId === taskId);
    if (mine) {
      return { ok: true, lease: { instanceId: mine.instanceId, fleet: item.fleet, state: "BUSY", taskId, claimedAt: mine.claimedAt }, resumed: !created };
    } else if (!kicked.dispatched) {
      // Someone else dispatches: they may have bound us already (or a release handed us an instance).
      const after = await this.taskItem(taskId);
      if (after?.lease_instance_id) return { ok: true, lease: busyLeaseOf(after), resumed: !created };
    }
    const capacityError = currentCapacityError(kicked.capacity, this.now());
    return { ok: false, reason: "no-capacity", fleet: item.fleet, position: item.position, ...(capacityError ? { capacityError } : {}) };
  }

  /**
   * Dispatch `fleet` now (or make sure whoever dispatches it looks again). `self`: the task on whose behalf this
   * runs, which learns its binding from the result instead of being woken.
   */
  kick(fleet: string, self?: string): Promise<KickResult> {
    return kickDispatcher(this, fleet, self);
  }

  /** The task's waiting/bound item, strongly consistent. */
  private async taskItem(taskId: string): Promise<TaskItem | undefined> {
    return (await this.db.send(new GetCommand({ TableName: this.leasesTableName, Key: { instance_id: taskKey(taskId) }, ConsistentRead: true })))
      .Item as TaskItem | undefined;
  }

  /** Queue the task (its item + its waiter, one transaction); if it is already queued or bound, its item as it is. */
  private async enqueue(fleet: string, taskId: string, position: string): Promise<{ item: TaskItem; created: boolean }> {
    const enqueuedAt = this.now().toISOString();
    const item: TaskItem = { instance_id: taskKey(taskId), kind: "task", task_id: taskId, fleet, position, enqueued_at: enqueuedAt };
    const waiter: WaiterItem = { fleet, position, task_id: taskId, enqueued_at: enqueuedAt };
    try {
      await this.transact([
        { Put: { TableName: this.leasesTableName, Item: item, ConditionExpression: "attribute_not_exists(instance_id)" } },
        { Put: { TableName: this.waitersTableName, Item: waiter } },
      ]);
    } catch (err) {
      if (transactionCancellation(err, ["taskItem", "waiter"] as const)?.taskItem !== REFUSED) throw err;
      const existing = await this.taskItem(taskId);
      if (existing) return { item: existing, created: false };
      // Released between the refused write and the read: queue afresh.
      return this.enqueue(fleet, taskId, position);
    }
    this.hooks.enqueued?.({ fleet, position, taskId, enqueuedAt });
    return { item, created: true };
  }

  /** The dispatcher's reads and its one write per pair (see DispatchTarget). */
  oldestWaiters(fleet: string, limit: number): Promise<Waiter[]> {
    return oldestWaiters(this.db, this.waitersTableName, fleet, limit);
  }

  async readyInstanceIds(fleet: string, limit: number): Promise<string[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.leasesTableName,
        IndexName: LEASES_BY_FLEET_STATE_INDEX,
        KeyConditionExpression: "fleet_state = :fs",
        ExpressionAttributeValues: { ":fs": fleetState(fleet, "READY") },
        ProjectionExpression: "instance_id",
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map((i) => i.instance_id as string);
  }

  /**
   * Bind a ready instance to a waiter: instance READY → BUSY, waiter removed, task item bound — one transaction.
   * Then the scale-in protection and the tags; if those fail the bind is undone and the caller tries the next
   * instance for the same waiter.
   */
  async bind(fleet: string, instanceId: string, waiter: Waiter, tell = true): Promise<BindOutcome> {
    const claimedAt = this.now().toISOString();
    try {
      await this.transact([
        {
          Update: {
            TableName: this.leasesTableName,
            Key: { instance_id: instanceId },
            UpdateExpression: "SET fleet_state = :busy, task_id = :task, claimed_at = :at ADD task_count :one REMOVE command_id",
            ConditionExpression: "fleet_state = :ready AND attribute_not_exists(task_id)",
            ExpressionAttributeValues: { ":busy": fleetState(fleet, "BUSY"), ":ready": fleetState(fleet, "READY"), ":task": waiter.taskId, ":at": claimedAt, ":one": 1 },
          },
        },
        this.deleteWaiter(fleet, waiter.position, true),
        this.bindTaskItem(waiter, instanceId, claimedAt),
      ]);
    } catch (err) {
      const refused = transactionCancellation(err, ["instance", "waiter", "taskItem"] as const);
      if (!refused) throw err;
      if (refused.waiter === REFUSED || refused.taskItem === REFUSED) {
        if (refused.waiter !== REFUSED) await this.dropWaiter(waiter);
        return { kind: "waiter-gone" };
      }
      return { kind: "instance-taken" };
    }
    try {
      await this.mirror.busy(instanceId, waiter.taskId);
    } catch (err) {
      await this.unbind(fleet, instanceId, waiter, claimedAt).catch(() => undefined);
      return { kind: "mirror-failed", error: err as Error };
    }
    if (tell) await this.tell({ fleet, taskId: waiter.taskId, instanceId, position: waiter.position, claimedAt, via: "dispatch" });
    return { kind: "bound", claimedAt };
  }

  /** A waiter whose task item is gone or bound elsewhere: remove it so it is not offered an instance again. */
  private async dropWaiter(waiter: Waiter): Promise<void> {
    await this.transact([this.deleteWaiter(waiter.fleet, waiter.position, false)]);
  }

  /** Undo a bind whose mirror failed: the instance is ready again and the task waits at its old place. */
  private async unbind(fleet: string, instanceId: string, waiter: Waiter, claimedAt: string): Promise<void> {
    await this.transact([
      {
        Update: {
          TableName: this.leasesTableName,
          Key: { instance_id: instanceId },
          UpdateExpression: "SET fleet_state = :ready ADD task_count :minus REMOVE task_id, claimed_at",
          ConditionExpression: "task_id = :task AND claimed_at = :at",
          ExpressionAttributeValues: { ":ready": fleetState(fleet, "READY"), ":task": waiter.taskId, ":at": claimedAt, ":minus": -1 },
        },
      },
      { Put: { TableName: this.waitersTableName, Item: { fleet, position: waiter.position, task_id: waiter.taskId, enqueued_at: waiter.enqueuedAt } } },
      {
        Update: {
          TableName: this.leasesTableName,
          Key: { instance_id: taskKey(waiter.taskId) },
          UpdateExpression: "REMOVE lease_instance_id, claimed_at",
          ConditionExpression: "lease_instance_id = :i",
          ExpressionAttributeValues: { ":i": instanceId },
        },
      },
    ]);
  }

  private async tell(binding: Binding): Promise<void> {
    try {
      await this.hooks.bound?.(binding);
    } catch {
      // The woken task would only have found its lease sooner; its next poll finds it.
    }
  }

  /** The lease a task holds, read with strong consistency; undefined if it holds none (or only waits). */
  async leaseOfTask(taskId: string): Promise<BusyLease | undefined> {
    const item = await this.taskItem(taskId);
    return item?.lease_instance_id ? busyLeaseOf(item) : undefined;
  }

  /** Is the task queued for an instance? Its waiter's fleet and position if so. */
  async waiting(taskId: string): Promise<{ fleet: string; position: string } | undefined> {
    const item = await this.taskItem(taskId);
    return item && !item.lease_instance_id ? { fleet: item.fleet, position: item.position } : undefined;
  }

  /** One instance's lease, strongly consistent. */
  async get(instanceId: string): Promise<Lease | undefined> {
    const item = (
      await this.db.send(new GetCommand({ TableName: this.leasesTableName, Key: { instance_id: instanceId }, ConsistentRead: true }))
    ).Item as InstanceItem | undefined;
    return item?.kind === "instance" ? toLease(item) : undefined;
  }

  /**
   * Record the SSM command sent for the task, so that a replayed start finds it instead of sending a second one.
   * Fails if the instance is no longer leased to this task.
   */
  async recordCommand(instanceId: string, taskId: string, commandId: string): Promise<void> {
    try {
      await this.transact([
        {
          Update: {
            TableName: this.leasesTableName,
            Key: { instance_id: instanceId },
            UpdateExpression: "SET command_id = :cmd",
            ConditionExpression: "task_id = :task",
            ExpressionAttributeValues: { ":cmd": commandId, ":task": taskId },
          },
        },
        {
          Update: {
            TableName: this.leasesTableName,
            Key: { instance_id: taskKey(taskId) },
            UpdateExpression: "SET command_id = :cmd",
            ConditionExpression: "lease_instance_id = :i",
            ExpressionAttributeValues: { ":cmd": commandId, ":i": instanceId },
          },
        },
      ]);
    } catch (err) {
      if (transactionCancellation(err, ["instance", "taskItem"] as const)) {
        throw new Error(`cannot record command ${commandId}: instance ${instanceId} is not leased to task ${taskId}`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Give the instance back, only if it is still leased to `taskId`. If a task waits for this fleet, the instance
   * goes straight to the oldest waiter (hand-over, one transaction) and stays protected; otherwise it becomes
   * READY — or DRAINING when it reached its lifetime or task count, or was already draining — and the dispatcher
   * is kicked. Releasing twice, or after another task claimed the instance, is a no-op ({ released: false }).
   */
  async releaseInstance(instanceId: string, taskId: string): Promise<{ released: boolean; handedTo?: string }> {
    const current = await this.get(instanceId);
    if (!current || current.taskId !== taskId) {
      await this.forgetStaleTaskItem(taskId, instanceId);
      return { released: false };
    }
    const target = releaseTarget(current, this.config.ec2?.fleets[current.fleet] ?? {}, this.now());
    let waiters: Waiter[] | undefined;
    if (target.offer) {
      waiters = await this.oldestWaiters(current.fleet, 1);
      // Only the oldest waiter is tried: if a concurrent release took it, the dispatcher (one holder, no races)
      // serves the rest, instead of every release walking the queue against the others.
      if (waiters.length && (await this.handOver(current, waiters[0]))) return { released: true, handedTo: waiters[0].taskId };
    }
    const to: LeaseState = target.to;
    // The mirror goes first: once the lease says READY the dispatcher may bind the instance, and a late "ready"
    // mirror must not undo that.
    await this.mirror.ready(instanceId);
    try {
      await this.transact([
        {
          Update: {
            TableName: this.leasesTableName,
            Key: { instance_id: instanceId },
            UpdateExpression:
              to === "DRAINING" && current.state !== "DRAINING"
                ? "SET fleet_state = :to, drain_reason = :why, drained_at = :now REMOVE task_id, command_id, claimed_at"
                : to === "READY"
                  ? "SET fleet_state = :to, idle_since = :now REMOVE task_id, command_id, claimed_at"
                  : "SET fleet_state = :to REMOVE task_id, command_id, claimed_at",
            ConditionExpression: "task_id = :task",
            ExpressionAttributeValues: {
              ":to": fleetState(current.fleet, to),
              ":task": taskId,
              ...(to === "DRAINING" && current.state !== "DRAINING" ? { ":why": "retire" } : {}),
              ...(current.state !== "DRAINING" ? { ":now": this.now().toISOString() } : {}),
            },
          },
        },
        this.deleteTaskItemBoundTo(taskId, instanceId),
      ]);
    } catch (err) {
      if (!transactionCancellation(err, ["instance", "taskItem"] as const)) throw err;
      await this.forgetStaleTaskItem(taskId, instanceId);
      return { released: false };
    }
    if (to === "READY") {
      // Someone waits (the hand-over lost a race), or may have queued after our read and dispatched before the
      // instance was READY: read again unless we know, and dispatch if anyone waits. A task queuing after this
      // read finds the instance READY itself.
      if (waiters?.length || (await this.oldestWaiters(current.fleet, 1)).length) await this.kick(current.fleet);
    }
    return { released: true };
  }

  /** Move a busy instance from `from`'s task straight to `waiter` (one transaction); false if that lost a race. */
  private async handOver(from: Lease, waiter: Waiter): Promise<boolean> {
    const claimedAt = this.now().toISOString();
    try {
      await this.transact([
        {
          Update: {
            TableName: this.leasesTableName,
            Key: { instance_id: from.instanceId },
            UpdateExpression: "SET task_id = :new, claimed_at = :at ADD task_count :one REMOVE command_id",
            ConditionExpression: "task_id = :old AND fleet_state = :busy",
            ExpressionAttributeValues: { ":new": waiter.taskId, ":old": from.taskId, ":at": claimedAt, ":one": 1, ":busy": fleetState(from.fleet, "BUSY") },
          },
        },
        this.deleteTaskItemBoundTo(from.taskId!, from.instanceId),
        this.deleteWaiter(from.fleet, waiter.position, true),
        this.bindTaskItem(waiter, from.instanceId, claimedAt),
      ]);
    } catch (err) {
      const refused = transactionCancellation(err, ["instance", "fromTaskItem", "waiter", "toTaskItem"] as const);
      if (!refused) throw err;
      // A waiter whose task item is gone or bound elsewhere would be offered again and again: remove it.
      if (refused.waiter !== REFUSED && refused.toTaskItem === REFUSED) await this.dropWaiter(waiter);
      return false;
    }
    try {
      await this.mirror.busy(from.instanceId, waiter.taskId);
    } catch {
      // The lease is the truth; the tag mirror is rewritten by the next release or bind.
    }
    await this.tell({ fleet: from.fleet, taskId: waiter.taskId, instanceId: from.instanceId, position: waiter.position, claimedAt, via: "hand-over" });
    return true;
  }

  /** A task item that points at an instance the task no longer holds (a crash, a drop): remove it. */
  private async forgetStaleTaskItem(taskId: string, instanceId: string): Promise<void> {
    try {
      await this.transact([this.deleteTaskItemBoundTo(taskId, instanceId)]);
    } catch (err) {
      if (!transactionCancellation(err, ["taskItem"] as const)) throw err;
    }
  }

  /**
   * Release whatever `taskId` holds, or take it out of its fleet's queue if it is waiting; a task with neither is a
   * no-op. Finalize calls this through the EC2 strategy's releaseTask.
   */
  async releaseTask(taskId: string): Promise<{ released: boolean; instanceId?: string; dequeued?: boolean }> {
    const item = await this.taskItem(taskId);
    if (!item) return { released: false };
    if (!item.lease_instance_id) {
      try {
        await this.transact([
          {
            Delete: {
              TableName: this.leasesTableName,
              Key: { instance_id: taskKey(taskId) },
              ConditionExpression: "attribute_not_exists(lease_instance_id)",
            },
          },
          this.deleteWaiter(item.fleet, item.position, false),
        ]);
        return { released: false, dequeued: true };
      } catch (err) {
        if (!transactionCancellation(err, ["taskItem", "waiter"] as const)) throw err;
        // Bound between our read and the delete: release that lease instead.
        return this.releaseTask(taskId);
      }
    }
    const { released } = await this.releaseInstance(item.lease_instance_id, taskId);
    return { released, instanceId: item.lease_instance_id };
  }

  /**
   * READY → DRAINING, conditionally: once it holds, no claim can take the instance. False if the instance was not
   * ready (a claim won, or it is gone).
   */
  async drain(instanceId: string, fleet: string, reason: DrainReason): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.leasesTableName,
          Key: { instance_id: instanceId },
          UpdateExpression: "SET fleet_state = :draining, drain_reason = :why, drained_at = :now",
          ConditionExpression: "fleet_state = :ready AND attribute_not_exists(task_id)",
          ExpressionAttributeValues: { ":draining": fleetState(fleet, "DRAINING"), ":ready": fleetState(fleet, "READY"), ":why": reason, ":now": this.now().toISOString() },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionalCheckFailed(err)) return false;
      throw err;
    }
  }

  /**
   * The group is terminating the instance (lifecycle hook): whatever its state, it takes no new task. A task it
   * runs keeps its lease until the orchestrator sees the loss and re-queues it. Returns the lease as it was.
   */
  async markTerminating(instanceId: string): Promise<Lease | undefined> {
    const current = await this.get(instanceId);
    if (!current || (current.state === "DRAINING" && current.drainReason === "terminating")) return current;
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.leasesTableName,
          Key: { instance_id: instanceId },
          UpdateExpression: "SET fleet_state = :draining, drain_reason = :why, drained_at = :now",
          ConditionExpression: "kind = :instance",
          ExpressionAttributeValues: { ":draining": fleetState(current.fleet, "DRAINING"), ":why": "terminating", ":now": this.now().toISOString(), ":instance": "instance" },
        }),
      );
    } catch (err) {
      if (!isConditionalCheckFailed(err)) throw err;
    }
    return current;
  }

  /** Phase one of repairing a lease whose instance was not seen running: remember when. */
  async markMissing(instanceId: string, since: string | undefined): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.leasesTableName,
        Key: { instance_id: instanceId },
        UpdateExpression: since ? "SET missing_since = :s" : "REMOVE missing_since",
        ConditionExpression: "kind = :instance",
        ExpressionAttributeValues: { ":instance": "instance", ...(since ? { ":s": since } : {}) },
      }),
    ).catch((err) => {
      if (!isConditionalCheckFailed(err)) throw err;
    });
  }

  /**
   * Forget an instance that is gone (terminated, stopped): its lease item and the item of the task it ran, in one
   * transaction. Returns the lease it had, so the caller can report that task as lost.
   */
  async dropInstance(instanceId: string): Promise<Lease | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const old = await this.get(instanceId);
      if (!old) return undefined;
      try {
        await this.transact([
          {
            Delete: {
              TableName: this.leasesTableName,
              Key: { instance_id: instanceId },
              ConditionExpression: old.taskId ? "task_id = :task" : "attribute_not_exists(task_id) AND kind = :instance",
              ExpressionAttributeValues: old.taskId ? { ":task": old.taskId } : { ":instance": "instance" },
            },
          },
          ...(old.taskId ? [this.deleteTaskItemBoundTo(old.taskId, instanceId)] : []),
        ]);
        return old;
      } catch (err) {
        const refused = transactionCancellation(err, ["instance", "taskItem"] as const);
        if (!refused) throw err;
        if (old.taskId && refused.instance !== REFUSED && refused.taskItem === REFUSED) {
          // The task item already moved on: drop the instance alone.
          await this.forgetStaleTaskItem(old.taskId, instanceId);
        }
        // The lease changed under us (a claim or a release): read it again.
      }
    }
    throw new Error(`instance ${instanceId}'s lease kept changing while it was being dropped`);
  }

  /** Leases of one fleet (every state), or of every fleet. */
  async list(fleet?: string): Promise<Lease[]> {
    const items: InstanceItem[] = [];
    const pages = fleet
      ? LEASE_STATES.map((state) =>
          paginateQuery(
            { client: this.db },
            {
              TableName: this.leasesTableName,
              IndexName: LEASES_BY_FLEET_STATE_INDEX,
              KeyConditionExpression: "fleet_state = :fs",
              ExpressionAttributeValues: { ":fs": fleetState(fleet, state) },
            },
          ),
        )
      : [
          paginateScan(
            { client: this.db },
            {
              TableName: this.leasesTableName,
              FilterExpression: "kind = :instance",
              ExpressionAttributeValues: { ":instance": "instance" },
              ConsistentRead: true,
            },
          ),
        ];
    for (const paginator of pages) {
      for await (const page of paginator) items.push(...((page.Items ?? []) as InstanceItem[]));
    }
    return items.map(toLease).sort((a, b) => a.registeredAt.localeCompare(b.registeredAt) || a.instanceId.localeCompare(b.instanceId));
  }

  /** See LeaseMirror.protect: the manager takes protection off a drained instance just before terminating it. */
  protect(fleet: string, instanceIds: string[], on: boolean): Promise<void> {
    return this.mirror.protect(fleet, instanceIds, on);
  }
}
