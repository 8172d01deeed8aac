/**
 * Control-plane latency of the AWS backends over moto's wire protocol: tasks are submitted through the API handler
 * and run by the workflow (the local driver: the same steps and waits as the durable function) with a 30 s poll,
 * against moto's DynamoDB, S3, ECS, EC2 and SSM. moto has no AgentCore: its InvokeAgentRuntime/StopRuntimeSession
 * are answered at once by aws-sdk-client-mock, so that row measures our side of an AgentCore start, never
 * AgentCore's. moto runs no container, so a bench agent stands in for one: once the task's compute has started it
 * reports RUNNING and, a few seconds later, its result through the agent channel (the API router's /agent/v1
 * routes, with the task's token from its payload), whose result route wakes the orchestrator. In the pure-polling
 * baseline nothing wakes the orchestrator: the agent writes its result to the task store and the next poll sees it.
 * The times come from the task record and event log.
 */
import { BedrockAgentCoreClient, InvokeAgentRuntimeCommand, StopRuntimeSessionCommand } from "@aws-sdk/client-bedrock-agentcore";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateDocumentCommand, SSMClient } from "@aws-sdk/client-ssm";
import { CreateClusterCommand, ECSClient, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import {
  CreateSecurityGroupCommand,
  DescribeImagesCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  RunInstancesCommand,
} from "@aws-sdk/client-ec2";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { handleApiRequest } from "../../runtime/api/router";
import { awsClient, resetClients } from "../../runtime/aws/clients";
import { checkRuntimeConfig, type RuntimeConfig } from "../../runtime/config";
import { DEFAULT_LIMITS } from "../../runtime/limits";
import { agentTaskDocument } from "../../runtime/fleet/document";
import { LeaseTable } from "../../runtime/fleet/lease";
import { BOOT_READY, BOOT_TAG, FLEET_TAG } from "../../runtime/fleet/tags";
import { LocalDispatcher } from "../../runtime/local/dispatcher";
import { pollCeilingSeconds } from "../../runtime/orchestrator/await-schedule";
import { createPayloadStore } from "../../runtime/payload";
import type { PayloadStore } from "../../runtime/ports";
import { createRuntime, type Runtime } from "../../runtime/runtime";
import { ensureTables, type TableName } from "../../runtime/tables";
import { isTerminal } from "../../runtime/tasks/status";
import { motoEnvironment, startMotoServer } from "../../tests/setup/moto-server";
import { collectTimings, type BatchResult } from "../local/local-run";

export type CloudBackend = "ecs" | "ec2" | "agentcore";

const REGION = "us-east-1";

async function backendConfig(backend: CloudBackend, tasks: number, pollSeconds: number): Promise<RuntimeConfig> {
  const s = randomBytes(4).toString("hex");
  const tables = Object.fromEntries((["tasks", "events", "leases", "waiters", "concurrency", "repos"] as TableName[]).map((t) => [t, `lat-${t}-${s}`])) as Record<TableName, string>;
  await ensureTables(awsClient(DynamoDBClient, { region: REGION }), tables);
  const bucket = `lat-payloads-${s}`;
  await awsClient(S3Client, { region: REGION }).send(new CreateBucketCommand({ Bucket: bucket }));
  const ec2 = awsClient(EC2Client, { region: REGION });
  const base = {
    region: REGION,
    tables,
    payload: { kind: "s3" as const, bucket },
    defaultBackend: backend,
    enabledBackends: [backend],
    limits: { ...DEFAULT_LIMITS, pollIntervalSeconds: pollSeconds, maxConcurrentPerUser: tasks },
    // The agent channel's address goes into each payload; the bench agent calls the router directly.
    agentChannel: { url: "https://api.agent-compute.example" },
  };
  if (backend === "agentcore") {
    return checkRuntimeConfig({ ...base, agentcore: { runtimeArn: `arn:aws:bedrock-agentcore:${REGION}:123456789012:runtime/lat_${s}-abcdefghij` } });
  }
  if (backend === "ecs") {
    const ecs = awsClient(ECSClient, { region: REGION });
    const vpcId = (await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] }))).Vpcs?.[0]?.VpcId;
    if (!vpcId) throw new Error("moto has no default VPC in us-east-1");
    const subnet = (await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] }))).Subnets![0].SubnetId!;
    const sg = await ec2.send(new CreateSecurityGroupCommand({ GroupName: `lat-${s}`, Description: "bench", VpcId: vpcId }));
    await ecs.send(new CreateClusterCommand({ clusterName: `lat-${s}` }));
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: `lat-${s}`,
        requiresCompatibilities: ["FARGATE"],
        networkMode: "awsvpc",
        cpu: "1024",
        memory: "2048",
        // moto needs container-level memory for Fargate.
        containerDefinitions: [{ name: "agent", image: "agent:latest", essential: true, memory: 2048 }],
      }),
    );
    return checkRuntimeConfig({ ...base, ecs: { cluster: `lat-${s}`, taskDefinition: `lat-${s}`, containerName: "agent", subnets: [subnet], securityGroups: [sg.GroupId!] } });
  }
  const fleet = `lat-${s}`;
  const documentName = `lat-run-${s}`;
  await awsClient(SSMClient, { region: REGION }).send(
    new CreateDocumentCommand({ Name: documentName, DocumentType: "Command", DocumentFormat: "JSON", Content: JSON.stringify(agentTaskDocument({ model: "anthropic.claude-bench-v1:0" })) }),
  );
  const config = checkRuntimeConfig({
    ...base,
    ec2: { documentName, fleets: { [fleet]: {} }, defaultFleet: fleet, deliveryTimeoutSeconds: 600, executionTimeoutSeconds: 3600, image: "public.ecr.aws/example/agent:1" },
  });
  // One ready instance per task, registered before the tasks arrive: this measures the control plane, not a boot.
  const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  const out = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      InstanceType: "t3.micro",
      MinCount: tasks,
      MaxCount: tasks,
      TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: FLEET_TAG, Value: fleet }, { Key: BOOT_TAG, Value: BOOT_READY }] }],
    }),
  );
  const leases = new LeaseTable(config);
  for (const i of out.Instances!) await leases.registerInstance(fleet, i.InstanceId!);
  return config;
}

