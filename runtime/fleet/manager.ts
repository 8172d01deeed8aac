/**
 * The fleet manager's pass over one fleet: observe (group, instances, leases, queue), plan (plan.ts, pure),
 * apply. Also the termination lifecycle hook: an instance the group itself terminates (rebalancing, instance
 * refresh, health replacement, Spot) is drained at once, and the hook is completed once no task holds it.
 * Every action is logged as a structured event and counted as a metric; a task that loses its instance gets a
 * task event.
 */
import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeScalingActivitiesCommand,
  SetDesiredCapacityCommand,
  SetInstanceHealthCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateTagsCommand, EC2Client, paginateDescribeInstances, TerminateInstancesCommand, type Instance } from "@aws-sdk/client-ec2";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";
import type { MetricsSink } from "../metrics";
import type { TaskEventLog } from "../ports";
import { CAPACITY_ERROR, CAPACITY_ERROR_FRESH_SECONDS } from "./capacity-error";
import type { LeaseTable } from "./lease";
import { planFleet, type FleetAction, type FleetObservation, type ObservedInstance } from "./plan";
import { BOOT_TAG, FLEET_TAG, ORPHAN_TAG } from "./tags";
import { countWaiters, waitersTable } from "./waiters";

export interface ManagerDeps {
  config: RuntimeConfig;
  leases: LeaseTable;
  events?: TaskEventLog;
  metrics?: MetricsSink;
  /** Structured log of every action (the manager's own events). */
  log?: (message: string, fields: Record<string, unknown>) => void;
  /** Auto Scaling calls go here (tests wrap the real client: moto lacks CompleteLifecycleAction). */
  autoscaling?: Pick<AutoScalingClient, "send">;
}

function autoscalingOf(deps: ManagerDeps): Pick<AutoScalingClient, "send"> {
  return deps.autoscaling ?? awsClient(AutoScalingClient, { region: deps.config.region });
}

export interface PassReport {
  fleet: string;
  actions: FleetAction[];
  /** Tasks whose instance is gone: their orchestrator sees the loss on its next poll and re-queues them. */
  lostTasks: { taskId: string; instanceId: string }[];
  registered: string[];
  /** Newest failed launch of the group that names a capacity problem, if any. */
  capacityError?: string;
  failures: { action: FleetAction; error: string }[];
}


function tag(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

async function observe(deps: ManagerDeps, fleet: string): Promise<{ observation: FleetObservation; capacityError?: string }> {
  const { config, leases } = deps;
  const asgName = config.ec2?.fleets[fleet]?.autoScalingGroupName;
  const now = leases.now().toISOString();
  const autoscaling = autoscalingOf(deps);
  let group: FleetObservation["group"];
  let capacityError: string | undefined;
  if (asgName) {
    const g = (await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }))).AutoScalingGroups?.[0];
    if (!g) throw new Error(`Auto Scaling group '${asgName}' of fleet '${fleet}' does not exist`);
    group = {
      desired: g.DesiredCapacity ?? 0,
      min: g.MinSize ?? 0,
      max: g.MaxSize ?? 0,
      members: (g.Instances ?? []).map((i) => ({ instanceId: i.InstanceId!, lifecycleState: i.LifecycleState ?? "", health: i.HealthStatus ?? "Healthy" })),
    };
    const activities = (await autoscaling.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: asgName, MaxRecords: 5 }))).Activities ?? [];
    const newest = activities[0];
    if (
      newest &&
      newest.StatusCode === "Failed" &&
      CAPACITY_ERROR.test(newest.StatusMessage ?? "") &&
      (Date.parse(now) - (newest.StartTime?.getTime() ?? 0)) / 1000 < CAPACITY_ERROR_FRESH_SECONDS
    ) {
      capacityError = newest.StatusMessage;
    }
  }
  const ec2 = awsClient(EC2Client, { region: config.region });
  const instances: ObservedInstance[] = [];
  const pages = paginateDescribeInstances(
    { client: ec2, pageSize: 500 },
    { Filters: [{ Name: `tag:${FLEET_TAG}`, Values: [fleet] }, { Name: "instance-state-name", Values: ["pending", "running"] }] },
  );
  for await (const page of pages) {
    for (const r of page.Reservations ?? []) {
      for (const i of r.Instances ?? []) {
        instances.push({
          instanceId: i.InstanceId!,
          state: i.State?.Name ?? "unknown",
          launchedAt: (i.LaunchTime ?? new Date(now)).toISOString(),
          ...(tag(i, BOOT_TAG) ? { boot: tag(i, BOOT_TAG) } : {}),
          ...(tag(i, ORPHAN_TAG) ? { orphanSince: tag(i, ORPHAN_TAG) } : {}),
        });
      }
    }
  }
  const queued = await countWaiters(leases.db, waitersTable(config), fleet);
  return { observation: { fleet, now, group, instances, leases: await leases.list(fleet), queued }, capacityError };
}

