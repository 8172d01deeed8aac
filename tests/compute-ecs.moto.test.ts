/**
 * EcsStrategy over the real ECS wire protocol, against moto (started by tests/setup/moto.ts).
 * What moto does differently from ECS, and what these tests therefore do not assert:
 * - it ignores RunTask's clientToken (each call starts a new task), so idempotency is checked on the wire
 *   (the token sent) and in the unit tests, not by comparing task ARNs;
 * - a task is created RUNNING and every DescribeTasks moves it one step (DEACTIVATING, STOPPING,
 *   DEPROVISIONING, STOPPED), with exit code 0 and no stopCode;
 * - it forgets nothing, and answers StopTask for an unknown task with HTTP 500 (ECS: InvalidParameterException).
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import {
  CreateClusterCommand,
  DescribeTasksCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
} from "@aws-sdk/client-ecs";
import { CreateSecurityGroupCommand, DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { awsClient } from "../runtime/aws/clients";
import type { RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { ECS_AGENT_ENV_NAMES, EcsStrategy } from "../runtime/compute/ecs";
import type { TaskRecord } from "../runtime/tasks/record";

const REGION = "us-east-1";
const CONTAINER = "agent";

describe("ECS strategy against moto (RunTask / DescribeTasks / StopTask, FARGATE)", function () {
  this.timeout(60_000);
  const suffix = randomBytes(4).toString("hex");
  const cluster = `agents-${suffix}`;
  const family = `agent-task-${suffix}`;
  let config: RuntimeConfig;
  let subnet: string;

  before(async () => {
    const ec2 = awsClient(EC2Client, { region: REGION });
    const ecs = awsClient(ECSClient, { region: REGION });
    // moto's Fargate RunTask needs a subnet in a VPC with DNS hostnames enabled: the default VPC has it.
    const vpcs = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] }));
    const vpcId = vpcs.Vpcs?.[0]?.VpcId;
    if (!vpcId) throw new Error("moto has no default VPC in us-east-1");
    const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] }));
    subnet = subnets.Subnets![0].SubnetId!;
    const sg = await ec2.send(new CreateSecurityGroupCommand({ GroupName: `agents-${suffix}`, Description: "agent tasks", VpcId: vpcId }));
    await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family,
        networkMode: "awsvpc",
        requiresCompatibilities: ["FARGATE"],
        cpu: "256",
        memory: "512",
        // moto needs container-level memory for Fargate.
        containerDefinitions: [{ name: CONTAINER, image: "public.ecr.aws/docker/library/busybox:latest", memory: 512, essential: true }],
      }),
    );
    config = {
      region: REGION,
      tables: { tasks: `tasks-${suffix}`, events: `events-${suffix}`, leases: "l", concurrency: "c", repos: "r" },
      payload: { kind: "s3", bucket: `payloads-${suffix}` },
      defaultBackend: "ecs",
      enabledBackends: ["ecs"],
      ecs: { cluster, taskDefinition: family, containerName: CONTAINER, subnets: [subnet], securityGroups: [sg.GroupId!] },
      limits: DEFAULT_LIMITS,
    };
  });

  function task(id: string, prompt = "fix it"): TaskRecord {
    return {
      task_id: id,
      user_id: "u1",
      status: "STARTING",
      repo_url: "https://github.com/acme/widgets",
      prompt,
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
    };
  }

  async function describe1(taskArn: string) {
    const out = await awsClient(ECSClient, { region: REGION }).send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }));
    return out.tasks![0];
  }

  it("starts a Fargate task whose recorded overrides carry only the five contract variables, in our subnet", async () => {
    const id = `task-${randomBytes(6).toString("hex")}`;
    const payloadUrl = `https://payloads-${suffix}.s3.amazonaws.com/tasks/${id}/payload.json?X-Amz-Signature=abc`;
    const hostile = `'"$(touch /tmp/x)\`id\`\n${"P".repeat(1048576)}`;
    const handle = await new EcsStrategy(config).startSession({ task: task(id, hostile), payloadUrl });
    expect(handle.type).to.equal("ecs");
    expect(handle.cluster).to.equal(cluster);
    expect(handle.taskArn).to.match(/^arn:aws:ecs:us-east-1:\d+:task\//);

    const recorded = await describe1(handle.taskArn);
    expect(recorded.launchType).to.equal("FARGATE");
    expect(recorded.taskDefinitionArn).to.include(`task-definition/${family}:`);
    const subnetDetail = recorded.attachments?.[0]?.details?.find((d) => d.name === "subnetId");
    expect(subnetDetail?.value).to.equal(subnet);
    const env = recorded.overrides!.containerOverrides![0].environment!;
    expect(env.map((e) => e.name).sort()).to.deep.equal([...ECS_AGENT_ENV_NAMES].sort());
    expect(Object.fromEntries(env.map((e) => [e.name, e.value]))).to.include({
      TASK_ID: id,
      AGENT_PAYLOAD_URL: payloadUrl,
      AWS_REGION: REGION,
    });
    const overridesJson = JSON.stringify(recorded.overrides);
    expect(overridesJson).to.not.include("touch").and.not.include("PPPP");
    expect(Buffer.byteLength(overridesJson)).to.be.below(8192);
  });

  it("polls the task through moto's lifecycle to EXITED with the agent container's exit code", async () => {
    const strategy = new EcsStrategy(config);
    const handle = await strategy.startSession({ task: task(`task-${randomBytes(6).toString("hex")}`), payloadUrl: "https://b/k" });
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      const status = await strategy.pollSession(handle);
      seen.push(`${status.raw}:${status.state}`);
      if (status.state === "EXITED" || status.state === "LOST") break;
    }
    // Every status before STOPPED is still the agent running; the outcome is read only at STOPPED.
    expect(seen.slice(0, -1).every((s) => s.endsWith(":RUNNING")), seen.join(", ")).to.equal(true);
    expect(seen.at(-1)).to.equal("STOPPED:EXITED");
    expect((await strategy.pollSession(handle)).exitCode).to.equal(0);
  });

  it("stops a running task with our reason, and a second stop of the stopped task does not throw", async () => {
    const strategy = new EcsStrategy(config);
    const handle = await strategy.startSession({ task: task(`task-${randomBytes(6).toString("hex")}`), payloadUrl: "https://b/k" });
    await strategy.stopSession(handle, "cancelled by u1");
    const recorded = await describe1(handle.taskArn);
    expect(recorded.lastStatus).to.equal("STOPPED");
    expect(recorded.desiredStatus).to.equal("STOPPED");
    expect(recorded.stoppedReason).to.equal("cancelled by u1");
    const status = await strategy.pollSession(handle);
    expect(status.raw).to.equal("STOPPED");
    expect(status.reason).to.include("cancelled by u1");
    await strategy.stopSession(handle, "cancelled again");
  });

  it("a replayed start sends the same clientToken (the task id) over the wire", async () => {
    const client = awsClient(ECSClient, { region: REGION });
    const sent: Array<{ clientToken?: string; startedBy?: string }> = [];
    const name = `capture-runtask-${suffix}`;
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers?: Record<string, string>; body?: unknown };
        if (request.headers?.["x-amz-target"]?.endsWith(".RunTask")) sent.push(JSON.parse(bodyText(request.body)));
        return next(args);
      },
      { step: "finalizeRequest", name },
    );
    try {
      const id = `task-${randomBytes(6).toString("hex")}`;
      const strategy = new EcsStrategy(config);
      const first = await strategy.startSession({ task: task(id), payloadUrl: "https://b/k" });
      const second = await strategy.startSession({ task: task(id), payloadUrl: "https://b/k" });
      expect(sent.map((s) => s.clientToken)).to.deep.equal([id, id]);
      expect(sent.map((s) => s.startedBy)).to.deep.equal([id, id]);
      // Real ECS returns the first task for the second call; moto ignores clientToken, so only check both
      // calls produced a task in our cluster.
      for (const h of [first, second]) expect((await describe1(h.taskArn)).clusterArn).to.match(new RegExp(`cluster/${cluster}$`));
    } finally {
      client.middlewareStack.remove(name);
    }
  });

  /** The serialized request body: a string, bytes, or (in current SDKs) a string adapter object. */
  function bodyText(body: unknown): string {
    if (typeof body === "string") return body;
    if (body instanceof Uint8Array) return Buffer.from(body).toString("utf8");
    return String(body);
  }

  it("polling a task ARN the cluster does not know reports LOST", async () => {
    const arn = `arn:aws:ecs:${REGION}:123456789012:task/${cluster}/${randomBytes(16).toString("hex")}`;
    const status = await new EcsStrategy(config).pollSession({ type: "ecs", cluster, taskArn: arn });
    expect(status.state).to.equal("LOST");
  });
});