export const CLOUD_LATENCY_MODES = ["ours (the agent channel's result wakes)", "baseline (pure polling)"] as const;
export type CloudLatencyMode = (typeof CLOUD_LATENCY_MODES)[number];

/** One request of the agent channel, served by the API router as the deployed API serves it. */
async function report(rt: Runtime, taskId: string, token: string, route: string, body?: unknown): Promise<void> {
  const res = await handleApiRequest(rt, new LocalDispatcher(rt, { waitSeconds: 1 }), {
    method: "POST",
    path: `/agent/v1/tasks/${taskId}/${route}`,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    userId: "",
  });
  if (res.statusCode >= 300) throw new Error(`bench agent: the channel refused ${route} of task ${taskId}: ${res.statusCode} ${res.body}`);
}

/**
 * The bench's stand-in agent: RUNNING once the compute has started, then its result after `workSeconds`, through
 * the agent channel (`channel`) or, for the pure-polling baseline, straight into the task store.
 */
async function benchAgent(rt: Runtime, taskId: string, workSeconds: number, channel: boolean): Promise<void> {
  let uri: string | undefined;
  for (;;) {
    const task = await rt.tasks.get(taskId);
    if (!task) throw new Error(`bench agent: task ${taskId} is gone`);
    if (task.compute_metadata) {
      uri = task.payload_uri;
      break;
    }
    if (task.status !== "SUBMITTED" && task.status !== "QUEUED" && task.status !== "STARTING") throw new Error(`bench agent: task ${taskId} is ${task.status} before it started (${task.error_message ?? "no reason"})`);
    await sleep(100);
  }
  const token = channel && uri ? (await rt.payloads.get(uri)).channel?.token : undefined;
  if (channel && !token) throw new Error(`bench agent: task ${taskId}'s payload holds no agent token`);
  if (token) await report(rt, taskId, token, "running");
  else await rt.tasks.transition(taskId, "RUNNING", { agent_heartbeat_at: rt.now().toISOString() }, ["STARTING"]);
  await sleep(workSeconds * 1000);
  try {
    if (token) await report(rt, taskId, token, "result", { status: "COMPLETED", exit_code: 0 });
    else await rt.tasks.transition(taskId, "COMPLETED", { exit_code: 0 }, ["RUNNING"]);
  } catch (err) {
    const task = await rt.tasks.get(taskId);
    throw new Error(`bench agent: task ${taskId} ended ${task?.status} before its result (${task?.error_message ?? "no reason"})`, { cause: err });
  }
}

