/**
 * `npm run bench`: every benchmark in one run — fleet economics (simulation), control-plane cost per task,
 * local throughput, local latency, Lambda archives — then one table on stdout, bench/results.json, and
 * docs/performance.md (with docs/fleet-frontier.svg) rewritten from the figures of this run.
 * `npm run bench -- --quick` runs small inputs and writes nothing; `npm run bench -- --render` rewrites the docs from
 * the last run's bench/results.json without measuring anything.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCostBench, TASK_LENGTHS, type CostFigures } from "./cost/cost";
import { PRICE_DATE, PRICE_REGION, PRICES } from "./cost/prices";
import { fleetChart, runFleetEconomics, type FleetEconomics } from "./fleet/economics";
import { percentile, type SimulationResult } from "./fleet/simulate";
import { WORKDAY } from "./fleet/workload";
import { bundleReferenceAgent } from "./local/agent-bundle";
import { runLocalBatch, type BatchResult } from "./local/local-run";
import { runCloudLatency, type CloudBackend } from "./latency/cloud";

const ROOT = path.resolve(__dirname, "..");
const COMMAND = "npm run bench";

export interface ThroughputFigures {
  tasks: number;
  elapsedSeconds: number;
  tasksPerSecond: number;
  completed: number;
  /** Tasks that did not complete, by status and reason. */
  notCompleted: Record<string, number>;
  platformPeakRssMiB: number;
}

export interface LatencyFigures {
  backend: string;
  mode: string;
  pollSeconds: number;
  tasks: number;
  submitToStartedP50Ms: number;
  submitToStartedMaxMs: number;
  reportToFinalizedP50Ms: number;
  reportToFinalizedMaxMs: number;
}

export interface BenchResults {
  command: string;
  ranAt: string;
  machine: { cpus: number; node: string; platform: string };
  fleet: FleetEconomics;
  cost: CostFigures[];
  throughput: ThroughputFigures;
  latency: LatencyFigures[];
  archive?: string;
  /** Wall-clock seconds of each part of this run. */
  sections: Record<string, number>;
  seconds: number;
}

function ts(): string[] {
  return [require.resolve("ts-node/dist/bin"), "--transpile-only"];
}

async function throughput(count: number, agentCommand: string[]): Promise<ThroughputFigures> {
  // A child process, so that the peak memory is the platform's alone (agents are its own children).
  const out = spawnSync(process.execPath, [...ts(), path.join(__dirname, "local/local-run.ts"), String(count), ...agentCommand], {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (out.status !== 0) throw new Error(`throughput run failed (exit ${out.status}): ${out.stderr.slice(-2000)}`);
  const line = out.stdout.trim().split("\n").pop()!;
  const result = JSON.parse(line) as BatchResult & { maxRssKiB: number };
  return {
    tasks: result.tasks.length,
    elapsedSeconds: result.elapsedMs / 1000,
    tasksPerSecond: result.tasks.length / (result.elapsedMs / 1000),
    completed: result.tasks.filter((t) => t.status === "COMPLETED").length,
    notCompleted: result.tasks
      .filter((t) => t.status !== "COMPLETED")
      .reduce<Record<string, number>>((by, t) => {
        const why = `${t.status}: ${(t.error ?? "no reason recorded").slice(0, 160)}`;
        by[why] = (by[why] ?? 0) + 1;
        return by;
      }, {}),
    platformPeakRssMiB: result.maxRssKiB / 1024,
  };
}

function latencyOf(backend: string, mode: string, pollSeconds: number, batch: BatchResult): LatencyFigures {
  const started = batch.tasks.map((t) => t.submitToStartedMs).sort((a, b) => a - b);
  const final = batch.tasks.map((t) => t.reportToFinalizedMs).sort((a, b) => a - b);
  return {
    backend,
    mode,
    pollSeconds,
    tasks: batch.tasks.length,
    submitToStartedP50Ms: percentile(started, 50),
    submitToStartedMaxMs: started[started.length - 1],
    reportToFinalizedP50Ms: percentile(final, 50),
    reportToFinalizedMaxMs: final[final.length - 1],
  };
}

/**
 * Latency with a 30 s poll, the product as it is and the pure-polling baseline side by side: on the local backend
 * (real agent processes), then on ECS, EC2 and AgentCore over moto (cloud.ts). Agents work 35–46 s so that their reports land
 * at different points of the poll cycle.
 */
async function latency(count: number, pollSeconds: number, agentCommand: string[], cloud: readonly CloudBackend[], quickWork = false): Promise<LatencyFigures[]> {
  // Agents work 35–46 s: their reports land at different points of the poll cycle, past the first poll.
  const workSeconds = (i: number) => (quickWork ? 1 : 35) + ((i * 7) % 12);
  // Every run waits on the clock, not the CPU: they all run at once.
  const [local, cloudRuns] = await Promise.all([
    runLocalBatch({ count, agentCommand, pollSeconds, workSeconds }),
    cloud.length ? runCloudLatency({ backends: cloud, tasks: count, pollSeconds, workSeconds }) : Promise.resolve([]),
  ]);
  return [
    // The reference agent reports through the local platform's agent channel, whose result route wakes the
    // orchestrator in this process (a direct wake, not a callback).
    latencyOf("local", "ours (the agent channel's result wakes)", pollSeconds, local),
    ...cloudRuns.map((run) => latencyOf(`${run.backend} (moto)`, run.mode, pollSeconds, run.batch)),
  ];
}

/** The archive bench in a child process, asynchronously: it builds and loads while the latency runs wait. */
function archive(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...ts(), path.join(__dirname, "archive.ts")], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d.toString()));
    child.stderr.on("data", (d) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(stdout.trim()) : reject(new Error(`bench:archive failed (exit ${code}): ${stderr}`))));
  });
}

