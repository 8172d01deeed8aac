/** The local orchestrator loop's own behaviour, and finalize's idempotence (what makes a re-run harmless). */
import { expect } from "chai";
import type { RuntimeConfig } from "../runtime/config";
import { finalizeTask } from "../runtime/orchestrator/finalize";
import { OrchestrationAbortedError, runTaskLocally, sleepFor } from "../runtime/orchestrator/local-orchestrator";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import { agent, createTables, createTask, handleFor, harness, testConfig } from "./orchestrator-fixtures";

describe("local orchestrator loop", function () {
  this.timeout(60_000);
  let config: RuntimeConfig;
  before(async () => {
    config = testConfig();
    await createTables(config);
  });

  it("runs a task to COMPLETED with the injected sleep: the interval before the first poll, then doubling", async () => {
    const h = harness(config, "local", async ({ n, rt, taskId, clock }) => {
      await agent.running(rt, taskId, clock.now());
      if (n < 2) return { state: "RUNNING" };
      await agent.complete(rt, taskId);
      return { state: "EXITED", exitCode: 0 };
    });
    const task = await createTask(h.rt, { backend: "local" });
    const slept: number[] = [];
    const result = await runTaskLocally(h.rt, task.task_id, { sleep: async (ms) => void slept.push(ms), waitSeconds: 2 });
    expect(result).to.deep.include({ task_id: task.task_id, status: "COMPLETED", exit_code: 0 });
    expect(slept).to.deep.equal([2000, 2000, 4000]);
  });

  it("without waitSeconds it waits the stack's poll interval", async () => {
    const h = harness(config, "local", async ({ rt, taskId }) => {
      await agent.complete(rt, taskId);
      return { state: "EXITED", exitCode: 0 };
    });
    const task = await createTask(h.rt, { backend: "local" });
    const slept: number[] = [];
    await runTaskLocally(h.rt, task.task_id, { sleep: async (ms) => void slept.push(ms) });
    expect(slept).to.deep.equal([config.limits.pollIntervalSeconds * 1000]);
  });

  it("an abort stops the loop between steps with OrchestrationAbortedError and leaves the task as it is", async () => {
    const h = harness(config, "local", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { backend: "local" });
    const abort = new AbortController();
    const err = await runTaskLocally(h.rt, task.task_id, {
      signal: abort.signal,
      waitSeconds: 1,
      sleep: async () => abort.abort(),
    }).catch((e) => e);
    expect(err).to.be.instanceOf(OrchestrationAbortedError);
    expect(err.message).to.include(task.task_id);
    const record = (await h.rt.tasks.get(task.task_id))!;
    expect(record.status).to.equal("STARTING");
    expect(h.strategy.stops).to.deep.equal([]);
  });

  it("sleepFor ends early when its signal aborts", async () => {
    const abort = new AbortController();
    const started = Date.now();
    const sleeping = sleepFor(60_000, abort.signal);
    abort.abort();
    await sleeping;
    expect(Date.now() - started).to.be.below(1000);
  });

  it("finalize run twice writes one final event and releases everything once", async () => {
    const h = harness(config, "ecs", async () => ({ state: "EXITED", exitCode: 1 }));
    const task = await createTask(h.rt, { user_id: "hank", backend: "ecs" });
    await new ConcurrencySlots(config).claim("hank", task.task_id, 10);
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await h.rt.tasks.update(task.task_id, { compute_type: "ecs", compute_metadata: handleFor("ecs", task.task_id) }, ["STARTING"]);
    await h.rt.tasks.transition(task.task_id, "FAILED", { error_message: "agent reported failure" });

    const first = await finalizeTask(h.rt, task.task_id);
    const second = await finalizeTask(h.rt, task.task_id);
    expect(second).to.deep.equal(first);
    expect(first).to.deep.include({ status: "FAILED", error_message: "agent reported failure" });
    const finals = (await h.rt.events.list(task.task_id)).items.filter((e) => e.data?.final === true);
    expect(finals.map((e) => e.message)).to.deep.equal(["task FAILED: agent reported failure"]);
    expect(await new ConcurrencySlots(config).holders("hank")).to.deep.equal([]);
    // The compute reports itself finished: finalize does not stop it again.
    expect(h.strategy.stops).to.deep.equal([]);
    // What the backend holds beyond the session is given back on each run (the strategy's release is idempotent).
    expect(h.strategy.releases).to.deep.equal([task.task_id, task.task_id]);
  });

  it("finalize asks the backend a task's start would have chosen to release it, when none was recorded", async () => {
    // The stack default is local: a task with no backend and no blueprint started there.
    const h = harness(config, "local", async () => ({ state: "EXITED", exitCode: 1 }));
    const task = await createTask(h.rt, { user_id: "ivy" });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await h.rt.tasks.transition(task.task_id, "FAILED", { error_message: "start failed after taking capacity" });
    await finalizeTask(h.rt, task.task_id);
    expect(h.strategy.releases).to.deep.equal([task.task_id]);
  });

  it("finalize refuses a task that has not finished, naming its status", async () => {
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { backend: "ecs" });
    const err = await finalizeTask(h.rt, task.task_id).catch((e) => e);
    expect(err.message).to.include("is SUBMITTED; finalize needs a terminal status");
  });
});