async function batch(backend: CloudBackend, mode: CloudLatencyMode, count: number, pollSeconds: number, workSeconds: (i: number) => number): Promise<BatchResult> {
  const config = await backendConfig(backend, count, pollSeconds);
  // moto serves plain HTTP, so the payload URL S3 presigns here starts http://, which the EC2 command document
  // refuses (a real presigned S3 URL is https://). Nothing fetches it on moto (no instance runs the document): the
  // bench hands out the same URL with the scheme S3 would give it.
  const s3 = createPayloadStore(config);
  const payloads: PayloadStore = {
    maxBytes: s3.maxBytes,
    put: (taskId, payload) => s3.put(taskId, payload),
    get: (uri) => s3.get(uri),
    replace: (uri, payload) => s3.replace(uri, payload),
    delete: (uri) => s3.delete(uri),
    agentLocator: async (uri, seconds) => (await s3.agentLocator(uri, seconds)).replace(/^http:\/\//, "https://"),
  };
  const rt = createRuntime(config, { payloads });
  // The local driver with the durable function's schedule: polls back off to the stack's ceiling (the baseline
  // never stretches them), and a wake ends the wait at once.
  const ceiling = mode === "baseline (pure polling)" ? pollSeconds : pollCeilingSeconds(config.limits, pollSeconds);
  const dispatcher = new LocalDispatcher(rt, { waitSeconds: pollSeconds, maxWaitSeconds: ceiling });
  const started = Date.now();
  const ids: string[] = [];
  const agents: Promise<void>[] = [];
  const submit = async (i: number) => {
    const res = await handleApiRequest(rt, dispatcher, {
      method: "POST",
      path: "/tasks",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ repo_url: "https://github.com/acme/app", prompt: `bench task ${i}`, backend }),
      userId: "bench",
    });
    if (res.statusCode >= 300) throw new Error(`bench submit on ${backend} was refused: ${res.statusCode} ${res.body}`);
    const id = (JSON.parse(res.body) as { task: { task_id: string } }).task.task_id;
    ids.push(id);
    const agent = benchAgent(rt, id, workSeconds(i), mode !== "baseline (pure polling)");
    agents.push(agent);
    return id;
  };
  // Tasks are submitted one after another, each once its compute has started: moto does not serialize concurrent
  // TransactWriteItems (DynamoDB does), so two concurrent EC2 claims could both bind one instance there, and one
  // single-threaded moto serving every start at once would measure its own queue, not our start path.
  for (let i = 0; i < count; i++) {
    const id = await submit(i);
    for (let t = await rt.tasks.get(id); t && !t.compute_metadata && !isTerminal(t.status); t = await rt.tasks.get(id)) await sleep(100);
  }
  await Promise.all(agents);
  await dispatcher.idle();
  const tasks = await collectTimings(rt, ids);
  return { tasks, elapsedMs: Math.max(...tasks.map((t) => t.finalizedAtMs)) - started };
}

export interface CloudLatencyRun {
  backend: CloudBackend;
  mode: string;
  batch: BatchResult;
}

/** Each backend, ours and the pure-polling baseline side by side, all at once (the waits overlap). */
export async function runCloudLatency(options: {
  backends: readonly CloudBackend[];
  tasks: number;
  pollSeconds: number;
  /** Seconds the bench agent of task i works. */
  workSeconds(i: number): number;
}): Promise<CloudLatencyRun[]> {
  const moto = await startMotoServer();
  const saved = { ...process.env };
  Object.assign(process.env, motoEnvironment(moto.url));
  resetClients();
  // AgentCore accepts the invocation at once (moto has none): the agentcore row is our control plane alone.
  const agentcore = mockClient(BedrockAgentCoreClient);
  agentcore.on(InvokeAgentRuntimeCommand).callsFake(() => ({ contentType: "application/json", statusCode: 200, response: Readable.from([Buffer.from('{"status":"accepted"}')]) as never }));
  agentcore.on(StopRuntimeSessionCommand).resolves({});
  try {
    const runs = options.backends.flatMap((backend) =>
      CLOUD_LATENCY_MODES.map(async (mode) => ({ backend, mode, batch: await batch(backend, mode, options.tasks, options.pollSeconds, options.workSeconds) })),
    );
    return await Promise.all(runs);
  } finally {
    agentcore.restore();
    resetClients();
    for (const key of Object.keys(motoEnvironment(moto.url))) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    moto.stop();
  }
}
