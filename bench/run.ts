/**
 * `npm run bench`: every benchmark in one run — fleet economics (simulation), control-plane cost per task,
 * local throughput, local latency, Lambda archives — then one table on stdout, bench/results.json, and
 * docs/performance.md (with docs/fleet-frontier.svg) rewritten from the figures of this run.
 * `npm run bench -- --quick` runs small inputs and writes nothing; `npm run bench -- --render` rewrites the docs from
 * the last run's bench/results.json without measuring anything.
 */
import { spawnSync } from "node:child_process";
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
 * (real agent processes), then on ECS and EC2 over moto (cloud.ts). Agents work 3–14 s so that their reports land
 * at different points of the poll cycle.
 */
async function latency(count: number, pollSeconds: number, agentCommand: string[], cloud: readonly CloudBackend[], quickWork = false): Promise<LatencyFigures[]> {
  // Agents work 35–46 s: past the first poll, which the workflow takes as a plain wait before it arms a wake.
  const workSeconds = (i: number) => (quickWork ? 1 : 35) + ((i * 7) % 12);
  // Every run waits on the clock, not the CPU: they all run at once.
  const [local, cloudRuns] = await Promise.all([
    runLocalBatch({ count, agentCommand, pollSeconds, workSeconds }),
    cloud.length ? runCloudLatency({ backends: cloud, tasks: count, pollSeconds, workSeconds }) : Promise.resolve([]),
  ]);
  return [
    // The reference agent writes its result to the store and wakes nothing; the local platform's waits stay at the
    // poll interval (its ceiling is the larger of the poll and LOCAL_MAX_WAIT_SECONDS): ours here is pure polling.
    latencyOf("local", "ours = pure polling (the agent's report wakes nothing yet)", pollSeconds, local),
    ...cloudRuns.map((run) => latencyOf(`${run.backend} (moto)`, run.mode, pollSeconds, run.batch)),
  ];
}

function archive(): string {
  const out = spawnSync(process.execPath, [...ts(), path.join(__dirname, "archive.ts")], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`bench:archive failed (exit ${out.status}): ${out.stderr.slice(-2000)}`);
  return out.stdout.trim();
}

const h = (n: number) => n.toFixed(1);
const usd = (n: number) => `$${n < 0.01 ? n.toFixed(6) : n.toFixed(4)}`;

function fleetRow(r: SimulationResult): string {
  return `| ${r.policy}${r.buffer !== undefined ? ` | ${r.buffer}` : " | –"} | ${h(r.instanceHours)} | ${r.waitP50} | ${r.waitP95} | ${r.peakInstances} | ${r.launches} |`;
}

export function tables(r: BenchResults): string {
  const lines: string[] = [];
  const f = r.fleet;
  lines.push(`### Fleet economics (${f.workload.tasks} tasks, seed ${f.workload.seed}, manager pass every ${f.managerLoopSeconds} s)`, "");
  lines.push("| policy | buffer | instance-hours | p50 wait (s) | p95 wait (s) | peak instances | launches |", "| --- | --- | --- | --- | --- | --- | --- |");
  for (const row of [...f.ours, ...f.oursWakes, ...f.peers, ...f.whatIf]) lines.push(fleetRow(row));
  lines.push("");
  lines.push("### Control-plane cost per task", "");
  lines.push("| backend | task | mode | report → finalized (s) | AWS requests | durable ops | Lambda invocations | Lambda GB-s | DynamoDB RRU / WRU | platform $ | agent reports $ | total $ |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const c of r.cost) {
    lines.push(
      `| ${c.backend} | ${c.task} | ${c.mode} | ${c.reportToFinalizedSeconds} | ${c.awsRequests} | ${c.durableOperations} | ${c.lambdaInvocations} | ${c.lambdaGbSeconds.toFixed(3)} | ${c.readUnits} / ${c.writeUnits} | ${usd(c.usd.platform)} | ${usd(c.usd.agentReports)} | ${usd(c.usd.total)} |`,
    );
  }
  lines.push("");
  lines.push("### Local platform", "");
  const t = r.throughput;
  lines.push("| measure | value |", "| --- | --- |");
  lines.push(`| throughput, ${t.tasks} concurrent short tasks | ${t.tasksPerSecond.toFixed(2)} tasks/s (${t.completed} COMPLETED in ${t.elapsedSeconds.toFixed(1)} s) |`);
  lines.push(`| platform process peak RSS | ${t.platformPeakRssMiB.toFixed(0)} MiB |`);
  lines.push("", "### Latency", "");
  lines.push("| backend | mode | poll | tasks | submit → compute started, p50 / max | agent's terminal report → finalized, p50 / max |", "| --- | --- | --- | --- | --- | --- |");
  for (const l of r.latency) {
    lines.push(`| ${l.backend} | ${l.mode} | ${l.pollSeconds} s | ${l.tasks} | ${l.submitToStartedP50Ms} / ${l.submitToStartedMaxMs} ms | ${l.reportToFinalizedP50Ms} / ${l.reportToFinalizedMaxMs} ms |`);
  }
  return lines.join("\n");
}

