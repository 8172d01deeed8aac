/**
 * The EC2 side of a lease: the instance as EC2 describes it, and the tags and Auto Scaling scale-in protection
 * that mirror the lease table. The table is the truth (lease.ts); tags are for people and IAM conditions.
 * Scale-in protection is set once, when an instance is registered, and taken off only by the fleet manager just
 * before it terminates a drained instance: the group's own scale-in can never pick an instance, busy or idle,
 * and a claim or a release costs one tag write.
 */
import { AutoScalingClient, SetInstanceProtectionCommand } from "@aws-sdk/client-auto-scaling";
import { CreateTagsCommand, DescribeInstancesCommand, EC2Client, type Instance } from "@aws-sdk/client-ec2";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";
import { BOOT_READY, BOOT_TAG, FLEET_TAG, LEASE_BUSY, LEASE_READY, LEASE_TAG, TASK_ID_TAG } from "./tags";

/** SetInstanceProtection takes at most 50 instances per call. */
const PROTECTION_BATCH = 50;

function tagValue(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

/** Why an observed instance may not be registered in `fleet`, or undefined if it may. */
export function notReadyReason(fleet: string, instance: Instance): string | undefined {
  const id = instance.InstanceId ?? "(unknown instance)";
  if (instance.State?.Name !== "running") return `instance ${id} is ${instance.State?.Name ?? "in an unknown state"}, not running`;
  const instanceFleet = tagValue(instance, FLEET_TAG);
  if (instanceFleet !== fleet) return `instance ${id} has ${FLEET_TAG}=${instanceFleet ?? "(none)"}, not ${fleet}`;
  const boot = tagValue(instance, BOOT_TAG);
  if (boot !== BOOT_READY) return `instance ${id} has ${BOOT_TAG}=${boot ?? "(none)"}; only ${BOOT_READY} instances take tasks`;
  return undefined;
}

export class LeaseMirror {
  constructor(private readonly config: Pick<RuntimeConfig, "region" | "ec2">) {}

  private get ec2(): EC2Client {
    return awsClient(EC2Client, { region: this.config.region });
  }

  private get autoscaling(): AutoScalingClient {
    return awsClient(AutoScalingClient, { region: this.config.region });
  }

  /** The instance as EC2 describes it now; undefined if EC2 does not know it. */
  async describe(instanceId: string): Promise<Instance | undefined> {
    const out = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
  }

  /** Protect instances of `fleet` from (or expose them to) the group's scale-in; no-op for a fleet without a group. */
  async protect(fleet: string, instanceIds: readonly string[], on: boolean): Promise<void> {
    const asg = this.config.ec2?.fleets[fleet]?.autoScalingGroupName;
    if (!asg) return;
    for (let i = 0; i < instanceIds.length; i += PROTECTION_BATCH) {
      await this.autoscaling.send(
        new SetInstanceProtectionCommand({ AutoScalingGroupName: asg, InstanceIds: instanceIds.slice(i, i + PROTECTION_BATCH), ProtectedFromScaleIn: on }),
      );
    }
  }

  /** A newly registered, or released, instance: tagged ready, its task-id tag emptied (one write). */
  async ready(instanceId: string): Promise<void> {
    await this.ec2.send(
      new CreateTagsCommand({
        Resources: [instanceId],
        Tags: [
          { Key: LEASE_TAG, Value: LEASE_READY },
          { Key: TASK_ID_TAG, Value: "" },
        ],
      }),
    );
  }

  /** Busy with `taskId` (one write). */
  async busy(instanceId: string, taskId: string): Promise<void> {
    await this.ec2.send(
      new CreateTagsCommand({
        Resources: [instanceId],
        Tags: [
          { Key: LEASE_TAG, Value: LEASE_BUSY },
          { Key: TASK_ID_TAG, Value: taskId },
        ],
      }),
    );
  }
}
