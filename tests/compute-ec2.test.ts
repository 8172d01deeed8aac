/**
 * Ec2Strategy: the lease table and EC2 instances are real (moto); SSM is aws-sdk-client-mock, because moto lacks
 * CancelCommand and its SendCommand targets every instance. Every assertion about a lease reads the real table.
 */
import { existsSync } from "node:fs";
import { DescribeImagesCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  InvalidCommandId,
  InvocationDoesNotExist,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
  type SendCommandCommandInput,
} from "@aws-sdk/client-ssm";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { expect } from "chai";
import { awsClient, resetClients } from "../runtime/aws/clients";
import { Ec2Strategy } from "../runtime/compute/ec2";
import { ConfigError, type RuntimeConfig } from "../runtime/config";
import { NoCapacityError } from "../runtime/errors";
import { AGENT_TASK_DOCUMENT_PARAMETERS } from "../runtime/fleet/document";
import { LeaseTable } from "../runtime/fleet/lease";
import { BOOT_TAG, FLEET_TAG } from "../runtime/fleet/tags";
import type { TaskRecord } from "../runtime/tasks/record";
import { createTables, ec2RuntimeConfig, suffix } from "./fixtures";

let imageId: string | undefined;

interface Setup {
  config: RuntimeConfig;
  leases: LeaseTable;
  strategy: Ec2Strategy;
  instances: Record<string, string[]>;
}

async function setup(fleets: Record<string, number>, leases?: (c: RuntimeConfig) => LeaseTable): Promise<Setup> {
  const s = suffix();
  const names = Object.fromEntries(Object.keys(fleets).map((f) => [f, `${f}-${s}`]));
  const config = ec2RuntimeConfig("ec2", Object.values(names), { deliveryTimeoutSeconds: 90, executionTimeoutSeconds: 5400 });
  await createTables(config, ["leases", "waiters"]);
  const table = leases ? leases(config) : new LeaseTable(config);
  const ec2 = awsClient(EC2Client, {});
  imageId ??= (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  const instances: Record<string, string[]> = {};
  for (const [key, count] of Object.entries(fleets)) {
    const fleet = names[key];
    instances[key] = [];
    if (!count) continue;
    const out = await ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        InstanceType: "t3.micro",
        MinCount: count,
        MaxCount: count,
        TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: FLEET_TAG, Value: fleet }, { Key: BOOT_TAG, Value: "ready" }] }],
      }),
    );
    for (const i of out.Instances!) {
      await table.registerInstance(fleet, i.InstanceId!);
      instances[key].push(i.InstanceId!);
    }
  }
  return { config, leases: table, strategy: new Ec2Strategy(config, table), instances };
}

function task(id: string, extra: Partial<TaskRecord> = {}): TaskRecord {
  const now = new Date().toISOString();
  return {
    task_id: id,
    user_id: "u1",
    status: "STARTING",
    repo_url: "https://github.com/example/repo",
    prompt: "fix the bug",
    created_at: now,
    updated_at: now,
    ...extra,
  };
}

const payloadUrl = (id: string) => `https://payload-bucket.s3.us-east-1.amazonaws.com/tasks/${id}/payload.json?X-Amz-Credential=AKIA%2F20300101&X-Amz-Signature=0a1b`;

