/**
 * Control-plane cost per task, in dollars, per backend, for a 10-minute and an 8-hour task: one task is submitted
 * through the real API handler and driven by the real workflow (load → admit → start → await → finalize) on a
 * virtual clock, against the embedded DynamoDB (dynalite) and mocked compute APIs. Every SDK request is counted
 * (meter.ts); the workflow driver counts durable operations and Lambda invocations and times each invocation's
 * steps. The agent's own reports are counted apart: RUNNING, a heartbeat every 30 s and its result, each a request
 * of the agent channel (/agent/v1/…) served by the real API router — one HTTP API request, one API Lambda
 * invocation with its measured GB-seconds, and the DynamoDB units the channel's handler consumed (the result route
 * also wakes the orchestrator: a task read and SendDurableExecutionCallbackSuccess).
 *
 * Two runs per backend and length. "ours": the workflow as the product configures it (polls back off to a ceiling;
 * a durable callback is armed between polls, and the channel's result route completes it). The baseline: the same
 * agent and channel, with the orchestrator polling every 30 s and never woken.
 */
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import { InvokeAgentRuntimeCommand, StopRuntimeSessionCommand } from "@aws-sdk/client-bedrock-agentcore";
import { CreateTagsCommand, DeleteTagsCommand } from "@aws-sdk/client-ec2";
import { DescribeTasksCommand, RunTaskCommand, StopTaskCommand } from "@aws-sdk/client-ecs";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetCommandInvocationCommand, SendCommandCommand } from "@aws-sdk/client-ssm";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SetInstanceProtectionCommand } from "@aws-sdk/client-auto-scaling";
import { DEFAULT_HEARTBEAT_SECONDS } from "../../runtime/agent/reference-agent";
import { handleApiRequest } from "../../runtime/api/router";
import { awsClient, resetClients } from "../../runtime/aws/clients";
import { Ec2Strategy } from "../../runtime/compute/ec2";
import type { RuntimeConfig } from "../../runtime/config";
import { LeaseTable } from "../../runtime/fleet/lease";
import { BOOT_READY, BOOT_TAG, FLEET_TAG } from "../../runtime/fleet/tags";
import { DEFAULT_LIMITS } from "../../runtime/limits";
import { startEmbeddedStore, type EmbeddedStore } from "../../runtime/local/embedded-store";
import { LambdaDispatcher } from "../../runtime/orchestrator/dispatch";
import { runWorkflow, type WorkflowDriver } from "../../runtime/orchestrator/workflow";
import { createRuntime } from "../../runtime/runtime";
import { DynamoEventLog } from "../../runtime/tasks/events";
import { DynamoTaskStore } from "../../runtime/tasks/store";
import { emptyTally, meterDynamo, mockedRequests, mockServices, resetHistories, restoreMocks, type ServiceMocks, type Tally } from "./meter";
import { LAMBDA_MEMORY_GB, PRICES } from "./prices";

export type CostBackend = "ecs" | "ec2" | "agentcore";
export const COST_BACKENDS: readonly CostBackend[] = ["ecs", "ec2", "agentcore"];
/** The long task works a minute less than 8 h: 8 h is the default task timeout, which would end it TIMED_OUT. */
export const TASK_LENGTHS = [{ label: "10 min", seconds: 600 }, { label: "8 h", seconds: 8 * 3600 - 60 }] as const;
export const BASELINE_POLL_SECONDS = 30;

export const COST_MODES = ["ours (the agent channel's result wakes)", "baseline (fixed 30 s poll)"] as const;
export type CostMode = (typeof COST_MODES)[number];

