/**
 * Durable history stays bounded: the workflow run on a counting driver (each step, wait and wake callback one
 * durable operation; simulated time) for tasks of different lengths at the default poll interval, with no wake at
 * all (the safety net alone: the worst case). Prints the counts; asserts the stated bound.
 */
import { expect } from "chai";
import { durableOperationBound, graceRounds, maxPolls, pollCeilingSeconds, pollDelaySeconds } from "../runtime/orchestrator/await-schedule";
import { runWorkflow, type WorkflowDriver } from "../runtime/orchestrator/workflow";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import { createTables, createTask, harness, suffix, testConfig } from "./orchestrator-fixtures";

describe("durable history: operations per task are bounded whatever its length", function () {
  this.timeout(120_000);
  const config = testConfig({ pollIntervalSeconds: 30 });
  before(() => createTables(config));

  /**
   * A task whose agent heartbeats at every poll and completes `hours` after submit; returns its durable operations.
   * With `queuedHours`, its user's slots are all held until then: it waits that long in the queue first (no wake:
   * the slots free up silently, so only the safety-net re-checks find them).
   */
  async function operationsFor(hours: number, queuedHours = 0): Promise<number> {
    const h = harness(config, "ecs", async ({ rt, taskId, clock }) => {
      const t = (await rt.tasks.get(taskId))!;
      if (t.status === "STARTING") await rt.tasks.transition(taskId, "RUNNING", {}, ["STARTING"]);
      const elapsed = (clock.now().getTime() - Date.parse(t.created_at)) / 1000;
      if (t.status === "COMPLETED") return { state: "EXITED", exitCode: 0 };
      if (elapsed >= hours * 3600 - 60) {
        await rt.tasks.transition(taskId, "COMPLETED", {}, ["RUNNING"]);
        return { state: "EXITED", exitCode: 0 };
      }
      await rt.tasks.heartbeat(taskId, clock.now());
      return { state: "RUNNING" };
    });
    const user = `u-${suffix()}`;
    const task = await createTask(h.rt, { backend: "ecs", user_id: user });
    const slots = new ConcurrencySlots(config);
    const holders = Array.from({ length: config.limits.maxConcurrentPerUser }, (_, i) => `holder-${i}`);
    if (queuedHours) for (const id of holders) await slots.claim(user, id, config.limits.maxConcurrentPerUser);
    const freeAt = h.clock.now().getTime() + queuedHours * 3600_000;
    let ops = 0;
    const advance = async (seconds: number) => {
      h.clock.advance(Math.max(1, Math.ceil(seconds)));
      if (queuedHours && h.clock.now().getTime() >= freeAt) for (const id of holders) await slots.release(user, id);
    };
    const driver: WorkflowDriver = {
      step: async (_name, fn) => (ops++, fn()),
      wait: async (_name, seconds) => (ops++, advance(seconds)),
      armWake: async (_name, seconds) => (ops++, { wait: () => advance(seconds) }),
    };
    const result = await runWorkflow(driver, h.rt, task.task_id);
    expect(result.status).to.equal("COMPLETED");
    return ops;
  }

  it("an 8-hour task at the default 30 s poll interval stays within the stated bound (about 2,000 operations before)", async () => {
    const bound = durableOperationBound(config.limits, 30);
    const counts: Record<string, number> = {};
    for (const hours of [1, 4, 8]) counts[`${hours}h`] = await operationsFor(hours);
    console.log(`      durable operations per task (no wake, 30 s poll, ceiling ${pollCeilingSeconds(config.limits, 30)} s): ${JSON.stringify(counts)}; bound ${bound}`);
    for (const n of Object.values(counts)) expect(n).to.be.at.most(bound);
    // Fixed 30 s polls would cost 2 per 30 s: 1,920 for 8 hours.
    expect(counts["8h"]).to.be.below(2 * (8 * 3600) / 30 / 5);
  });

  it("a task that waits hours in its user's queue: re-checks back off like the polls (fixed 30 s re-checks before)", async () => {
    const bound = durableOperationBound(config.limits, 30);
    const counts: Record<string, number> = {};
    for (const queued of [1, 7]) counts[`${queued}h queued + 1h running`] = await operationsFor(queued + 1, queued);
    console.log(`      durable operations per task (no wake, 30 s re-checks): ${JSON.stringify(counts)}; bound ${bound}`);
    for (const n of Object.values(counts)) expect(n).to.be.at.most(bound);
    // Fixed 30 s re-checks cost 2 per 30 s in the queue: 1,680 for 7 hours.
    expect(counts["7h queued + 1h running"]).to.be.below(400);
  });

  it("the schedule: the first polls come quickly, then the wait doubles up to the ceiling", () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => pollDelaySeconds(n, 30, 300))).to.deep.equal([30, 60, 120, 240, 300, 300]);
    // A 7-day timeout stretches the ceiling so the polls stay about MAX_SAFETY_POLLS.
    expect(pollCeilingSeconds({ maxPollIntervalSeconds: 300, taskTimeoutSeconds: 7 * 86400 }, 30)).to.equal(6048);
    expect(maxPolls(7 * 86400, 30, 6048)).to.be.at.most(110);
    expect(graceRounds(120, 30)).to.equal(4);
  });
});
