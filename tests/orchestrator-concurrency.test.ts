/**
 * The per-user concurrency cap, driven through the local orchestrator (the same steps as the durable one):
 * real concurrency table in moto, one fake local compute whose agents finish only when the test says so.
 */
import { expect } from "chai";
import type { RuntimeConfig } from "../runtime/config";
import { runTaskLocally } from "../runtime/orchestrator/local-orchestrator";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import type { WorkflowResult } from "../runtime/orchestrator/workflow";
import type { TaskRecord } from "../runtime/tasks/record";
import { agent, createTables, createTask, eventually, harness, testConfig, type Harness } from "./orchestrator-fixtures";

/** A sleep that parks callers until the test opens the gate for one round. */
class Gate {
  private waiting: (() => void)[] = [];
  sleep = (): Promise<void> => new Promise((resolve) => this.waiting.push(resolve));
  get parked(): number {
    return this.waiting.length;
  }
  open(): void {
    const wake = this.waiting;
    this.waiting = [];
    wake.forEach((w) => w());
  }
}

describe("per-user concurrency cap (local orchestrator, moto tables)", function () {
  this.timeout(120_000);
  let config: RuntimeConfig;

  before(async () => {
    config = testConfig({ maxConcurrentPerUser: 10 });
    await createTables(config);
  });

  it("12 submissions by one user with cap 10: 10 run, 2 QUEUED, and both run after slots free, oldest first", async () => {
    /** Tasks whose agent may finish at its next poll. */
    const finish = new Set<string>();
    /** Agents that have finished; a slot is released only after this, so starts − completed is what runs. */
    const completed: string[] = [];
    const h: Harness<"local"> = harness(config, "local", async ({ rt, taskId, clock }) => {
      await agent.running(rt, taskId, clock.now());
      if (!finish.has(taskId)) return { state: "RUNNING" };
      if (!completed.includes(taskId)) completed.push(taskId);
      await agent.complete(rt, taskId);
      return { state: "EXITED", exitCode: 0 };
    });
    let maxLive = 0;
    const startOf = h.strategy.startSession.bind(h.strategy);
    h.strategy.startSession = async (req) => {
      const handle = await startOf(req);
      maxLive = Math.max(maxLive, h.strategy.starts.length - completed.length);
      return handle;
    };
    // The orchestrators' waits park on a gate the test opens one round at a time: no real sleeping, and moto is
    // not hammered by twelve spinning loops. The clock does not move, so no liveness limit trips.
    const gate = new Gate();
    const opts = { sleep: gate.sleep, waitSeconds: 1 };
    let done = 0;
    const settle = () => eventually("every orchestrator to be waiting or done", async () => gate.parked === runs.length - done, 20_000, 5);
    const roundsUntil = async (what: string, cond: () => Promise<boolean>) => {
      for (let round = 0; round < 30; round++) {
        if (await cond()) return;
        gate.open();
        await settle();
      }
      throw new Error(`not reached after 30 rounds: ${what}`);
    };

    const tasks: TaskRecord[] = [];
    const runs: Promise<WorkflowResult>[] = [];
    for (let i = 0; i < 12; i++) {
      h.clock.advance(1); // distinct created_at: submission order
      const task = await createTask(h.rt, { user_id: "bob", backend: "local" });
      tasks.push(task);
      runs.push(runTaskLocally(h.rt, task.task_id, opts).finally(() => done++));
      // Submissions arrive one after another: each is admitted (and started) or queued before the next comes.
      await settle();
    }
    const ids = tasks.map((t) => t.task_id);
    const statuses = async () => Promise.all(ids.map(async (id) => (await h.rt.tasks.get(id))!.status));

    expect(h.strategy.starts).to.deep.equal(ids.slice(0, 10));
    const now = await statuses();
    expect(now.slice(10)).to.deep.equal(["QUEUED", "QUEUED"]);
    expect(await new ConcurrencySlots(config).holders("bob")).to.have.length(10);

    // One slot frees: only the older queued task (the 11th) takes it.
    finish.add(ids[0]);
    await roundsUntil("the 11th task starts", async () => h.strategy.starts.includes(ids[10]));
    for (let i = 0; i < 3; i++) {
      gate.open();
      await settle();
    }
    expect((await h.rt.tasks.get(ids[11]))!.status).to.equal("QUEUED");

    finish.add(ids[1]);
    await roundsUntil("the 12th task starts", async () => h.strategy.starts.includes(ids[11]));

    ids.forEach((id) => finish.add(id));
    await roundsUntil("all tasks finish", async () => done === runs.length);
    const results = await Promise.all(runs);
    expect(results.map((r) => r.status)).to.deep.equal(Array(12).fill("COMPLETED"));
    expect(h.strategy.starts.slice(10)).to.deep.equal([ids[10], ids[11]]);
    expect(maxLive, "sessions running at once").to.be.at.most(10);
    expect(await new ConcurrencySlots(config).holders("bob")).to.deep.equal([]);
    const queuedEvents = (await h.rt.events.list(ids[10])).items.filter((e) => e.status === "QUEUED");
    expect(queuedEvents[0].message).to.include("bob has 10 tasks running");
  });

  it("a new submission queues behind a user's waiting task even when a slot is free", async () => {
    const h = harness(config, "local", async () => ({ state: "RUNNING" }));
    h.clock.advance(10_000);
    const older = await createTask(h.rt, { user_id: "carol", backend: "local" });
    await h.rt.tasks.transition(older.task_id, "QUEUED");
    h.clock.advance(1);
    const newer = await createTask(h.rt, { user_id: "carol", backend: "local" });

    const { admitTask } = await import("../runtime/orchestrator/admission");
    expect(await admitTask(h.rt, newer.task_id)).to.deep.equal({ outcome: "queued" });
    expect((await h.rt.tasks.get(newer.task_id))!.status).to.equal("QUEUED");
    expect(await admitTask(h.rt, older.task_id)).to.deep.equal({ outcome: "admitted" });
    expect(await admitTask(h.rt, newer.task_id)).to.deep.equal({ outcome: "admitted" });
    expect(await new ConcurrencySlots(config).holders("carol")).to.deep.equal([older.task_id, newer.task_id].sort());
  });

  it("a task queued past its timeout fails, naming the wait, and holds no slot", async () => {
    const h = harness(config, "local", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { user_id: "dave", backend: "local" });
    await h.rt.tasks.transition(task.task_id, "QUEUED");
    h.clock.advance(config.limits.taskTimeoutSeconds + 1);
    const result = await runTaskLocally(h.rt, task.task_id, { sleep: async () => {}, waitSeconds: 1 });
    expect(result.status).to.equal("FAILED");
    expect(result.error_message).to.match(/waited \d+s for a concurrency slot, past its 28800s timeout/);
    expect(h.strategy.starts).to.deep.equal([]);
    expect(await new ConcurrencySlots(config).holders("dave")).to.deep.equal([]);
  });

  it("a task cancelled while QUEUED is finalized without ever starting", async () => {
    const h = harness(config, "local", async () => ({ state: "RUNNING" }));
    const slots = new ConcurrencySlots(config);
    for (let i = 0; i < 10; i++) await slots.claim("gina", `other-${i}`, 10);
    const task = await createTask(h.rt, { user_id: "gina", backend: "local" });
    const gate = new Gate();
    const run = runTaskLocally(h.rt, task.task_id, { sleep: gate.sleep, waitSeconds: 1 });
    await eventually("the task to queue", async () => gate.parked === 1);
    expect((await h.rt.tasks.get(task.task_id))!.status).to.equal("QUEUED");
    const { cancelTask } = await import("../runtime/orchestrator/cancel");
    await cancelTask(h.rt, task.task_id, { userId: "gina" });
    gate.open();
    expect((await run).status).to.equal("CANCELLED");
    expect(h.strategy.starts).to.deep.equal([]);
    expect(await slots.holders("gina")).to.have.length(10);
  });
});
