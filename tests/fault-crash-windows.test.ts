/**
 * Fault injection: the orchestrator dies (its process stops mid-step, nothing of its failure path runs) in each
 * window between two writes of a start — after the slot claim and before the task is STARTING; after the EC2 lease
 * claim and before SendCommand; after the start request went out and before the handle reached the task record
 * (ECS, EC2 before and after the lease records the command, AgentCore, local). One reconciler pass then leaves
 * nothing: no non-terminal task, no held slot, no BUSY lease, no compute still running for the task.
 *
 * The backends are real: ECS over moto, the EC2 lease table and instances over moto with SSM scripted (moto lacks
 * CancelCommand and ListCommands filters), AgentCore scripted, local a real child process.
 */
import { BedrockAgentCoreClient, InvokeAgentRuntimeCommand, StopRuntimeSessionCommand } from "@aws-sdk/client-bedrock-agentcore";
import { CreateClusterCommand, DescribeTasksCommand, ECSClient, ListTasksCommand, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { CreateSecurityGroupCommand, DescribeImagesCommand, DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2";
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
  type Command,
} from "@aws-sdk/client-ssm";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { awsClient, resetClients } from "../runtime/aws/clients";
import { AgentCoreStrategy, sessionIdForTask } from "../runtime/compute/agentcore";
import { Ec2Strategy } from "../runtime/compute/ec2";
import { EcsStrategy, ecsStartedBy } from "../runtime/compute/ecs";
import type { BackendType } from "../runtime/compute/handle";
import { LocalStrategy, PID_FILE, processRunsTask } from "../runtime/compute/local";
import type { ComputeStrategy } from "../runtime/compute/strategy";
import type { RuntimeConfig } from "../runtime/config";
import { LeaseTable } from "../runtime/fleet/lease";
import { BOOT_TAG, FLEET_TAG } from "../runtime/fleet/tags";
import { runTaskLocally } from "../runtime/orchestrator/local-orchestrator";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import type { OrchestratorExecutions } from "../runtime/reconciler/executions";
import { reconcileOnce } from "../runtime/reconciler/reconcile";
import { createRuntime, type Runtime } from "../runtime/runtime";
import { DynamoEventLog } from "../runtime/tasks/events";
import { isTerminal } from "../runtime/tasks/status";
import { DynamoTaskStore } from "../runtime/tasks/store";
import { createTables, createTask, FakeClock, FakeStrategy, localRunnerCallbacks, suffix, testConfig } from "./orchestrator-fixtures";

/** No orchestrator runs any more: the one that died is gone. */
const NONE_RUNNING: OrchestratorExecutions = {
  running: async () => new Set(),
  redrive: async () => "exists",
  describe: async () => "execution FAILED: the process died",
};

const EXECUTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:orch:1/durable-execution/t/1";

/**
 * Kill the orchestrator at a point: the first call `at` matches never returns (the process is gone: no catch, no
 * failure path, no finalize runs), and `died` resolves. Later calls pass through (the reconciler's).
 */
function deathAt<A extends unknown[], R>(fn: (...args: A) => Promise<R>, at: (...args: A) => boolean) {
  let dead = false;
  let died!: () => void;
  const diedP = new Promise<void>((r) => (died = r));
  const wrapped = (...args: A): Promise<R> => {
    if (!dead && at(...args)) {
      dead = true;
      died();
      return new Promise<R>(() => undefined);
    }
    return fn(...args);
  };
  return { wrapped, died: diedP };
}

interface World {
  rt: Runtime;
  clock: FakeClock;
  config: RuntimeConfig;
}

function world(config: RuntimeConfig, strategies: Partial<{ [T in BackendType]: ComputeStrategy<T> }>): World {
  const clock = new FakeClock(Date.now());
  const rt = createRuntime(config, {
    now: clock.now,
    tasks: new DynamoTaskStore(config, { now: clock.now }),
    events: new DynamoEventLog(config, { now: clock.now }),
    callbacks: localRunnerCallbacks(),
    strategies,
  });
  return { rt, clock, config };
}

/** Orchestrate until the injected death (the orchestration never returns). */
async function orchestrateUntil(w: World, taskId: string, died: Promise<void>): Promise<void> {
  void runTaskLocally(w.rt, taskId, { sleep: async () => undefined, waitSeconds: 30, maxWaitSeconds: 30 });
  await died;
}

/** The reconciler's one pass, well past the dispatch grace; what it did to this task. */
async function reconcile(w: World, taskId: string): Promise<string[]> {
  w.clock.advance(600);
  const report = await reconcileOnce(w.rt, { executions: NONE_RUNNING });
  return report.applied.filter((a) => a.action.taskId === taskId && a.outcome === "done").map((a) => a.action.kind);
}

async function dieThenReconcile(w: World, taskId: string, died: Promise<void>): Promise<string[]> {
  await orchestrateUntil(w, taskId, died);
  return reconcile(w, taskId);
}

/** The end state every test asserts, besides its backend's own "nothing runs". */
async function expectNothingHeld(w: World, taskId: string): Promise<void> {
  const task = (await w.rt.tasks.get(taskId))!;
  expect(isTerminal(task.status), `task is ${task.status}`).to.equal(true);
  expect(task.released_at, "released").to.be.a("string");
  expect(await new ConcurrencySlots(w.config).holders(task.user_id), "held slots").to.deep.equal([]);
  if (w.config.ec2) expect(await new LeaseTable(w.config).leaseOfTask(taskId), "BUSY lease of the finished task").to.equal(undefined);
}

describe("fault injection: the orchestrator dies between two writes of a start; one reconciler pass leaves nothing", function () {
  this.timeout(60_000);
  let base: RuntimeConfig;

  before(async () => {
    base = testConfig({ heartbeatTimeoutSeconds: 180, computeStopGraceSeconds: 120 });
    await createTables(base);
  });

  it("between the slot claim and STARTING: the task is failed and its slot given back", async () => {
    const strategy: FakeStrategy<"ecs"> = new FakeStrategy("ecs", () => w.rt, new FakeClock(), async () => ({ state: "RUNNING" }));
    const w = world(base, { ecs: strategy });
    const task = await createTask(w.rt, { user_id: `u-${suffix()}`, backend: "ecs", execution_arn: EXECUTION_ARN });
    const death = deathAt(w.rt.tasks.transition.bind(w.rt.tasks), (_id, to) => to === "STARTING");
    w.rt.tasks.transition = death.wrapped;

    await orchestrateUntil(w, task.task_id, death.died);
    expect(await new ConcurrencySlots(base).holders(task.user_id), "the slot the dead orchestrator took").to.deep.equal([task.task_id]);
    expect(await reconcile(w, task.task_id)).to.deep.equal(["fail"]);
    expect(strategy.starts, "nothing started").to.deep.equal([]);
    await expectNothingHeld(w, task.task_id);
  });

  describe("ECS (moto)", () => {
    let config: RuntimeConfig;
    before(async () => {
      const s = randomBytes(4).toString("hex");
      const ec2 = awsClient(EC2Client, { region: "us-east-1" });
      const ecs = awsClient(ECSClient, { region: "us-east-1" });
      const vpcId = (await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] }))).Vpcs![0].VpcId!;
      const subnet = (await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] }))).Subnets![0].SubnetId!;
      const sg = await ec2.send(new CreateSecurityGroupCommand({ GroupName: `crash-${s}`, Description: "agent tasks", VpcId: vpcId }));
      await ecs.send(new CreateClusterCommand({ clusterName: `crash-${s}` }));
      await ecs.send(
        new RegisterTaskDefinitionCommand({
          family: `crash-${s}`,
          networkMode: "awsvpc",
          requiresCompatibilities: ["FARGATE"],
          cpu: "256",
          memory: "512",
          containerDefinitions: [{ name: "agent", image: "public.ecr.aws/docker/library/busybox:latest", memory: 512, essential: true }],
        }),
      );
      config = { ...base, ecs: { cluster: `crash-${s}`, taskDefinition: `crash-${s}`, containerName: "agent", subnets: [subnet], securityGroups: [sg.GroupId!] } };
    });

    /** Fargate tasks of this agent task that ECS still means to run. */
    async function runningEcsTasks(taskId: string): Promise<string[]> {
      const ecs = awsClient(ECSClient, { region: "us-east-1" });
      const arns = (await ecs.send(new ListTasksCommand({ cluster: config.ecs!.cluster, startedBy: ecsStartedBy(taskId) }))).taskArns ?? [];
      if (!arns.length) return [];
      const tasks = (await ecs.send(new DescribeTasksCommand({ cluster: config.ecs!.cluster, tasks: arns }))).tasks ?? [];
      return tasks.filter((t) => t.desiredStatus !== "STOPPED").map((t) => t.taskArn!);
    }

    it("between RunTask and the handle write: the reconciler finds the Fargate task by startedBy and stops it", async () => {
      const w = world(config, { ecs: new EcsStrategy(config) });
      const task = await createTask(w.rt, { user_id: `u-${suffix()}`, backend: "ecs", execution_arn: EXECUTION_ARN });
      const death = deathAt(w.rt.tasks.update.bind(w.rt.tasks), (_id, fields) => fields.compute_metadata !== undefined);
      w.rt.tasks.update = death.wrapped;

      const done = await dieThenReconcile(w, task.task_id, death.died);
      expect(done).to.deep.equal(["fail"]);
      expect((await w.rt.tasks.get(task.task_id))!.compute_metadata, "the handle never reached the record").to.equal(undefined);
      expect(await runningEcsTasks(task.task_id), "Fargate task still running").to.deep.equal([]);
      await expectNothingHeld(w, task.task_id);
    });
  });

  describe("EC2 fleet (lease table and instances in moto, SSM scripted)", () => {
    let ssm: AwsClientStub<SSMClient>;
    /** SSM as the scripted service sees it: every command sent, and its status. */
    let commands: Command[];
    before(() => {
      resetClients();
      ssm = mockClient(SSMClient);
    });
    after(() => ssm.restore());
    beforeEach(() => {
      ssm.reset();
      commands = [];
      let n = 0;
      ssm.on(SendCommandCommand).callsFake(async (input) => {
        const command: Command = { CommandId: `cmd-${++n}-${suffix()}`, DocumentName: input.DocumentName, InstanceIds: input.InstanceIds, Parameters: input.Parameters, Status: "InProgress" };
        commands.push(command);
        return { Command: command };
      });
      ssm.on(ListCommandsCommand).callsFake(async (input) => ({
        Commands: commands.filter((c) => (!input.InstanceId || c.InstanceIds?.includes(input.InstanceId)) && (input.Filters ?? []).every((f: { key?: string; value?: string }) => f.key !== "DocumentName" || f.value === c.DocumentName)),
      }));
      ssm.on(CancelCommandCommand).callsFake(async (input) => {
        for (const c of commands) if (c.CommandId === input.CommandId) c.Status = "Cancelled";
        return {};
      });
      ssm.on(GetCommandInvocationCommand).callsFake(async (input) => ({ Status: commands.find((c) => c.CommandId === input.CommandId)?.Status ?? "InProgress" }));
    });

    async function fleetWorld(): Promise<{ w: World; leases: LeaseTable; instanceId: string }> {
      const s = randomBytes(3).toString("hex");
      const fleet = `crash${s}`;
      const config: RuntimeConfig = { ...base, ec2: { ...base.ec2!, documentName: `doc-${s}`, fleets: { [fleet]: {} }, defaultFleet: fleet } };
      const leases = new LeaseTable(config);
      const ec2 = awsClient(EC2Client, {});
      const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
      const out = await ec2.send(
        new RunInstancesCommand({ ImageId: imageId, InstanceType: "t3.micro", MinCount: 1, MaxCount: 1, TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: FLEET_TAG, Value: fleet }, { Key: BOOT_TAG, Value: "ready" }] }] }),
      );
      const instanceId = out.Instances![0].InstanceId!;
      expect((await leases.registerInstance(fleet, instanceId)).registered).to.equal(true);
      const w = world(config, { ec2: new Ec2Strategy(config, leases) });
      // The document takes only an https payload URL (a presigned S3 GET in AWS); these payloads are files.
      w.rt.payloads.agentLocator = async (uri) => `https://payloads.example.test/${encodeURIComponent(uri.split("/").slice(-2).join("/"))}`;
      return { w, leases, instanceId };
    }

    const running = (taskId: string) => commands.filter((c) => c.Parameters?.taskId?.[0] === taskId && c.Status === "InProgress").map((c) => c.CommandId);

    it("between the lease claim and SendCommand: the task is failed and the instance given back", async () => {
      const { w, leases, instanceId } = await fleetWorld();
      const task = await createTask(w.rt, { user_id: `u-${suffix()}`, backend: "ec2", execution_arn: EXECUTION_ARN });
      let dying!: () => void;
      const died = new Promise<void>((r) => (dying = r));
      ssm.on(SendCommandCommand).callsFake(() => {
        dying();
        return new Promise(() => undefined);
      });

      const done = await dieThenReconcile(w, task.task_id, died);
      expect(done).to.deep.equal(["fail"]);
      expect(await leases.get(instanceId)).to.include({ state: "READY" });
      expect(commands, "no command was ever sent").to.deep.equal([]);
      await expectNothingHeld(w, task.task_id);
    });

    it("between SendCommand and recording it on the lease: the reconciler finds the command on the instance and cancels it", async () => {
      const { w, leases, instanceId } = await fleetWorld();
      const task = await createTask(w.rt, { user_id: `u-${suffix()}`, backend: "ec2", execution_arn: EXECUTION_ARN });
      const death = deathAt(leases.recordCommand.bind(leases), (..._args: unknown[]) => true);
      leases.recordCommand = death.wrapped;

      const done = await dieThenReconcile(w, task.task_id, death.died);
      expect(done).to.deep.equal(["fail"]);
      expect(commands, "one command went out").to.have.length(1);
      expect(running(task.task_id), "command still running").to.deep.equal([]);
      expect(await leases.get(instanceId)).to.include({ state: "READY" });
      await expectNothingHeld(w, task.task_id);
    });

    it("between recording the command on the lease and the handle write: the command is cancelled, the instance given back", async () => {
      const { w, leases, instanceId } = await fleetWorld();
      const task = await createTask(w.rt, { user_id: `u-${suffix()}`, backend: "ec2", execution_arn: EXECUTION_ARN });
      const death = deathAt(w.rt.tasks.update.bind(w.rt.tasks), (_id, fields) => fields.compute_metadata !== undefined);
      w.rt.tasks.update = death.wrapped;

      const done = await dieThenReconcile(w, task.task_id, death.died);
      expect(done).to.deep.equal(["fail"]);
      expect(commands).to.have.length(1);
      expect(running(task.task_id), "command still running").to.deep.equal([]);
      expect(await leases.get(instanceId)).to.include({ state: "READY" });
      await expectNothingHeld(w, task.task_id);
    });
  });

  it("AgentCore, between InvokeAgentRuntime and the handle write: the session is stopped", async () => {
    const agentcore = mockClient(BedrockAgentCoreClient);
    try {
      agentcore.on(InvokeAgentRuntimeCommand).resolves({ contentType: "application/json", statusCode: 200, response: Readable.from([Buffer.from("{}")]) as never });
      agentcore.on(StopRuntimeSessionCommand).resolves({});
      const w = world(base, { agentcore: new AgentCoreStrategy(base, { responseReadTimeoutMs: 100 }) });
      const task = await createTask(w.rt, { user_id: `u-${suffix()}`, backend: "agentcore", execution_arn: EXECUTION_ARN });
      const death = deathAt(w.rt.tasks.update.bind(w.rt.tasks), (_id, fields) => fields.compute_metadata !== undefined);
      w.rt.tasks.update = death.wrapped;

      const done = await dieThenReconcile(w, task.task_id, death.died);
      expect(done).to.deep.equal(["fail"]);
      expect(agentcore.commandCalls(InvokeAgentRuntimeCommand)).to.have.length(1);
      expect(agentcore.commandCalls(StopRuntimeSessionCommand).map((c) => c.args[0].input.runtimeSessionId)).to.deep.equal([sessionIdForTask(task.task_id)]);
      await expectNothingHeld(w, task.task_id);
    } finally {
      agentcore.restore();
    }
  });

  it("local, between spawning the agent and the handle write: the agent process is found by its run's pid file and stopped", async () => {
    // An agent that never reports and never exits by itself.
    const config: RuntimeConfig = { ...base, local: { ...base.local!, command: [process.execPath, "-e", "setInterval(() => undefined, 1000)"] } };
    const local = new LocalStrategy(config, { stopGraceMs: 2000 });
    const w = world(config, { local });
    const task = await createTask(w.rt, { user_id: `u-${suffix()}`, backend: "local", execution_arn: EXECUTION_ARN });
    const death = deathAt(w.rt.tasks.update.bind(w.rt.tasks), (_id, fields) => fields.compute_metadata !== undefined);
    w.rt.tasks.update = death.wrapped;

    await orchestrateUntil(w, task.task_id, death.died);
    const { pid } = JSON.parse(readFileSync(join(local.runDirOf(task.task_id), PID_FILE), "utf8")) as { pid: number };
    try {
      expect(processRunsTask(pid, task.task_id), "the agent the dead orchestrator started").to.equal(true);
      expect(await reconcile(w, task.task_id)).to.deep.equal(["fail"]);
      expect(processRunsTask(pid, task.task_id), "agent process still running").to.equal(false);
      await expectNothingHeld(w, task.task_id);
    } finally {
      // Whatever the outcome, this test leaves no process behind.
      if (processRunsTask(pid, task.task_id)) process.kill(-pid, "SIGKILL");
    }
  });
});
