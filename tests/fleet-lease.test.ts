/**
 * The EC2 lease table, fleet sync and the tag/protection mirror against moto (real wire protocol):
 * DynamoDB conditional writes and transactions, EC2 tag filters, Auto Scaling scale-in protection.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Tag,
} from "@aws-sdk/client-ec2";
import { expect } from "chai";
import { awsClient, resetClients } from "../runtime/aws/clients";
import type { Ec2FleetConfig, RuntimeConfig } from "../runtime/config";
import { LeaseTable } from "../runtime/fleet/lease";
import { syncFleet } from "../runtime/fleet/sync";
import { BOOT_TAG, FLEET_TAG, LEASE_TAG, TASK_ID_TAG } from "../runtime/fleet/tags";
import { createTableInput, TABLE_SCHEMAS } from "../runtime/tables";
import { createTables, ec2RuntimeConfig, suffix } from "./fixtures";

function fleetConfig(fleets: Record<string, Ec2FleetConfig>): RuntimeConfig {
  return ec2RuntimeConfig("lease", fleets, { executionTimeoutSeconds: 7200 });
}

async function createLeaseTable(config: RuntimeConfig): Promise<void> {
  await createTables(config, ["leases"]);
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

/**
 * moto's threaded server applies DynamoDB conditional writes without a lock, so two requests racing on one item
 * can both pass their condition — an emulator defect (real DynamoDB checks and writes each item atomically) that
 * would make a race test measure moto instead of our claim. The race therefore runs against a second moto whose
 * server handles one request at a time: the 50 claims still interleave (each reads a stale candidate list and
 * must survive losing its conditional writes), but each write is atomic, as in DynamoDB.
 */