export interface CostFigures {
  backend: CostBackend;
  task: string;
  mode: CostMode;
  /** Seconds from the agent's terminal report to the task finalized, on the virtual clock. */
  reportToFinalizedSeconds: number;
  /** Requests the platform made, "service:Operation" → count (the agent's are in `agentRequests`). */
  requests: Record<string, number>;
  awsRequests: number;
  durableOperations: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  readUnits: number;
  writeUnits: number;
  agentRequests: Record<string, number>;
  agentReadUnits: number;
  agentWriteUnits: number;
  /** The agent channel's requests (each one HTTP API request and one API Lambda invocation) and their GB-seconds. */
  channelRequests: number;
  channelGbSeconds: number;
  usd: { platform: number; agentReports: number; total: number; byItem: Record<string, number> };
}

const ECS_ARN = "arn:aws:ecs:us-east-1:123456789012:task/agent-compute/0123456789abcdef0123456789abcdef";
const INSTANCE = "i-0123456789abcdef0";

function benchConfig(store: EmbeddedStore, backend: CostBackend): RuntimeConfig {
  return {
    region: store.region,
    endpoints: { dynamodb: store.endpoint },
    tables: store.tableNames,
    payload: { kind: "s3", bucket: "agent-compute-payloads" },
    defaultBackend: backend,
    enabledBackends: [backend],
    ecs: { cluster: "agent-compute", taskDefinition: "agent", containerName: "agent", subnets: ["subnet-0123456789abcdef0"], securityGroups: ["sg-0123456789abcdef0"] },
    ec2: {
      documentName: "agent-compute-run",
      fleets: { default: { autoScalingGroupName: "agent-compute-default", warmBuffer: 1 } },
      defaultFleet: "default",
      deliveryTimeoutSeconds: 600,
      executionTimeoutSeconds: 172800,
      image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:latest",
    },
    agentcore: { runtimeArn: "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/agent-compute-abcdefghij" },
    orchestrator: { functionArn: "arn:aws:lambda:us-east-1:123456789012:function:agent-compute-orchestrator:live" },
    agentChannel: { url: "https://api.agent-compute.example" },
    limits: DEFAULT_LIMITS,
  };
}

function sum(record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0);
}

/** Dollars of one tally of requests and units, item by item. */
function price(requests: Record<string, number>, readUnits: number, writeUnits: number, extra: { durable: number; invocations: number; gbSeconds: number; httpApi: number }) {
  const s3Put = (requests["s3:PutObject"] ?? 0) + (requests["s3:ListObjectsV2"] ?? 0);
  const s3Get = requests["s3:GetObject"] ?? 0;
  const byItem: Record<string, number> = {
    "DynamoDB reads": readUnits * PRICES.dynamoReadRequestUnit.usd,
    "DynamoDB writes": writeUnits * PRICES.dynamoWriteRequestUnit.usd,
    "durable operations": extra.durable * PRICES.durableOperation.usd,
    "Lambda requests": extra.invocations * PRICES.lambdaRequest.usd,
    "Lambda GB-seconds": extra.gbSeconds * PRICES.lambdaGbSecondArm.usd,
    "HTTP API requests": extra.httpApi * PRICES.httpApiRequest.usd,
    "S3 requests": s3Put * PRICES.s3Put.usd + s3Get * PRICES.s3Get.usd,
  };
  return { byItem, total: sum(byItem) };
}

interface AgentAction {
  at: number;
  run: () => Promise<unknown>;
}

