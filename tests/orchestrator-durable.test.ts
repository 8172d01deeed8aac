/**
 * The durable orchestrator run by the SDK's local durable runner, on every backend, with real task/event/
 * concurrency tables in moto and a scripted fake compute. Each poll of the fake moves the clock by one poll
 * interval, so hours of task life pass in a few real milliseconds.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { LocalDurableTestRunner } from "@aws/durable-execution-sdk-js-testing";
import { expect } from "chai";
import { existsSync } from "node:fs";
import { BACKEND_NAMES, BACKEND_TYPES, type BackendType } from "../runtime/compute/handle";
import type { ComputeState, SessionStatus } from "../runtime/compute/strategy";
import type { RuntimeConfig } from "../runtime/config";
import { cancelTask } from "../runtime/orchestrator/cancel";
import { createOrchestratorHandler } from "../runtime/orchestrator/durable-handler";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import type { WorkflowResult } from "../runtime/orchestrator/workflow";
import type { TaskEventLog } from "../runtime/ports";
import type { RuntimeOverrides } from "../runtime/runtime";
import type { TaskStatus } from "../runtime/tasks/status";
import { DynamoEventLog } from "../runtime/tasks/events";
import { captureLogs } from "./fixtures";
import { agent, createTables, createTask, harness, testConfig, type Harness, type PollScript } from "./orchestrator-fixtures";

const POLL = 30;
const LIMITS = { heartbeatTimeoutSeconds: 90, maxPollErrors: 3, maxFinishedPolls: 3, taskTimeoutSeconds: 600 };
const STARTUP_GRACE = 120;

interface Case {
  name: string;
  script: (running: ComputeState) => PollScript;
  /** Before the run: e.g. make the start race a cancel. */
  arrange?: (h: Harness<BackendType>, taskId: string) => void;
  overrides?: (config: RuntimeConfig) => RuntimeOverrides;
  status: TaskStatus;
  /** Words the error message must contain ({backend} is the backend's name). */
  message?: string[];
  exitCode?: number;
  /** Was the compute stopped (AgentCore, whose session state is unobservable, is stopped after its grace even when COMPLETED). */
  stopped: boolean | ((backend: BackendType) => boolean);
  check?: (h: Harness<BackendType>, taskId: string) => Promise<void>;
}

/** Poll n: advance one interval, let the agent act, report the compute. */
function poll(step: (ctx: Parameters<PollScript>[0]) => Promise<SessionStatus | Error>, seconds = POLL): PollScript {
  return async (ctx) => {
    ctx.clock.advance(seconds);
    return step(ctx);
  };
}

