/** The load and start steps on their own: backend choice, one retry on transient errors, EC2 capacity waits. */
import { LocalDurableTestRunner } from "@aws/durable-execution-sdk-js-testing";
import { expect } from "chai";
import { existsSync } from "node:fs";
import type { RuntimeConfig } from "../runtime/config";
import { IllegalTransitionError, NoCapacityError } from "../runtime/errors";
import { createOrchestratorHandler } from "../runtime/orchestrator/durable-handler";
import { loadTask } from "../runtime/orchestrator/load";
import { startTask } from "../runtime/orchestrator/start";
import type { WorkflowResult } from "../runtime/orchestrator/workflow";
import type { Runtime } from "../runtime/runtime";
import { agent, createTables, createTask, harness, suffix, testConfig } from "./orchestrator-fixtures";

const throttled = () => Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });

describe("start step", function () {
  this.timeout(60_000);
  let config: RuntimeConfig;
  before(async () => {
    config = testConfig({ taskTimeoutSeconds: 600 });
    await createTables(config);
  });

  /** A task admitted (STARTING) on `backend`, as the admit step leaves it. */
  async function admitted(h: { rt: Runtime }, fields: Parameters<typeof createTask>[1] = {}) {
    const task = await createTask(h.rt, fields);
    await h.rt.tasks.transition(task.task_id, "STARTING");
    return task;
  }

  const retryCases: { name: string; errors: Error[]; outcome: string; calls: number; message?: string }[] = [
    { name: "a transient error is retried once, then the session starts", errors: [throttled()], outcome: "started", calls: 2 },
    {
      name: "a second transient error fails the task, naming the backend and the error",
      errors: [throttled(), throttled()],
      outcome: "ended",
      calls: 2,
      message: "could not start the ECS task: Rate exceeded",
    },
    {
      name: "a non-transient error fails the task at once",
      errors: [Object.assign(new Error("task definition agent:9 is INACTIVE"), { name: "ClientException" })],
      outcome: "ended",
      calls: 1,
      message: "could not start the ECS task: task definition agent:9 is INACTIVE",
    },
  ];
  for (const c of retryCases) {
    it(c.name, async () => {
      const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
      const errors = [...c.errors];
      h.strategy.onStart = async () => {
        const err = errors.shift();
        if (err) throw err;
      };
      const task = await admitted(h, { backend: "ecs" });
      const result = await startTask(h.rt, task.task_id);
      expect(result.outcome).to.equal(c.outcome);
      expect(h.strategy.starts).to.have.length(c.calls);
      const record = (await h.rt.tasks.get(task.task_id))!;
      if (c.message) {
        expect(record.status).to.equal("FAILED");
        expect(record.error_message).to.equal(c.message);
      } else {
        expect(record.status).to.equal("STARTING");
        expect(record.compute_type).to.equal("ecs");
        expect(record.session_id).to.match(/^arn:aws:ecs:/);
      }
    });
  }

  it("no EC2 capacity is not a failure: the task stays STARTING and the step says to wait", async () => {
    const h = harness(config, "ec2", async () => ({ state: "RUNNING" }));
    h.strategy.onStart = async () => {
      throw new NoCapacityError("default");
    };
    const task = await admitted(h, { backend: "ec2", fleet: "default" });
    expect(await startTask(h.rt, task.task_id)).to.deep.equal({ outcome: "waiting-for-capacity", fleet: "default" });
    expect((await h.rt.tasks.get(task.task_id))!.status).to.equal("STARTING");
  });

  it("waiting for EC2 capacity ends at the task timeout as TIMED_OUT, saying what it waited for", async () => {
    const h = harness(config, "ec2", async () => ({ state: "RUNNING" }));
    h.strategy.onStart = async () => {
      throw new NoCapacityError("default");
    };
    const task = await admitted(h, { backend: "ec2", fleet: "default" });
    h.clock.advance(601);
    expect(await startTask(h.rt, task.task_id)).to.deep.equal({ outcome: "ended", status: "TIMED_OUT" });
    const record = (await h.rt.tasks.get(task.task_id))!;
    expect(record.status).to.equal("TIMED_OUT");
    expect(record.error_message).to.match(/compute had not started after 601s, past its 600s timeout/);
  });

  it("waiting for EC2 capacity that EC2 could not launch: the reason is kept on the task, and at the timeout the task FAILS with it", async () => {
    const h = harness(config, "ec2", async () => ({ state: "RUNNING" }));
    const ice = "Launching a new EC2 instance. Status Reason: We currently do not have sufficient m7g.xlarge capacity in the Availability Zone you requested (us-east-1a). Launching EC2 instance failed. (InsufficientInstanceCapacity)";
    let capacityError: string | undefined = ice;
    h.strategy.onStart = async () => {
      throw new NoCapacityError("default", capacityError);
    };
    const task = await admitted(h, { backend: "ec2", fleet: "default" });
    expect(await startTask(h.rt, task.task_id)).to.deep.equal({ outcome: "waiting-for-capacity", fleet: "default" });
    expect((await h.rt.tasks.get(task.task_id))!.capacity_error, "kept while the task waits").to.equal(ice);
    // The error passes (the fleet launched again): the task forgets it, and would time out as any wait does.
    capacityError = undefined;
    await startTask(h.rt, task.task_id);
    expect((await h.rt.tasks.get(task.task_id))!.capacity_error).to.equal(undefined);
    capacityError = ice;
    await startTask(h.rt, task.task_id);

    h.clock.advance(601);
    expect(await startTask(h.rt, task.task_id)).to.deep.equal({ outcome: "ended", status: "FAILED" });
    const record = (await h.rt.tasks.get(task.task_id))!;
    expect(record.error_message).to.equal(`EC2 could not provide an instance for fleet 'default' within the task's 600s timeout (waited 601s): ${ice}`);
  });

  it("a task without a fixed backend runs where its repository's blueprint says, at the blueprint's poll interval", async () => {
    const repo = `https://github.com/example/bp-${suffix()}`;
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    await h.rt.repos.put({ repo_url: repo, backend: "ecs", poll_interval_seconds: 45 });
    const task = await admitted(h, { repo_url: repo });
    expect((await loadTask(h.rt, task.task_id)).pollIntervalSeconds).to.equal(45);
    expect((await startTask(h.rt, task.task_id)).outcome).to.equal("started");
    expect(h.strategy.starts).to.deep.equal([task.task_id]);
    expect((await h.rt.tasks.get(task.task_id))!.compute_type).to.equal("ecs");
  });

  it("a backend the stack does not enable fails the task with the resolution error", async () => {
    const h = harness({ ...config, enabledBackends: ["local"], defaultBackend: "local" }, "ecs", async () => ({ state: "RUNNING" }));
    const task = await admitted(h, { backend: "ecs" });
    expect(await startTask(h.rt, task.task_id)).to.deep.equal({ outcome: "ended", status: "FAILED" });
    expect((await h.rt.tasks.get(task.task_id))!.error_message).to.equal(
      "could not choose a backend: backend 'ecs' is not enabled in this stack; enabled: local",
    );
    expect(h.strategy.starts).to.deep.equal([]);
  });

  it("a task stored without a payload gets one written from its record before the compute starts", async () => {
    const h = harness(config, "local", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { backend: "local" });
    // createTask always writes a payload; remove it to model a record created without one.
    await h.rt.payloads.delete(task.payload_uri!);
    const { UpdateCommand } = await import("@aws-sdk/lib-dynamodb");
    const { documentClient } = await import("../runtime/aws/dynamodb");
    await documentClient(config).send(
      new UpdateCommand({ TableName: config.tables.tasks, Key: { task_id: task.task_id }, UpdateExpression: "REMOVE payload_uri" }),
    );
    await h.rt.tasks.transition(task.task_id, "STARTING");
    let seen: string | undefined;
    h.strategy.onStart = async (req) => {
      seen = req.payloadUrl;
    };
    await startTask(h.rt, task.task_id);
    const record = (await h.rt.tasks.get(task.task_id))!;
    // File payloads are handed to the agent as their path.
    expect(record.payload_uri).to.be.a("string").and.equal(seen);
    expect((await h.rt.payloads.get(seen!)).prompt).to.equal(task.prompt);
  });

  it("a failed payload upload starts no compute: no instance is claimed before the payload exists", async () => {
    const failingPayloads = {
      maxBytes: 2 * 1024 * 1024,
      put: async () => {
        throw Object.assign(new Error("Access Denied"), { name: "AccessDenied" });
      },
      get: async () => {
        throw new Error("no payload");
      },
      delete: async () => undefined,
      replace: async () => undefined,
      agentLocator: async () => "/never",
    };
    const h = harness({ ...config, enabledBackends: [...config.enabledBackends, "ec2"] }, "ec2", async () => ({ state: "RUNNING" }), {
      payloads: failingPayloads,
    });
    const task = await createTask(harness(config, "local", async () => ({ state: "RUNNING" })).rt, { backend: "ec2" });
    const { UpdateCommand } = await import("@aws-sdk/lib-dynamodb");
    const { documentClient } = await import("../runtime/aws/dynamodb");
    await documentClient(config).send(
      new UpdateCommand({ TableName: config.tables.tasks, Key: { task_id: task.task_id }, UpdateExpression: "REMOVE payload_uri" }),
    );
    await h.rt.tasks.transition(task.task_id, "STARTING");
    const err = await startTask(h.rt, task.task_id).catch((e) => e);
    expect(err).to.be.instanceOf(Error).with.property("message", "Access Denied");
    expect(h.strategy.starts, "the EC2 strategy (which claims an instance) was called").to.deep.equal([]);
    expect((await h.rt.tasks.get(task.task_id))!.compute_metadata).to.equal(undefined);
  });

  it("refuses to start a task that was never admitted", async () => {
    const h = harness(config, "local", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { backend: "local" });
    const err = await startTask(h.rt, task.task_id).catch((e) => e);
    expect(err).to.be.instanceOf(IllegalTransitionError);
    expect(h.strategy.starts).to.deep.equal([]);
  });

  describe("durable run on an EC2 fleet without capacity", () => {
    before(() => LocalDurableTestRunner.setupTestEnvironment({ skipTime: true }));
    after(() => LocalDurableTestRunner.teardownTestEnvironment());

    it("waits (durably) and retries start until an instance is free, then runs to COMPLETED", async () => {
      const h = harness(config, "ec2", async ({ n, rt, taskId, clock }) => {
        clock.advance(30);
        if (n === 0) {
          await agent.running(rt, taskId, clock.now());
          return { state: "RUNNING" };
        }
        await agent.complete(rt, taskId);
        return { state: "EXITED", exitCode: 0 };
      });
      let full = 2;
      h.strategy.onStart = async () => {
        h.clock.advance(30);
        if (full-- > 0) throw new NoCapacityError("default");
      };
      const task = await createTask(h.rt, { backend: "ec2", fleet: "default" });
      const runner = new LocalDurableTestRunner<WorkflowResult>({
        handlerFunction: createOrchestratorHandler(() => h.rt, { waitSeconds: 1 }),
      });
      const execution = await runner.run({ payload: { task_id: task.task_id } });
      expect(execution.getResult()!.status).to.equal("COMPLETED");
      expect(h.strategy.starts).to.have.length(3);
      // Each wait for capacity is a wake the fleet's dispatcher completes when it binds an instance (timeout: the
      // safety net).
      expect(runner.getOperation("capacity-1").getType()).to.equal("CALLBACK");
      expect(existsSync(task.payload_uri!)).to.equal(false);
    });

    it("a stop that fails after a cancel raced the start is completed by finalize: no compute is left running", async () => {
      const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
      const task = await createTask(h.rt, { backend: "ecs" });
      h.strategy.onStart = async () => {
        const { cancelTask } = await import("../runtime/orchestrator/cancel");
        await cancelTask(h.rt, task.task_id);
      };
      const stop = h.strategy.stopSession.bind(h.strategy);
      let failures = 1;
      h.strategy.stopSession = async (handle, reason) => {
        if (failures-- > 0) throw Object.assign(new Error("StopTask throttled"), { name: "ThrottlingException" });
        return stop(handle, reason);
      };
      const runner = new LocalDurableTestRunner<WorkflowResult>({
        handlerFunction: createOrchestratorHandler(() => h.rt, { waitSeconds: 1 }),
      });
      const execution = await runner.run({ payload: { task_id: task.task_id } });
      expect(execution.getResult()!.status).to.equal("CANCELLED");
      expect(h.strategy.starts).to.deep.equal([task.task_id]);
      expect(h.strategy.live.has(task.task_id), "compute left running").to.equal(false);
      expect((await h.rt.tasks.get(task.task_id))!.compute_type).to.equal("ecs");
    });
  });
});
