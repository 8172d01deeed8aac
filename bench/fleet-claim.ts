/**
 * `npm run bench:fleet`: the EC2 capacity hand-out under contention, against moto (a single-threaded moto server,
 * so each conditional write is atomic as in DynamoDB). For 10 tasks on 50 ready instances, 200 on 50 and 200 on
 * 1,000, every task is submitted at once; tasks that got an instance finish (release) round after round until all
 * have run. Measured for the lease table's queue + dispatcher (with an Auto Scaling group, so scale-in protection
 * is set and cleared as in production) and, in the same run, for the tag-then-verify claim it replaces (describe
 * idle instances by tag → tag one busy → describe it again to confirm; losers retry every round):
 * - AWS calls per dispatched task: every call the claims, waits, binds and releases made, over the tasks run;
 * - time to claim (ms, wall clock): from a task's submission to the moment it is bound (told, or its claim returns);
 * - double bindings: an instance confirmed to two tasks at once;
 * - FIFO violations: a task bound while an older task, queued before it, still waited.
 * Usage: npm run bench:fleet [-- --only 200x50]
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { AutoScalingClient, CreateAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  EC2Client,
  paginateDescribeInstances,
  RunInstancesCommand,
  type Instance,
} from "@aws-sdk/client-ec2";
import { awsClient, resetClients } from "../runtime/aws/clients";
import { checkRuntimeConfig, type RuntimeConfig } from "../runtime/config";
import { LeaseTable, type Binding } from "../runtime/fleet/lease";
import { describeReadyInstances } from "../runtime/fleet/sync";
import { BOOT_TAG, FLEET_TAG, LEASE_TAG, TASK_ID_TAG } from "../runtime/fleet/tags";
import { createTableInput, TABLE_SCHEMAS } from "../runtime/tables";
import { startSerialMoto } from "../tests/setup/serial-moto";

interface Scenario {
  name: string;
  tasks: number;
  instances: number;
}

const SCENARIOS: Scenario[] = [
  { name: "10x50", tasks: 10, instances: 50 },
  { name: "200x50", tasks: 200, instances: 50 },
  { name: "200x1000", tasks: 200, instances: 1000 },
];

interface Result {
  design: string;
  scenario: string;
  callsPerTask: number;
  /** Of those, the calls made claiming and waiting (including the binds a dispatcher made for others). */
  claimCallsPerTask: number;
  p50: number;
  p95: number;
  doubleBindings: number;
  fifoViolations: number;
  rounds: number;
}

let calls = 0;
const counted = new WeakSet<object>();
function countCalls<T extends { middlewareStack: { add: (...a: any[]) => void } }>(client: T): T {
  if (!counted.has(client)) {
    counted.add(client);
    client.middlewareStack.add((next: any) => async (args: any) => {
      calls++;
      return next(args);
    }, { step: "initialize", name: "benchCallCounter" });
  }
  return client;
}

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Strictly increasing: two events never share a timestamp, so bind and enqueue times order them. */
function monotonicClock(): () => Date {
  let last = 0;
  return () => new Date((last = Math.max(last + 1, Date.now())));
}

let imageId: string | undefined;

async function fleetOf(s: Scenario, asgName?: string): Promise<{ fleet: string; ids: string[]; instances: Instance[] }> {
  const fleet = `b${randomBytes(3).toString("hex")}`;
  const ec2 = awsClient(EC2Client, {});
  imageId ??= (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  const tags = [
    { Key: FLEET_TAG, Value: fleet },
    { Key: BOOT_TAG, Value: "ready" },
  ];
  if (asgName) {
    const lt = `lt-${fleet}`;
    await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: lt, LaunchTemplateData: { ImageId: imageId, InstanceType: "t3.micro" } }));
    await awsClient(AutoScalingClient, {}).send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: asgName,
        LaunchTemplate: { LaunchTemplateName: lt },
        MinSize: 0,
        MaxSize: s.instances,
        DesiredCapacity: s.instances,
        AvailabilityZones: ["us-east-1a"],
        Tags: tags.map((t) => ({ ...t, PropagateAtLaunch: true })),
      }),
    );
  } else {
    for (let left = s.instances; left > 0; left -= 500) {
      const n = Math.min(500, left);
      await ec2.send(
        new RunInstancesCommand({ ImageId: imageId, InstanceType: "t3.micro", MinCount: n, MaxCount: n, TagSpecifications: [{ ResourceType: "instance", Tags: [...tags, { Key: LEASE_TAG, Value: "idle" }] }] }),
      );
    }
  }
  const instances = await describeReadyInstances({ region: "us-east-1" } as RuntimeConfig, fleet);
  return { fleet, ids: instances.map((i) => i.InstanceId!), instances };
}

