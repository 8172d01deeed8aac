/** The bench's own modules on tiny inputs: they run, they are reproducible, and their verdicts follow their inputs. */
import { expect } from "chai";
import { runCostBench } from "../bench/cost/cost";
import { frontierSvg } from "../bench/fleet/chart";
import { dominates, fleetChart, fleetSettings, rateSeconds, runFleetEconomics } from "../bench/fleet/economics";
import { simulateProduct } from "../bench/fleet/product";
import { ephemeralRunners, staticFleet } from "../bench/fleet/peers";
import { percentile, simulate, type SimulationResult } from "../bench/fleet/simulate";
import { generateTrace, WORKDAY } from "../bench/fleet/workload";

const SMALL = { ...WORKDAY, tasks: 40 };

function point(instanceHours: number, waitP95: number): SimulationResult {
  return { policy: "p", tasks: 1, instanceHours, waitP50: 0, waitP95, waitMax: waitP95, peakInstances: 1, launches: 1, horizon: 86400 };
}

describe("bench: fleet economics", () => {
  it("draws the same trace from the same seed, and another from another seed", () => {
    expect(generateTrace(SMALL)).to.deep.equal(generateTrace(SMALL));
    expect(generateTrace({ ...SMALL, seed: SMALL.seed + 1 })).to.not.deep.equal(generateTrace(SMALL));
  });

  it("draws arrivals inside the working day and run times of at least a minute", () => {
    for (const t of generateTrace(SMALL)) {
      expect(t.arrival).to.be.within(SMALL.workday.start, SMALL.workday.end);
      expect(t.duration).to.be.at.least(60);
    }
  });

  it("gives every task an instance under every policy, and a fleet of one makes tasks queue", () => {
    const trace = generateTrace(SMALL);
    const one = simulate(trace, staticFleet(1), SMALL);
    const ample = simulate(trace, staticFleet(SMALL.tasks), SMALL);
    expect(one.tasks).to.equal(SMALL.tasks);
    expect(one.waitP95).to.be.greaterThan(ample.waitP95);
    expect(ample.waitMax).to.equal(0);
    // One instance per task: each task waits exactly its instance's boot.
    const eph = simulate(trace, ephemeralRunners(), SMALL);
    expect(eph.launches).to.equal(SMALL.tasks);
    expect(eph.waitMax).to.be.at.most(SMALL.boot.max);
    expect(eph.waitP50).to.be.at.least(SMALL.boot.min);
  });

  it("runs ours at every buffer and every peer, sizes the static fleet, and draws one SVG point per result", async () => {
    const r = await runFleetEconomics(SMALL);
    expect(r.ours.map((o) => o.buffer)).to.deep.equal([0, 1, 2, 4]);
    expect(r.peers.length).to.equal(6);
    const staticRun = r.peers[0];
    expect(staticRun.waitP95).to.be.at.most(r.staticSizedFor.p95Target);
    expect(fleetChart(r).match(/<circle [^>]*><title>/g)?.length).to.equal(r.ours.length + r.oursNoGrace.length + r.peers.length);
    expect(r.dominance.length).to.equal((r.ours.length + r.oursNoGrace.length) * r.peers.length);
  });

  it("runs our fleet through the product's decisions: every task served, instances registered, handed over and drained", async () => {
    const trace = generateTrace(SMALL);
    const run = await simulateProduct(trace, { settings: fleetSettings({ warmBuffer: 0 }), maxSize: SMALL.tasks, scheduleSeconds: 60 }, SMALL);
    expect(run.tasks).to.equal(SMALL.tasks);
    // Every launch was registered by a pass (planFleet), and every task was bound by the dispatcher or a hand-over.
    expect(run.actions.register).to.equal(run.launches);
    expect(run.dispatched + run.handOvers).to.equal(SMALL.tasks);
    // No buffer, nothing queued at night: the fleet ends the day empty, having drained what it launched.
    expect(run.actions.terminate).to.equal(run.launches);
    // A task waits at least a boot and two passes' worth when no instance is free, never more than the day allows.
    expect(run.waitMax).to.be.at.least(SMALL.boot.min);
    // The idle grace keeps instances a while: with it the day launches fewer instances than without.
    const atOnce = await simulateProduct(trace, { settings: fleetSettings({ warmBuffer: 0, scaleInIdleSeconds: 0 }), maxSize: SMALL.tasks, scheduleSeconds: 60 }, SMALL);
    expect(run.launches).to.be.lessThan(atOnce.launches);
  });

  it("calls a point dominant only when it is no worse on both axes and better on one", () => {
    const cases: [a: [number, number], b: [number, number], expected: boolean][] = [
      [[10, 10], [20, 20], true],
      [[10, 20], [20, 20], true],
      [[10, 10], [10, 10], false],
      [[10, 30], [20, 20], false],
      [[30, 10], [20, 20], false],
    ];
    for (const [a, b, expected] of cases) expect(dominates(point(...a), point(...b)), `${a} vs ${b}`).to.equal(expected);
  });

  it("reads EventBridge rates and percentiles as written", () => {
    expect(rateSeconds("rate(1 minute)")).to.equal(60);
    expect(rateSeconds("rate(5 minutes)")).to.equal(300);
    expect(() => rateSeconds("cron(0 * * * ? *)")).to.throw(/rate/);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).to.equal(10);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).to.equal(5);
  });

  it("writes a well-formed SVG that escapes its labels", () => {
    const svg = frontierSvg([{ series: "a<b", label: "b=1", x: 1, y: 2 }, { series: "a<b", label: "b=2", x: 2, y: 1 }], "t", "x", "y");
    expect(svg.startsWith("<svg")).to.equal(true);
    expect(svg).to.contain("a&lt;b");
    expect(svg).to.not.contain("a<b");
  });
});

