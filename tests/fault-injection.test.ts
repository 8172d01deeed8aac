/**
 * Fault injection: one fault per test, injected into a real orchestration (the local driver over the shared
 * workflow, real tables in moto, a scripted compute), then at most one reconciler pass. Each ends with nothing left:
 * no non-terminal task, no held slot, no BUSY lease of a finished task, no compute running for a finished task.
 * Each test has its own user, so that its slot checks see only its own task.
 */
import { expect } from "chai";
import type { RuntimeConfig } from "../runtime/config";
import { cancelTask } from "../runtime/orchestrator/cancel";
import { runTaskLocally } from "../runtime/orchestrator/local-orchestrator";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import type { OrchestratorExecutions } from "../runtime/reconciler/executions";
import { reconcileOnce, type ReconcileReport } from "../runtime/reconciler/reconcile";
import type { TaskStore } from "../runtime/ports";
import type { Runtime } from "../runtime/runtime";
import { isTerminal } from "../runtime/tasks/status";
import { DynamoTaskStore } from "../runtime/tasks/store";
import { agent, createTables, createTask, harness as baseHarness, suffix, testConfig, type FakeClock, type Harness, type PollScript } from "./orchestrator-fixtures";
import { DynamoEventLog } from "../runtime/tasks/events";
import type { TaskEventLog } from "../runtime/ports";
import type { RuntimeOverrides } from "../runtime/runtime";

/** No orchestrator runs any more (it crashed, or its execution failed). */
const NONE_RUNNING: OrchestratorExecutions = {
  running: async () => new Set(),
  redrive: async () => "exists",
  describe: async () => "execution FAILED: injected",
};

const sleepNever = async () => undefined;

/** An event log that refuses every "dispatch" event. */
class FailingDispatchEvents implements TaskEventLog {
  constructor(private readonly inner: TaskEventLog) {}
  append: TaskEventLog["append"] = async (taskId, type, message, extra) => {
    if (type === "dispatch") throw Object.assign(new Error("Item size has exceeded the maximum allowed size"), { name: "ValidationException" });
    return this.inner.append(taskId, type, message, extra);
  };
  list: TaskEventLog["list"] = (taskId, options) => this.inner.list(taskId, options);
  each: TaskEventLog["each"] = (taskId) => this.inner.each(taskId);
}

/** What one pass did to one task (the suite's tasks share tables, so a pass also sees earlier tests' tasks). */
function doneFor(report: ReconcileReport, taskId: string): string[] {
  return report.applied.filter((a) => a.action.taskId === taskId && a.outcome === "done").map((a) => a.action.kind);
}

/** The invariants every fault test ends with. */
async function expectNothingLeft(h: Harness<"ecs">, taskId: string): Promise<void> {
  const task = (await h.rt.tasks.get(taskId))!;
  expect(isTerminal(task.status), `task is ${task.status}`).to.equal(true);
  expect(await new ConcurrencySlots(h.rt.config).holders(task.user_id), "held slots").to.deep.equal([]);
  expect(h.strategy.live.has(taskId), "compute still running").to.equal(false);
  expect(task.released_at, "released").to.be.a("string");
}

/** A task store whose every call throws ThrottlingException while `on` (DynamoDB throttled past the SDK's retries). */
class ThrottledStore implements TaskStore {
  on = false;
  constructor(private readonly inner: TaskStore) {}
  private gate<T>(f: () => Promise<T>): Promise<T> {
    if (this.on) return Promise.reject(Object.assign(new Error("Rate of requests exceeds the allowed throughput"), { name: "ThrottlingException" }));
    return f();
  }
  create: TaskStore["create"] = (r) => this.gate(() => this.inner.create(r));
  get: TaskStore["get"] = (id) => this.gate(() => this.inner.get(id));
  statuses: TaskStore["statuses"] = (ids) => this.gate(() => this.inner.statuses(ids));
  transition: TaskStore["transition"] = (...a) => this.gate(() => this.inner.transition(...a));
  update: TaskStore["update"] = (...a) => this.gate(() => this.inner.update(...a));
  heartbeat: TaskStore["heartbeat"] = (...a) => this.gate(() => this.inner.heartbeat(...a));
  listByUser: TaskStore["listByUser"] = (...a) => this.gate(() => this.inner.listByUser(...a));
  listByStatus: TaskStore["listByStatus"] = (...a) => this.gate(() => this.inner.listByStatus(...a));
  oldestQueued: TaskStore["oldestQueued"] = (...a) => this.gate(() => this.inner.oldestQueued(...a));
  countWaiting: TaskStore["countWaiting"] = (...a) => this.gate(() => this.inner.countWaiting(...a));
  eachInStatus: TaskStore["eachInStatus"] = (...a) => {
    if (this.on) throw Object.assign(new Error("Rate of requests exceeds the allowed throughput"), { name: "ThrottlingException" });
    return this.inner.eachInStatus(...a);
  };
}

