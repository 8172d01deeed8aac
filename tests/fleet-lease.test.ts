/**
 * The EC2 lease table, fleet sync and the tag/protection mirror against moto (real wire protocol):
 * DynamoDB conditional writes and transactions, EC2 tag filters, Auto Scaling scale-in protection.
 */
import type { ChildProcess } from "node:child_process";
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Tag,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { expect } from "chai";
import { awsClient, resetClients } from "../runtime/aws/clients";
import type { Ec2FleetConfig, RuntimeConfig } from "../runtime/config";
import { LeaseTable, type Binding, type FleetHooks } from "../runtime/fleet/lease";
import { syncFleet } from "../runtime/fleet/sync";
import { BOOT_TAG, FLEET_TAG, LEASE_TAG, TASK_ID_TAG } from "../runtime/fleet/tags";
import { TABLE_SCHEMAS, createTableInput } from "../runtime/tables";
import { ec2RuntimeConfig, suffix } from "./fixtures";
import { startSerialMoto } from "./setup/serial-moto";

function fleetConfig(fleets: Record<string, Ec2FleetConfig>): RuntimeConfig {
  return ec2RuntimeConfig("lease", fleets, { executionTimeoutSeconds: 7200 });
}

async function createLeaseTable(config: RuntimeConfig, endpoint?: string): Promise<void> {
  const db = awsClient(DynamoDBClient, { region: config.region, endpoint });
  await db.send(new CreateTableCommand(createTableInput(config.tables.leases, TABLE_SCHEMAS.leases)));
  await db.send(new CreateTableCommand(createTableInput(config.tables.waiters!, TABLE_SCHEMAS.waiters)));
}

let imageId: string;
async function launch(count: number, tags: Record<string, string>): Promise<string[]> {
  const ec2 = awsClient(EC2Client, {});
  if (!imageId) {
    const images = await ec2.send(new DescribeImagesCommand({}));
    imageId = images.Images![0].ImageId!;
  }
  const out = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      InstanceType: "t3.micro",
      MinCount: count,
      MaxCount: count,
      TagSpecifications: Object.keys(tags).length
        ? [{ ResourceType: "instance", Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }]
        : undefined,
    }),
  );
  return out.Instances!.map((i) => i.InstanceId!);
}

async function tagsOf(instanceId: string): Promise<Record<string, string>> {
  const out = await awsClient(EC2Client, {}).send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const tags: Tag[] = out.Reservations![0].Instances![0].Tags ?? [];
  return Object.fromEntries(tags.map((t) => [t.Key!, t.Value!]));
}

/** A fleet of `count` instances that booted (boot=ready) and are registered. */
async function readyFleet(table: LeaseTable, fleet: string, count: number): Promise<string[]> {
  const ids = await launch(count, { [FLEET_TAG]: fleet, [BOOT_TAG]: "ready" });
  for (const id of ids) {
    const r = await table.registerInstance(fleet, id);
    expect(r, id).to.deep.include({ registered: true });
  }
  return ids;
}

