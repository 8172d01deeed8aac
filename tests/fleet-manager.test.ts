/**
 * The fleet manager against moto: an Auto Scaling group whose instances tag their boot, the lease and waiter
 * tables, a tasks table. Passes register, reconcile, scale out and in (drain, then terminate through the group),
 * replace failed boots, repair in two phases, and handle the termination lifecycle hook.
 */
import { randomBytes } from "node:crypto";
import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeScalingActivitiesCommand,
  PutLifecycleHookCommand,
} from "@aws-sdk/client-auto-scaling";
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { expect } from "chai";
import { awsClient, resetClients } from "../runtime/aws/clients";
import { documentClient } from "../runtime/aws/dynamodb";
import type { Ec2FleetConfig, RuntimeConfig } from "../runtime/config";
import { manageFleets, manageFleetsFor } from "../runtime/fleet/lambda";
import { CAPACITY_ERROR_FRESH_SECONDS } from "../runtime/fleet/capacity-error";
import { LeaseTable } from "../runtime/fleet/lease";
import { handleTerminationHook } from "../runtime/fleet/manager";
import { BOOT_TAG, FLEET_TAG, ORPHAN_TAG } from "../runtime/fleet/tags";
import { createTables, ec2RuntimeConfig } from "./fixtures";

class Clock {
  t = Date.now();
  now = () => new Date(this.t);
  advance(seconds: number) {
    this.t += seconds * 1000;
  }
}

interface Setup {
  config: RuntimeConfig;
  fleet: string;
  asgName: string;
  leases: LeaseTable;
  clock: Clock;
  group: () => Promise<NonNullable<Awaited<ReturnType<AutoScalingClient["send"]>>> & any>;
  members: () => Promise<{ id: string; state: string; health: string }[]>;
}

let imageId: string | undefined;

async function setup(opts: { desired: number; max?: number; boot?: string; fleet?: Partial<Ec2FleetConfig> }): Promise<Setup> {
  const s = randomBytes(4).toString("hex");
  const fleet = `f${s}`;
  const asgName = `asg-${s}`;
  const config = ec2RuntimeConfig(
    "fm",
    { [fleet]: { autoScalingGroupName: asgName, warmBuffer: 1, terminationHookName: `hook-${s}`, ...opts.fleet } },
    { deliveryTimeoutSeconds: 60 },
  );
  await createTables(config, ["tasks", "leases", "waiters"]);
  const ec2 = awsClient(EC2Client, {});
  imageId ??= (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `lt-${s}`, LaunchTemplateData: { ImageId: imageId, InstanceType: "t3.micro" } }));
  const asg = awsClient(AutoScalingClient, {});
  await asg.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: asgName,
      LaunchTemplate: { LaunchTemplateName: `lt-${s}` },
      MinSize: 0,
      MaxSize: opts.max ?? 5,
      DesiredCapacity: opts.desired,
      AvailabilityZones: ["us-east-1a"],
      Tags: [
        { Key: FLEET_TAG, Value: fleet, PropagateAtLaunch: true },
        ...(opts.boot ? [{ Key: BOOT_TAG, Value: opts.boot, PropagateAtLaunch: true }] : []),
      ],
    }),
  );
  const clock = new Clock();
  const group = async () => (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }))).AutoScalingGroups![0];
  const members = async () => ((await group()).Instances ?? []).map((i: any) => ({ id: i.InstanceId, state: i.LifecycleState, health: i.HealthStatus }));
  return { config, fleet, asgName, leases: new LeaseTable(config, clock.now), clock, group, members };
}

async function putTask(config: RuntimeConfig, task_id: string, status: string): Promise<void> {
  await documentClient(config).send(new PutCommand({ TableName: config.tables.tasks, Item: { task_id, status, user_id: "u", created_at: new Date().toISOString() } }));
}