describe("Ec2Strategy", () => {
  // Installed in before(), not at load time: a mock made while mocha loads files would be live in every other file.
  let ssm: AwsClientStub<SSMClient>;
  before(() => {
    ssm = mockClient(SSMClient);
  });
  before(() => resetClients());
  beforeEach(() => ssm.reset());
  after(() => ssm.restore());

  describe("startSession", () => {
    it("claims an instance and sends our document with explicit delivery and execution timeouts", async () => {
      const { strategy, config, leases, instances } = await setup({ default: 2 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
      const handle = await strategy.startSession({ task: task("t1"), payloadUrl: payloadUrl("t1") });

      expect(handle).to.deep.include({ type: "ec2", commandId: "cmd-1", documentName: config.ec2!.documentName, fleet: config.ec2!.defaultFleet });
      expect(instances.default).to.include(handle.instanceId);
      const calls = ssm.commandCalls(SendCommandCommand);
      expect(calls).to.have.length(1);
      const input = calls[0].args[0].input;
      expect(input.DocumentName).to.equal(config.ec2!.documentName).and.not.equal("AWS-RunShellScript");
      expect(input.InstanceIds).to.deep.equal([handle.instanceId]);
      expect(input.TimeoutSeconds).to.equal(90);
      expect(input.Parameters?.executionTimeout).to.deep.equal(["5400"]);
      expect(input.Parameters).to.deep.equal({
        taskId: ["t1"],
        payloadUrl: [payloadUrl("t1")],
        image: [config.ec2!.image],
        executionTimeout: ["5400"],
      });
      expect(await leases.get(handle.instanceId)).to.include({ state: "BUSY", taskId: "t1", commandId: "cmd-1" });
    });

    it("a fleet of the other architecture runs its own image (an ARM64 image fails on x86_64 instances)", async () => {
      const { strategy, config, instances } = await setup({ default: 1, gpu: 1 });
      const gpuFleet = Object.keys(config.ec2!.fleets).find((f) => f.startsWith("gpu-"))!;
      config.ec2!.fleets[gpuFleet].image = "public.ecr.aws/example/agent:1-amd64";
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
      const handle = await strategy.startSession({ task: task("t-gpu", { fleet: gpuFleet }), payloadUrl: payloadUrl("t-gpu") });
      expect(instances.gpu).to.include(handle.instanceId);
      expect(ssm.commandCalls(SendCommandCommand)[0].args[0].input.Parameters?.image).to.deep.equal(["public.ecr.aws/example/agent:1-amd64"]);
      await strategy.startSession({ task: task("t-arm"), payloadUrl: payloadUrl("t-arm") });
      expect(ssm.commandCalls(SendCommandCommand)[1].args[0].input.Parameters?.image).to.deep.equal([config.ec2!.image]);
    });

    it("a replayed start returns the same handle and sends nothing", async () => {
      const { strategy } = await setup({ default: 2 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
      const first = await strategy.startSession({ task: task("t1"), payloadUrl: payloadUrl("t1") });
      const again = await strategy.startSession({ task: task("t1"), payloadUrl: payloadUrl("t1") });
      expect(again).to.deep.equal(first);
      expect(ssm.commandCalls(SendCommandCommand)).to.have.length(1);
    });

    it("a start replayed after a crash between SendCommand and recording it finds that command and sends no second one", async () => {
      const { strategy, leases, config } = await setup({ default: 1 });
      // The first run claimed the instance and sent the command, then died before recordCommand.
      const first = await leases.claimInstance(config.ec2!.defaultFleet, "t-crash");
      if (!first.ok) throw new Error("expected a claim");
      ssm.on(ListCommandsCommand).resolves({
        Commands: [
          { CommandId: "cmd-cancelled", Status: "Cancelled", Parameters: { taskId: ["t-crash"] } },
          { CommandId: "cmd-other", Status: "Success", Parameters: { taskId: ["another-task"] } },
          { CommandId: "cmd-sent", Status: "InProgress", Parameters: { taskId: ["t-crash"] } },
        ],
      });
      const handle = await strategy.startSession({ task: task("t-crash"), payloadUrl: payloadUrl("t-crash") });
      expect(handle).to.include({ instanceId: first.lease.instanceId, commandId: "cmd-sent" });
      expect(ssm.commandCalls(SendCommandCommand)).to.have.length(0);
      const listInput = ssm.commandCalls(ListCommandsCommand)[0].args[0].input;
      expect(listInput.InstanceId).to.equal(first.lease.instanceId);
      expect(listInput.Filters).to.deep.equal([{ key: "DocumentName", value: config.ec2!.documentName }]);
      expect(await leases.get(first.lease.instanceId)).to.include({ taskId: "t-crash", commandId: "cmd-sent" });
    });

    it("the crash-recovery lookup reads past the first page of the instance's commands", async () => {
      const { strategy, leases, config } = await setup({ default: 1 });
      const first = await leases.claimInstance(config.ec2!.defaultFleet, "t-paged");
      if (!first.ok) throw new Error("expected a claim");
      ssm
        .on(ListCommandsCommand)
        .resolvesOnce({ Commands: [{ CommandId: "cmd-1", Status: "Success", Parameters: { taskId: ["older"] } }], NextToken: "p2" })
        .resolvesOnce({ Commands: [{ CommandId: "cmd-paged", Status: "InProgress", Parameters: { taskId: ["t-paged"] } }] });
      const handle = await strategy.startSession({ task: task("t-paged"), payloadUrl: payloadUrl("t-paged") });
      expect(handle.commandId).to.equal("cmd-paged");
      expect(ssm.commandCalls(ListCommandsCommand)).to.have.length(2);
      expect(ssm.commandCalls(ListCommandsCommand)[1].args[0].input.NextToken).to.equal("p2");
      expect(ssm.commandCalls(SendCommandCommand)).to.have.length(0);
    });

    it("a replayed start whose first run never sent a live command sends one now", async () => {
      const { strategy, leases, config } = await setup({ default: 1 });
      await leases.claimInstance(config.ec2!.defaultFleet, "t-unsent");
      ssm.on(ListCommandsCommand).resolves({ Commands: [{ CommandId: "cmd-old", Status: "Cancelled", Parameters: { taskId: ["t-unsent"] } }] });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-new" } });
      const handle = await strategy.startSession({ task: task("t-unsent"), payloadUrl: payloadUrl("t-unsent") });
      expect(handle.commandId).to.equal("cmd-new");
      expect(ssm.commandCalls(SendCommandCommand)).to.have.length(1);
    });

    it("two tasks are never bound to one instance", async () => {
      const { strategy } = await setup({ default: 2 });
      ssm.on(SendCommandCommand).callsFake((input: SendCommandCommandInput) => ({ Command: { CommandId: `cmd-${input.Parameters!.taskId[0]}` } }));
      const a = await strategy.startSession({ task: task("a"), payloadUrl: payloadUrl("a") });
      const b = await strategy.startSession({ task: task("b"), payloadUrl: payloadUrl("b") });
      expect(a.instanceId).to.not.equal(b.instanceId);
      let error: unknown;
      await strategy.startSession({ task: task("c"), payloadUrl: payloadUrl("c") }).catch((e) => (error = e));
      expect(error).to.be.instanceOf(NoCapacityError);
      expect((error as NoCapacityError).fleet).to.match(/^default-/);
    });

    it("dispatches to the task's named fleet only", async () => {
      const { strategy, config, instances } = await setup({ default: 0, gpu: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-gpu" } });
      const gpu = Object.keys(config.ec2!.fleets).find((f) => f.startsWith("gpu"))!;
      const handle = await strategy.startSession({ task: task("g", { fleet: gpu }), payloadUrl: payloadUrl("g") });
      expect(handle).to.include({ fleet: gpu, instanceId: instances.gpu[0] });
      let error: unknown;
      await strategy.startSession({ task: task("d"), payloadUrl: payloadUrl("d") }).catch((e) => (error = e));
      expect(error, "the default fleet has no instance; gpu is not borrowed").to.be.instanceOf(NoCapacityError);
    });

    it("an unknown fleet fails naming the fleets that exist, without claiming anything", async () => {
      const { strategy, leases, config } = await setup({ default: 1 });
      let error: Error | undefined;
      await strategy.startSession({ task: task("t", { fleet: "nope" }), payloadUrl: payloadUrl("t") }).catch((e) => (error = e));
      expect(error?.message).to.contain("EC2 fleet 'nope' does not exist").and.contain(config.ec2!.defaultFleet);
      expect((await leases.list()).every((l) => l.state === "READY")).to.equal(true);
    });

    it("a SendCommand failure releases the instance and rethrows", async () => {
      const { strategy, leases, instances } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).rejects(Object.assign(new Error("document not found"), { name: "InvalidDocument" }));
      let error: Error | undefined;
      await strategy.startSession({ task: task("t1"), payloadUrl: payloadUrl("t1") }).catch((e) => (error = e));
      expect(error?.name).to.equal("InvalidDocument");
      const lease = await leases.get(instances.default[0]);
      expect(lease?.state).to.equal("READY");
      expect(lease?.taskId).to.equal(undefined);
      expect(await leases.leaseOfTask("t1")).to.equal(undefined);
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-2" } });
      const next = await strategy.startSession({ task: task("t2"), payloadUrl: payloadUrl("t2") });
      expect(next.instanceId, "the instance is claimable again").to.equal(instances.default[0]);
    });

    it("a failure after SendCommand (recording the command) cancels the sent command and releases the instance", async () => {
      class FailingRecord extends LeaseTable {
        override async recordCommand(): Promise<void> {
          throw new Error("DynamoDB unavailable");
        }
      }
      const { strategy, leases, instances } = await setup({ default: 1 }, (c) => new FailingRecord(c));
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-x" } });
      ssm.on(CancelCommandCommand).resolves({});
      let error: Error | undefined;
      await strategy.startSession({ task: task("t1"), payloadUrl: payloadUrl("t1") }).catch((e) => (error = e));
      expect(error?.message).to.equal("DynamoDB unavailable");
      expect(ssm.commandCalls(CancelCommandCommand).map((c) => c.args[0].input)).to.deep.equal([
        { CommandId: "cmd-x", InstanceIds: [instances.default[0]] },
      ]);
      expect(await leases.get(instances.default[0])).to.include({ state: "READY" });
    });

    it("a parameter SSM would refuse fails before any instance is claimed", async () => {
      const { strategy, leases } = await setup({ default: 1 });
      let error: Error | undefined;
      await strategy.startSession({ task: task("t1"), payloadUrl: "https://bucket/key with space" }).catch((e) => (error = e));
      expect(error?.message).to.match(/parameter payloadUrl is a value of \d+ characters \(not shown/);
      expect(ssm.commandCalls(SendCommandCommand)).to.have.length(0);
      expect((await leases.list()).every((l) => l.state === "READY")).to.equal(true);
    });

    for (const deliveryTimeoutSeconds of [undefined, 0, 29, 90.5, 2_592_001]) {
      it(`a delivery timeout of ${String(deliveryTimeoutSeconds)} fails naming the setting, before any instance is claimed`, async () => {
        const { config, leases } = await setup({ default: 1 });
        const strategy = new Ec2Strategy({ ...config, ec2: { ...config.ec2!, deliveryTimeoutSeconds: deliveryTimeoutSeconds as number } }, leases);
        let error: Error | undefined;
        await strategy.startSession({ task: task("t1"), payloadUrl: payloadUrl("t1") }).catch((e) => (error = e));
        expect(error).to.be.instanceOf(ConfigError);
        expect(error?.message).to.contain(`ec2.deliveryTimeoutSeconds is ${String(deliveryTimeoutSeconds)}`).and.contain("between 30 and 2592000");
        expect(ssm.commandCalls(SendCommandCommand)).to.have.length(0);
        expect((await leases.list()).every((l) => l.state === "READY")).to.equal(true);
      });
    }

    it("a hostile prompt, repo URL and branch never reach the command: only validated ids and the payload URI do", async () => {
      const { strategy } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-h" } });
      const hostile = ["'", '"', "$(touch /tmp/x)", "`touch /tmp/x`", "line1\nline2"];
      const body = "B".repeat(1024 * 1024);
      const tmpXBefore = existsSync("/tmp/x");
      await strategy.startSession({
        task: task("t-hostile", {
          prompt: `${hostile.join(" ")} ${body}`,
          repo_url: `https://github.com/x/y'$(touch /tmp/x)`,
          branch: 'main"; touch /tmp/x; "',
        }),
        payloadUrl: payloadUrl("t-hostile"),
      });
      const input = ssm.commandCalls(SendCommandCommand)[0].args[0].input;
      const sent = JSON.stringify(input);
      for (const fragment of ["$(", "`", "touch", "BBBBBBBB", "github.com", "main", "line1", "\\n"]) expect(sent).to.not.contain(fragment);
      const values = Object.values(input.Parameters!).flat().join("|");
      for (const fragment of hostile) expect(values).to.not.contain(fragment);
      expect(sent.length).to.be.lessThan(1200);
      expect(input.Parameters!.payloadUrl).to.deep.equal([payloadUrl("t-hostile")]);
      for (const [name, values] of Object.entries(input.Parameters!)) {
        const spec = AGENT_TASK_DOCUMENT_PARAMETERS[name as keyof typeof AGENT_TASK_DOCUMENT_PARAMETERS];
        expect(spec, name).to.not.equal(undefined);
        for (const v of values) expect(new RegExp(spec.allowedPattern).test(v), `${name}=${v}`).to.equal(true);
      }
      if (!tmpXBefore) expect(existsSync("/tmp/x")).to.equal(false);
    });
  });

  describe("pollSession", () => {
    const cases: [status: string, details: string, code: number, state: string][] = [
      ["Pending", "Pending", -1, "PENDING"],
      ["InProgress", "InProgress", -1, "RUNNING"],
      ["Delayed", "Delayed", -1, "PENDING"],
      ["Success", "Success", 0, "EXITED"],
      ["Failed", "Failed", 2, "EXITED"],
      ["Cancelled", "Canceled", -1, "LOST"],
      ["TimedOut", "Execution Timed Out", -1, "EXITED"],
      ["TimedOut", "Delivery Timed Out", -1, "LOST"],
      ["Failed", "Undeliverable", -1, "LOST"],
      ["Failed", "Terminated", -1, "LOST"],
      ["Cancelling", "Cancelling", -1, "RUNNING"],
    ];
    it("maps every invocation status, with the agent's exit code from ResponseCode", async () => {
      const { strategy } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-p" } });
      const handle = await strategy.startSession({ task: task("tp"), payloadUrl: payloadUrl("tp") });
      for (const [Status, StatusDetails, ResponseCode, state] of cases) {
        ssm.on(GetCommandInvocationCommand).resolves({ Status: Status as never, StatusDetails, ResponseCode });
        const polled = await strategy.pollSession(handle);
        expect(polled.state, `${Status}/${StatusDetails}`).to.equal(state);
        if (ResponseCode >= 0) expect(polled.exitCode).to.equal(ResponseCode);
      }
      expect(ssm.commandCalls(GetCommandInvocationCommand)[0].args[0].input).to.deep.equal({ CommandId: "cmd-p", InstanceId: handle.instanceId });
    });

    it("InvocationDoesNotExist just after dispatch is PENDING, not a failure", async () => {
      const { strategy } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-n" } });
      const handle = await strategy.startSession({ task: task("tn"), payloadUrl: payloadUrl("tn") });
      ssm.on(GetCommandInvocationCommand).rejects(new InvocationDoesNotExist({ message: "not yet", $metadata: {} }));
      expect(await strategy.pollSession(handle)).to.include({ state: "PENDING" });
    });

    it("an instance whose lease was dropped (instance gone) is LOST even while SSM still says InProgress", async () => {
      const { strategy, leases } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-l" } });
      const handle = await strategy.startSession({ task: task("tl"), payloadUrl: payloadUrl("tl") });
      ssm.on(GetCommandInvocationCommand).resolves({ Status: "InProgress", StatusDetails: "InProgress", ResponseCode: -1 });
      await leases.dropInstance(handle.instanceId);
      const polled = await strategy.pollSession(handle);
      expect(polled.state).to.equal("LOST");
      expect(polled.reason).to.contain(handle.instanceId);
    });
  });

  describe("stopSession", () => {
    it("cancels the command and releases the instance", async () => {
      const { strategy, leases } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-s" } });
      ssm.on(CancelCommandCommand).resolves({});
      const handle = await strategy.startSession({ task: task("ts"), payloadUrl: payloadUrl("ts") });
      await strategy.stopSession(handle, "cancelled by user");
      expect(ssm.commandCalls(CancelCommandCommand).map((c) => c.args[0].input)).to.deep.equal([
        { CommandId: "cmd-s", InstanceIds: [handle.instanceId] },
      ]);
      expect(await leases.get(handle.instanceId)).to.include({ state: "READY" });
      expect(await leases.leaseOfTask("ts")).to.equal(undefined);
    });

    it("tolerates a command that already finished or is unknown, and still releases", async () => {
      const { strategy, leases } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-f" } });
      ssm.on(CancelCommandCommand).rejects(new InvalidCommandId({ message: "gone", $metadata: {} }));
      const handle = await strategy.startSession({ task: task("tf"), payloadUrl: payloadUrl("tf") });
      await strategy.stopSession(handle, "x");
      await strategy.stopSession(handle, "x again");
      expect(await leases.get(handle.instanceId)).to.include({ state: "READY" });
    });

    it("releases the instance even when the cancel fails, then reports the failure", async () => {
      const { strategy, leases } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-e" } });
      ssm.on(CancelCommandCommand).rejects(Object.assign(new Error("throttled"), { name: "ThrottlingException" }));
      const handle = await strategy.startSession({ task: task("te"), payloadUrl: payloadUrl("te") });
      let error: Error | undefined;
      await strategy.stopSession(handle, "x").catch((e) => (error = e));
      expect(error?.message).to.equal("throttled");
      expect(await leases.get(handle.instanceId)).to.include({ state: "READY" });
    });

    it("a stale handle never releases an instance another task has claimed since", async () => {
      const { strategy, leases } = await setup({ default: 1 });
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-old" } });
      ssm.on(CancelCommandCommand).resolves({});
      const old = await strategy.startSession({ task: task("old"), payloadUrl: payloadUrl("old") });
      await strategy.stopSession(old, "done");
      ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-new" } });
      await strategy.startSession({ task: task("new"), payloadUrl: payloadUrl("new") });
      await strategy.stopSession(old, "repeated stop of the old task");
      expect(await leases.get(old.instanceId)).to.include({ state: "BUSY", taskId: "new", commandId: "cmd-new" });
    });
  });

  describe("releaseTask", () => {
    it("gives back the instance a task claimed before any command was sent, and only that task's", async () => {
      const { strategy, leases, config } = await setup({ default: 2 });
      const held = await leases.claimInstance(config.ec2!.defaultFleet, "t-held");
      const other = await leases.claimInstance(config.ec2!.defaultFleet, "t-other");
      if (!held.ok || !other.ok) throw new Error("setup: both claims should succeed");
      await strategy.releaseTask(task("t-held"));
      await strategy.releaseTask(task("t-held"));
      await strategy.releaseTask(task("t-never-claimed"));
      expect(await leases.get(held.lease.instanceId)).to.include({ state: "READY" });
      expect(await leases.leaseOfTask("t-held")).to.equal(undefined);
      expect(await leases.get(other.lease.instanceId)).to.include({ state: "BUSY", taskId: "t-other" });
    });
  });
});
