/**
 * Infrastructure loss is not the agent's fault: a task whose compute is lost (Spot interruption, instance gone,
 * undeliverable command) runs again as a new attempt, once by default, with the lost attempt on its record. An
 * agent's own failure is never re-queued.
 */
import { expect } from "chai";
import { runTaskLocally } from "../runtime/orchestrator/local-orchestrator";
import { agent, createTables, createTask, harness, testConfig, type PollScript } from "./orchestrator-fixtures";

/** Attempt 1 starts running, then its compute is lost; attempt 2 completes. */
const lostThenCompletes: PollScript = async ({ rt, taskId, clock }) => {
  const task = await rt.tasks.get(taskId);
  await agent.running(rt, taskId, clock.now());
  if (!task?.attempt) return { state: "LOST", reason: "SpotInterruption: Spot capacity reclaimed" };
  await agent.complete(rt, taskId);
  return { state: "EXITED", exitCode: 0 };
};

describe("re-queue on infrastructure loss", function () {
  this.timeout(60_000);

  async function run(limits: { infraRetries?: number }, startsNewAttempts: boolean | undefined, script: PollScript) {
    const config = testConfig(limits);
    await createTables(config);
    const h = harness(config, "ecs", script);
    if (startsNewAttempts !== undefined) Object.assign(h.strategy, { startsNewAttempts });
    const task = await createTask(h.rt, { backend: "ecs" });
    const result = await runTaskLocally(h.rt, task.task_id, { sleep: async () => undefined, waitSeconds: 1 });
    return { h, result, record: (await h.rt.tasks.get(task.task_id))! };
  }

  it("a lost compute is re-queued once and the second attempt completes, the first recorded with its reason", async () => {
    const { h, result, record } = await run({}, true, lostThenCompletes);
    expect(result.status).to.equal("COMPLETED");
    expect(h.strategy.starts, "started twice").to.have.length(2);
    expect(h.strategy.stops.map((s) => s.reason), "the lost compute is stopped").to.have.length(1);
    expect(h.strategy.stops[0].reason).to.match(/lost.*SpotInterruption/);
    expect(record.attempt).to.equal(1);
    expect(record.attempts).to.have.length(1);
    expect(record.attempts![0]).to.include({ attempt: 0, compute_type: "ecs" });
    expect(record.attempts![0].reason).to.match(/SpotInterruption/);
    const events = (await h.rt.events.list(record.task_id, { limit: 100 })).items.map((e) => e.message);
    expect(events.some((m) => /re-queued as attempt 2/.test(m))).to.equal(true);
  });

  it("a second loss fails the task: one re-queue by default", async () => {
    const { h, result, record } = await run({}, true, async ({ rt, taskId, clock }) => {
      await agent.running(rt, taskId, clock.now());
      return { state: "LOST", reason: "instance terminated" };
    });
    expect(result.status).to.equal("FAILED");
    expect(result.error_message).to.match(/lost.*instance terminated/);
    expect(h.strategy.starts).to.have.length(2);
    expect(record.attempts).to.have.length(1);
  });

  it("infraRetries 0 fails at the first loss", async () => {
    const { h, result } = await run({ infraRetries: 0 }, true, lostThenCompletes);
    expect(result.status).to.equal("FAILED");
    expect(h.strategy.starts).to.have.length(1);
  });

  it("a backend whose start would find the lost session again is not re-queued", async () => {
    const { h, result } = await run({}, undefined, lostThenCompletes);
    expect(result.status).to.equal("FAILED");
    expect(h.strategy.starts).to.have.length(1);
  });

  it("an agent that fails is never re-queued", async () => {
    const { h, result } = await run({}, true, async ({ rt, taskId, clock }) => {
      await agent.running(rt, taskId, clock.now());
      return { state: "EXITED", exitCode: 3 };
    });
    expect(result.status).to.equal("FAILED");
    expect(h.strategy.starts).to.have.length(1);
  });
});
