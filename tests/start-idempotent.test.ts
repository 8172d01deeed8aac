/**
 * Every start is idempotent, and a start that cannot succeed holds nothing. AgentCore's InvokeAgentRuntime is not
 * idempotent (a second call starts a second agent in the session), so it is never sent again once one may have
 * landed; RunTask/SendCommand-style starts get one retry on throttling and then fail cleanly.
 */
import { expect } from "chai";
import { BedrockAgentCoreClient, InvokeAgentRuntimeCommand, StopRuntimeSessionCommand, ThrottlingException, ValidationException } from "@aws-sdk/client-bedrock-agentcore";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { Readable } from "node:stream";
import { AgentCoreStrategy, sessionIdForTask } from "../runtime/compute/agentcore";
import type { RuntimeConfig } from "../runtime/config";
import { finalizeTask } from "../runtime/orchestrator/finalize";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import { startTask } from "../runtime/orchestrator/start";
import { createRuntime, type Runtime } from "../runtime/runtime";
import { createTables, createTask, FakeClock, harness, suffix, testConfig } from "./orchestrator-fixtures";

describe("idempotent starts", function () {
  this.timeout(60_000);
  let config: RuntimeConfig;
  let agentcore: AwsClientStub<BedrockAgentCoreClient>;
  before(async () => {
    config = testConfig();
    await createTables(config);
  });
  beforeEach(() => (agentcore = mockClient(BedrockAgentCoreClient)));
  afterEach(() => agentcore.restore());

  const ack = () => ({ contentType: "application/json", statusCode: 200, response: Readable.from([Buffer.from("{}")]) as never });
  const invokes = () => agentcore.commandCalls(InvokeAgentRuntimeCommand).length;

  async function startingAgentCoreTask(): Promise<{ rt: Runtime; taskId: string }> {
    const clock = new FakeClock();
    const rt = createRuntime(config, { now: clock.now, strategies: { agentcore: new AgentCoreStrategy(config, { responseReadTimeoutMs: 100 }) } });
    const task = await createTask(rt, { backend: "agentcore", user_id: `u-${suffix()}` });
    await rt.tasks.transition(task.task_id, "STARTING");
    await new ConcurrencySlots(config).claim(task.user_id, task.task_id, 10);
    return { rt, taskId: task.task_id };
  }

  it("AgentCore: a start re-run after the invocation went out (its handle write crashed) adopts the session; one InvokeAgentRuntime", async () => {
    const { rt, taskId } = await startingAgentCoreTask();
    agentcore.on(InvokeAgentRuntimeCommand).resolves(ack());
    const update = rt.tasks.update.bind(rt.tasks);
    let crashed = false;
    rt.tasks.update = async (id, fields, whileIn) => {
      if (fields.compute_metadata && !crashed) {
        crashed = true;
        throw new Error("the orchestrator died between dispatch and the handle write");
      }
      return update(id, fields, whileIn);
    };
    await startTask(rt, taskId).then(() => expect.fail("the first start should have crashed"), () => undefined);
    const again = await startTask(rt, taskId);
    expect(again.outcome).to.equal("started");
    expect(again.outcome === "started" && again.handle).to.deep.include({ type: "agentcore", sessionId: sessionIdForTask(taskId) });
    expect(invokes(), "InvokeAgentRuntime calls").to.equal(1);
    expect((await rt.tasks.get(taskId))!.compute_metadata).to.deep.include({ sessionId: sessionIdForTask(taskId) });
  });

  it("AgentCore: the orchestrator dies between the invocation and the handle write: finalize still stops that session", async () => {
    const { rt, taskId } = await startingAgentCoreTask();
    agentcore.on(InvokeAgentRuntimeCommand).resolves(ack());
    agentcore.on(StopRuntimeSessionCommand).resolves({});
    const update = rt.tasks.update.bind(rt.tasks);
    rt.tasks.update = async (id, fields, whileIn) => {
      if (fields.compute_metadata) throw new Error("the orchestrator died between dispatch and the handle write");
      return update(id, fields, whileIn);
    };
    await startTask(rt, taskId).then(() => expect.fail("the start should have crashed"), () => undefined);
    rt.tasks.update = update;
    // The reconciler fails the task whose orchestrator is gone, and finalizes it.
    await rt.tasks.transition(taskId, "FAILED", { error_message: "the task's orchestrator stopped running" });
    await finalizeTask(rt, taskId, { stopRunningCompute: true });
    const stops = agentcore.commandCalls(StopRuntimeSessionCommand).map((c) => c.args[0].input.runtimeSessionId);
    expect(stops).to.deep.equal([sessionIdForTask(taskId)]);
  });

  it("AgentCore: an invocation whose outcome is unknown (a 503) is adopted, not sent again", async () => {
    const { rt, taskId } = await startingAgentCoreTask();
    agentcore.on(InvokeAgentRuntimeCommand).rejects(Object.assign(new Error("Service Unavailable"), { name: "ServiceUnavailableException", $metadata: { httpStatusCode: 503 } }));
    const started = await startTask(rt, taskId);
    expect(started.outcome).to.equal("started");
    expect(invokes()).to.equal(1);
    const events = (await rt.events.list(taskId, { limit: 100 })).items.map((e) => e.message);
    expect(events.some((m) => /outcome is unknown \(Service Unavailable\); adopting its session/.test(m)), JSON.stringify(events)).to.equal(true);
  });

  it("AgentCore: throttled, then refused: one retry, then FAILED naming the error; finalize leaves nothing held", async () => {
    const { rt, taskId } = await startingAgentCoreTask();
    agentcore
      .on(InvokeAgentRuntimeCommand)
      .rejectsOnce(new ThrottlingException({ message: "Rate exceeded", $metadata: { httpStatusCode: 429 } }))
      .rejects(new ValidationException({ message: "payload rejected", $metadata: { httpStatusCode: 400 }, reason: "FieldValidationFailed" } as never));
    const started = await startTask(rt, taskId);
    expect(started).to.deep.equal({ outcome: "ended", status: "FAILED" });
    expect(invokes()).to.equal(2);
    const task = (await rt.tasks.get(taskId))!;
    expect(task.error_message).to.match(/could not start the AgentCore session: payload rejected/);
    await finalizeTask(rt, taskId);
    expect(await new ConcurrencySlots(config).holders(task.user_id)).to.deep.equal([]);
  });

  it("RunTask (idempotent by clientToken) throttled, then failing: one retry, then FAILED; nothing held", async () => {
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    const task = await createTask(h.rt, { backend: "ecs", user_id: `u-${suffix()}` });
    await h.rt.tasks.transition(task.task_id, "STARTING");
    await new ConcurrencySlots(config).claim(task.user_id, task.task_id, 10);
    let n = 0;
    h.strategy.onStart = async () => {
      throw n++ === 0
        ? Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" })
        : Object.assign(new Error("not authorized to perform ecs:RunTask"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } });
    };
    const started = await startTask(h.rt, task.task_id);
    expect(started).to.deep.equal({ outcome: "ended", status: "FAILED" });
    expect(h.strategy.starts).to.have.length(2);
    await finalizeTask(h.rt, task.task_id);
    expect(await new ConcurrencySlots(config).holders(task.user_id)).to.deep.equal([]);
    expect(h.strategy.live.size).to.equal(0);
  });
});