/** Answers of the mocked compute APIs, from the virtual clock: the agent runs from its start for `seconds`. */
function scriptCompute(mocks: ServiceMocks, clock: () => number, onStart: () => void, agentEnd: () => number | undefined): Map<string, string> {
  const finished = () => {
    const end = agentEnd();
    return end !== undefined && clock() >= end;
  };
  mocks.ecs.on(RunTaskCommand).callsFake(() => {
    onStart();
    return { tasks: [{ taskArn: ECS_ARN, lastStatus: "PROVISIONING" }], failures: [] };
  });
  mocks.ecs.on(DescribeTasksCommand).callsFake(() => ({
    tasks: [
      finished()
        ? { taskArn: ECS_ARN, lastStatus: "STOPPED", stopCode: "EssentialContainerExited", containers: [{ name: "agent", exitCode: 0, lastStatus: "STOPPED" }] }
        : { taskArn: ECS_ARN, lastStatus: "RUNNING", containers: [{ name: "agent", lastStatus: "RUNNING" }] },
    ],
    failures: [],
  }));
  mocks.ecs.on(StopTaskCommand).resolves({});
  mocks.ssm.on(SendCommandCommand).callsFake(() => {
    onStart();
    return { Command: { CommandId: "0123abcd-4567-89ab-cdef-0123456789ab" } };
  });
  mocks.ssm.on(GetCommandInvocationCommand).callsFake(() => (finished() ? { Status: "Success", StatusDetails: "Success", ResponseCode: 0 } : { Status: "InProgress", StatusDetails: "InProgress", ResponseCode: -1 }));
  mocks.ec2.on(CreateTagsCommand).resolves({});
  mocks.ec2.on(DeleteTagsCommand).resolves({});
  mocks.autoscaling.on(SetInstanceProtectionCommand).resolves({});
  mocks.agentcore.on(InvokeAgentRuntimeCommand).callsFake(() => {
    onStart();
    const body = new Readable({ read() {} });
    body.push(Buffer.from('{"status":"accepted"}'));
    body.push(null);
    return { contentType: "application/json", statusCode: 200, response: body as never };
  });
  mocks.agentcore.on(StopRuntimeSessionCommand).resolves({});
  // The start step reads the submitted payload back and writes it again with the agent's channel token.
  const objects = new Map<string, string>();
  mocks.s3.on(PutObjectCommand).callsFake((input: { Key: string; Body: Uint8Array }) => {
    objects.set(input.Key, Buffer.from(input.Body).toString("utf8"));
    return {};
  });
  mocks.s3.on(GetObjectCommand).callsFake((input: { Key: string }) => ({ Body: { transformToString: async () => objects.get(input.Key) ?? "" } }));
  mocks.s3.on(DeleteObjectCommand).resolves({});
  mocks.lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  return objects;
}