/** The harness with the task store and event log on the test's clock, so grace periods are measured in its time. */
function harness(config: RuntimeConfig, type: "ecs", script: PollScript, more: (clock: FakeClock) => RuntimeOverrides = () => ({})): Harness<"ecs"> {
  return baseHarness(config, type, script, (clock) => ({
    tasks: new DynamoTaskStore(config, { now: clock.now }),
    events: new DynamoEventLog(config, { now: clock.now }),
    ...more(clock),
  }));
}

describe("fault injection: every fault ends with nothing stranded after at most one reconciler pass", function () {
  this.timeout(60_000);
  let config: RuntimeConfig;

  before(async () => {
    config = testConfig({ heartbeatTimeoutSeconds: 180, maxPollErrors: 3, computeStopGraceSeconds: 120 });
    await createTables(config);
  });

  /** Run the orchestration to wherever the fault leaves it; its own error (a crash) is swallowed, as Lambda would. */
  async function orchestrate(rt: Runtime, taskId: string): Promise<void> {
    await runTaskLocally(rt, taskId, { sleep: sleepNever, waitSeconds: 30, maxWaitSeconds: 30 }).catch(() => undefined);
  }

  it("DynamoDB throttled long enough to fail the execution: the reconciler fails and finalizes the task", async () => {
    let store!: ThrottledStore;
    let throttled = false;
    const h = harness(config, "ecs", async ({ rt, taskId, clock }) => {
      clock.advance(30);
      await agent.running(rt, taskId, clock.now());
      if (!throttled) store.on = throttled = true; // from the next read on, every task-store call is throttled
      return { state: "RUNNING" };
    }, (clock) => ({ tasks: (store = new ThrottledStore(new DynamoTaskStore(config, { now: clock.now }))) }));
    const task = await createTask(h.rt, { user_id: `u-${suffix()}`, backend: "ecs", execution_arn: "arn:aws:lambda:us-east-1:123456789012:function:orch:1/durable-execution/t/1" });
    await orchestrate(h.rt, task.task_id);
    expect((await new DynamoTaskStore(config).get(task.task_id))!.status, "stranded by the fault").to.equal("RUNNING");

    store.on = false;
    h.clock.advance(600);
    const report = await reconcileOnce(h.rt, { executions: NONE_RUNNING });
    expect(doneFor(report, task.task_id), JSON.stringify(report)).to.deep.equal(["fail"]);
    const after = (await h.rt.tasks.get(task.task_id))!;
    expect(after.status).to.equal("FAILED");
    expect(after.error_message).to.match(/orchestrator stopped running while the task was RUNNING.*execution FAILED/);
    await expectNothingLeft(h, task.task_id);
  });

  it("a step that fails for good ends the task FAILED naming the step, and finalizes it — no reconciler needed", async () => {
    // The start step saves the handle, then cannot write its dispatch event: the step throws (not a start error).
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }), (clock) => ({ events: new FailingDispatchEvents(new DynamoEventLog(config, { now: clock.now })) }));
    const task = await createTask(h.rt, { user_id: `u-${suffix()}`, backend: "ecs" });
    await orchestrate(h.rt, task.task_id);
    const after = (await h.rt.tasks.get(task.task_id))!;
    expect(after.status).to.equal("FAILED");
    expect(after.error_message).to.match(/the orchestrator's start-0 step failed: Item size has exceeded/);
    expect(h.strategy.stops.length, "the started compute was stopped by finalize").to.equal(1);
    await expectNothingLeft(h, task.task_id);
  });

  it("the S3 payload upload fails in the start step: FAILED naming the step, nothing started, nothing held", async () => {
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    // A task whose payload the start step must write (submit writes it normally; an upload failing there is a 5xx
    // before any record exists, so nothing can be stranded by it).
    const at = h.clock.now().toISOString();
    const taskId = `t-${suffix()}-nopayload`;
    await h.rt.tasks.create({ task_id: taskId, user_id: `u-${suffix()}`, status: "SUBMITTED", backend: "ecs", repo_url: "https://github.com/example/repo", prompt: "p", created_at: at, updated_at: at });
    h.rt.payloads.put = async () => {
      throw Object.assign(new Error("We encountered an internal error. Please try again."), { name: "InternalError", $metadata: { httpStatusCode: 500 } });
    };
    await orchestrate(h.rt, taskId);
    const after = (await h.rt.tasks.get(taskId))!;
    expect(after.status).to.equal("FAILED");
    expect(after.error_message).to.match(/the orchestrator's start-0 step failed: We encountered an internal error/);
    expect(h.strategy.starts, "no compute started without its payload").to.deep.equal([]);
    await expectNothingLeft(h, taskId);
  });

  it("the agent dies without a terminal write and the orchestrator is gone: failed, its compute stopped", async () => {
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { user_id: `u-${suffix()}`, backend: "ecs" });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await new ConcurrencySlots(config).claim(task.user_id, task.task_id, 10);
    await h.rt.tasks.update(task.task_id, { compute_type: "ecs", compute_metadata: { type: "ecs", cluster: "agents", taskArn: `arn:aws:ecs:us-east-1:123456789012:task/agents/${task.task_id}` } }, ["STARTING"]);
    h.strategy.live.add(task.task_id);
    await agent.running(h.rt, task.task_id, h.clock.now());
    h.clock.advance(900);

    await reconcileOnce(h.rt, { executions: NONE_RUNNING });
    expect((await h.rt.tasks.get(task.task_id))!.status).to.equal("FAILED");
    await expectNothingLeft(h, task.task_id);
  });

  it("the agent hangs after its terminal write and finalize never ran: the reconciler stops it after the grace", async () => {
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { user_id: `u-${suffix()}`, backend: "ecs" });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await new ConcurrencySlots(config).claim(task.user_id, task.task_id, 10);
    await h.rt.tasks.update(task.task_id, { compute_type: "ecs", compute_metadata: { type: "ecs", cluster: "agents", taskArn: `arn:aws:ecs:us-east-1:123456789012:task/agents/${task.task_id}` } }, ["STARTING"]);
    h.strategy.live.add(task.task_id);
    await agent.running(h.rt, task.task_id, h.clock.now());
    await agent.complete(h.rt, task.task_id);

    h.clock.advance(60); // within the finalize grace: the orchestrator's to finalize, nothing done
    await reconcileOnce(h.rt, { executions: NONE_RUNNING });
    expect(h.strategy.live.has(task.task_id)).to.equal(true);

    h.clock.advance(3600);
    const report = await reconcileOnce(h.rt, { executions: NONE_RUNNING });
    expect(doneFor(report, task.task_id), JSON.stringify(report)).to.deep.equal(["finalize"]);
    expect(h.strategy.stops.map((s) => s.reason)).to.deep.equal(["task ended COMPLETED"]);
    expect((await h.rt.tasks.get(task.task_id))!.status).to.equal("COMPLETED");
    await expectNothingLeft(h, task.task_id);
  });

  it("a heartbeat that stops while STARTING fails the task at once, though its orchestrator still runs", async () => {
    const h = harness(config, "ecs", async () => ({ state: "PENDING" }));
    const task = await createTask(h.rt, { user_id: `u-${suffix()}`, backend: "ecs" });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await new ConcurrencySlots(config).claim(task.user_id, task.task_id, 10);
    await h.rt.tasks.update(task.task_id, { compute_type: "ecs", started_at: h.clock.now().toISOString(), compute_metadata: { type: "ecs", cluster: "agents", taskArn: `arn:aws:ecs:us-east-1:123456789012:task/agents/${task.task_id}` } }, ["STARTING"]);
    h.strategy.live.add(task.task_id);
    await h.rt.tasks.heartbeat(task.task_id, h.clock.now());
    h.clock.advance(5 * 3600);

    const running: OrchestratorExecutions = { ...NONE_RUNNING, running: async () => new Set([task.task_id]) };
    await reconcileOnce(h.rt, { executions: running });
    const after = (await h.rt.tasks.get(task.task_id))!;
    expect(after.status).to.equal("FAILED");
    expect(after.error_message).to.match(/no heartbeat for 18000s .* STARTING/);
    await expectNothingLeft(h, task.task_id);
  });

  it("the finalize step itself fails: the reconciler finalizes the finished task", async () => {
    const h = harness(config, "ecs", async ({ n, rt, taskId, clock }) => {
      clock.advance(30);
      if (n === 0) {
        await agent.running(rt, taskId, clock.now());
        await agent.complete(rt, taskId);
      }
      return { state: "EXITED", exitCode: 0 };
    });
    const task = await createTask(h.rt, { user_id: `u-${suffix()}`, backend: "ecs" });
    const payloads = h.rt.payloads;
    const realDelete = payloads.delete.bind(payloads);
    payloads.delete = async () => {
      throw new Error("S3 is unreachable");
    };
    await orchestrate(h.rt, task.task_id);
    expect((await h.rt.tasks.get(task.task_id))!.released_at, "finalize did not finish").to.equal(undefined);

    payloads.delete = realDelete;
    h.clock.advance(3600);
    const report = await reconcileOnce(h.rt, { executions: NONE_RUNNING });
    expect(doneFor(report, task.task_id), JSON.stringify(report)).to.deep.equal(["finalize"]);
    await expectNothingLeft(h, task.task_id);
  });

  it("cancel during an EC2 start leaves the lease to the start: the instance is not handed out while its command may land", async () => {
    // The EC2 strategy is the only way backend-neutral code reaches a lease (releaseTask); the fake records each call.
    const h = baseHarness(config, "ec2", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { user_id: `u-${suffix()}`, backend: "ec2", fleet: "default" });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await cancelTask(h.rt, task.task_id, { userId: task.user_id });
    expect(h.strategy.releases, "cancel released the lease of a start still running").to.deep.equal([]);
  });
});