/** One pass over one fleet: observe, plan, apply. An action that fails is reported and the pass goes on. */
export async function managePass(deps: ManagerDeps, fleet: string): Promise<PassReport> {
  const { config, leases } = deps;
  const settings = config.ec2?.fleets[fleet] ?? {};
  const { observation, capacityError } = await observe(deps, fleet);
  const actions = planFleet(observation, settings);
  const report: PassReport = { fleet, actions, lostTasks: [], registered: [], failures: [], ...(capacityError ? { capacityError } : {}) };
  const asgName = settings.autoScalingGroupName;
  const autoscaling = autoscalingOf(deps);
  const ec2 = awsClient(EC2Client, { region: config.region });
  const now = observation.now;
  const refused = new Set<string>();
  const count = (name: string, n = 1) => deps.metrics?.count(name, n, { fleet });
  const log = (message: string, fields: Record<string, unknown>) => deps.log?.(message, { fleet, ...fields });

  for (const action of actions) {
    try {
      switch (action.kind) {
        case "register": {
          const r = await leases.registerInstance(fleet, action.instanceId);
          if (r.registered && r.created) {
            report.registered.push(action.instanceId);
            count("InstanceRegistered");
          }
          break;
        }
        case "mark-unhealthy":
          await autoscaling.send(new SetInstanceHealthCommand({ InstanceId: action.instanceId, HealthStatus: "Unhealthy", ShouldRespectGracePeriod: false }));
          count(action.why === "boot-failed" ? "InstanceBootFailed" : "InstanceBootDeadlineMissed");
          log("instance marked unhealthy: the group replaces it", { instanceId: action.instanceId, why: action.why });
          break;
        case "mark-missing":
          await leases.markMissing(action.instanceId, now);
          log("lease's instance not seen running; dropped next pass if still missing", { instanceId: action.instanceId });
          break;
        case "clear-missing":
          await leases.markMissing(action.instanceId, undefined);
          break;
        case "drop": {
          const old = await leases.dropInstance(action.instanceId);
          count("LeaseDropped");
          log("lease of a gone instance dropped", { instanceId: action.instanceId, taskId: old?.taskId });
          if (old?.taskId && old.taskId === action.lostTaskId) {
            report.lostTasks.push({ taskId: old.taskId, instanceId: action.instanceId });
            count("TaskInstanceLost");
            await deps.events?.append(old.taskId, "error", `instance ${action.instanceId} of fleet '${fleet}' is gone; the task will be re-queued if it has attempts left`);
          }
          break;
        }
        case "drain":
          if (await leases.drain(action.instanceId, fleet, action.reason)) {
            count(action.reason === "scale-in" ? "InstanceDrainedScaleIn" : "InstanceDrainedRetire");
            log("instance drained", { instanceId: action.instanceId, reason: action.reason });
          } else {
            // A claim took it first: it is busy, and stays.
            refused.add(action.instanceId);
          }
          break;
        case "terminate":
          if (refused.has(action.instanceId) || !asgName) break;
          await leases.protect(fleet, [action.instanceId], false);
          await autoscaling.send(
            new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: action.instanceId, ShouldDecrementDesiredCapacity: action.decrement }),
          );
          count(action.decrement ? "InstanceScaledIn" : "InstanceReplaced");
          log("instance terminated through its group", { instanceId: action.instanceId, decrement: action.decrement });
          break;
        case "complete-lifecycle":
          if (asgName && settings.terminationHookName) {
            await autoscaling
              .send(
                new CompleteLifecycleActionCommand({
                  AutoScalingGroupName: asgName,
                  LifecycleHookName: settings.terminationHookName,
                  InstanceId: action.instanceId,
                  LifecycleActionResult: "CONTINUE",
                }),
              )
              .catch((err) => {
                // The hook already timed out (and continued): nothing left to complete.
                if (!/No active Lifecycle Action/i.test((err as Error).message ?? "")) throw err;
              });
          }
          await leases.dropInstance(action.instanceId);
          count("LifecycleCompleted");
          log("termination hook completed: the instance holds no task", { instanceId: action.instanceId });
          break;
        case "mark-orphan":
          await ec2.send(new CreateTagsCommand({ Resources: [action.instanceId], Tags: [{ Key: ORPHAN_TAG, Value: now }] }));
          log("fleet instance outside its group; terminated next pass if still there", { instanceId: action.instanceId });
          break;
        case "terminate-orphan":
          await ec2.send(new TerminateInstancesCommand({ InstanceIds: [action.instanceId] }));
          count("OrphanTerminated");
          log("orphan instance terminated", { instanceId: action.instanceId });
          break;
        case "set-desired":
          await autoscaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: asgName!, DesiredCapacity: action.to, HonorCooldown: false }));
          count(action.to > action.from ? "ScaleOut" : "DesiredLowered");
          log("desired capacity set", { from: action.from, to: action.to, queued: observation.queued });
          break;
        default: {
          const unhandled: never = action;
          throw new Error(`unknown fleet action ${JSON.stringify(unhandled)}`);
        }
      }
    } catch (err) {
      report.failures.push({ action, error: (err as Error).message });
      log("fleet action failed; the next pass plans it again", { action, error: (err as Error).message });
    }
  }
  if (report.registered.length) await leases.kick(fleet);
  if (capacityError) await recordCapacityError(deps, fleet, capacityError, observation);
  return report;
}

