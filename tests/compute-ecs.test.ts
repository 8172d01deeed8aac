import { expect } from "chai";
import {
  ClusterNotFoundException,
  DescribeTasksCommand,
  ECSClient,
  InvalidParameterException,
  RunTaskCommand,
  StopTaskCommand,
  AccessDeniedException,
  type Task,
  type TaskStopCode,
} from "@aws-sdk/client-ecs";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import type { RuntimeConfig } from "../runtime/config";
import { ConfigError } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { isTransientError } from "../runtime/errors";
import type { TaskRecord } from "../runtime/tasks/record";
import {
  ECS_AGENT_ENV_NAMES,
  ECS_LOSS_STOP_CODES,
  EcsStrategy,
  ecsClientToken,
  ecsStartedBy,
  mapEcsTask,
} from "../runtime/compute/ecs";
import type { SessionStatus } from "../runtime/compute/strategy";

const CONTAINER = "agent";
const TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/agents/0f1e2d3c4b5a";

function config(overrides: Partial<NonNullable<RuntimeConfig["ecs"]>> = {}, withEcs = true): RuntimeConfig {
  return {
    region: "eu-west-1",
    tables: { tasks: "tasks-t", events: "events-t", leases: "leases-t", concurrency: "conc-t", repos: "repos-t" },
    payload: { kind: "s3", bucket: "payloads" },
    defaultBackend: "ecs",
    enabledBackends: ["ecs"],
    ...(withEcs
      ? {
          ecs: {
            cluster: "agents",
            taskDefinition: "agent-task",
            containerName: CONTAINER,
            subnets: ["subnet-a", "subnet-b"],
            securityGroups: ["sg-1"],
            ...overrides,
          },
        }
      : {}),
    limits: DEFAULT_LIMITS,
  };
}

function taskRecord(fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: "7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f",
    user_id: "user-1",
    status: "STARTING",
    repo_url: "https://github.com/acme/widgets",
    prompt: "fix the bug",
    created_at: "2025-01-01T00:00:00Z",
    updated_at: "2025-01-01T00:00:00Z",
    ...fields,
  };
}

const PAYLOAD_URL = "https://payloads.s3.eu-west-1.amazonaws.com/tasks/t/payload.json?X-Amz-Signature=abc";

function stopped(fields: Partial<Task>, exitCode?: number, containerReason?: string): Task {
  return {
    taskArn: TASK_ARN,
    lastStatus: "STOPPED",
    containers: [{ name: CONTAINER, ...(exitCode !== undefined ? { exitCode } : {}), ...(containerReason ? { reason: containerReason } : {}) }],
    ...fields,
  };
}