describe("fleet manager (moto)", () => {
  before(() => resetClients());

  it("registers booted instances, releases a finished task's lease, and scales in by draining idle instances, never the busy one", async () => {
    const { config, fleet, leases, group, clock } = await setup({ desired: 4, boot: "ready" });
    const first = await manageFleets(config, leases);
    expect(first[0].registered).to.have.length(4);

    // Two tasks hold instances: one still running, one finished (its orchestrator crashed before finalize).
    await putTask(config, "running", "RUNNING");
    await putTask(config, "done", "COMPLETED");
    const running = await leases.claimInstance(fleet, "running");
    const done = await leases.claimInstance(fleet, "done");
    if (!running.ok || !done.ok) throw new Error("expected two claims");

    // The two unused instances have been idle past the scale-in grace (120 s) by the next pass.
    clock.advance(121);
    const second = await manageFleets(config, leases);
    expect(second[0].reconcile.released).to.deep.equal([{ instanceId: done.lease.instanceId, taskId: "done", why: "task-terminal" }]);
    // busy 1 + queued 0 + warm buffer 1 = 2 wanted of 4: the two idle past the grace are drained and terminated;
    // the instance released in this very pass is within it and stays (it is the warm buffer now).
    const terminated = second[0].actions.filter((a) => a.kind === "terminate").map((a) => a.instanceId);
    expect(terminated).to.have.length(2);
    expect(terminated).to.not.include(running.lease.instanceId);
    expect(terminated).to.not.include(done.lease.instanceId);
    expect(await leases.get(done.lease.instanceId)).to.include({ state: "READY", idleSince: clock.now().toISOString() });
    for (const id of terminated) expect(await leases.get(id)).to.include({ state: "DRAINING", drainReason: "scale-in" });
    const after = await group();
    expect(after.DesiredCapacity).to.equal(2);
    expect((after.Instances ?? []).map((i: any) => i.InstanceId), "the busy instance survives").to.include(running.lease.instanceId);
    expect(await leases.get(running.lease.instanceId)).to.include({ state: "BUSY", taskId: "running" });

    // The terminated instances' leases go in two phases: marked, then dropped.
    const third = await manageFleets(config, leases);
    expect(third[0].actions.filter((a) => a.kind === "mark-missing").map((a) => a.instanceId).sort()).to.deep.equal([...terminated].sort());
    expect((await leases.list(fleet)).length).to.equal(4);
    await manageFleets(config, leases);
    expect((await leases.list(fleet)).map((l) => l.instanceId)).to.not.include.members(terminated);
  });

  it("scales out for queued tasks, and the booted instance goes to the oldest waiter", async () => {
    const { config, fleet, leases, group } = await setup({ desired: 0, boot: "ready", fleet: { warmBuffer: 0 } });
    const told: string[] = [];
    const table = new LeaseTable(config, undefined, { bound: (b) => void told.push(b.taskId) });
    await table.claimInstance(fleet, "young", "2030-01-01T00:05:00.000Z");
    await table.claimInstance(fleet, "old", "2030-01-01T00:01:00.000Z");
    const first = await manageFleets(config, table);
    expect(first[0].actions).to.deep.include({ kind: "set-desired", from: 0, to: 2 });
    expect((await group()).DesiredCapacity).to.equal(2);
    await manageFleets(config, table);
    expect(told.sort()).to.deep.equal(["old", "young"]);
    expect((await table.list(fleet)).every((l) => l.state === "BUSY")).to.equal(true);
  });

  it("marks a failed boot, and a boot that missed its deadline, unhealthy; neither is ever registered", async () => {
    const failed = await setup({ desired: 1, boot: "failed" });
    const pass = await manageFleets(failed.config, failed.leases);
    expect(pass[0].actions.map((a) => a.kind)).to.include("mark-unhealthy");
    expect(pass[0].failures).to.deep.equal([]);
    expect((await failed.members()).map((m) => m.health)).to.deep.equal(["Unhealthy"]);
    expect(await failed.leases.list(failed.fleet)).to.deep.equal([]);

    const late = await setup({ desired: 1, fleet: { readyDeadlineSeconds: 300 } });
    expect((await manageFleets(late.config, late.leases))[0].actions.map((a) => a.kind), "still within the deadline").to.not.include("mark-unhealthy");
    late.clock.advance(301);
    const after = await manageFleets(late.config, late.leases);
    expect(after[0].actions).to.deep.include({ kind: "mark-unhealthy", instanceId: (await late.members())[0].id, why: "boot-deadline" });
    expect(await late.leases.list(late.fleet)).to.deep.equal([]);
  });

  it("a busy instance's lease is dropped two passes after it vanished, and its task reported lost", async () => {
    const { config, fleet, leases, members } = await setup({ desired: 1, boot: "ready", fleet: { warmBuffer: 1 } });
    await manageFleets(config, leases);
    await putTask(config, "t1", "RUNNING");
    const claim = await leases.claimInstance(fleet, "t1");
    if (!claim.ok) throw new Error("expected a claim");
    await awsClient(EC2Client, {}).send(new TerminateInstancesCommand({ InstanceIds: [(await members())[0].id] }));
    const first = await manageFleets(config, leases);
    expect(first[0].lostTasks).to.deep.equal([]);
    expect(await leases.get(claim.lease.instanceId)).to.have.property("missingSince");
    const second = await manageFleets(config, leases);
    expect(second[0].lostTasks).to.deep.equal([{ taskId: "t1", instanceId: claim.lease.instanceId }]);
    expect(await leases.leaseOfTask("t1")).to.equal(undefined);
  });

  it("an instance of the fleet outside its group is marked, then terminated on the next pass", async () => {
    const { config, fleet, leases } = await setup({ desired: 0, fleet: { warmBuffer: 0 } });
    const ec2 = awsClient(EC2Client, {});
    const [orphan] = (
      await ec2.send(
        new RunInstancesCommand({ ImageId: imageId!, InstanceType: "t3.micro", MinCount: 1, MaxCount: 1, TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: FLEET_TAG, Value: fleet }] }] }),
      )
    ).Instances!.map((i) => i.InstanceId!);
    const stateOf = async () => (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [orphan] }))).Reservations![0].Instances![0];
    await manageFleets(config, leases);
    const marked = await stateOf();
    expect(marked.State?.Name).to.equal("running");
    expect(marked.Tags?.find((t) => t.Key === ORPHAN_TAG)?.Value).to.be.a("string");
    await manageFleets(config, leases);
    expect((await stateOf()).State?.Name).to.match(/shutting-down|terminated/);
  });

  it("an instance past its lifetime is drained and replaced once idle (the desired capacity stays)", async () => {
    const { config, fleet, leases, clock, group } = await setup({ desired: 2, boot: "ready", fleet: { warmBuffer: 1, maxInstanceLifetimeSeconds: 3600 } });
    await manageFleets(config, leases);
    await putTask(config, "busy", "RUNNING");
    const claim = await leases.claimInstance(fleet, "busy");
    if (!claim.ok) throw new Error("expected a claim");
    clock.advance(3601);
    const pass = await manageFleets(config, leases);
    const replaced = pass[0].actions.filter((a) => a.kind === "terminate");
    expect(replaced).to.have.length(1);
    expect(replaced[0]).to.include({ decrement: false });
    expect(replaced[0].instanceId, "the busy one finishes its task first").to.not.equal(claim.lease.instanceId);
    expect((await group()).DesiredCapacity).to.equal(2);
    await leases.releaseTask("busy");
    expect(await leases.get(claim.lease.instanceId), "retired on release").to.include({ state: "DRAINING", drainReason: "retire" });
  });

  it("the termination lifecycle hook completes at once for an idle instance and waits for a busy one's task to let go", async () => {
    const { config, fleet, asgName, leases } = await setup({ desired: 2, boot: "ready", fleet: { warmBuffer: 2 } });
    const hook = config.ec2!.fleets[fleet].terminationHookName!;
    await awsClient(AutoScalingClient, {}).send(
      new PutLifecycleHookCommand({ AutoScalingGroupName: asgName, LifecycleHookName: hook, LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout: 300, DefaultResult: "CONTINUE" }),
    );
    // moto has no CompleteLifecycleAction: record it, pass every other call to moto.
    const real = awsClient(AutoScalingClient, {});
    const completed: string[] = [];
    const autoscaling = {
      send: (async (command: any) => {
        if (command instanceof CompleteLifecycleActionCommand) {
          expect(command.input).to.include({ AutoScalingGroupName: asgName, LifecycleHookName: hook, LifecycleActionResult: "CONTINUE" });
          completed.push(command.input.InstanceId!);
          return {};
        }
        return real.send(command);
      }) as AutoScalingClient["send"],
    };
    await manageFleets(config, leases, { autoscaling });
    await putTask(config, "t1", "RUNNING");
    const claim = await leases.claimInstance(fleet, "t1");
    if (!claim.ok) throw new Error("expected a claim");
    const idle = (await leases.list(fleet)).find((l) => l.state === "READY")!.instanceId;
    const event = (id: string) => ({ EC2InstanceId: id, AutoScalingGroupName: asgName, LifecycleHookName: hook });

    expect(await handleTerminationHook({ config, leases, autoscaling }, event(idle))).to.equal("completed");
    expect(completed).to.deep.equal([idle]);
    expect(await leases.get(idle)).to.equal(undefined);
    expect(await handleTerminationHook({ config, leases, autoscaling }, event(claim.lease.instanceId))).to.equal("draining");
    expect(completed, "not while its task holds it").to.deep.equal([idle]);
    expect(await leases.get(claim.lease.instanceId)).to.include({ state: "DRAINING", drainReason: "terminating", taskId: "t1" });
    expect((await leases.claimInstance(fleet, "t2")).ok, "no claim takes a terminating instance").to.equal(false);

    await leases.releaseTask("t1");
    const pass = await manageFleets(config, leases, { autoscaling });
    expect(pass[0].actions).to.deep.include({ kind: "complete-lifecycle", instanceId: claim.lease.instanceId });
    expect(completed).to.deep.equal([idle, claim.lease.instanceId]);
    expect(await leases.get(claim.lease.instanceId)).to.equal(undefined);
  });

  it("an EC2 capacity error seen on the group's scaling activities is a task event, and the waiting task's claim reads it back while it is current", async () => {
    const { config, fleet, leases, clock } = await setup({ desired: 0, max: 2 });
    await putTask(config, "waiting", "STARTING");
    expect((await leases.claimInstance(fleet, "waiting")).ok).to.equal(false);
    const ice = "Launching a new EC2 instance. Status Reason: There is no Spot capacity available that matches your request. Launching EC2 instance failed. (InsufficientInstanceCapacity)";
    const real = awsClient(AutoScalingClient, {});
    const autoscaling = {
      send: (async (command: any) =>
        command instanceof DescribeScalingActivitiesCommand
          ? { Activities: [{ ActivityId: "a1", AutoScalingGroupName: command.input.AutoScalingGroupName, StatusCode: "Failed", StatusMessage: ice, StartTime: clock.now(), Cause: "", Progress: 100 }] }
          : real.send(command)) as AutoScalingClient["send"],
    };
    const events: { taskId: string; type: string; message: string }[] = [];
    const log = { append: async (taskId: string, type: string, message: string) => void events.push({ taskId, type, message }) } as never;

    const [report] = await manageFleets(config, leases, { autoscaling, events: log });
    expect(report.capacityError).to.equal(ice);
    expect(events.filter((e) => e.taskId === "waiting" && e.type === "error").map((e) => e.message)).to.deep.equal([
      `fleet '${fleet}' cannot get capacity from EC2 yet; the task keeps waiting within its timeout: ${ice}`,
    ]);
    const again = await leases.claimInstance(fleet, "waiting");
    expect(again.ok === false && again.capacityError, "the claim carries EC2's reason").to.equal(ice);
    // Not seen again for longer than it explains a wait: the claim no longer carries it.
    clock.advance(CAPACITY_ERROR_FRESH_SECONDS);
    const later = await leases.claimInstance(fleet, "waiting");
    expect(later.ok === false && later.capacityError).to.equal(undefined);
  });

  it("loops passes within one invocation on an injected clock", async () => {
    const { config, leases } = await setup({ desired: 0, fleet: { warmBuffer: 0 } });
    let t = 0;
    const passes = await manageFleetsFor(config, leases, { passSeconds: 10, budgetSeconds: 50, now: () => t, sleep: async (ms) => void (t += ms) });
    expect(passes).to.have.length(5);
  });
});