function configFor(fleet: string, asgName: string): RuntimeConfig {
  const s = randomBytes(4).toString("hex");
  return checkRuntimeConfig({
    region: "us-east-1",
    tables: { tasks: `t-${s}`, events: `e-${s}`, leases: `l-${s}`, concurrency: `c-${s}`, repos: `r-${s}`, waiters: `w-${s}` },
    payload: { kind: "s3", bucket: `p-${s}` },
    defaultBackend: "ec2",
    enabledBackends: ["ec2"],
    ec2: { documentName: "d", fleets: { [fleet]: { autoScalingGroupName: asgName } }, defaultFleet: fleet, deliveryTimeoutSeconds: 60, executionTimeoutSeconds: 3600, image: "public.ecr.aws/x/agent:1" },
    limits: {} as RuntimeConfig["limits"],
  });
}

/** The lease table's queue and dispatcher. */
async function runQueue(s: Scenario): Promise<Result> {
  const asgName = `asg-${randomBytes(4).toString("hex")}`;
  const { fleet, instances } = await fleetOf(s, asgName);
  const config = configFor(fleet, asgName);
  const ddb = awsClient(DynamoDBClient, { region: config.region });
  for (const key of ["leases", "waiters"] as const) await ddb.send(new CreateTableCommand(createTableInput(config.tables[key]!, TABLE_SCHEMAS[key])));

  const submittedAt = new Map<string, number>();
  const boundAt = new Map<string, number>();
  const enqueuedAt = new Map<string, string>();
  const claimedAt = new Map<string, string>();
  const positions = new Map<string, string>();
  const holders = new Map<string, string>();
  let doubleBindings = 0;
  const woken: string[] = [];
  const onBound = (taskId: string, instanceId: string, at: string) => {
    if (boundAt.has(taskId)) return;
    boundAt.set(taskId, performance.now());
    claimedAt.set(taskId, at);
    const other = holders.get(instanceId);
    if (other && other !== taskId) doubleBindings++;
    holders.set(instanceId, taskId);
  };
  const table = new LeaseTable(config, monotonicClock(), {
    bound: (b: Binding) => {
      onBound(b.taskId, b.instanceId, b.claimedAt);
      woken.push(b.taskId);
    },
    enqueued: (w) => void enqueuedAt.set(w.taskId, w.enqueuedAt),
  });
  // Registered as the fleet manager does, from the instances it just described (moto takes ~70 ms to describe one
  // instance among 1,000; the setup is not measured).
  for (const instance of instances) await table.registerInstance(fleet, instance.InstanceId!, instance);
  countCalls(ddb);
  countCalls(awsClient(EC2Client, { region: config.region }));
  countCalls(awsClient(AutoScalingClient, { region: config.region }));
  calls = 0;

  const tasks = Array.from({ length: s.tasks }, (_, i) => `task-${String(i).padStart(4, "0")}`);
  const base = Date.parse("2030-01-01T00:00:00.000Z");
  await Promise.all(
    tasks.map(async (t, i) => {
      const createdAt = new Date(base + i * 1000).toISOString();
      positions.set(t, `${createdAt}#${t}`);
      submittedAt.set(t, performance.now());
      const r = await table.claimInstance(fleet, t, createdAt);
      if (r.ok) onBound(t, r.lease.instanceId, r.lease.claimedAt!);
    }),
  );
  let claimCalls = calls;
  const released = new Set<string>();
  let rounds = 0;
  while (released.size < tasks.length) {
    rounds++;
    // Woken tasks come back for their lease (one read each), then every running task finishes.
    const before = calls;
    await Promise.all(woken.splice(0).map((t) => table.claimInstance(fleet, t)));
    claimCalls += calls - before;
    const running = tasks.filter((t) => boundAt.has(t) && !released.has(t));
    if (!running.length) throw new Error(`queue: ${tasks.length - released.size} tasks never got an instance`);
    for (const t of running) holders.delete([...holders].find(([, v]) => v === t)?.[0] ?? "");
    await Promise.all(running.map((t) => table.releaseTask(t).then(() => released.add(t))));
  }

  let fifoViolations = 0;
  for (const t of tasks) {
    const passedBy = tasks.some(
      (w) => positions.get(w)! < positions.get(t)! && enqueuedAt.has(w) && enqueuedAt.has(t) && enqueuedAt.get(w)! < enqueuedAt.get(t)! && claimedAt.get(w)! > claimedAt.get(t)!,
    );
    if (passedBy) fifoViolations++;
  }
  const waits = tasks.map((t) => boundAt.get(t)! - submittedAt.get(t)!);
  return { design: "queue + dispatcher", scenario: s.name, callsPerTask: calls / tasks.length, claimCallsPerTask: claimCalls / tasks.length, p50: percentile(waits, 50), p95: percentile(waits, 95), doubleBindings, fifoViolations, rounds };
}