const CASES: Case[] = [
  {
    name: "happy path: the agent reports RUNNING, heartbeats, completes; the task ends COMPLETED and nothing is stopped",
    script: (running) =>
      poll(async ({ n, rt, taskId, clock }) => {
        if (n === 0) {
          await agent.running(rt, taskId, clock.now());
          return { state: running };
        }
        await agent.complete(rt, taskId);
        return running === "UNOBSERVABLE" ? { state: running } : { state: "EXITED", exitCode: 0 };
      }),
    status: "COMPLETED",
    stopped: (backend) => backend === "agentcore",
  },
  {
    name: "agent crash: the compute exits non-zero before any terminal write → FAILED with the exit code",
    script: (running) =>
      poll(async ({ n, rt, taskId, clock }) => {
        if (n === 0) {
          await agent.running(rt, taskId, clock.now());
          return { state: running };
        }
        return { state: "EXITED", exitCode: 137, reason: "OutOfMemoryError" };
      }),
    status: "FAILED",
    message: ["exited with code 137", "{backend}"],
    exitCode: 137,
    stopped: true,
  },
  {
    name: "compute finished but the task has no terminal status for maxFinishedPolls polls → FAILED",
    script: (running) =>
      poll(async ({ n, rt, taskId, clock }) => {
        if (n === 0) {
          await agent.running(rt, taskId, clock.now());
          return { state: running };
        }
        return { state: "EXITED", exitCode: 0 };
      }),
    status: "FAILED",
    message: ["{backend} finished", "no terminal status after 3 polls"],
    exitCode: 0,
    stopped: true,
  },
  {
    name: "maxPollErrors consecutive poll errors → FAILED naming the error",
    script: (running) =>
      poll(async ({ n, rt, taskId, clock }) => {
        await agent.running(rt, taskId, clock.now());
        return n === 0 ? { state: running } : Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
      }),
    status: "FAILED",
    message: ["could not read the {backend}'s status for 3 consecutive polls", "Rate exceeded"],
    stopped: true,
  },
  {
    name: "heartbeat lost: RUNNING but silent past heartbeatTimeoutSeconds → FAILED and the compute stopped",
    script: (running) =>
      poll(async ({ n, rt, taskId, clock }) => {
        if (n === 0) await agent.running(rt, taskId, clock.now());
        return { state: running };
      }),
    status: "FAILED",
    message: ["the agent on the {backend} sent no heartbeat", "limit 90s"],
    stopped: true,
  },
  {
    name: "timeout: alive past taskTimeoutSeconds → TIMED_OUT and stopSession called",
    script: (running) =>
      poll(async ({ rt, taskId, clock }) => {
        await agent.running(rt, taskId, clock.now());
        return { state: running };
      }, 150),
    status: "TIMED_OUT",
    message: ["600s timeout", "{backend} was stopped"],
    stopped: true,
  },
  {
    name: "cancel while STARTING (racing the start step): the session just started is stopped, task CANCELLED",
    // Only finalize looks at the compute here; it finds it stopped.
    script: () => async () => ({ state: "EXITED", exitCode: 143 }),
    arrange: (h, taskId) => {
      h.strategy.onStart = async () => {
        await cancelTask(h.rt, taskId, { userId: "alice" });
      };
    },
    status: "CANCELLED",
    stopped: true,
    check: async (h, taskId) => {
      expect(h.strategy.stops.map((s) => s.reason)).to.deep.equal(["task was cancelled while its compute was starting"]);
      expect(h.strategy.polls.get(taskId), "polls (finalize only)").to.equal(1);
    },
  },
  {
    name: "cancel while STARTING (compute started, agent not yet RUNNING): cancel stops the compute",
    script: (running) =>
      poll(async ({ n, rt, taskId }) => {
        if (n === 0) await cancelTask(rt, taskId, { userId: "alice" });
        return { state: running === "UNOBSERVABLE" ? running : "PENDING" };
      }),
    status: "CANCELLED",
    message: ["cancelled by alice"],
    stopped: true,
    check: async (h) => {
      expect(h.strategy.stops[0].reason).to.equal("cancelled by alice");
    },
  },
  {
    name: "cancel while RUNNING: cancel stops the compute, the orchestrator sees CANCELLED and finalizes",
    script: (running) =>
      poll(async ({ n, rt, taskId, clock }) => {
        await agent.running(rt, taskId, clock.now());
        if (n === 1) await cancelTask(rt, taskId, { userId: "alice", reason: "not needed any more" });
        return { state: running };
      }),
    status: "CANCELLED",
    message: ["not needed any more"],
    stopped: true,
  },
  {
    name: "replay of the start step (it crashed after saving the handle) does not start a second session",
    script: (running) =>
      poll(async ({ n, rt, taskId, clock }) => {
        if (n === 0) {
          await agent.running(rt, taskId, clock.now());
          return { state: running };
        }
        await agent.complete(rt, taskId);
        return running === "UNOBSERVABLE" ? { state: running } : { state: "EXITED", exitCode: 0 };
      }),
    overrides: (config) => ({ events: new CrashOnceAfterDispatch(new DynamoEventLog(config)) }),
    status: "COMPLETED",
    stopped: (backend) => backend === "agentcore",
    check: async (h) => {
      expect((h.rt.events as CrashOnceAfterDispatch).crashed, "the start step crashed once").to.equal(true);
    },
  },
];

/** Throws on the first "dispatch" event, i.e. after the start step has saved the handle: a crash mid-step. */
class CrashOnceAfterDispatch implements TaskEventLog {
  crashed = false;
  constructor(private readonly inner: TaskEventLog) {}
  append: TaskEventLog["append"] = async (taskId, type, message, extra) => {
    if (type === "dispatch" && !this.crashed) {
      this.crashed = true;
      throw new Error("simulated crash after the session handle was saved");
    }
    return this.inner.append(taskId, type, message, extra);
  };
  list: TaskEventLog["list"] = (taskId, options) => this.inner.list(taskId, options);
  each: TaskEventLog["each"] = (taskId) => this.inner.each(taskId);
}