/**
 * Keep the fleet's newest capacity error, and when it was last seen, on its dispatcher item (claims read it with
 * their kick; a waiting task that times out fails with it) and tell the oldest waiting tasks once, when it first
 * appears.
 */
async function recordCapacityError(deps: ManagerDeps, fleet: string, error: string, o: FleetObservation): Promise<void> {
  const out = await deps.leases.db.send(
    new UpdateCommand({
      TableName: deps.config.tables.leases,
      Key: { instance_id: `dispatch#${fleet}` },
      UpdateExpression: "SET kind = :kind, capacity_error = :e, capacity_error_at = :at",
      ExpressionAttributeValues: { ":kind": "dispatcher", ":e": error, ":at": o.now },
      ReturnValues: "UPDATED_OLD",
    }),
  );
  const previous = (out.Attributes as { capacity_error?: string } | undefined)?.capacity_error;
  // (Only called with an error: a pass without one leaves the last one recorded, at no cost.)
  if (previous === error || !o.queued) return;
  deps.metrics?.count("CapacityError", 1, { fleet });
  deps.log?.("EC2 could not launch capacity", { fleet, error });
  for (const w of await deps.leases.oldestWaiters(fleet, 100)) {
    await deps.events?.append(w.taskId, "error", `fleet '${fleet}' cannot get capacity from EC2 yet; the task keeps waiting within its timeout: ${error}`);
  }
}

export interface TerminationHookEvent {
  EC2InstanceId: string;
  AutoScalingGroupName: string;
  LifecycleHookName: string;
  LifecycleTransition?: string;
}

/**
 * The group started terminating an instance by itself: drain its lease at once (no claim takes it). An idle
 * instance's hook is completed now; a busy one's task is lost to infrastructure (its poll reports it) and the
 * hook is completed by the pass after the task let go of it, or by the hook's own timeout.
 */
export async function handleTerminationHook(deps: ManagerDeps, event: TerminationHookEvent): Promise<"completed" | "draining" | "unknown-group"> {
  const fleet = Object.entries(deps.config.ec2?.fleets ?? {}).find(([, f]) => f.autoScalingGroupName === event.AutoScalingGroupName)?.[0];
  if (!fleet) return "unknown-group";
  const lease = await deps.leases.markTerminating(event.EC2InstanceId);
  deps.metrics?.count("TerminationHook", 1, { fleet });
  deps.log?.("the group is terminating an instance", { fleet, instanceId: event.EC2InstanceId, taskId: lease?.taskId });
  if (lease?.taskId) {
    await deps.events?.append(lease.taskId, "error", `instance ${event.EC2InstanceId} is being terminated by its Auto Scaling group; the task will be re-queued if it has attempts left`);
    return "draining";
  }
  await autoscalingOf(deps)
    .send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: event.AutoScalingGroupName,
        LifecycleHookName: event.LifecycleHookName,
        InstanceId: event.EC2InstanceId,
        LifecycleActionResult: "CONTINUE",
      }),
    )
    .catch((err) => {
      if (!/No active Lifecycle Action/i.test((err as Error).message ?? "")) throw err;
    });
  if (lease) await deps.leases.dropInstance(event.EC2InstanceId);
  return "completed";
}