const h = (n: number) => n.toFixed(1);
const usd = (n: number) => `$${n < 0.01 ? n.toFixed(6) : n.toFixed(4)}`;

function fleetRow(r: SimulationResult): string {
  return `| ${r.policy}${r.buffer !== undefined ? ` | ${r.buffer}` : " | –"} | ${h(r.instanceHours)} | ${r.waitP50} | ${r.waitP95} | ${r.peakInstances} | ${r.launches} |`;
}

export function tables(r: BenchResults): string {
  const lines: string[] = [];
  const f = r.fleet;
  lines.push(`### Fleet economics (${f.workload.tasks} tasks, seed ${f.workload.seed}; fleet manager invoked every ${f.scheduleSeconds} s, a pass every ${f.passSeconds} s)`, "");
  lines.push("| policy | buffer | instance-hours | p50 wait (s) | p95 wait (s) | peak instances | launches |", "| --- | --- | --- | --- | --- | --- | --- |");
  for (const row of [...f.ours, ...f.peers, ...f.oursNoGrace]) lines.push(fleetRow(row));
  lines.push("");
  lines.push("### Control-plane cost per task", "");
  lines.push(
    "| backend | task | mode | report → finalized (s) | AWS requests | durable ops | Lambda invocations | Lambda GB-s | DynamoDB RRU / WRU | platform $ | agent channel: requests, GB-s, RRU / WRU | agent reports $ | total $ |",
  );
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const c of r.cost) {
    lines.push(
      `| ${c.backend} | ${c.task} | ${c.mode} | ${c.reportToFinalizedSeconds} | ${c.awsRequests} | ${c.durableOperations} | ${c.lambdaInvocations} | ${c.lambdaGbSeconds.toFixed(3)} | ${c.readUnits} / ${c.writeUnits} | ${usd(c.usd.platform)} | ${c.channelRequests}, ${c.channelGbSeconds.toFixed(3)}, ${c.agentReadUnits} / ${c.agentWriteUnits} | ${usd(c.usd.agentReports)} | ${usd(c.usd.total)} |`,
    );
  }
  lines.push("");
  lines.push("### Local platform", "");
  const t = r.throughput;
  lines.push("| measure | value |", "| --- | --- |");
  lines.push(`| throughput, ${t.tasks} concurrent short tasks | ${t.tasksPerSecond.toFixed(2)} tasks/s (${t.completed} COMPLETED in ${t.elapsedSeconds.toFixed(1)} s) |`);
  for (const [why, n] of Object.entries(t.notCompleted ?? {})) lines.push(`| not completed: ${why.replace(/\|/g, "\\|")} | ${n} |`);
  lines.push(`| platform process peak RSS | ${t.platformPeakRssMiB.toFixed(0)} MiB |`);
  lines.push("", "### Latency", "");
  lines.push("| backend | mode | poll | tasks | submit → compute started, p50 / max | agent's terminal report → finalized, p50 / max |", "| --- | --- | --- | --- | --- | --- |");
  for (const l of r.latency) {
    lines.push(`| ${l.backend} | ${l.mode} | ${l.pollSeconds} s | ${l.tasks} | ${l.submitToStartedP50Ms} / ${l.submitToStartedMaxMs} ms | ${l.reportToFinalizedP50Ms} / ${l.reportToFinalizedMaxMs} ms |`);
  }
  return lines.join("\n");
}