describe("bench: control-plane cost per task", function () {
  this.timeout(60_000);

  it("meters a 10-minute ECS task: requests, durable operations, units and dollars all counted, and a wake finalizes at once", async () => {
    const [wakes, baseline] = await runCostBench({ backends: ["ecs"], lengths: [{ label: "10 min", seconds: 600 }] });
    expect([wakes.mode, baseline.mode]).to.deep.equal(["ours (the agent channel's result wakes)", "baseline (fixed 30 s poll)"]);
    expect(wakes.requests["ecs:RunTask"]).to.equal(1);
    expect(wakes.requests["ecs:DescribeTasks"]).to.be.greaterThan(0);
    expect(wakes.requests["dynamodb:PutItem"]).to.be.greaterThan(0);
    expect(wakes.readUnits).to.be.greaterThan(0);
    expect(wakes.writeUnits).to.be.greaterThan(0);
    // The channel's result route wakes the orchestrator: finalized on the report's instant, through one callback
    // completion; the baseline sees the result at its next poll.
    expect(wakes.reportToFinalizedSeconds).to.equal(0);
    expect(wakes.agentRequests["lambda:SendDurableExecutionCallbackSuccess"]).to.equal(1);
    expect(baseline.reportToFinalizedSeconds).to.be.greaterThan(0);
    // Each report is a channel request: RUNNING, a heartbeat every 30 s of the 600 s, the result.
    expect(wakes.channelRequests).to.equal(1 + 20 + 1);
    expect(wakes.channelGbSeconds).to.be.greaterThan(0);
    expect(wakes.agentReadUnits).to.be.greaterThan(0);
    // A 600 s task polled every 30 s: twenty waits at least, each a durable operation and a new invocation.
    expect(baseline.durableOperations).to.be.at.least(40);
    expect(baseline.lambdaInvocations).to.be.at.least(21);
    expect(baseline.durableOperations).to.be.greaterThan(wakes.durableOperations);
    expect(wakes.agentRequests["dynamodb:UpdateItem"]).to.be.greaterThan(1);
    expect(wakes.usd.total).to.be.greaterThan(0);
    expect(wakes.usd.total).to.be.closeTo(wakes.usd.platform + wakes.usd.agentReports, 1e-12);
  });
});
