/**
 * What wakes a waiting orchestrator at once, instead of its next safety-net re-check: the agent's terminal report
 * for a task that ends before its first poll, and a freed slot for the user's oldest queued task. The sleeps here
 * never end by themselves: only a wake moves the orchestration on.
 */
import { expect } from "chai";
import type { RuntimeConfig } from "../runtime/config";
import { finalizeTask } from "../runtime/orchestrator/finalize";
import { runTaskLocally } from "../runtime/orchestrator/local-orchestrator";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import { wakeOrchestrator } from "../runtime/orchestrator/wake";
import type { WorkflowResult } from "../runtime/orchestrator/workflow";
import { agent, createTables, createTask, eventually, harness, suffix, testConfig } from "./orchestrator-fixtures";

/** A sleep that only an abort ends: the orchestration moves on only when something wakes it. */
const sleepUntilWoken = (_ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true }));

describe("waking a waiting orchestrator", function () {
  this.timeout(60_000);
  let config: RuntimeConfig;
  before(async () => {
    config = testConfig({ maxConcurrentPerUser: 1 });
    await createTables(config);
  });

  it("a task whose agent reports its result before the first poll is finalized at once, not after the poll interval", async () => {
    const h = harness(config, "ecs", async ({ rt, taskId }) => ((await rt.tasks.get(taskId))!.status === "COMPLETED" ? { state: "EXITED", exitCode: 0 } : { state: "RUNNING" }));
    const task = await createTask(h.rt, { backend: "ecs", user_id: `u-${suffix()}` });
    const abort = new AbortController();
    let reported = false;
    const sleep = (ms: number, signal?: AbortSignal) => {
      if (!reported) {
        reported = true;
        // The agent's result through the channel, as its route does it: the terminal write, then the wake.
        setImmediate(async () => {
          await agent.running(h.rt, task.task_id, h.clock.now());
          await agent.complete(h.rt, task.task_id);
          await wakeOrchestrator(h.rt, task.task_id);
        });
      }
      return sleepUntilWoken(ms, signal);
    };
    let result: WorkflowResult | undefined;
    void runTaskLocally(h.rt, task.task_id, { sleep, signal: abort.signal, waitSeconds: 30 }).then((r) => (result = r));
    try {
      await eventually("the orchestration to end on the agent's report", async () => result);
    } finally {
      abort.abort();
    }
    expect(result).to.deep.include({ status: "COMPLETED" });
    // The poll right after the wake, and finalize's look at the compute.
    expect(h.strategy.polls.get(task.task_id)).to.equal(2);
  });

  it("a queued task is woken when its user's slot is given back, and takes it", async () => {
    const user = `u-${suffix()}`;
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    const first = await createTask(h.rt, { backend: "ecs", user_id: user });
    const queued = await createTask(h.rt, { backend: "ecs", user_id: user });
    await h.rt.tasks.transition(first.task_id, "STARTING");
    await new ConcurrencySlots(config).claim(user, first.task_id, 1);

    // The queued task's first re-check passes (it is a plain wait); every later one waits for a wake.
    let sleeps = 0;
    const sleep = (ms: number, signal?: AbortSignal) => (sleeps++ === 0 ? Promise.resolve() : sleepUntilWoken(ms, signal));
    const abort = new AbortController();
    void runTaskLocally(h.rt, queued.task_id, { sleep, signal: abort.signal, waitSeconds: 30 }).catch(() => undefined);
    try {
      await eventually("the second re-check's wait", async () => sleeps >= 2 && (await h.rt.tasks.get(queued.task_id))!.status === "QUEUED");
      await agent.complete(h.rt, first.task_id);
      await finalizeTask(h.rt, first.task_id);
      await eventually("the queued task admitted", async () => (await h.rt.tasks.get(queued.task_id))!.status !== "QUEUED");
    } finally {
      abort.abort();
    }
    expect(await new ConcurrencySlots(config).holders(user)).to.deep.equal([queued.task_id]);
  });
});