describe("ECS strategy: mapEcsTask (every lastStatus, stopCode and exit-code case)", () => {
  const cases: Array<{ name: string; task: Task | undefined; expect: Partial<SessionStatus> }> = [
    { name: "PROVISIONING is PENDING", task: { lastStatus: "PROVISIONING" }, expect: { state: "PENDING", raw: "PROVISIONING" } },
    { name: "PENDING is PENDING", task: { lastStatus: "PENDING" }, expect: { state: "PENDING", raw: "PENDING" } },
    { name: "ACTIVATING is PENDING", task: { lastStatus: "ACTIVATING" }, expect: { state: "PENDING", raw: "ACTIVATING" } },
    { name: "RUNNING is RUNNING", task: { lastStatus: "RUNNING" }, expect: { state: "RUNNING", raw: "RUNNING" } },
    { name: "DEACTIVATING is still RUNNING (outcome not final)", task: { lastStatus: "DEACTIVATING" }, expect: { state: "RUNNING", raw: "DEACTIVATING" } },
    { name: "STOPPING is still RUNNING", task: { lastStatus: "STOPPING", stopCode: "SpotInterruption" }, expect: { state: "RUNNING", raw: "STOPPING" } },
    { name: "DEPROVISIONING is still RUNNING", task: { lastStatus: "DEPROVISIONING" }, expect: { state: "RUNNING", raw: "DEPROVISIONING" } },
    {
      name: "STOPPED, EssentialContainerExited, exit 0 is EXITED 0",
      task: stopped({ stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" }, 0),
      expect: { state: "EXITED", exitCode: 0, raw: "STOPPED", reason: "EssentialContainerExited: Essential container in task exited" },
    },
    {
      name: "STOPPED, EssentialContainerExited, exit 2 is EXITED 2",
      task: stopped({ stopCode: "EssentialContainerExited" }, 2),
      expect: { state: "EXITED", exitCode: 2 },
    },
    {
      name: "STOPPED, UserInitiated with the agent's exit code is EXITED with that code",
      task: stopped({ stopCode: "UserInitiated", stoppedReason: "cancelled by user-1" }, 143),
      expect: { state: "EXITED", exitCode: 143, reason: "UserInitiated: cancelled by user-1" },
    },
    {
      name: "STOPPED, UserInitiated before the container ran (no exit code) is LOST",
      task: stopped({ stopCode: "UserInitiated", stoppedReason: "cancelled" }),
      expect: { state: "LOST", reason: "UserInitiated: cancelled" },
    },
    {
      name: "STOPPED without a stopCode but with an exit code is EXITED",
      task: stopped({}, 1),
      expect: { state: "EXITED", exitCode: 1 },
    },
    {
      name: "STOPPED, TaskFailedToStart with CannotPullContainerError (no exit code) is LOST with the container's reason",
      task: stopped(
        { stopCode: "TaskFailedToStart", stoppedReason: "CannotPullContainerError: pull image manifest has been retried 5 time(s)" },
        undefined,
        "CannotPullContainerError: ref not found",
      ),
      expect: {
        state: "LOST",
        reason:
          "TaskFailedToStart: CannotPullContainerError: pull image manifest has been retried 5 time(s): container agent: CannotPullContainerError: ref not found",
      },
    },
    {
      name: "STOPPED, EssentialContainerExited but the agent container has no exit code is LOST",
      task: stopped({ stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" }),
      expect: { state: "LOST" },
    },
    {
      name: "STOPPED with no container of the configured name is LOST, naming the container",
      task: { lastStatus: "STOPPED", stopCode: "EssentialContainerExited", containers: [{ name: "sidecar", exitCode: 0 }] },
      expect: { state: "LOST", reason: "EssentialContainerExited: the task has no container named 'agent'" },
    },
    {
      name: "DELETED is judged like STOPPED",
      task: { ...stopped({ stopCode: "EssentialContainerExited" }, 0), lastStatus: "DELETED" },
      expect: { state: "EXITED", exitCode: 0, raw: "DELETED" },
    },
    {
      name: "an unknown lastStatus is UNOBSERVABLE (not guessed)",
      task: { lastStatus: "HIBERNATING" },
      expect: { state: "UNOBSERVABLE", raw: "HIBERNATING" },
    },
    { name: "a missing task is LOST", task: undefined, expect: { state: "LOST", raw: "MISSING" } },
  ];
  for (const stopCode of ECS_LOSS_STOP_CODES) {
    cases.push({
      name: `STOPPED, ${stopCode}, even with the agent's SIGTERM exit 143, is LOST (not the agent's failure)`,
      task: stopped({ stopCode: stopCode as TaskStopCode, stoppedReason: `stopped: ${stopCode}` }, 143),
      expect: { state: "LOST", exitCode: 143, reason: `${stopCode}: stopped: ${stopCode}` },
    });
    cases.push({
      name: `STOPPED, ${stopCode}, without an exit code is LOST`,
      task: stopped({ stopCode: stopCode as TaskStopCode, stoppedReason: "gone" }),
      expect: { state: "LOST", reason: `${stopCode}: gone` },
    });
  }

  for (const c of cases) {
    it(c.name, () => {
      const status = mapEcsTask(c.task, CONTAINER);
      for (const [key, value] of Object.entries(c.expect)) {
        expect(status, `${key} of ${JSON.stringify(status)}`).to.have.property(key, value);
      }
      if (!("exitCode" in c.expect)) expect(status.exitCode).to.equal(undefined);
    });
  }

  it("covers Spot interruption, termination notice, infrastructure health, service scheduler and failed start as losses", () => {
    expect([...ECS_LOSS_STOP_CODES].sort()).to.deep.equal(
      ["InfrastructureHealth", "ServiceSchedulerInitiated", "SpotInterruption", "TaskFailedToStart", "TerminationNotice"].sort(),
    );
  });
});

describe("ECS strategy: ids sent to RunTask", () => {
  const cases: Array<{ taskId: string; token: string | RegExp; startedBy: string }> = [
    { taskId: "7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f", token: "7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f", startedBy: "7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f" },
    { taskId: "01JABCDEFGHJKMNPQRSTVWXYZ0", token: "01JABCDEFGHJKMNPQRSTVWXYZ0", startedBy: "01JABCDEFGHJKMNPQRSTVWXYZ0" },
    { taskId: "x".repeat(64), token: "x".repeat(64), startedBy: "x".repeat(36) },
    { taskId: "x".repeat(65), token: /^[0-9a-f]{64}$/, startedBy: "x".repeat(36) },
    { taskId: "has space:and.dot", token: /^[0-9a-f]{64}$/, startedBy: "has-space-and-dot" },
  ];
  for (const c of cases) {
    it(`task id ${JSON.stringify(c.taskId.slice(0, 20))}… (${c.taskId.length} chars) gives a valid, stable clientToken and startedBy`, () => {
      const token = ecsClientToken(c.taskId);
      if (typeof c.token === "string") expect(token).to.equal(c.token);
      else expect(token).to.match(c.token);
      expect(token.length).to.be.at.most(64);
      expect(token).to.match(/^[\x21-\x7e]+$/);
      expect(ecsClientToken(c.taskId)).to.equal(token);
      const startedBy = ecsStartedBy(c.taskId);
      expect(startedBy).to.equal(c.startedBy);
      expect(startedBy).to.match(/^[A-Za-z0-9_/-]{1,36}$/);
    });
  }
  it("two task ids that differ only past 64 characters get different tokens", () => {
    expect(ecsClientToken("a".repeat(70) + "1")).to.not.equal(ecsClientToken("a".repeat(70) + "2"));
  });
});

describe("ECS strategy: start, poll and stop (aws-sdk-client-mock)", () => {
  // Installed in before(), not at load time: a mock made while mocha loads files would be live in every other file.
  let ecs: AwsClientStub<ECSClient>;
  before(() => {
    ecs = mockClient(ECSClient);
  });
  beforeEach(() => ecs.reset());
  after(() => ecs.restore());

  function runTaskInputs() {
    return ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input);
  }

  it("starts one FARGATE task with clientToken = task id, the configured family, private subnets and no public IP", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN, lastStatus: "PROVISIONING" }], failures: [] });
    const handle = await new EcsStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    expect(handle).to.deep.equal({ type: "ecs", cluster: "agents", taskArn: TASK_ARN });
    const [input] = runTaskInputs();
    expect(input).to.include({ cluster: "agents", taskDefinition: "agent-task", count: 1, launchType: "FARGATE" });
    expect(input.clientToken).to.equal("7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f");
    expect(input.startedBy).to.equal("7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f");
    expect(input.capacityProviderStrategy).to.equal(undefined);
    expect(input.networkConfiguration).to.deep.equal({
      awsvpcConfiguration: { subnets: ["subnet-a", "subnet-b"], securityGroups: ["sg-1"], assignPublicIp: "DISABLED" },
    });
  });

  it("uses the FARGATE_SPOT capacity provider (and no launchType) when fargateSpot is set", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    await new EcsStrategy(config({ fargateSpot: true })).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    const [input] = runTaskInputs();
    expect(input.launchType).to.equal(undefined);
    expect(input.capacityProviderStrategy).to.deep.equal([{ capacityProvider: "FARGATE_SPOT", weight: 1 }]);
  });

  it("gives the agent container exactly the five contract variables, with the right values", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    await new EcsStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    const overrides = runTaskInputs()[0].overrides!;
    expect(overrides.containerOverrides).to.have.length(1);
    const container = overrides.containerOverrides![0];
    expect(Object.keys(container).sort()).to.deep.equal(["environment", "name"]);
    expect(container.name).to.equal(CONTAINER);
    const env = Object.fromEntries(container.environment!.map((e) => [e.name, e.value]));
    expect(Object.keys(env).sort()).to.deep.equal([...ECS_AGENT_ENV_NAMES].sort());
    expect(env).to.deep.equal({
      TASK_ID: "7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f",
      AGENT_PAYLOAD_URL: PAYLOAD_URL,
      AWS_REGION: "eu-west-1",
    });
    expect(Object.keys(overrides)).to.deep.equal(["containerOverrides"]);
  });

  it("a hostile prompt (quotes, $(…), backticks, newlines, 1 MiB) contributes no byte to the RunTask request", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const hostile = `it's "quoted" $(touch /tmp/x) \`id\` \n\r\nline2 ${"HOSTILE-BODY-".repeat(Math.ceil(1048576 / 13))}`;
    expect(Buffer.byteLength(hostile)).to.be.greaterThan(1048576);
    const strategy = new EcsStrategy(config());
    await strategy.startSession({
      task: taskRecord({ prompt: hostile, branch: "`rm -rf /`", repo_url: "https://x/$(touch /tmp/x)" }),
      payloadUrl: PAYLOAD_URL,
    });
    await strategy.startSession({ task: taskRecord({ prompt: "", branch: undefined }), payloadUrl: PAYLOAD_URL });
    const [withHostile, withEmpty] = runTaskInputs().map((input) => JSON.stringify(input));
    // Byte-identical to the request for an empty prompt: the task text has no way into it.
    expect(withHostile).to.equal(withEmpty);
    for (const fragment of ["$(touch", "`", "HOSTILE-BODY", "it's", '\\"quoted', "\\n", "rm -rf"]) {
      expect(withHostile).to.not.include(fragment);
    }
    expect(withHostile).to.include(PAYLOAD_URL);
    expect(Buffer.byteLength(JSON.stringify(JSON.parse(withHostile).overrides))).to.be.below(8192);
  });

  it("a replayed start sends the same clientToken, so ECS returns the task it already started", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: TASK_ARN }] });
    const strategy = new EcsStrategy(config());
    const a = await strategy.startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    const b = await strategy.startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    const [first, second] = runTaskInputs();
    expect(JSON.stringify(second)).to.equal(JSON.stringify(first));
    expect(b).to.deep.equal(a);
  });

  const failureCases = [
    { failures: [{ arn: "arn:aws:ecs:eu-west-1:1:container-instance/x", reason: "RESOURCE:MEMORY" }], mentions: ["RESOURCE:MEMORY", "agents", "agent-task"] },
    {
      failures: [{ reason: "Capacity is unavailable at this time. Please try again later or in a different availability zone" }],
      mentions: ["Capacity is unavailable"],
    },
    { failures: [{ reason: "MISSING", detail: "task definition agent-task not found" }], mentions: ["MISSING", "task definition agent-task not found"] },
    { failures: [], mentions: ["no task and no failure reason"] },
  ];
  for (const c of failureCases) {
    it(`RunTask that starts nothing (${c.failures[0]?.reason ?? "empty answer"}) throws an error naming the ECS reason`, async () => {
      ecs.on(RunTaskCommand).resolves({ tasks: [], failures: c.failures });
      const err = await new EcsStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err, "startSession must reject").to.be.instanceOf(Error);
      for (const m of c.mentions) expect(err!.message).to.include(m);
      expect(err!.message).to.include("7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f");
    });
  }

  it("RunTask throttling is surfaced as the SDK's error (after its own retries), classified transient", async () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
    ecs.on(RunTaskCommand).rejects(throttled);
    const err = await new EcsStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL }).catch((e) => e);
    expect(err).to.have.property("name", "ThrottlingException");
    expect(isTransientError(err)).to.equal(true);
  });

  it("refuses overrides above ECS's 8,192-byte limit before calling RunTask, naming the limit", async () => {
    const err = await new EcsStrategy(config())
      .startSession({ task: taskRecord(), payloadUrl: `https://payloads/${"k".repeat(9000)}` })
      .catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.include("8192");
    expect(ecs.commandCalls(RunTaskCommand)).to.have.length(0);
  });

  it("without ecs settings, start fails with a ConfigError naming what is missing", async () => {
    const err = await new EcsStrategy(config({}, false)).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL }).catch((e) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.include("'ecs' settings");
  });

  it("poll describes the handle's task in the handle's cluster and maps it", async () => {
    ecs.on(DescribeTasksCommand).resolves({ tasks: [stopped({ stopCode: "SpotInterruption", stoppedReason: "Your Spot Task was interrupted." }, 143)] });
    const status = await new EcsStrategy(config()).pollSession({ type: "ecs", cluster: "other-cluster", taskArn: TASK_ARN });
    expect(status.state).to.equal("LOST");
    expect(status.reason).to.include("Your Spot Task was interrupted.");
    expect(ecs.commandCalls(DescribeTasksCommand)[0].args[0].input).to.deep.equal({ cluster: "other-cluster", tasks: [TASK_ARN] });
  });

  it("poll of a task DescribeTasks reports MISSING is LOST", async () => {
    ecs.on(DescribeTasksCommand).resolves({ tasks: [], failures: [{ arn: TASK_ARN, reason: "MISSING" }] });
    const status = await new EcsStrategy(config()).pollSession({ type: "ecs", cluster: "agents", taskArn: TASK_ARN });
    expect(status).to.include({ state: "LOST", raw: "MISSING" });
  });

  it("poll with a DescribeTasks failure other than MISSING throws (a poll error, not a verdict)", async () => {
    ecs.on(DescribeTasksCommand).resolves({ tasks: [], failures: [{ arn: TASK_ARN, reason: "ACCESS_DENIED", detail: "no ecs:DescribeTasks" }] });
    const err = await new EcsStrategy(config()).pollSession({ type: "ecs", cluster: "agents", taskArn: TASK_ARN }).catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.include("ACCESS_DENIED").and.include(TASK_ARN);
  });

  it("poll surfaces DescribeTasks errors", async () => {
    ecs.on(DescribeTasksCommand).rejects(new ClusterNotFoundException({ message: "Cluster not found.", $metadata: {} }));
    const err = await new EcsStrategy(config()).pollSession({ type: "ecs", cluster: "agents", taskArn: TASK_ARN }).catch((e) => e);
    expect(err).to.have.property("name", "ClusterNotFoundException");
  });

  it("stop calls StopTask with the handle's cluster and task and a reason cut to 255 characters", async () => {
    ecs.on(StopTaskCommand).resolves({ task: { taskArn: TASK_ARN, lastStatus: "RUNNING", desiredStatus: "STOPPED" } });
    await new EcsStrategy(config()).stopSession({ type: "ecs", cluster: "agents", taskArn: TASK_ARN }, "r".repeat(300));
    const input = ecs.commandCalls(StopTaskCommand)[0].args[0].input;
    expect(input).to.deep.equal({ cluster: "agents", task: TASK_ARN, reason: "r".repeat(255) });
  });

  const tolerated: Array<{ name: string; answer: { resolves?: { task: Task }; rejects?: Error } }> = [
    { name: "an already-stopped task (StopTask returns it as STOPPED)", answer: { resolves: { task: { taskArn: TASK_ARN, lastStatus: "STOPPED" } } } },
    {
      name: "an unknown task (InvalidParameterException: The referenced task was not found.)",
      answer: { rejects: new InvalidParameterException({ message: "The referenced task was not found.", $metadata: {} }) },
    },
    { name: "a deleted cluster (ClusterNotFoundException)", answer: { rejects: new ClusterNotFoundException({ message: "Cluster not found.", $metadata: {} }) } },
  ];
  for (const c of tolerated) {
    it(`stop tolerates ${c.name}`, async () => {
      if (c.answer.resolves) ecs.on(StopTaskCommand).resolves(c.answer.resolves);
      else ecs.on(StopTaskCommand).rejects(c.answer.rejects);
      await new EcsStrategy(config()).stopSession({ type: "ecs", cluster: "agents", taskArn: TASK_ARN }, "cancelled");
      expect(ecs.commandCalls(StopTaskCommand)).to.have.length(1);
    });
  }

  const surfaced = [
    new InvalidParameterException({ message: "Task Identifier is invalid", $metadata: {} }),
    new AccessDeniedException({ message: "not authorized to perform ecs:StopTask", $metadata: {} }),
    Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" }),
  ];
  for (const error of surfaced) {
    it(`stop surfaces ${error.name}: ${error.message}`, async () => {
      ecs.on(StopTaskCommand).rejects(error);
      const err = await new EcsStrategy(config()).stopSession({ type: "ecs", cluster: "agents", taskArn: TASK_ARN }, "x").catch((e) => e);
      expect(err).to.have.property("name", error.name);
    });
  }
});
