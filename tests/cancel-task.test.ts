/** cancelTask from every status, against real tables in moto and a fake compute that records stops. */
import { expect } from "chai";
import { BACKEND_TYPES } from "../runtime/compute/handle";
import type { RuntimeConfig } from "../runtime/config";
import { cancelTask } from "../runtime/orchestrator/cancel";
import { TaskNotCancellableError, TaskNotFoundError } from "../runtime/orchestrator/errors";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import { TERMINAL_STATUSES, type TaskStatus } from "../runtime/tasks/status";
import { createTables, createTask, handleFor, harness, testConfig } from "./orchestrator-fixtures";

describe("cancelTask", function () {
  this.timeout(60_000);
  let config: RuntimeConfig;
  before(async () => {
    config = testConfig();
    await createTables(config);
  });

  /** How to bring a fresh task to the status a case starts from. */
  const setups: { from: string; status: TaskStatus; withHandle: boolean }[] = [
    { from: "SUBMITTED", status: "SUBMITTED", withHandle: false },
    { from: "QUEUED", status: "QUEUED", withHandle: false },
    { from: "STARTING before the compute started", status: "STARTING", withHandle: false },
    { from: "STARTING with its compute started", status: "STARTING", withHandle: true },
    { from: "RUNNING", status: "RUNNING", withHandle: true },
  ];

  for (const backend of BACKEND_TYPES) {
    for (const s of setups) {
      it(`${backend}: from ${s.from} → CANCELLED, ${s.withHandle ? "its compute stopped" : "nothing to stop"}, slot released, backend capacity left to stop and finalize`, async () => {
        const h = harness(config, backend, async () => ({ state: "RUNNING" }));
        const task = await createTask(h.rt, { user_id: "erin", backend });
        const slots = new ConcurrencySlots(config);
        if (s.status !== "SUBMITTED") await h.rt.tasks.transition(task.task_id, s.status === "QUEUED" ? "QUEUED" : "STARTING");
        if (s.status === "STARTING" || s.status === "RUNNING") await slots.claim("erin", task.task_id, 10);
        if (s.withHandle) {
          const handle = handleFor(backend, task.task_id);
          await h.rt.tasks.update(task.task_id, { compute_type: backend, compute_metadata: handle }, ["STARTING"]);
        }
        if (s.status === "RUNNING") await h.rt.tasks.transition(task.task_id, "RUNNING");

        const out = await cancelTask(h.rt, task.task_id, { userId: "erin", reason: "changed my mind" });

        expect(out.status).to.equal("CANCELLED");
        expect(out.error_message).to.equal("changed my mind");
        expect((await h.rt.tasks.get(task.task_id))!.status).to.equal("CANCELLED");
        expect(h.strategy.stops.map((x) => x.handle)).to.deep.equal(s.withHandle ? [handleFor(backend, task.task_id)] : []);
        expect(await slots.holders("erin")).to.not.include(task.task_id);
        // A start without a saved handle may be using the lease right now: only stopSession or finalize gives it back.
        expect(h.strategy.releases, "cancel released backend capacity itself").to.deep.equal([]);
        const events = (await h.rt.events.list(task.task_id)).items;
        expect(events.some((e) => e.status === "CANCELLED")).to.equal(true);
      });
    }
  }

  for (const status of TERMINAL_STATUSES) {
    it(`refuses a ${status} task with TaskNotCancellableError naming the status`, async () => {
      const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
      const task = await createTask(h.rt, { backend: "ecs" });
      await h.rt.tasks.transition(task.task_id, "STARTING");
      await h.rt.tasks.transition(task.task_id, status);
      const err = await cancelTask(h.rt, task.task_id).catch((e) => e);
      expect(err).to.be.instanceOf(TaskNotCancellableError);
      expect(err.message).to.include(`already ${status}`);
      expect((await h.rt.tasks.get(task.task_id))!.status).to.equal(status);
      expect(h.strategy.stops).to.deep.equal([]);
    });
  }

  it("another user's task, or a missing one, is not found (and is left alone)", async () => {
    const h = harness(config, "local", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { user_id: "frank", backend: "local" });
    const notMine = await cancelTask(h.rt, task.task_id, { userId: "mallory" }).catch((e) => e);
    expect(notMine).to.be.instanceOf(TaskNotFoundError);
    expect((await h.rt.tasks.get(task.task_id))!.status).to.equal("SUBMITTED");
    const missing = await cancelTask(h.rt, "t-does-not-exist").catch((e) => e);
    expect(missing).to.be.instanceOf(TaskNotFoundError);
    expect(missing.message).to.equal("task t-does-not-exist does not exist");
  });

  it("a stop that fails leaves the task CANCELLED and records the error for finalize to retry", async () => {
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    h.strategy.stopSession = async () => {
      throw new Error("ECS StopTask throttled");
    };
    const task = await createTask(h.rt, { backend: "ecs" });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await h.rt.tasks.update(task.task_id, { compute_type: "ecs", compute_metadata: handleFor("ecs", task.task_id) }, ["STARTING"]);
    const out = await cancelTask(h.rt, task.task_id);
    expect(out.status).to.equal("CANCELLED");
    const errors = (await h.rt.events.list(task.task_id)).items.filter((e) => e.type === "error");
    expect(errors.map((e) => e.message)).to.deep.equal(["could not stop the ECS task yet: ECS StopTask throttled"]);
  });
});