function dominanceText(f: BenchResults["fleet"], which: "ours" | "oursNoGrace"): string {
  const lines: string[] = [];
  for (const o of f[which]) {
    const name = `${o.policy} (buffer ${o.buffer})`;
    const mine = f.dominance.filter((d) => d.ours === name);
    if (mine.length === 0) continue;
    const wins = mine.filter((d) => d.verdict === "ours dominates").map((d) => d.peer);
    const losses = mine.filter((d) => d.verdict === "peer dominates").map((d) => d.peer);
    lines.push(`- buffer ${o.buffer}: dominates ${wins.length ? wins.join("; ") : "no peer"}; dominated by ${losses.length ? losses.join("; ") : "no peer"}.`);
  }
  return lines.join("\n");
}

function performanceDoc(r: BenchResults): string {
  const f = r.fleet;
  const costOf = (task: string, mode: string) =>
    r.cost.filter((c) => c.task === task && c.mode === mode).map((c) => `${usd(c.usd.platform)} on ${c.backend}`).join(", ");
  const priceLines = Object.values(PRICES).map((p) => `- ${p.per}: $${Number((p.usd * 1e6).toPrecision(6))} per million — ${p.source}`);
  return `# Performance

Produced by \`${r.command}\` on ${r.ranAt} (${r.machine.cpus} CPUs, Node ${r.machine.node}), in ${Math.round(r.seconds)} s
(${Object.entries(r.sections).map(([k, v]) => `${k} ${Math.round(v)} s`).join(", ")}). Every figure below comes from that run; the raw
numbers are in \`bench/results.json\`. Run it again to refresh this page; it rewrites this file.

${tables(r)}

## Reading the figures

**Fleet economics.** A discrete-event simulation of one working day: ${f.workload.tasks} tasks between
${(f.workload.firstArrival / 3600).toFixed(1)} h and ${(f.workload.lastArrival / 3600).toFixed(1)} h with a morning and an afternoon burst
(at most ${f.workload.peakConcurrency} tasks running at once if each had an instance the moment it arrived), agent run times
lognormal with median ${WORKDAY.duration.median / 60} min and p95 ${WORKDAY.duration.p95 / 60} min (this trace's draw:
${(f.workload.durationMedian / 60).toFixed(1)} and ${(f.workload.durationP95 / 60).toFixed(1)} min), boots drawn from ${WORKDAY.boot.min}–${WORKDAY.boot.max} s.

Our fleet is the product's own code, imported from \`runtime/fleet/\` (\`bench/fleet/product.ts\`): the fleet manager is invoked every
${f.scheduleSeconds} s and passes every ${f.passSeconds} s for ${f.passBudgetSeconds} s of it (\`manageFleetsFor\`); each pass runs \`planReconcile\` then
\`planFleet\` (registration of booted instances, scale-out to \`desiredCapacity\` = busy + queued + buffer, scale-in by draining
idle READY instances and terminating them through the group, after an idle grace of ${f.scaleInIdleSeconds} s). A task joins its fleet's queue
at its submission time and the dispatcher's own pairing (\`dispatchRounds\`: oldest waiter, oldest ready instance) runs whenever
the product kicks it: on the claim, after a pass registered instances, after a release left an instance READY while someone
waits. A finished task's instance goes where \`releaseTarget\` says: to the oldest waiter at once (hand-over), else READY. The
agent's result reaches the orchestrator through the agent channel, which wakes it, so the instance is released at the report.
The lease table and queue are in memory (one process: the dispatcher's lock is always free); the clock, the Auto Scaling group
(it may only terminate instances not yet protected), boots and agents are the simulation's. The peers run on the same trace
with the mechanics of systems whose runners pull work: an idle runner takes the oldest waiting job the moment it is booted or
free. Ephemeral runners launch one instance the moment each task arrives (no scaler delay, which favours them) and terminate it
when the task ends, so each pays a full boot and is billed from launch to the end of its task (per second: no idle tail beyond
the 60 s minimum). The agent-scaler peer keeps queued + running + buffer on a 60 s loop,
and an instance idle for 600 s terminates itself (the Elastic CI Stack's defaults). The static fleet is the smallest that waits no
longer at p95 than our default (the stack's default buffer, ${f.defaultBuffer}: ${f.staticSizedFor.p95Target} s), up all day
(${f.staticSizedFor.size} instances). Everything is billed per second with EC2's 60 s minimum over the same window (the day,
longer if a task runs past midnight). A warm buffer is kept all day, nights included, by ours and by agent-scaler alike.

Against each peer, per buffer (dominates = no worse on both instance-hours and p95 wait, better on one):

${dominanceText(f, "ours")}

The last rows are the same code with \`scaleInIdleSeconds\` 0, the policy before this grace existed: an idle instance beyond the
buffer was drained at the next pass (within ${f.passSeconds} s), and the next arrival then waited for a fresh boot. It launched far more
instances for the same day (see "launches"), paying a boot each time:

${dominanceText(f, "oursNoGrace")}

![Fleet frontier: instance-hours against p95 wait](fleet-frontier.svg)

**Control-plane cost per task.** One task per backend is submitted through the real API handler and run by the real workflow on
a virtual clock; DynamoDB is the embedded dynalite (it computes consumed read/write units from item sizes, as DynamoDB does;
it has no TransactWriteItems, so the meter runs a transaction's items one by one and bills them twice, as DynamoDB prices
transactions), compute APIs are mocked and counted. Durable operations are the workflow's steps, waits and wake callbacks;
each wait ends a Lambda invocation and the resume starts another. Lambda GB-seconds are the measured time of each invocation's
steps against local emulators at 512 MiB, so they are a floor: real AWS calls are slower. The agent's own reports are priced
apart, as the agent channel serves them: its payload read (an S3 GET through its presigned URL), RUNNING, a heartbeat every 30 s
and its result, each one request to the API's /agent/v1 routes — one HTTP API request, one API Lambda invocation (512 MiB) whose
GB-seconds are the measured time of the real router serving it, and the DynamoDB units the channel's handler consumed (a token
check reads the task; RUNNING, each heartbeat and the result write it; RUNNING and the result add an event); the result route
also wakes the orchestrator (a task read and SendDurableExecutionCallbackSuccess). Two runs each: "ours" (the product's polls
back off to a ceiling between wake callbacks, and the channel's result wakes it) and the baseline, a fixed 30 s poll that
nothing wakes, with the same agent. A 10-minute task costs
the platform ${costOf(TASK_LENGTHS[0].label, "ours (the agent channel's result wakes)")} (baseline ${costOf(TASK_LENGTHS[0].label, "baseline (fixed 30 s poll)")});
an 8-hour task ${costOf(TASK_LENGTHS[1].label, "ours (the agent channel's result wakes)")} (baseline ${costOf(TASK_LENGTHS[1].label, "baseline (fixed 30 s poll)")}).
Durable operations dominate the platform's share: each poll is a wait (or callback) and a step. The agent's share is its
heartbeats: each is an HTTP API request, a Lambda invocation and a task write. "report → finalized" is on the virtual clock:
0 when the report wakes the orchestrator, up to the current wait between polls when it does not.

Prices (${PRICE_REGION}, ${PRICE_DATE}):

${priceLines.join("\n")}

**Local throughput.** ${r.throughput.tasks} tasks submitted at once through the local API (each the reference agent, bundled to
one JavaScript file, working 1 s), with the per-user cap raised to ${r.throughput.tasks}; tasks/s is from the first submit to the
last task finalized. Peak memory is the platform process's own maximum resident set (the agents are separate processes).

**Latency.** Poll 30 s; six tasks per run, agents working 35–46 s so their reports land at different points of the poll cycle,
past the first poll (the start step arms the wake before it starts anything, so an earlier report would end the wait
as well; these runs measure the common case of a report mid-cycle). Local: real agent processes (the reference agent, bundled) on the local platform,
reporting through its agent channel, whose result route wakes the orchestrator in-process. ECS, EC2 and AgentCore: the same
workflow over moto's wire protocol (DynamoDB, S3, ECS RunTask/DescribeTasks, EC2, SSM SendCommand/GetCommandInvocation), one ready
instance per EC2 task registered beforehand; a run's tasks are submitted one after another, each once its compute has started
(one single-threaded moto serving every start at once would measure its own queue), and the runs go on side by side. moto has no AgentCore, so InvokeAgentRuntime is answered at once by
aws-sdk-client-mock: that row is our control plane around an AgentCore start (API, admission, payload, token, the start step),
not AgentCore's own session start, which no emulator here can show. moto runs no container, so a bench agent reports RUNNING
once the compute has started and its result a few seconds later, through the agent channel (the API router's /agent/v1 routes
with the token from its payload). "Submit → compute started" is the record's \`created_at\` to \`started_at\` (the start step's
write after the backend accepted the start); it does not depend on the poll. "Agent's terminal report → finalized" is the
record's \`finished_at\` (the agent's result) to the final event. The baseline is pure polling at a fixed 30 s: its agent writes
its result to the task store and nothing wakes the orchestrator, so the result is seen at the next poll.

## Lambda archives

\`npm run bench:archive\` (run by \`npm run bench\` while the latency runs wait on their clocks, so its cold-load times share the
machine with them; sizes do not depend on it):

\`\`\`
${r.archive ?? "(not run)"}
\`\`\`
`;
}

