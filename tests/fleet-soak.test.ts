/**
 * The fleet soak: 500 tasks through a simulated EC2 fleet of at most 20 instances, against moto, with the real
 * claim/queue/dispatch code (LeaseTable), the real fleet manager (passes: register, replace failed boots, drain and
 * terminate for scale-in, two-phase repairs, lease reconcile) and the real termination-hook handler. Simulated:
 * the clock (no real sleeps), instance boots (5% fail), agents (random durations, 10% fail), Spot interruptions
 * (the group terminates a busy instance through its lifecycle hook) and instances terminated outside the group,
 * and the orchestrator's side (poll the lease, re-queue a task lost to infrastructure once, release at the end).
 * Every AWS call runs one at a time, so moto's threaded server applies each conditional write atomically.
 * `SOAK_TASKS=2000 npx mocha tests/fleet-soak.test.ts` runs a bigger one.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateLaunchTemplateCommand, CreateTagsCommand, DescribeImagesCommand, EC2Client, TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import { PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { expect } from "chai";
import { awsClient, resetClients } from "../runtime/aws/clients";
import { documentClient } from "../runtime/aws/dynamodb";
import { checkRuntimeConfig, type RuntimeConfig } from "../runtime/config";
import { manageFleets } from "../runtime/fleet/lambda";
import { LeaseTable, type Binding } from "../runtime/fleet/lease";
import { handleTerminationHook } from "../runtime/fleet/manager";
import { BOOT_TAG, FLEET_TAG, TERMINATION_HOOK_NAME } from "../runtime/fleet/tags";
import { oldestWaiters } from "../runtime/fleet/waiters";
import { createTableInput, TABLE_SCHEMAS } from "../runtime/tables";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { startSerialMoto } from "./setup/serial-moto";

const TASKS = Number(process.env.SOAK_TASKS) || 500;
const MAX_INSTANCES = 20;
const TICK = 5;
const PASS_EVERY = 30;
/** The orchestrator's first safety-net poll; later ones double (as runtime/orchestrator/await-schedule.ts). */
const POLL_EVERY = 30;

/** Small seeded PRNG (mulberry32): the same soak every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc (0 where there is none). */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

type Phase = "pending" | "waiting" | "running" | "done";

interface SimTask {
  id: string;
  arrivesAt: number;
  createdAt: string;
  position: string;
  phase: Phase;
  attempt: number;
  duration: number;
  agentFails: boolean;
  /** Set when bound: when its run ends, when to poll next, and (maybe) when infrastructure takes its instance. */
  instanceId?: string;
  endsAt?: number;
  nextPollAt?: number;
  lossAt?: number;
  lossKind?: "spot" | "terminated";
  firstBoundAt?: number;
  status?: "COMPLETED" | "FAILED";
}