async function startSerialMoto(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const code = [
    "from werkzeug.serving import run_simple",
    "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app",
    `run_simple("127.0.0.1", ${port}, DomainDispatcherApplication(create_backend_app), threaded=False)`,
  ].join("\n");
  const proc = spawn(process.env.PYTHON ?? "python3", ["-c", code], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 45_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/moto-api/data.json`)).ok) return { url, proc };
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`serial moto server did not answer at ${url}`);
    await new Promise((r) => setTimeout(r, 150));
  }
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

  describe("claim and release", () => {
    it("a claim binds one ready instance, mirrors it in tags, and release frees it once", async () => {
      const fleet = `f${suffix()}`;
      const config = fleetConfig({ [fleet]: {} });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
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

      expect(await table.claimInstance(fleet, "task-b")).to.deep.equal({ ok: false, reason: "no-capacity", fleet });

      expect(await table.releaseInstance(id, "task-b"), "someone else's release").to.deep.equal({ released: false });
      expect((await table.get(id))?.taskId).to.equal("task-a");
      expect(await table.releaseInstance(id, "task-a")).to.deep.equal({ released: true });
      expect(await table.releaseInstance(id, "task-a"), "second release").to.deep.equal({ released: false });
      const tags = await tagsOf(id);
      expect(tags[LEASE_TAG]).to.equal("ready");
      expect(tags).to.not.have.property(TASK_ID_TAG);
      expect(await table.leaseOfTask("task-a")).to.equal(undefined);

      const next = await table.claimInstance(fleet, "task-b");
      expect(next.ok && next.lease.instanceId).to.equal(id);
      expect(await table.releaseTask("task-b")).to.deep.equal({ released: true, instanceId: id });
      expect(await table.releaseTask("task-b")).to.deep.equal({ released: false });
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

    it("a claim whose tag/scale-in-protection mirror fails is released, never left busy", async () => {
      const fleet = `f${suffix()}`;
      // An Auto Scaling group that does not exist: SetInstanceProtection fails right after the conditional write.
      const config = fleetConfig({ [fleet]: { autoScalingGroupName: `missing-asg-${suffix()}` } });
      await createLeaseTable(config);
      const table = new LeaseTable(config);
      const [id] = await readyFleet(table, fleet, 1);

      let error: Error | undefined;
      await table.claimInstance(fleet, "t-mirror").catch((e) => (error = e));
      expect(error?.message).to.contain(`claimed instance ${id} for task t-mirror but could not tag/protect it`);
      expect(await table.get(id)).to.include({ state: "READY" }).and.not.have.property("taskId");
      expect(await table.leaseOfTask("t-mirror")).to.equal(undefined);
      expect((await tagsOf(id))[LEASE_TAG]).to.equal("ready");
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
      let error: Error | undefined;
      await table.recordCommand(id, "t2", "cmd-2").catch((e) => (error = e));
      expect(error?.message).to.match(new RegExp(`instance ${id} is not leased to task t2`));
      await table.releaseTask("t1");
      expect((await table.get(id))?.commandId, "release clears the command").to.equal(undefined);
    });
  });

  describe("concurrency", () => {
    let serial: { url: string; proc: ChildProcess };
    before(async function () {
      this.timeout(60_000);
      serial = await startSerialMoto();
    });
    after(() => serial?.proc.kill("SIGTERM"));

    async function serialTable(fleet: string): Promise<LeaseTable> {
      const config = { ...fleetConfig({ [fleet]: {} }), endpoints: { dynamodb: serial.url } };
      await awsClient(DynamoDBClient, { region: config.region, endpoint: serial.url }).send(
        new CreateTableCommand(createTableInput(config.tables.leases, TABLE_SCHEMAS.leases)),
      );
      return new LeaseTable(config);
    }

    it("50 concurrent claims on 10 ready instances: exactly 10 succeed on distinct instances, 40 get no-capacity", async function () {
      this.timeout(120_000);
      const fleet = `f${suffix()}`;
      const table = await serialTable(fleet);
      const ids = await readyFleet(table, fleet, 10);

      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => table.claimInstance(fleet, `race-${i}`)));
      const won = results.filter((r) => r.ok);
      const lost = results.filter((r) => !r.ok);
      const claimed = won.map((r) => (r.ok ? r.lease.instanceId : ""));
      expect(new Set(claimed).size, "no instance twice").to.equal(claimed.length);
      expect(won).to.have.length(10);
      expect([...claimed].sort()).to.deep.equal([...ids].sort());
      expect(lost).to.have.length(40);
      for (const r of lost) expect(r).to.deep.equal({ ok: false, reason: "no-capacity", fleet });

      // The table agrees: every instance is busy with exactly the task that was told it won.
      const leases = await table.list(fleet);
      const byInstance = new Map(won.map((r) => (r.ok ? [r.lease.instanceId, r.lease.taskId] : ["", ""])));
      expect(leases.every((l) => l.state === "BUSY")).to.equal(true);
      for (const l of leases) expect(l.taskId, l.instanceId).to.equal(byInstance.get(l.instanceId));
    });

    it("concurrent claims for one task bind it to a single instance", async () => {
      const fleet = `f${suffix()}`;
      const table = await serialTable(fleet);
      await readyFleet(table, fleet, 5);
      const results = await Promise.all(Array.from({ length: 8 }, () => table.claimInstance(fleet, "same-task")));
      const instances = new Set(results.map((r) => (r.ok ? r.lease.instanceId : "none")));
      expect([...instances]).to.have.length(1);
      expect(instances.has("none")).to.equal(false);
      expect(results.filter((r) => r.ok && !r.resumed), "exactly one claim is new").to.have.length(1);
      expect((await table.list(fleet)).filter((l) => l.state === "BUSY")).to.have.length(1);
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
      expect(await table.claimInstance(def, "b")).to.deep.equal({ ok: false, reason: "no-capacity", fleet: def });
      const c = await table.claimInstance(gpu, "c");
      expect(c.ok && c.lease).to.include({ instanceId: gpuId, fleet: gpu });
    });
  });

  describe("scale-in protection mirror", () => {
    it("a busy instance is protected from scale-in and loses the protection on release", async () => {
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
      const sync = await syncFleet(config, fleet, table);
      expect(sync.registered).to.have.length(2);
      const claim = await table.claimInstance(fleet, "t1");
      if (!claim.ok) throw new Error("expected a claim");
      expect(await protectedIds()).to.deep.equal([claim.lease.instanceId]);
      await table.releaseTask("t1");
      expect(await protectedIds()).to.deep.equal([]);
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
