/**
 * The scheduled fleet manager against moto: an Auto Scaling group whose instances tag boot=ready, a tasks table,
 * the lease table. One pass registers, reconciles and scales — and a scale-in never takes the busy instance.
 */
import { randomBytes } from "node:crypto";
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { expect } from "chai";
import { awsClient, resetClients } from "../runtime/aws/clients";
import { documentClient } from "../runtime/aws/dynamodb";
import { manageFleets } from "../runtime/fleet/lambda";
import { LeaseTable } from "../runtime/fleet/lease";
import { syncFleet } from "../runtime/fleet/sync";
import { BOOT_TAG, FLEET_TAG } from "../runtime/fleet/tags";
import { createTables, ec2RuntimeConfig } from "./fixtures";

describe("fleet manager (moto)", () => {
  before(() => resetClients());

  it("registers booted instances, releases a finished task's lease, and scales in without touching the busy instance", async () => {
    const s = randomBytes(4).toString("hex");
    const fleet = `f${s}`;
    const asgName = `asg-${s}`;
    const config = ec2RuntimeConfig("fm", { [fleet]: { autoScalingGroupName: asgName, warmBuffer: 1 } });
    await createTables(config, ["tasks", "leases"]);
    const ec2 = awsClient(EC2Client, {});
    const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
    await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `lt-${s}`, LaunchTemplateData: { ImageId: imageId, InstanceType: "t3.micro" } }));
    const asg = awsClient(AutoScalingClient, {});
    await asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: asgName,
        LaunchTemplate: { LaunchTemplateName: `lt-${s}` },
        MinSize: 0,
        MaxSize: 5,
        DesiredCapacity: 4,
        AvailabilityZones: ["us-east-1a"],
        Tags: [
          { Key: FLEET_TAG, Value: fleet, PropagateAtLaunch: true },
          { Key: BOOT_TAG, Value: "ready", PropagateAtLaunch: true },
        ],
      }),
    );
    const group = async () => (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }))).AutoScalingGroups![0];

    const leases = new LeaseTable(config);
    const first = await syncFleet(config, fleet, leases);
    expect(first.registered).to.have.length(4);

    // Two tasks hold instances: one still running, one finished (its orchestrator crashed before finalize).
    const tasks = documentClient(config);
    const now = new Date().toISOString();
    for (const [task_id, status] of [["running", "RUNNING"], ["done", "COMPLETED"]]) {
      await tasks.send(new PutCommand({ TableName: config.tables.tasks, Item: { task_id, status, user_id: "u", created_at: now, backend: "ec2", fleet } }));
    }
    const running = await leases.claimInstance(fleet, "running");
    const done = await leases.claimInstance(fleet, "done");
    if (!running.ok || !done.ok) throw new Error("expected two claims");

    const second = await manageFleets(config, leases);
    expect(second[0].reconcile.released).to.deep.equal([{ instanceId: done.lease.instanceId, taskId: "done", why: "task-terminal" }]);
    expect(await leases.get(done.lease.instanceId)).to.include({ state: "READY" });
    // busy 1 + queued 0 + warm buffer 1 = 2, from 4.
    expect(second[0].scaling).to.include({ previous: 4, desired: 2 });
    const after = await group();
    expect(after.DesiredCapacity).to.equal(2);
    const remaining = (after.Instances ?? []).map((i) => i.InstanceId);
    expect(remaining, "the busy instance survives the scale-in").to.include(running.lease.instanceId);
    expect(await leases.get(running.lease.instanceId)).to.include({ state: "BUSY", taskId: "running" });
  });
});