describe("fleet soak (moto, simulated clock)", function () {
  // Its wall time is CPU time, nearly all of it moto's: 500 tasks cost ~9,200 AWS calls, ~60 s of moto CPU (~6 ms a
  // call) and ~15 s of this process (the simulated clock never sleeps). About 80 s on an idle 2-core machine; far
  // longer when the machine is shared (it prints wallSeconds, nodeCpuSeconds and motoCpuSeconds).
  this.timeout(1_800_000);
  // Its own single-threaded moto: a fresh EC2 (DescribeInstances stays small) and atomic conditional writes.
  let serial: { url: string; proc: ChildProcess } | undefined;
  let savedEndpoint: string | undefined;
  before(async function () {
    this.timeout(60_000);
    // Read here, not at load time: the shared moto sets it in its own before().
    savedEndpoint = process.env.AWS_ENDPOINT_URL;
    serial = await startSerialMoto();
    process.env.AWS_ENDPOINT_URL = serial.url;
    resetClients();
  });
  after(() => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = savedEndpoint;
    resetClients();
    serial?.proc.kill("SIGTERM");
  });

  it(`${TASKS} tasks on at most ${MAX_INSTANCES} instances: all terminal, no double binding, peak ≤ max, FIFO, no leaked lease`, async () => {
    const random = rng(20261129);
    const wallStart = performance.now();
    const cpuStart = process.cpuUsage();
    const motoCpuStart = cpuSecondsOf(serial!.proc.pid);
    const s = randomBytes(4).toString("hex");
    const fleet = `soak${s}`;
    const asgName = `asg-soak-${s}`;
    // moto stamps launch times with the real clock: the simulated one starts there and only runs ahead of it.
    const start = Date.now();
    let now = 0;
    const clock = () => new Date(start + now * 1000);
    const iso = (t: number) => new Date(start + t * 1000).toISOString();

    const config: RuntimeConfig = checkRuntimeConfig({
      region: "us-east-1",
      tables: { tasks: `t-${s}`, events: `e-${s}`, leases: `l-${s}`, concurrency: `c-${s}`, repos: `r-${s}`, waiters: `w-${s}` },
      payload: { kind: "s3", bucket: `p-${s}` },
      defaultBackend: "ec2",
      enabledBackends: ["ec2"],
      ec2: {
        documentName: "doc",
        fleets: { [fleet]: { autoScalingGroupName: asgName, warmBuffer: 2, readyDeadlineSeconds: 7200, maxTasksPerInstance: 40, terminationHookName: TERMINATION_HOOK_NAME } },
        defaultFleet: fleet,
        deliveryTimeoutSeconds: 60,
        executionTimeoutSeconds: 3600,
        image: "public.ecr.aws/example/agent:1",
      },
      limits: {} as RuntimeConfig["limits"],
    });

    // Product calls are counted; the simulation's own calls (boots, agents, the group's replacements) are not.
    let calls = 0;
    let totalCalls = 0;
    let counting = true;
    const uncounted = async <T>(fn: () => Promise<T>): Promise<T> => {
      counting = false;
      try {
        return await fn();
      } finally {
        counting = true;
      }
    };
    const ddb = awsClient(DynamoDBClient, { region: config.region });
    const ec2 = awsClient(EC2Client, { region: config.region });
    const asg = awsClient(AutoScalingClient, { region: config.region });
    for (const client of [ddb, ec2, asg] as { middlewareStack: { add: (...a: any[]) => void } }[]) {
      client.middlewareStack.add((next: any) => async (args: any) => {
        if (counting) calls++;
        totalCalls++;
        return next(args);
      }, { step: "initialize", name: `soakCounter${s}` });
    }
    const db = documentClient(config);

    await uncounted(async () => {
      for (const key of ["tasks", "leases", "waiters"] as const) await ddb.send(new CreateTableCommand(createTableInput(config.tables[key]!, TABLE_SCHEMAS[key])));
      const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
      await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `lt-${s}`, LaunchTemplateData: { ImageId: imageId, InstanceType: "t3.micro" } }));
      await asg.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: asgName,
          LaunchTemplate: { LaunchTemplateName: `lt-${s}` },
          MinSize: 0,
          MaxSize: MAX_INSTANCES,
          DesiredCapacity: 0,
          AvailabilityZones: ["us-east-1a"],
          Tags: [{ Key: FLEET_TAG, Value: fleet, PropagateAtLaunch: true }],
        }),
      );
    });

    // The invariants, checked as they happen.
    const holder = new Map<string, string>();
    const waitingSince = new Map<string, string>(); // task id → position, while queued
    const byId = new Map<string, SimTask>();
    let doubleBindings = 0;
    let fifoViolations = 0;
    let peak = 0;
    const bindings: Binding[] = [];
    const onBound = (taskId: string, instanceId: string) => {
      const task = byId.get(taskId)!;
      const other = holder.get(instanceId);
      if (other && other !== taskId) doubleBindings++;
      for (const [w, position] of waitingSince) if (w !== taskId && position < task.position) fifoViolations++;
      waitingSince.delete(taskId);
      holder.set(instanceId, taskId);
      task.phase = "running";
      task.instanceId = instanceId;
      task.firstBoundAt ??= now;
      task.endsAt = now + task.duration;
      task.nextPollAt = now + POLL_EVERY;
      if (task.attempt === 0 && random() < 0.08) {
        task.lossAt = now + Math.floor(random() * task.duration);
        task.lossKind = random() < 0.7 ? "spot" : "terminated";
      }
    };
    const leases = new LeaseTable(config, clock, {
      bound: (b) => {
        bindings.push(b);
        onBound(b.taskId, b.instanceId);
      },
      enqueued: (w) => void waitingSince.set(w.taskId, w.position),
    });

    // The group, as AWS runs it: CompleteLifecycleAction lets a hooked termination finish (and, with no
    // decrement, the group launches a replacement); an unhealthy instance is replaced.
    const pendingHooks = new Set<string>();
    const autoscaling = {
      send: (async (command: any) => {
        if (command instanceof CompleteLifecycleActionCommand) {
          pendingHooks.delete(command.input.InstanceId!);
          await asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: command.input.InstanceId!, ShouldDecrementDesiredCapacity: false }));
          return {};
        }
        return asg.send(command);
      }) as AutoScalingClient["send"],
    };

    const tasks: SimTask[] = Array.from({ length: TASKS }, (_, i) => {
      const arrivesAt = Math.floor(random() * TASKS * 3);
      const id = `soak-${String(i).padStart(5, "0")}`;
      const createdAt = iso(arrivesAt) ;
      return { id, arrivesAt, createdAt, position: `${createdAt}#${id}`, phase: "pending", attempt: 0, duration: 20 + Math.floor(random() * 100), agentFails: random() < 0.1 };
    });
    for (const t of tasks) byId.set(t.id, t);

    const setStatus = (id: string, status: string) =>
      uncounted(() => db.send(new UpdateCommand({ TableName: config.tables.tasks, Key: { task_id: id }, UpdateExpression: "SET #s = :s", ExpressionAttributeNames: { "#s": "status" }, ExpressionAttributeValues: { ":s": status } })));

    async function claim(task: SimTask): Promise<void> {
      task.phase = "waiting";
      const r = await leases.claimInstance(fleet, task.id, task.createdAt);
      if (r.ok && task.phase === "waiting") onBound(task.id, r.lease.instanceId);
    }

    async function finish(task: SimTask, status: "COMPLETED" | "FAILED"): Promise<void> {
      await setStatus(task.id, status);
      holder.delete(task.instanceId!);
      task.phase = "done";
      task.status = status;
      await leases.releaseTask(task.id);
    }

    const booting = new Map<string, number>(); // instance → boot done at
    const known = new Set<string>();
    let lastPass = -PASS_EVERY;
    const done = () => tasks.every((t) => t.phase === "done");

    while (!done()) {
      if (now > TASKS * 40) throw new Error(`the soak did not finish: ${tasks.filter((t) => t.phase !== "done").length} tasks left`);
      // Arrivals.
      for (const t of tasks) {
        if (t.phase !== "pending" || t.arrivesAt > now) continue;
        await uncounted(() => db.send(new PutCommand({ TableName: config.tables.tasks, Item: { task_id: t.id, status: "STARTING", user_id: "u", created_at: t.createdAt } })));
        await claim(t);
      }
      // Instances boot (5% fail): found through the group's members when the manager runs.
      if (now - lastPass >= PASS_EVERY) {
        await uncounted(async () => {
          const group = (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }))).AutoScalingGroups![0];
          const live = (group.Instances ?? []).filter((m) => !/^Terminat/.test(m.LifecycleState ?? ""));
          peak = Math.max(peak, live.length);
          for (const m of live) {
            if (known.has(m.InstanceId!)) continue;
            known.add(m.InstanceId!);
            booting.set(m.InstanceId!, now + 15 + Math.floor(random() * 30));
          }
          for (const [id, at] of booting) {
            if (at > now) continue;
            booting.delete(id);
            await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: BOOT_TAG, Value: random() < 0.05 ? "failed" : "ready" }] }));
          }
        });
      }
      // Agents and infrastructure.
      for (const t of tasks) {
        if (t.phase !== "running") continue;
        if (t.lossAt !== undefined && t.lossAt <= now) {
          const id = t.instanceId!;
          t.lossAt = undefined;
          if (t.lossKind === "spot") {
            pendingHooks.add(id);
            await handleTerminationHook({ config, leases, autoscaling }, { EC2InstanceId: id, AutoScalingGroupName: asgName, LifecycleHookName: TERMINATION_HOOK_NAME });
          } else {
            await uncounted(() => ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })));
          }
        }
        if (t.nextPollAt! <= now && t.endsAt! > now) {
          // The orchestrator's poll: is the instance still this task's (Ec2Strategy.pollSession reads the lease)?
          t.nextPollAt = now + 2 * (t.nextPollAt! - (t.endsAt! - t.duration) || POLL_EVERY);
          const lease = await leases.get(t.instanceId!);
          const lost = !lease || lease.taskId !== t.id || (lease.state === "DRAINING" && lease.drainReason === "terminating");
          if (lost) {
            holder.delete(t.instanceId!);
            await leases.releaseTask(t.id);
            if (t.attempt >= 1) {
              await finish(t, "FAILED");
            } else {
              t.attempt++;
              t.instanceId = undefined;
              await claim(t);
            }
            continue;
          }
        }
        if (t.endsAt! <= now) await finish(t, t.agentFails ? "FAILED" : "COMPLETED");
      }
      // The fleet manager, and the group replacing what it was told is unhealthy.
      if (now - lastPass >= PASS_EVERY) {
        lastPass = now;
        await manageFleets(config, leases, { autoscaling });
        await uncounted(async () => {
          const group = (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [asgName] }))).AutoScalingGroups![0];
          for (const m of group.Instances ?? []) {
            if (m.HealthStatus === "Unhealthy") await asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: m.InstanceId!, ShouldDecrementDesiredCapacity: false }));
          }
        });
      }
      now += TICK;
    }
    // The fleet settles: passes until nothing is leased or queued.
    for (let i = 0; i < 4; i++) {
      now += PASS_EVERY;
      await manageFleets(config, leases, { autoscaling });
    }

    const leaseItems = await leases.list(fleet);
    const taskItems = await Promise.all(tasks.map((t) => leases.leaseOfTask(t.id)));
    const waiters = await oldestWaiters(db, config.tables.waiters!, fleet, 10);
    const waits = tasks.filter((t) => t.firstBoundAt !== undefined).map((t) => t.firstBoundAt! - t.arrivesAt);
    const requeued = tasks.filter((t) => t.attempt > 0).length;
    const stats = {
      tasks: TASKS,
      completed: tasks.filter((t) => t.status === "COMPLETED").length,
      failed: tasks.filter((t) => t.status === "FAILED").length,
      requeued,
      bindings: bindings.length,
      peakInstances: peak,
      instancesLaunched: known.size,
      callsPerTask: +(calls / TASKS).toFixed(1),
      timeToCapacityP50: percentile(waits, 50),
      timeToCapacityP95: percentile(waits, 95),
      simulatedSeconds: now,
      // Where the wall time goes: this process (the product code, the simulation, the SDK) and the moto server.
      wallSeconds: +((performance.now() - wallStart) / 1000).toFixed(1),
      nodeCpuSeconds: +((process.cpuUsage(cpuStart).user + process.cpuUsage(cpuStart).system) / 1e6).toFixed(1),
      motoCpuSeconds: +(cpuSecondsOf(serial!.proc.pid) - motoCpuStart).toFixed(1),
      awsCalls: totalCalls,
    };
    console.log(`      soak: ${JSON.stringify(stats)}`);

    expect(tasks.every((t) => t.status), "all tasks terminal").to.equal(true);
    expect(doubleBindings, "no instance bound to two tasks").to.equal(0);
    expect(peak, "peak instances").to.be.at.most(MAX_INSTANCES);
    expect(fifoViolations, "no waiting task passed by a younger one").to.equal(0);
    expect(leaseItems.filter((l) => l.taskId), "no lease still held").to.deep.equal([]);
    expect(taskItems.filter(Boolean), "no task item left").to.deep.equal([]);
    expect(waiters, "nobody left queued").to.deep.equal([]);
    expect(requeued, "some tasks were lost to infrastructure and re-queued").to.be.greaterThan(0);
    expect(stats.failed, "agent failures and second losses fail tasks").to.be.greaterThan(0);
    expect(known.size, "instances were replaced and scaled").to.be.greaterThan(MAX_INSTANCES);
  });
});
