/**
 * `npm run bench`: every benchmark in one run — fleet economics (simulation), control-plane cost per task,
 * local throughput, local latency, Lambda archives — then one table on stdout, bench/results.json, and
 * docs/performance.md (with docs/fleet-frontier.svg) rewritten from the figures of this run.
 * `npm run bench -- --quick` runs small inputs (for the bench's own test); it writes nothing.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCostBench, TASK_LENGTHS, type CostFigures } from "./cost/cost";
import { PRICE_DATE, PRICE_REGION, PRICES } from "./cost/prices";
import { runFleetEconomics, type FleetEconomics } from "./fleet/economics";
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
  fleet: Omit<FleetEconomics, "svg">;
  cost: CostFigures[];
  throughput: ThroughputFigures;
  latency: LatencyFigures[];
  archive?: string;
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
async function latency(count: number, pollSeconds: number, agentCommand: string[], cloud: readonly CloudBackend[]): Promise<LatencyFigures[]> {
  const workSeconds = (i: number) => 3 + ((i * 7) % 12);
  // Every run waits on the clock, not the CPU: they all run at once.
  const [ours, baseline, cloudRuns] = await Promise.all([
    runLocalBatch({ count, agentCommand, pollSeconds, workSeconds }),
    runLocalBatch({ count, agentCommand, pollSeconds, workSeconds }),
    cloud.length ? runCloudLatency({ backends: cloud, tasks: count, pollSeconds }) : Promise.resolve([]),
  ]);
  return [
    latencyOf("local", "ours", pollSeconds, ours),
    latencyOf("local", "baseline (pure polling)", pollSeconds, baseline),
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
  for (const row of [...f.ours, ...f.peers, ...f.whatIf]) lines.push(fleetRow(row));
  lines.push("");
  lines.push("### Control-plane cost per task", "");
  lines.push("| backend | task | mode | AWS requests | durable ops | Lambda invocations | Lambda GB-s | DynamoDB RRU / WRU | platform $ | agent reports $ | total $ |");
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const c of r.cost) {
    lines.push(
      `| ${c.backend} | ${c.task} | ${c.mode} | ${c.awsRequests} | ${c.durableOperations} | ${c.lambdaInvocations} | ${c.lambdaGbSeconds.toFixed(3)} | ${c.readUnits} / ${c.writeUnits} | ${usd(c.usd.platform)} | ${usd(c.usd.agentReports)} | ${usd(c.usd.total)} |`,
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

function dominanceText(f: BenchResults["fleet"], which: "ours" | "whatIf"): string {
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
  const cost10 = r.cost.filter((c) => c.task === TASK_LENGTHS[0].label && c.mode === "ours");
  const cost8 = r.cost.filter((c) => c.task === TASK_LENGTHS[1].label && c.mode === "ours");
  const priceLines = Object.values(PRICES).map((p) => `- ${p.per}: $${p.usd.toPrecision(4)} — ${p.source}`);
  return `# Performance

Produced by \`${r.command}\` on ${r.ranAt} (${r.machine.cpus} CPUs, Node ${r.machine.node}), in ${Math.round(r.seconds)} s. Every
figure below comes from that run; the raw numbers are in \`bench/results.json\`. Run it again to refresh this page.

${tables(r)}

## Reading the figures

**Fleet economics.** A discrete-event simulation of one working day: ${f.workload.tasks} tasks between
${(f.workload.firstArrival / 3600).toFixed(1)} h and ${(f.workload.lastArrival / 3600).toFixed(1)} h with a morning and an afternoon burst
(at most ${f.workload.peakConcurrency} tasks running at once if each had an instance the moment it arrived), agent run times
lognormal (median ${Math.round(f.workload.durationMedian / 60)} min, p95 ${Math.round(f.workload.durationP95 / 60)} min in this
trace), boots drawn from ${WORKDAY.boot.min}–${WORKDAY.boot.max} s. Our policy is the product's own code: \`desiredCapacity\` on every
fleet-manager pass (every ${f.managerLoopSeconds} s, the stack default), \`planReconcile\` on the lease view, and the readiness check
\`notReadyReason\` before an instance counts as capacity. Its capacity mechanics are today's: a task without an instance tries
again every ${f.mechanics.claim.kind === "retry" ? f.mechanics.claim.retrySeconds : 0} s (the orchestrator's poll interval), a booted instance becomes
capacity at the manager's next pass, and a finished task frees its instance when the orchestrator's next poll finalizes it (or the
reconciler sees it terminal first). The peers run on the same trace with the mechanics of systems whose runners pull work: a
free runner takes the oldest waiting job at once. The static fleet is the smallest that waits no longer at p95 than our default
(the stack's default buffer, ${f.defaultBuffer}: ${f.staticSizedFor.p95Target} s), up all day (${f.staticSizedFor.size} instances). Everything is billed per second with EC2's
60 s minimum over the same window (the day, longer if a task runs past midnight).

Against each peer, per buffer (dominates = no worse on both instance-hours and p95 wait, better on one):

${dominanceText(f, "ours")}

The last rows ("not today's code") run the same \`desiredCapacity\` with pull mechanics: a freed or newly booted instance handed
to the oldest waiting task at once, and the agent's terminal report freeing the instance at once. They show what the fleet gains
when those two mechanisms exist; they are not the product as it stands. Against the same peers:

${dominanceText(f, "whatIf")}

![Fleet frontier: instance-hours against p95 wait](fleet-frontier.svg)

**Control-plane cost per task.** One task per backend is submitted through the real API handler and run by the real workflow on
a virtual clock; DynamoDB is the embedded dynalite (it computes consumed read/write units from item sizes, as DynamoDB does),
compute APIs are mocked and counted. Durable operations are the workflow's steps and waits; each wait ends a Lambda invocation
and the resume starts another. Lambda GB-seconds are the measured time of each invocation's steps against local emulators at
${"512"} MiB, so they are a floor: real AWS calls are slower. The agent's own reports (a RUNNING write, a heartbeat every 30 s, its
result) are priced apart. A 10-minute task costs the platform ${cost10.map((c) => `${usd(c.usd.platform)} on ${c.backend}`).join(", ")};
an 8-hour task ${cost8.map((c) => `${usd(c.usd.platform)} on ${c.backend}`).join(", ")}. Durable operations dominate: every poll is
a wait and a step. The baseline is the same run with a fixed 30 s poll; where "ours" and the baseline agree, the product still
polls every 30 s.

Prices (${PRICE_REGION}, ${PRICE_DATE}):

${priceLines.join("\n")}

**Local throughput.** ${r.throughput.tasks} tasks submitted at once through the local API (each the reference agent, bundled to
one JavaScript file, working 1 s), with the per-user cap raised to ${r.throughput.tasks}; tasks/s is from the first submit to the
last task finalized. Peak memory is the platform process's own maximum resident set (the agents are separate processes).

**Latency.** Local backend, poll 30 s, agents working 3–14 s so their reports land anywhere in the poll cycle. Submit → agent
process started does not depend on the poll (admission and start run at once). Agent's terminal report → finalized waits for the
next poll: up to the whole interval, as long as the product finishes a task only by polling.

## Lambda archives

\`\`\`
${r.archive ?? "(not run)"}
\`\`\`
`;
}

export async function runBench(options: { quick?: boolean } = {}): Promise<BenchResults> {
  const began = Date.now();
  const quick = options.quick === true;
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  log("fleet economics");
  const { svg, ...fleet } = runFleetEconomics(quick ? { ...WORKDAY, tasks: 60 } : WORKDAY);
  log("control-plane cost per task");
  const cost = await runCostBench(quick ? { backends: ["ecs"], lengths: [TASK_LENGTHS[0]] } : {});
  const agent = await bundleReferenceAgent();
  let throughputFigures: ThroughputFigures;
  let latencyFigures: LatencyFigures[];
  try {
    log("local throughput");
    throughputFigures = await throughput(quick ? 5 : 100, agent.command);
    log("local latency (poll 30 s)");
    latencyFigures = await latency(quick ? 2 : 6, quick ? 2 : 30, agent.command, quick ? [] : ["ecs", "ec2"]);
  } finally {
    agent.cleanup();
  }
  let archiveText: string | undefined;
  if (!quick) {
    log("Lambda archives");
    archiveText = archive();
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
    seconds: (Date.now() - began) / 1000,
  };
  if (!quick) {
    fs.writeFileSync(path.join(__dirname, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
    fs.mkdirSync(path.join(ROOT, "docs"), { recursive: true });
    fs.writeFileSync(path.join(ROOT, "docs", "fleet-frontier.svg"), svg);
    fs.writeFileSync(path.join(ROOT, "docs", "performance.md"), performanceDoc(results));
  }
  return results;
}

if (require.main === module) {
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