describe("durable orchestrator on every backend (LocalDurableTestRunner)", function () {
  this.timeout(120_000);
  let config: RuntimeConfig;

  before(async () => {
    await LocalDurableTestRunner.setupTestEnvironment({ skipTime: true });
    config = testConfig(LIMITS);
    await createTables(config);
  });
  after(() => LocalDurableTestRunner.teardownTestEnvironment());

  for (const backend of BACKEND_TYPES) {
    const what = BACKEND_NAMES[backend];
    const running: ComputeState = backend === "agentcore" ? "UNOBSERVABLE" : "RUNNING";
    describe(`on the ${what} (${backend})`, () => {
      for (const c of CASES) {
        it(c.name, async () => {
          const h = harness(config, backend, c.script(running), c.overrides?.(config)) as Harness<BackendType>;
          h.strategy.wakeAfterPoll = true;
          const task = await createTask(h.rt, { backend, ...(backend === "ec2" ? { fleet: "default" } : {}) });
          c.arrange?.(h, task.task_id);
          const runner = new LocalDurableTestRunner<WorkflowResult>({
            handlerFunction: createOrchestratorHandler(() => h.rt, { waitSeconds: 1, startupGraceSeconds: STARTUP_GRACE }),
          });

          const execution = await runner.run({ payload: { task_id: task.task_id } });

          if (execution.getStatus() !== "SUCCEEDED") expect.fail(`execution ${execution.getStatus()}: ${JSON.stringify(execution.getError())}`);
          const result = execution.getResult()!;
          const record = (await h.rt.tasks.get(task.task_id))!;
          expect(result.status).to.equal(c.status);
          expect(record.status).to.equal(c.status);
          for (const words of c.message ?? []) {
            expect(record.error_message).to.include(words.replace("{backend}", what));
          }
          if (c.exitCode !== undefined) expect(record.exit_code).to.equal(c.exitCode);
          expect(record.compute_type).to.equal(backend);
          // One session, however the steps were replayed.
          expect(h.strategy.starts).to.deep.equal([task.task_id]);
          if (typeof c.stopped === "function" ? c.stopped(backend) : c.stopped) {
            expect(h.strategy.stops.length, "stopSession calls").to.be.greaterThan(0);
            expect(h.strategy.stops[0].handle.type).to.equal(backend);
            expect(h.strategy.live.has(task.task_id), "compute left running").to.equal(false);
          } else {
            expect(h.strategy.stops).to.deep.equal([]);
          }
          // Finalize: slot released, payload deleted, exactly one final event.
          expect(await new ConcurrencySlots(config).holders("alice")).to.not.include(task.task_id);
          expect(existsSync(task.payload_uri!), "payload deleted").to.equal(false);
          const events = (await h.rt.events.list(task.task_id, { limit: 500 })).items;
          expect(events.filter((e) => e.data?.final === true).map((e) => e.status)).to.deep.equal([c.status]);
          await c.check?.(h, task.task_id);
        });
      }
    });
  }

  it("every line the orchestrator logs while it works on a task carries the task's id", async () => {
    const h = harness(config, "ecs", CASES[0].script("RUNNING"));
    const task = await createTask(h.rt, { backend: "ecs" });
    const service = "agent-compute-orchestrator";
    const logger = new Logger({ serviceName: service, logLevel: "INFO" });
    const runner = new LocalDurableTestRunner<WorkflowResult>({
      handlerFunction: createOrchestratorHandler(() => h.rt, { waitSeconds: 1 }, logger),
    });
    const { result: execution, lines } = await captureLogs(service, () => runner.run({ payload: { task_id: task.task_id } }));
    expect(execution.getResult()!.status).to.equal("COMPLETED");
    const steps = lines.filter((l) => l.message === "step finished").map((l) => l.step);
    expect(steps, "each step logs once, replays log nothing").to.include.members(["load", "admit-0", "start-0", "poll-0", "finalize"]);
    expect(new Set(steps).size, "a step logged twice").to.equal(steps.length);
    expect(lines.filter((l) => l.task_id !== task.task_id), "lines without the task id").to.deep.equal([]);
  });

  it("a task already terminal when the execution starts is only finalized", async () => {
    const h = harness(config, "ecs", async () => new Error("must not poll"));
    const task = await createTask(h.rt, { backend: "ecs" });
    await h.rt.tasks.transition(task.task_id, "CANCELLED", { error_message: "cancelled early" });
    const runner = new LocalDurableTestRunner<WorkflowResult>({
      handlerFunction: createOrchestratorHandler(() => h.rt, { waitSeconds: 1 }),
    });
    const execution = await runner.run({ payload: { task_id: task.task_id } });
    expect(execution.getResult()!.status).to.equal("CANCELLED");
    expect(h.strategy.starts).to.deep.equal([]);
    expect(existsSync(task.payload_uri!)).to.equal(false);
  });

  it("an input without task_id fails the execution with a message saying what is expected", async () => {
    const runner = new LocalDurableTestRunner<WorkflowResult>({
      handlerFunction: createOrchestratorHandler(() => {
        throw new Error("runtime must not be built for a bad input");
      }),
    });
    const execution = await runner.run({ payload: { id: "x" } });
    expect(execution.getStatus()).to.equal("FAILED");
    expect(JSON.stringify(execution.getError())).to.include("task_id");
  });
});