export async function runBench(options: { quick?: boolean } = {}): Promise<BenchResults> {
  const began = Date.now();
  const quick = options.quick === true;
  const sections: Record<string, number> = {};
  const section = async <T>(name: string, run: () => T | Promise<T>): Promise<T> => {
    process.stderr.write(`[bench] ${name}\n`);
    const t0 = Date.now();
    try {
      return await run();
    } finally {
      sections[name] = (Date.now() - t0) / 1000;
    }
  };
  const fleet = await section("fleet economics", () => runFleetEconomics(quick ? { ...WORKDAY, tasks: 60 } : WORKDAY));
  const cost = await section("control-plane cost per task", () => runCostBench(quick ? { backends: ["ecs"], lengths: [TASK_LENGTHS[0]] } : {}));
  const agent = await bundleReferenceAgent();
  let throughputFigures: ThroughputFigures;
  let latencyFigures: LatencyFigures[];
  let archiveText: string | undefined;
  try {
    throughputFigures = await section("local throughput", () => throughput(quick ? 5 : 100, agent.command));
    // The latency runs mostly wait on the clock (agents working, polls): the archive bench builds meanwhile.
    [latencyFigures, archiveText] = await Promise.all([
      section("latency (local; ECS, EC2 and AgentCore on moto; poll 30 s)", () =>
        latency(quick ? 2 : 6, quick ? 2 : 30, agent.command, quick ? [] : ["ecs", "ec2", "agentcore"], quick),
      ),
      quick ? Promise.resolve(undefined) : section("Lambda archives (alongside the latency runs)", archive),
    ]);
  } finally {
    agent.cleanup();
  }
  const results: BenchResults = {
    command: COMMAND,
    ranAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.arch()}` },
    fleet,
    cost,
    throughput: throughputFigures,
    latency: latencyFigures,
    ...(archiveText !== undefined ? { archive: archiveText } : {}),
    sections,
    seconds: (Date.now() - began) / 1000,
  };
  if (!quick) {
    fs.writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    writeDocs(results);
  }
  return results;
}

const RESULTS = path.join(__dirname, "results.json");

/** docs/performance.md and its chart, from one run's results. */
function writeDocs(results: BenchResults): void {
  fs.mkdirSync(path.join(ROOT, "docs"), { recursive: true });
  fs.writeFileSync(path.join(ROOT, "docs", "fleet-frontier.svg"), fleetChart(results.fleet));
  fs.writeFileSync(path.join(ROOT, "docs", "performance.md"), performanceDoc(results));
}

if (require.main === module && process.argv.includes("--render")) {
  // Rewrite the docs from the last run's results (after a change to how they are written); measures nothing.
  writeDocs(JSON.parse(fs.readFileSync(RESULTS, "utf8")) as BenchResults);
} else if (require.main === module) {
  runBench({ quick: process.argv.includes("--quick") }).then(
    (r) => {
      process.stdout.write(`${tables(r)}\n\n`);
      if (r.archive) process.stdout.write(`${r.archive}\n`);
      process.stdout.write(`\nbench finished in ${r.seconds.toFixed(0)} s${process.argv.includes("--quick") ? "" : "; wrote bench/results.json, docs/performance.md, docs/fleet-frontier.svg"}\n`);
    },
    (err) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