async function runScenario(
  store: EmbeddedStore,
  mocks: ServiceMocks,
  backend: CostBackend,
  task: (typeof TASK_LENGTHS)[number],
  mode: CostFigures["mode"],
  meter: { current: Tally },
): Promise<CostFigures> {
  const config = benchConfig(store, backend);
  const baseline = mode === "baseline (fixed 30 s poll)";
  let clock = Date.parse("2026-11-30T09:00:00.000Z");
  const now = () => new Date(clock);
  const platform = emptyTally();
  const agent = emptyTally();
  meter.current = platform;

  const tasks = new DynamoTaskStore(config, { now });
  const events = new DynamoEventLog(config, { now });
  const leases = new LeaseTable(config, now);
  // The callback an orchestrator waits on between polls; completing it (SendDurableExecutionCallbackSuccess) ends
  // the wait at once. Counted as a Lambda request of whoever completes it.
  let armed: { token: string; woken: boolean } | undefined;
  let callbackSeq = 0;
  let current: () => Tally = () => platform;
  const callbacks = {
    async succeed(callbackId: string): Promise<void> {
      const t = current();
      t.requests["lambda:SendDurableExecutionCallbackSuccess"] = (t.requests["lambda:SendDurableExecutionCallbackSuccess"] ?? 0) + 1;
      if (armed?.token === callbackId) armed.woken = true;
    },
  };
  // The EC2 strategy shares this lease table (and its clock) with the instance registration below.
  const rt = createRuntime(config, { tasks, events, now, callbacks, strategies: { ec2: new Ec2Strategy(config, leases) } });

  // The EC2 fleet has a ready instance before the task arrives (registering it is fleet upkeep, not the task's).
  if (backend === "ec2") {
    meter.current = emptyTally();
    mocks.ec2.on(CreateTagsCommand).resolves({});
    await leases.registerInstance("default", INSTANCE, {
      InstanceId: INSTANCE,
      State: { Name: "running" },
      Tags: [{ Key: FLEET_TAG, Value: "default" }, { Key: BOOT_TAG, Value: BOOT_READY }],
    });
    meter.current = platform;
  }

  const agenda: AgentAction[] = [];
  let agentEnd: number | undefined;
  let taskId = "";
  let objects = new Map<string, string>();
  let channelRequests = 0;
  let channelGbSeconds = 0;
  /** One request of the agent channel, as the deployed API serves it: the API Lambda runs the real router. */
  const report = async (route: string, body: unknown) => {
    const payload = [...objects.values()].map((text) => JSON.parse(text) as { channel?: { token?: string } }).find((p) => p.channel?.token);
    if (!payload?.channel?.token) throw new Error(`bench task ${taskId}: no agent token in its payload`);
    const started = performance.now();
    const response = await handleApiRequest(rt, new LambdaDispatcher(config), {
      method: "POST",
      path: `/agent/v1/tasks/${taskId}/${route}`,
      headers: { authorization: `Bearer ${payload.channel.token}`, "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      userId: "",
    });
    channelRequests++;
    channelGbSeconds += (Math.ceil(performance.now() - started) / 1000) * LAMBDA_MEMORY_GB;
    if (response.statusCode >= 300) throw new Error(`agent channel refused ${route} of bench task ${taskId}: ${response.statusCode} ${response.body}`);
  };
  const onStart = () => {
    if (agentEnd !== undefined) return;
    const start = clock;
    // RUNNING a second after the compute starts, then `seconds` of work.
    agentEnd = start + 1000 + task.seconds * 1000;
    // The agent reads its payload (an S3 GET through its presigned URL), reports RUNNING, beats, and reports its
    // result, all through the agent channel.
    agent.requests["s3:GetObject"] = 1;
    agenda.push({ at: start + 1000, run: () => report("running", undefined) });
    for (let t = start + DEFAULT_HEARTBEAT_SECONDS * 1000; t < agentEnd; t += DEFAULT_HEARTBEAT_SECONDS * 1000) {
      agenda.push({ at: t, run: () => report("heartbeat", undefined) });
    }
    agenda.push({ at: agentEnd, run: () => report("result", { status: "COMPLETED", exit_code: 0, cost_usd: 0 }) });
  };
  resetHistories(mocks);
  objects = scriptCompute(mocks, () => clock, onStart, () => agentEnd);
  resetHistories(mocks);

  // Submit: one HTTP API request, one API Lambda invocation.
  const submitStarted = performance.now();
  const response = await handleApiRequest(rt, new LambdaDispatcher(config), {
    method: "POST",
    path: "/tasks",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ repo_url: "https://github.com/acme/app", prompt: "Fix the flaky test in tests/cache.test.ts. ".repeat(8), backend }),
    userId: "arn:aws:iam::123456789012:user/bench",
  });
  const apiMs = performance.now() - submitStarted;
  if (response.statusCode >= 300) throw new Error(`bench submit was refused: ${response.statusCode} ${response.body}`);
  taskId = (JSON.parse(response.body) as { task: { task_id: string } }).task.task_id;

  let durable = 0;
  let invocations = 1;
  let segmentMs = 0;
  let gbSeconds = Math.ceil(apiMs) / 1000 * LAMBDA_MEMORY_GB;
  const closeInvocation = () => {
    gbSeconds += (Math.ceil(segmentMs) / 1000) * LAMBDA_MEMORY_GB;
    segmentMs = 0;
  };
  const driver: WorkflowDriver = {
    async step(_name, fn) {
      durable++;
      const started = performance.now();
      try {
        return await fn();
      } finally {
        segmentMs += performance.now() - started;
      }
    },
    async wait(_name, seconds) {
      durable++;
      await suspend(seconds);
    },
    // The wake callback is one durable operation; its wait suspends like a durable wait until it is completed or
    // times out (the safety-net poll).
    async armWake(_name, seconds) {
      durable++;
      const wake = { token: `bench-callback-${callbackSeq++}`, woken: false };
      armed = wake;
      return { token: wake.token, wait: () => suspend(seconds, () => wake.woken) };
    },
  };
  // A durable wait suspends the function; the resume is a new invocation.
  async function suspend(seconds: number, woken: () => boolean = () => false): Promise<void> {
    closeInvocation();
    invocations++;
    const target = clock + Math.max(1, Math.ceil(seconds)) * 1000;
    agenda.sort((a, b) => a.at - b.at);
    while (agenda.length && agenda[0].at <= target) {
      const action = agenda.shift()!;
      clock = action.at;
      meter.current = agent;
      current = () => agent;
      try {
        await action.run();
      } finally {
        meter.current = platform;
        current = () => platform;
      }
      // Woken: the orchestrator resumes now, not at the end of its wait (the pure-polling baseline never is).
      if (woken() && !baseline) return;
    }
    clock = target;
  }
  // The baseline polls at a fixed interval, never stretching it (what the orchestrator did before wake callbacks).
  const workflowOptions = baseline ? { waitSeconds: BASELINE_POLL_SECONDS, maxWaitSeconds: BASELINE_POLL_SECONDS } : {};
  const result = await runWorkflow(driver, rt, taskId, workflowOptions);
  closeInvocation();
  // Finalized when the final event was written (payload deleted, capacity released); later rounds of a compute's
  // stop grace (finalizeWithGrace) only stop compute that has not exited.
  const finalEvent = (await events.list(taskId, { limit: 200 })).items.find((e) => e.data?.final === true);
  if (!finalEvent) throw new Error(`bench task ${taskId} on ${backend} has no final event`);
  const finalizedAt = Date.parse(finalEvent.at);
  if (result.status !== "COMPLETED") throw new Error(`bench task on ${backend} ended ${result.status}: ${result.error_message ?? ""}`);

  const requests = { ...platform.requests, ...mockedRequests(mocks) };
  const platformPrice = price(requests, platform.readUnits, platform.writeUnits, { durable, invocations: invocations + 1, gbSeconds, httpApi: 1 });
  const agentPrice = price(agent.requests, agent.readUnits, agent.writeUnits, { durable: 0, invocations: channelRequests, gbSeconds: channelGbSeconds, httpApi: channelRequests });
  return {
    backend,
    task: task.label,
    mode,
    reportToFinalizedSeconds: (finalizedAt - (agentEnd ?? finalizedAt)) / 1000,
    requests,
    awsRequests: sum(requests),
    durableOperations: durable,
    lambdaInvocations: invocations + 1,
    lambdaGbSeconds: gbSeconds,
    readUnits: platform.readUnits,
    writeUnits: platform.writeUnits,
    agentRequests: agent.requests,
    agentReadUnits: agent.readUnits,
    agentWriteUnits: agent.writeUnits,
    channelRequests,
    channelGbSeconds,
    usd: {
      platform: platformPrice.total,
      agentReports: agentPrice.total,
      total: platformPrice.total + agentPrice.total,
      byItem: platformPrice.byItem,
    },
  };
}

export interface CostOptions {
  backends?: readonly CostBackend[];
  lengths?: readonly (typeof TASK_LENGTHS)[number][];
}

export async function runCostBench(options: CostOptions = {}): Promise<CostFigures[]> {
  const store = await startEmbeddedStore({ tablePrefix: "bench-cost" });
  const meter = { current: emptyTally() };
  meterDynamo(awsClient(DynamoDBClient, { region: store.region, endpoint: store.endpoint }), store.endpoint, store.region, () => meter.current);
  const mocks = mockServices();
  const out: CostFigures[] = [];
  try {
    for (const backend of options.backends ?? COST_BACKENDS) {
      for (const task of options.lengths ?? TASK_LENGTHS) {
        for (const mode of COST_MODES) {
          out.push(await runScenario(store, mocks, backend, task, mode, meter));
        }
      }
    }
  } finally {
    restoreMocks(mocks);
    resetClients();
    await store.close();
  }
  return out;
}
