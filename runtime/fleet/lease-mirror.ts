/**
 * The EC2 side of a lease: the instance as EC2 describes it, and the tags and Auto Scaling scale-in protection
 * that mirror the lease table. The table is the truth (lease.ts); the mirror is for people and IAM conditions
 * (tags) and keeps a scale-in from ever picking a busy instance (protection).
 */
import { AutoScalingClient, SetInstanceProtectionCommand } from "@aws-sdk/client-auto-scaling";
import { CreateTagsCommand, DeleteTagsCommand, DescribeInstancesCommand, EC2Client, type Instance } from "@aws-sdk/client-ec2";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";
import { BOOT_READY, BOOT_TAG, FLEET_TAG, LEASE_BUSY, LEASE_READY, LEASE_TAG, TASK_ID_TAG } from "./tags";

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

  private asgOf(fleet: string): string | undefined {
    return this.config.ec2?.fleets[fleet]?.autoScalingGroupName;
  }

  /** The instance as EC2 describes it now; undefined if EC2 does not know it. */
  async describe(instanceId: string): Promise<Instance | undefined> {
    const out = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
  }

  /** A newly registered instance: tagged ready (it carries no protection yet). */
  async registered(instanceId: string): Promise<void> {
    await this.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: LEASE_TAG, Value: LEASE_READY }] }));
  }

  /** Busy: tags say so, and the Auto Scaling group may not pick this instance for a scale-in. */
  async busy(instanceId: string, fleet: string, taskId: string): Promise<void> {
    const asg = this.asgOf(fleet);
    if (asg) {
      await this.autoscaling.send(
        new SetInstanceProtectionCommand({ AutoScalingGroupName: asg, InstanceIds: [instanceId], ProtectedFromScaleIn: true }),
      );
    }
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

  /** Back in the ready pool: tags say so, the task tag goes, and the instance may be scaled in again. */
  async ready(instanceId: string, fleet: string): Promise<void> {
    await this.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: LEASE_TAG, Value: LEASE_READY }] }));
    await this.ec2.send(new DeleteTagsCommand({ Resources: [instanceId], Tags: [{ Key: TASK_ID_TAG }] }));
    const asg = this.asgOf(fleet);
    if (asg) {
      await this.autoscaling.send(
        new SetInstanceProtectionCommand({ AutoScalingGroupName: asg, InstanceIds: [instanceId], ProtectedFromScaleIn: false }),
      );
    }
  }
}