describe("EC2 lease table (moto)", () => {
  before(() => resetClients());

  describe("registration", () => {
    it("registers only running instances of the fleet whose boot finished", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const [ready] = await launch(1, { [FLEET_TAG]: fleet, [BOOT_TAG]: "ready" });
      const [failed] = await launch(1, { [FLEET_TAG]: fleet, [BOOT_TAG]: "failed" });
      const [booting] = await launch(1, { [FLEET_TAG]: fleet });
      const [otherFleet] = await launch(1, { [FLEET_TAG]: `${fleet}x`, [BOOT_TAG]: "ready" });

      expect(await table.registerInstance(fleet, ready)).to.deep.equal({ registered: true, created: true });
      expect(await table.registerInstance(fleet, ready), "idempotent").to.deep.equal({ registered: true, created: false });
      for (const id of [failed, booting, otherFleet]) {
        const r = await table.registerInstance(fleet, id);
        expect(r.registered, id).to.equal(false);
      }
      expect((await table.list(fleet)).map((l) => l.instanceId)).to.deep.equal([ready]);
      expect((await tagsOf(ready))[LEASE_TAG]).to.equal("ready");
    });
  });

  describe("claim, queue and release", () => {
    it("a claim binds one ready instance and mirrors it in tags; a second task queues and is handed the instance on release", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const told: Binding[] = [];
      const table = new LeaseTable(config, undefined, { bound: (b) => void told.push(b) });
      const [id] = await readyFleet(table, fleet, 1);

      const claim = await table.claimInstance(fleet, "task-a");
      expect(claim.ok).to.equal(true);
      if (!claim.ok) return;
      expect(claim.lease).to.include({ instanceId: id, fleet, state: "BUSY", taskId: "task-a" });
      expect(claim.resumed).to.equal(false);
      expect(await tagsOf(id)).to.include({ [LEASE_TAG]: "busy", [TASK_ID_TAG]: "task-a" });

      const replay = await table.claimInstance(fleet, "task-a");
      expect(replay, "a replayed claim returns the same lease").to.deep.include({ ok: true, resumed: true });
      expect(replay.ok && replay.lease.instanceId).to.equal(id);

      const b = await table.claimInstance(fleet, "task-b", "2030-01-01T00:00:00.000Z");
      expect(b).to.deep.equal({ ok: false, reason: "no-capacity", fleet, position: "2030-01-01T00:00:00.000Z#task-b" });
      expect(await table.waiting("task-b")).to.deep.equal({ fleet, position: "2030-01-01T00:00:00.000Z#task-b" });

      expect(await table.releaseInstance(id, "task-b"), "someone else's release").to.deep.equal({ released: false });
      expect((await table.get(id))?.taskId).to.equal("task-a");
      expect(await table.releaseInstance(id, "task-a"), "handed to the waiter").to.deep.equal({ released: true, handedTo: "task-b" });
      expect(await table.get(id)).to.include({ state: "BUSY", taskId: "task-b", taskCount: 2 });
      expect(told.map((t) => [t.taskId, t.instanceId, t.via])).to.deep.equal([["task-b", id, "hand-over"]]);
      expect((await tagsOf(id))[TASK_ID_TAG]).to.equal("task-b");
      expect(await table.waiting("task-b")).to.equal(undefined);
      expect(await table.releaseInstance(id, "task-a"), "second release").to.deep.equal({ released: false });
      expect(await table.leaseOfTask("task-a")).to.equal(undefined);

      const woken = await table.claimInstance(fleet, "task-b");
      expect(woken.ok && woken.lease.instanceId, "the woken task finds its lease").to.equal(id);
      expect(await table.releaseTask("task-b")).to.deep.equal({ released: true, instanceId: id });
      expect(await table.releaseTask("task-b")).to.deep.equal({ released: false });
      expect(await table.get(id)).to.include({ state: "READY" }).and.not.have.property("taskId");
      const tags = await tagsOf(id);
      expect(tags[LEASE_TAG]).to.equal("ready");
      expect(tags[TASK_ID_TAG]).to.equal("");
    });

    it("a freed instance goes to the oldest waiter, whatever order they arrived in; a cancelled waiter leaves the queue", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const told: string[] = [];
      const table = new LeaseTable(config, undefined, { bound: (b) => void told.push(b.taskId) });
      const [id] = await readyFleet(table, fleet, 1);
      await table.claimInstance(fleet, "holder", "2030-01-01T00:00:00.000Z");
      // Arrival order differs from submission order: the queue is by submission.
      for (const [task, minute] of [["w3", 3], ["w1", 1], ["w4", 4], ["w2", 2]] as const) {
        expect((await table.claimInstance(fleet, task, `2030-01-01T00:0${minute}:00.000Z`)).ok).to.equal(false);
      }
      expect(await table.releaseTask("w2")).to.deep.equal({ released: false, dequeued: true });
      let holder = "holder";
      for (const next of ["w1", "w3", "w4"]) {
        expect(await table.releaseInstance(id, holder)).to.deep.equal({ released: true, handedTo: next });
        holder = next;
      }
      expect(told).to.deep.equal(["w1", "w3", "w4"]);
      expect(await table.releaseInstance(id, holder)).to.deep.equal({ released: true });
      expect(await table.leaseOfTask("w2"), "the cancelled waiter never got it").to.equal(undefined);
    });

    it("a newly registered instance goes to the oldest waiter through the dispatcher", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const told: Binding[] = [];
      const table = new LeaseTable(config, undefined, { bound: (b) => void told.push(b) });
      for (const [task, minute] of [["late", 5], ["early", 1]] as const) {
        await table.claimInstance(fleet, task, `2030-01-01T00:0${minute}:00.000Z`);
      }
      const [id] = await readyFleet(table, fleet, 1);
      expect((await table.kick(fleet)).bound.map((b) => [b.taskId, b.instanceId])).to.deep.equal([["early", id]]);
      expect(told.map((b) => [b.taskId, b.instanceId, b.via])).to.deep.equal([["early", id, "dispatch"]]);
      expect(await table.leaseOfTask("early")).to.include({ instanceId: id });
      expect(await table.waiting("late")).to.include({ fleet });
    });

    it("a bind whose tag mirror fails is undone and the waiter gets the next instance", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const ids = await readyFleet(table, fleet, 2);
      const ec2 = mockClient(EC2Client);
      try {
        ec2.on(CreateTagsCommand).rejectsOnce(new Error("throttled")).resolves({});
        const claim = await table.claimInstance(fleet, "t-mirror");
        expect(claim.ok, "moved on to the next candidate").to.equal(true);
        if (!claim.ok) return;
        const [failed] = ids.filter((i) => i !== claim.lease.instanceId);
        expect(await table.get(failed)).to.include({ state: "READY", taskCount: 0 }).and.not.have.property("taskId");
        expect(await table.get(claim.lease.instanceId)).to.include({ state: "BUSY", taskId: "t-mirror" });
        expect(await table.waiting("t-mirror")).to.equal(undefined);
      } finally {
        ec2.restore();
      }
    });

    it("a claim whose every mirror fails leaves the task queued and every instance ready", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const [id] = await readyFleet(table, fleet, 1);
      const ec2 = mockClient(EC2Client);
      try {
        ec2.on(CreateTagsCommand).rejects(new Error("UnauthorizedOperation"));
        const claim = await table.claimInstance(fleet, "t-mirror");
        expect(claim).to.deep.include({ ok: false, reason: "no-capacity" });
      } finally {
        ec2.restore();
      }
      expect(await table.get(id)).to.include({ state: "READY" }).and.not.have.property("taskId");
      expect(await table.leaseOfTask("t-mirror")).to.equal(undefined);
      expect(await table.waiting("t-mirror")).to.include({ fleet });
      expect((await tagsOf(id))[LEASE_TAG]).to.equal("ready");
    });

    it("a release after another task claimed the instance leaves that claim intact", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const [id] = await readyFleet(table, fleet, 1);
      await table.claimInstance(fleet, "t1");
      await table.releaseInstance(id, "t1");
      await table.claimInstance(fleet, "t2");
      expect(await table.releaseTask("t1")).to.deep.equal({ released: false });
      expect(await table.releaseInstance(id, "t1")).to.deep.equal({ released: false });
      expect(await table.get(id)).to.include({ state: "BUSY", taskId: "t2" });
      expect((await tagsOf(id))[TASK_ID_TAG]).to.equal("t2");
    });

    it("recordCommand stores the command on the task's lease and refuses a lease the task does not hold", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const [id] = await readyFleet(table, fleet, 1);
      await table.claimInstance(fleet, "t1");
      await table.recordCommand(id, "t1", "cmd-1");
      const replay = await table.claimInstance(fleet, "t1");
      expect(replay.ok && replay.lease.commandId).to.equal("cmd-1");
      expect((await table.get(id))?.commandId).to.equal("cmd-1");
      let error: Error | undefined;
      await table.recordCommand(id, "t2", "cmd-2").catch((e) => (error = e));
      expect(error?.message).to.match(new RegExp(`instance ${id} is not leased to task t2`));
      await table.releaseTask("t1");
      expect((await table.get(id))?.commandId, "release clears the command").to.equal(undefined);
    });

    it("a drained instance takes no claim; a task finishing on an instance past its task count retires it", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: { maxTasksPerInstance: 1 } });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const [a, b] = await readyFleet(table, fleet, 2);
      expect(await table.drain(a, fleet, "scale-in")).to.equal(true);
      expect(await table.drain(a, fleet, "scale-in"), "only from READY").to.equal(false);
      const claim = await table.claimInstance(fleet, "t1");
      expect(claim.ok && claim.lease.instanceId).to.equal(b);
      expect(await table.drain(b, fleet, "scale-in"), "never a busy instance").to.equal(false);
      await table.claimInstance(fleet, "t2");
      expect(await table.releaseTask("t1"), "no hand-over from a retiring instance").to.deep.equal({ released: true, instanceId: b });
      expect(await table.get(b)).to.include({ state: "DRAINING", drainReason: "retire" });
      expect(await table.waiting("t2")).to.include({ fleet });
    });
  });

  describe("concurrency", () => {
    let serial: { url: string; proc: ChildProcess };
    before(async function () {
      this.timeout(60_000);
      serial = await startSerialMoto();
    });
    after(() => serial?.proc.kill("SIGTERM"));

    async function serialTable(fleet: string, hooks?: FleetHooks): Promise<LeaseTable> {
      const config = { ...fleetConfig({ [fleet]: {} }), endpoints: { dynamodb: serial.url } };
      await createLeaseTable(config, serial.url);
      return new LeaseTable(config, undefined, hooks);
    }

    it("50 concurrent claims on 10 ready instances: 10 tasks bound to distinct instances, 40 queued, the bound ones told", async function () {
      this.timeout(120_000);
      const fleet = `f${suffix()}`;
      const told: string[] = [];
      const table = await serialTable(fleet, { bound: (b) => void told.push(b.taskId) });
      const ids = await readyFleet(table, fleet, 10);

      const tasks = Array.from({ length: 50 }, (_, i) => `race-${i}`);
      const results = await Promise.all(tasks.map((t) => table.claimInstance(fleet, t)));
      const answeredAtOnce = results.filter((r) => r.ok).map((r) => (r.ok ? r.lease.taskId : ""));
      const held = new Map<string, string>();
      for (const t of tasks) {
        const lease = await table.leaseOfTask(t);
        if (lease) held.set(t, lease.instanceId);
      }
      expect(held.size).to.equal(10);
      expect(new Set(held.values()).size, "no instance twice").to.equal(10);
      expect([...held.values()].sort()).to.deep.equal([...ids].sort());
      // A task is either answered by its own claim or told by whoever bound it.
      expect([...answeredAtOnce, ...told].sort()).to.deep.equal([...held.keys()].sort());
      let waiting = 0;
      for (const t of tasks) if (await table.waiting(t)) waiting++;
      expect(waiting).to.equal(40);
      const leases = await table.list(fleet);
      expect(leases.every((l) => l.state === "BUSY")).to.equal(true);
      for (const l of leases) expect(held.get(l.taskId!), l.instanceId).to.equal(l.instanceId);
    });

    it("concurrent claims for one task bind it to a single instance", async () => {
      const fleet = `f${suffix()}`;
      const table = await serialTable(fleet);
      await readyFleet(table, fleet, 5);
      await Promise.all(Array.from({ length: 8 }, () => table.claimInstance(fleet, "same-task")));
      const lease = await table.leaseOfTask("same-task");
      expect(lease?.instanceId).to.be.a("string");
      expect(await table.waiting("same-task")).to.equal(undefined);
      expect((await table.list(fleet)).filter((l) => l.state === "BUSY").map((l) => l.instanceId)).to.deep.equal([lease!.instanceId]);
    });

    it("concurrent releases hand instances to distinct waiters, oldest first", async function () {
      this.timeout(120_000);
      const fleet = `f${suffix()}`;
      const table = await serialTable(fleet);
      const ids = await readyFleet(table, fleet, 8);
      for (let i = 0; i < 8; i++) expect((await table.claimInstance(fleet, `run-${i}`)).ok).to.equal(true);
      for (let i = 0; i < 12; i++) await table.claimInstance(fleet, `wait-${i}`, `2030-01-01T00:00:${String(10 + i)}.000Z`);
      await Promise.all(Array.from({ length: 8 }, (_, i) => table.releaseTask(`run-${i}`)));
      const holders = (await table.list(fleet)).map((l) => l.taskId).sort();
      expect(holders).to.deep.equal(Array.from({ length: 8 }, (_, i) => `wait-${i}`).sort());
      expect(new Set((await table.list(fleet)).map((l) => l.instanceId)).size).to.equal(ids.length);
      for (let i = 8; i < 12; i++) expect(await table.waiting(`wait-${i}`), `wait-${i}`).to.include({ fleet });
    });
  });

  describe("fleets", () => {
    it("a claim is for one named fleet: a busy default fleet does not borrow from gpu", async () => {
      const s = suffix();
      const [def, gpu] = [`default${s}`, `gpu${s}`];
      const config = fleetConfig({ [def]: {}, [gpu]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const [defId] = await readyFleet(table, def, 1);
      const [gpuId] = await readyFleet(table, gpu, 1);

      const a = await table.claimInstance(def, "a");
      expect(a.ok && a.lease.instanceId).to.equal(defId);
      expect(await table.claimInstance(def, "b")).to.deep.include({ ok: false, reason: "no-capacity", fleet: def });
      const c = await table.claimInstance(gpu, "c");
      expect(c.ok && c.lease).to.include({ instanceId: gpuId, fleet: gpu });
    });
  });

  describe("scale-in protection mirror", () => {
    it("every registered instance is protected from scale-in, busy or idle: only the manager removes instances", async () => {
      const fleet = `f${suffix()}`;
      const asgName = `asg-${suffix()}`;
      const config = fleetConfig({ [fleet]: { autoScalingGroupName: asgName } });
      await createLeaseTable(config);
      const ec2 = awsClient(EC2Client, {});
      if (!imageId) imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
      const lt = `lt-${suffix()}`;
      await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: lt, LaunchTemplateData: { ImageId: imageId, InstanceType: "t3.micro" } }));
      const asg = awsClient(AutoScalingClient, {});
      await asg.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: asgName,
          LaunchTemplate: { LaunchTemplateName: lt },
          MinSize: 0,
          MaxSize: 3,
          DesiredCapacity: 2,
          AvailabilityZones: ["us-east-1a"],
          Tags: [
            { Key: FLEET_TAG, Value: fleet, PropagateAtLaunch: true },
            { Key: BOOT_TAG, Value: "ready", PropagateAtLaunch: true },
          ],
        }),
      );
      const protectedIds = async () =>
        ((await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }))).AutoScalingGroups![0]
          .Instances ?? [])
          .filter((i) => i.ProtectedFromScaleIn)
          .map((i) => i.InstanceId);

      const table = new LeaseTable(config);
      expect(await protectedIds()).to.deep.equal([]);
      const sync = await syncFleet(config, fleet, table);
      expect(sync.registered).to.have.length(2);
      expect((await protectedIds()).sort()).to.deep.equal([...sync.registered].sort());
      const claim = await table.claimInstance(fleet, "t1");
      if (!claim.ok) throw new Error("expected a claim");
      await table.releaseTask("t1");
      expect((await protectedIds()).sort()).to.deep.equal([...sync.registered].sort());
    });
  });

  describe("fleet sync", () => {
    it("registers running boot=ready instances of the fleet only, and drops leases of instances that are gone", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const ready = await launch(2, { [FLEET_TAG]: fleet, [BOOT_TAG]: "ready" });
      await launch(1, { [FLEET_TAG]: fleet, [BOOT_TAG]: "failed" });
      await launch(1, { [FLEET_TAG]: fleet });
      await launch(1, { [BOOT_TAG]: "ready" });
      await launch(1, { [FLEET_TAG]: `${fleet}-other`, [BOOT_TAG]: "ready" });

      const first = await syncFleet(config, fleet, table);
      expect([...first.registered].sort()).to.deep.equal([...ready].sort());
      expect((await table.list(fleet)).map((l) => l.instanceId).sort()).to.deep.equal([...ready].sort());
      const again = await syncFleet(config, fleet, table);
      expect(again.registered, "a second sync registers nothing new").to.deep.equal([]);

      const claim = await table.claimInstance(fleet, "lost-task");
      if (!claim.ok) throw new Error("expected a claim");
      await awsClient(EC2Client, {}).send(new TerminateInstancesCommand({ InstanceIds: [claim.lease.instanceId] }));
      const afterLoss = await syncFleet(config, fleet, table);
      expect(afterLoss.dropped).to.deep.equal([claim.lease.instanceId]);
      expect(afterLoss.lostTasks).to.deep.equal([{ taskId: "lost-task", instanceId: claim.lease.instanceId }]);
      expect((await table.list(fleet)).map((l) => l.instanceId)).to.not.include(claim.lease.instanceId);
      expect(await table.leaseOfTask("lost-task")).to.equal(undefined);
    });
  });
});