/** The baseline: describe idle by tag → tag busy → describe again to confirm; a loser retries next round. */
async function runTagThenVerify(s: Scenario): Promise<Result> {
  const { fleet } = await fleetOf(s);
  const ec2 = countCalls(awsClient(EC2Client, { region: "us-east-1" }));
  calls = 0;
  const tasks = Array.from({ length: s.tasks }, (_, i) => `task-${String(i).padStart(4, "0")}`);
  const submittedAt = new Map(tasks.map((t) => [t, performance.now()]));
  const boundAt = new Map<string, number>();
  const boundRound = new Map<string, number>();
  const held = new Map<string, string>();
  let doubleBindings = 0;
  let fifoViolations = 0;
  let rounds = 0;

  async function attempt(task: string): Promise<string | undefined> {
    const idle: string[] = [];
    const pages = paginateDescribeInstances(
      { client: ec2, pageSize: 1000 },
      { Filters: [{ Name: `tag:${FLEET_TAG}`, Values: [fleet] }, { Name: `tag:${LEASE_TAG}`, Values: ["idle"] }, { Name: "instance-state-name", Values: ["running"] }] },
    );
    for await (const page of pages) for (const r of page.Reservations ?? []) idle.push(...(r.Instances ?? []).map((i) => i.InstanceId!));
    if (!idle.length) return undefined;
    const pick = idle[Math.floor(Math.random() * idle.length)];
    await ec2.send(new CreateTagsCommand({ Resources: [pick], Tags: [{ Key: LEASE_TAG, Value: "busy" }, { Key: TASK_ID_TAG, Value: task }] }));
    const seen = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [pick] }));
    const owner = seen.Reservations?.[0]?.Instances?.[0]?.Tags?.find((t) => t.Key === TASK_ID_TAG)?.Value;
    return owner === task ? pick : undefined;
  }

  let waiting = [...tasks];
  let claimCalls = 0;
  while (waiting.length) {
    rounds++;
    if (rounds > 1000) throw new Error("tag-then-verify: no progress");
    const before = calls;
    const results = await Promise.all(waiting.map(async (t) => [t, await attempt(t)] as const));
    claimCalls += calls - before;
    const winners = results.filter(([, id]) => id) as [string, string][];
    const byInstance = new Map<string, number>();
    for (const [t, id] of winners) {
      boundAt.set(t, performance.now());
      boundRound.set(t, rounds);
      held.set(t, id);
      byInstance.set(id, (byInstance.get(id) ?? 0) + 1);
    }
    for (const n of byInstance.values()) if (n > 1) doubleBindings += n - 1;
    const stillWaiting = results.filter(([, id]) => !id).map(([t]) => t);
    // A winner of this round passed every older task that lost it.
    const oldestWaiting = stillWaiting.sort()[0];
    if (oldestWaiting) fifoViolations += winners.filter(([t]) => t > oldestWaiting).length;
    waiting = stillWaiting;
    // Every winner's task runs and finishes before the next round: release (untag) its instance.
    await Promise.all(
      winners.map(async ([t, id]) => {
        await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: LEASE_TAG, Value: "idle" }] }));
        await ec2.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: TASK_ID_TAG }] }));
        held.delete(t);
      }),
    );
  }
  const waits = tasks.map((t) => boundAt.get(t)! - submittedAt.get(t)!);
  return { design: "tag-then-verify (baseline)", scenario: s.name, callsPerTask: calls / tasks.length, claimCallsPerTask: claimCalls / tasks.length, p50: percentile(waits, 50), p95: percentile(waits, 95), doubleBindings, fifoViolations, rounds };
}

function table(results: Result[]): string {
  const head = ["scenario (tasks x ready instances)", "design", "AWS calls per dispatched task", "of which claim + wait", "p50 time to claim (ms)", "p95 time to claim (ms)", "double bindings", "FIFO violations", "release rounds"];
  const rows = results.map((r) => [r.scenario, r.design, r.callsPerTask.toFixed(1), r.claimCallsPerTask.toFixed(1), r.p50.toFixed(0), r.p95.toFixed(0), String(r.doubleBindings), String(r.fifoViolations), String(r.rounds)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
  let moto: { url: string; proc: ChildProcess } | undefined;
  try {
    moto = await startSerialMoto();
    Object.assign(process.env, { AWS_ENDPOINT_URL: moto.url, AWS_ACCESS_KEY_ID: "bench", AWS_SECRET_ACCESS_KEY: "bench", AWS_REGION: "us-east-1" });
    resetClients();
    const results: Result[] = [];
    const started = performance.now();
    for (const s of SCENARIOS.filter((x) => !only || x.name === only)) {
      const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(0)} s`;
      let at = performance.now();
      console.error(`${s.name}: queue + dispatcher …`);
      results.push(await runQueue(s));
      console.error(`${s.name}: queue + dispatcher took ${seconds(at)}; tag-then-verify …`);
      at = performance.now();
      results.push(await runTagThenVerify(s));
      console.error(`${s.name}: tag-then-verify took ${seconds(at)}`);
      const [ours, base] = results.slice(-2);
      console.error(`${s.name}: claim + wait ${ours.claimCallsPerTask.toFixed(1)} vs ${base.claimCallsPerTask.toFixed(1)} calls per task (baseline / queue = ${(base.claimCallsPerTask / ours.claimCallsPerTask).toFixed(2)})`);
    }
    console.log(table(results));
    console.log("\nEvery task ran once in each design; calls include claims, waits, binds, protection/tag mirrors and releases.");
    console.log("Scale-in protection is set once per instance, at registration (not measured in either design).");
    console.log(`Run time: ${((performance.now() - started) / 1000).toFixed(0)} s.`);
  } finally {
    moto?.proc.kill("SIGTERM");
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
