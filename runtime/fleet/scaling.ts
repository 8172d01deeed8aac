/**
 * Fleet elasticity. How many instances a fleet wants is a pure function of plain numbers; applying it is a thin
 * call to Auto Scaling. Busy instances carry scale-in protection (set when claimed), so lowering the desired
 * capacity only ever terminates idle or booting ones.
 */
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
  SetInstanceProtectionCommand,
} from "@aws-sdk/client-auto-scaling";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";

export interface CapacityInput {
  /** Tasks of this fleet waiting for an instance. */
  queued: number;
  /** Instances running a task. */
  busy: number;
  /** Idle instances that finished booting. They serve queued tasks first; the total wanted does not depend on them. */
  ready: number;
  /** Idle instances to keep beyond demand so the next task starts at once. */
  warmBuffer: number;
  min: number;
  max: number;
}

export function desiredCapacity(input: CapacityInput): number {
  for (const key of ["queued", "busy", "ready", "warmBuffer", "min", "max"] as const) {
    const v = input[key];
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`desiredCapacity: ${key} must be a whole number ≥ 0, got ${v}`);
  }
  if (input.min > input.max) throw new RangeError(`desiredCapacity: min (${input.min}) is above max (${input.max})`);
  // One instance per running task, one per waiting task, plus the warm buffer, within the group's bounds.
  const wanted = input.busy + input.queued + input.warmBuffer;
  return Math.min(input.max, Math.max(input.min, wanted));
}

export interface ScalingOutcome {
  fleet: string;
  autoScalingGroupName?: string;
  previous?: number;
  desired?: number;
  /** Busy instances whose missing scale-in protection was restored before a scale-in. */
  reprotected: string[];
  skipped?: string;
}

/**
 * Set the fleet's Auto Scaling group to the desired capacity for this demand. Before any scale-in, the busy
 * instances' scale-in protection is checked and restored where missing (a mirror write that failed earlier),
 * so the group can never pick a busy instance.
 */
export async function applyScaling(
  config: RuntimeConfig,
  fleet: string,
  demand: { queued: number; busyInstanceIds: readonly string[]; ready: number },
): Promise<ScalingOutcome> {
  const fleetConfig = config.ec2?.fleets[fleet];
  const name = fleetConfig?.autoScalingGroupName;
  if (!name) return { fleet, reprotected: [], skipped: `fleet '${fleet}' has no autoScalingGroupName` };
  const autoscaling = awsClient(AutoScalingClient, { region: config.region });
  const group = (await autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups?.[0];
  if (!group) throw new Error(`Auto Scaling group '${name}' of fleet '${fleet}' does not exist`);

  const previous = group.DesiredCapacity ?? 0;
  const desired = desiredCapacity({
    queued: demand.queued,
    busy: demand.busyInstanceIds.length,
    ready: demand.ready,
    warmBuffer: fleetConfig.warmBuffer ?? 0,
    min: group.MinSize ?? 0,
    max: group.MaxSize ?? 0,
  });

  const reprotected: string[] = [];
  if (desired < previous) {
    const members = new Map((group.Instances ?? []).map((i) => [i.InstanceId!, i.ProtectedFromScaleIn === true]));
    const unprotected = demand.busyInstanceIds.filter((id) => members.get(id) === false);
    // SetInstanceProtection takes at most 50 instances per call.
    for (let i = 0; i < unprotected.length; i += 50) {
      const batch = unprotected.slice(i, i + 50);
      await autoscaling.send(new SetInstanceProtectionCommand({ AutoScalingGroupName: name, InstanceIds: batch, ProtectedFromScaleIn: true }));
      reprotected.push(...batch);
    }
  }
  if (desired !== previous) {
    await autoscaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: name, DesiredCapacity: desired, HonorCooldown: false }));
  }
  return { fleet, autoScalingGroupName: name, previous, desired, reprotected };
}