function dominanceText(f: BenchResults["fleet"], which: "ours" | "oursWakes" | "whatIf"): string {
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
${(f.workload.durationMedian / 60).toFixed(1)} and ${(f.workload.durationP95 / 60).toFixed(1)} min), boots drawn from ${WORKDAY.boot.min}–${WORKDAY.boot.max} s. Our policy is the product's own code: \`desiredCapacity\` on every
fleet-manager pass (every ${f.managerLoopSeconds} s, the stack default), \`planReconcile\` on the lease view, and the readiness check
\`notReadyReason\` before an instance counts as capacity. Its capacity mechanics are the merged code's: a task without an
instance tries again every ${f.mechanics.claim.kind === "retry" ? f.mechanics.claim.retrySeconds : 0} s (the orchestrator's capacity wait), a booted instance becomes capacity at the
manager's next pass, and a finished task frees its instance when the orchestrator's next poll finalizes it (polls back off from
30 s to a ceiling, \`pollDelaySeconds\`) or when the manager's reconciler sees it terminal, whichever comes first. "agent-compute,
agent's report wakes" is the same with the terminal report waking the orchestrator (\`wakeOrchestrator\`, which the agent
channel's result route calls), so the instance is free at once. The peers run on the same trace with the mechanics of systems
whose runners pull work: a free runner takes the oldest waiting job at once. The static fleet is the smallest that waits no
longer at p95 than our default (the stack's default buffer, ${f.defaultBuffer}: ${f.staticSizedFor.p95Target} s), up all day
(${f.staticSizedFor.size} instances). Everything is billed per second with EC2's 60 s minimum over the same window (the day,
longer if a task runs past midnight).

Against each peer, per buffer (dominates = no worse on both instance-hours and p95 wait, better on one). As merged:

${dominanceText(f, "ours")}

With the agent's report waking the orchestrator:

${dominanceText(f, "oursWakes")}

The last rows ("not today's code") run the same \`desiredCapacity\` with pull mechanics: a freed or newly booted instance handed
to the oldest waiting task at once (no 30 s claim retry, no wait for the manager's pass to register it), and the report freeing
the instance at once. They show what the fleet gains when a hand-out exists; they are not the product as it stands. Against
the same peers:

${dominanceText(f, "whatIf")}

![Fleet frontier: instance-hours against p95 wait](fleet-frontier.svg)

**Control-plane cost per task.** One task per backend is submitted through the real API handler and run by the real workflow on
a virtual clock; DynamoDB is the embedded dynalite (it computes consumed read/write units from item sizes, as DynamoDB does;
it has no TransactWriteItems, so the meter runs a transaction's items one by one and bills them twice, as DynamoDB prices
transactions), compute APIs are mocked and counted. Durable operations are the workflow's steps, waits and wake callbacks;
each wait ends a Lambda invocation and the resume starts another. Lambda GB-seconds are the measured time of each invocation's
steps against local emulators at 512 MiB, so they are a floor: real AWS calls are slower. The agent's own reports (a RUNNING
write, a heartbeat every 30 s, its result, and in "report wakes" the wake: a task read and
SendDurableExecutionCallbackSuccess) are priced apart. Three runs each: "ours, report wakes" (the product's polls back off to a
ceiling between wake callbacks, and the report wakes it), "ours, report does not wake" (the same, with an agent that writes the
task store directly, as agents do until the agent channel lands), and the baseline, a fixed 30 s poll. A 10-minute task costs
the platform ${costOf(TASK_LENGTHS[0].label, "ours, report wakes")} (baseline ${costOf(TASK_LENGTHS[0].label, "baseline (fixed 30 s poll)")});
an 8-hour task ${costOf(TASK_LENGTHS[1].label, "ours, report wakes")} (baseline ${costOf(TASK_LENGTHS[1].label, "baseline (fixed 30 s poll)")}).
Durable operations dominate: each poll is a wait (or callback) and a step. "report → finalized" is on the virtual clock: 0 when
the report wakes the orchestrator, up to the current wait between polls when it does not.

Prices (${PRICE_REGION}, ${PRICE_DATE}):

${priceLines.join("\n")}

**Local throughput.** ${r.throughput.tasks} tasks submitted at once through the local API (each the reference agent, bundled to
one JavaScript file, working 1 s), with the per-user cap raised to ${r.throughput.tasks}; tasks/s is from the first submit to the
last task finalized. Peak memory is the platform process's own maximum resident set (the agents are separate processes).

**Latency.** Poll 30 s; six tasks per run, agents working 35–46 s so their reports land at different points of the poll cycle,
after the first poll (the workflow waits for its first poll without arming a wake, so a report in a task's first 30 s is
seen at that poll whatever the mode). Local:
real agent processes on the local platform. ECS and EC2: the same workflow over moto's wire protocol (DynamoDB, S3, ECS
RunTask/DescribeTasks, EC2, SSM SendCommand/GetCommandInvocation), one ready instance per EC2 task registered beforehand; moto
runs no container, so a bench agent reports RUNNING once the compute has started and its result a few seconds later, through
the task store. "Submit → compute started" is the record's \`created_at\` to \`started_at\` (the start step's write after the
backend accepted the start); it does not depend on the poll. "Agent's terminal report → finalized" is the record's
\`finished_at\` (the agent's result) to the final event: the orchestrator learns of the result only at its next poll, so this
is up to the whole interval unless the report wakes the orchestrator. ECS and EC2 run three ways: "ours, report wakes" (the bench
agent's result is followed by the product's \`wakeOrchestrator\`, as the agent channel's result route does), "ours, report does
not wake" (polls back off to the stack's ceiling and nothing wakes them), and the pure-polling baseline (a fixed 30 s poll).

## Lambda archives

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
  try {
    throughputFigures = await section("local throughput", () => throughput(quick ? 5 : 100, agent.command));
    latencyFigures = await section("latency (local, ECS and EC2 on moto; poll 30 s)", () =>
      latency(quick ? 2 : 6, quick ? 2 : 30, agent.command, quick ? [] : ["ecs", "ec2"], quick),
    );
  } finally {
    agent.cleanup();
  }
  const archiveText = quick ? undefined : await section("Lambda archives", archive);
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
