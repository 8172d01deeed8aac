import { expect } from "chai";
import { Readable } from "node:stream";
import {
  AccessDeniedException,
  BedrockAgentCoreClient,
  InvokeAgentRuntimeCommand,
  ResourceNotFoundException,
  StopRuntimeSessionCommand,
  ThrottlingException,
  ValidationException,
} from "@aws-sdk/client-bedrock-agentcore";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { ConfigError, type RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import type { TaskRecord } from "../runtime/tasks/record";
import { AgentCoreStrategy, SESSION_ID_MAX, SESSION_ID_MIN, sessionIdForTask } from "../runtime/compute/agentcore";
import type { AgentCoreHandle } from "../runtime/compute/handle";

const RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/agent_compute-AbCdEf1234";
const TASK_ID = "7d7a8f9e-1c2b-4a5d-9e8f-0a1b2c3d4e5f";
const PAYLOAD_URL = `https://payloads.s3.us-west-2.amazonaws.com/tasks/${TASK_ID}/payload.json?X-Amz-Signature=abc`;

/** `null`: a stack without agentcore settings. */
function config(agentcore: RuntimeConfig["agentcore"] | null = { runtimeArn: RUNTIME_ARN, qualifier: "live" }): RuntimeConfig {
  return {
    region: "us-west-2",
    tables: { tasks: "tasks-t", events: "events-t", leases: "leases-t", concurrency: "conc-t", repos: "repos-t" },
    payload: { kind: "s3", bucket: "payloads" },
    defaultBackend: "agentcore",
    enabledBackends: ["agentcore"],
    ...(agentcore ? { agentcore } : {}),
    limits: DEFAULT_LIMITS,
  };
}

function taskRecord(fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task_id: TASK_ID,
    user_id: "user-1",
    status: "STARTING",
    repo_url: "https://github.com/acme/widgets",
    prompt: "fix the bug",
    created_at: "2025-01-01T00:00:00Z",
    updated_at: "2025-01-01T00:00:00Z",
    ...fields,
  };
}

/** A response body like the SDK's Node stream; `destroyed` tells whether the strategy closed it. */
function body(chunks: string[], end = true): Readable {
  const stream = new Readable({ read() {} });
  for (const c of chunks) stream.push(Buffer.from(c));
  if (end) stream.push(null);
  return stream;
}

describe("AgentCore strategy: sessionIdForTask", () => {
  const cases: Array<{ taskId: string; expected: string | RegExp }> = [
    { taskId: TASK_ID, expected: `agent-compute-task-${TASK_ID}` },
    { taskId: "01JABCDEFGHJKMNPQRSTVWXYZ0", expected: "agent-compute-task-01JABCDEFGHJKMNPQRSTVWXYZ0" },
    { taskId: "t1", expected: /^agent-compute-hash-[0-9a-f]{64}$/ },
    { taskId: "a".repeat(13), expected: /^agent-compute-hash-[0-9a-f]{64}$/ },
    { taskId: "a".repeat(14), expected: `agent-compute-task-${"a".repeat(14)}` },
    { taskId: "a".repeat(237), expected: `agent-compute-task-${"a".repeat(237)}` },
    { taskId: "a".repeat(238), expected: /^agent-compute-hash-[0-9a-f]{64}$/ },
    { taskId: "spaces and/slashes in it, long enough", expected: /^agent-compute-hash-[0-9a-f]{64}$/ },
  ];
  for (const c of cases) {
    it(`task id of ${c.taskId.length} chars (${JSON.stringify(c.taskId.slice(0, 16))}…) maps to a valid session id`, () => {
      const id = sessionIdForTask(c.taskId);
      if (typeof c.expected === "string") expect(id).to.equal(c.expected);
      else expect(id).to.match(c.expected);
      expect(id.length).to.be.within(SESSION_ID_MIN, SESSION_ID_MAX);
      expect(id).to.match(/^[A-Za-z0-9_-]+$/);
      expect(sessionIdForTask(c.taskId), "deterministic").to.equal(id);
    });
  }
  it("different tasks get different sessions", () => {
    const ids = ["t1", "t2", TASK_ID, TASK_ID.replace("7", "8"), "x y", "x-y"].map(sessionIdForTask);
    expect(new Set(ids).size).to.equal(ids.length);
  });
});

describe("AgentCore strategy: start, poll and stop (aws-sdk-client-mock)", () => {
  // Installed in before(), not at load time: a mock made while mocha loads files would be live in every other file.
  let agentcore: AwsClientStub<BedrockAgentCoreClient>;
  before(() => {
    agentcore = mockClient(BedrockAgentCoreClient);
  });
  beforeEach(() => agentcore.reset());
  after(() => agentcore.restore());

  const invokeInputs = () => agentcore.commandCalls(InvokeAgentRuntimeCommand).map((c) => c.args[0].input);

  it("invokes the runtime with the task's session, the qualifier, JSON content types and a by-reference message", async () => {
    const stream = body(['{"status":"accepted"}']);
    agentcore.on(InvokeAgentRuntimeCommand).resolves({ contentType: "application/json", statusCode: 200, runtimeSessionId: sessionIdForTask(TASK_ID), response: stream as never });
    const handle = await new AgentCoreStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    expect(handle).to.deep.equal({ type: "agentcore", runtimeArn: RUNTIME_ARN, qualifier: "live", sessionId: `agent-compute-task-${TASK_ID}` });
    const [input] = invokeInputs();
    expect(input).to.include({
      agentRuntimeArn: RUNTIME_ARN,
      qualifier: "live",
      runtimeSessionId: `agent-compute-task-${TASK_ID}`,
      contentType: "application/json",
      accept: "application/json",
    });
    expect(JSON.parse(Buffer.from(input.payload as Uint8Array).toString("utf8"))).to.deep.equal({
      task_id: TASK_ID,
      payload_url: PAYLOAD_URL,
    });
    expect(stream.destroyed, "the response stream is closed").to.equal(true);
  });

  it("without a qualifier, sends none and the handle has none", async () => {
    agentcore.on(InvokeAgentRuntimeCommand).resolves({ contentType: "application/json", statusCode: 200, response: body([]) as never });
    const handle = await new AgentCoreStrategy(config({ runtimeArn: RUNTIME_ARN })).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    expect(invokeInputs()[0]).to.not.have.property("qualifier");
    expect(handle).to.not.have.property("qualifier");
  });

  it("a hostile 1 MiB prompt contributes no byte to the invocation", async () => {
    agentcore.on(InvokeAgentRuntimeCommand).resolves({ contentType: "application/json", statusCode: 200, response: body([]) as never });
    const hostile = `it's "q" $(touch /tmp/x) \`id\`\n${"HOSTILE-BODY-".repeat(Math.ceil(1048576 / 13))}`;
    const strategy = new AgentCoreStrategy(config());
    await strategy.startSession({ task: taskRecord({ prompt: hostile, repo_url: "https://x/$(touch /tmp/x)" }), payloadUrl: PAYLOAD_URL });
    await strategy.startSession({ task: taskRecord({ prompt: "" }), payloadUrl: PAYLOAD_URL });
    const [a, b] = invokeInputs().map((i) => JSON.stringify({ ...i, payload: Buffer.from(i.payload as Uint8Array).toString("utf8") }));
    expect(a).to.equal(b);
    expect(a).to.not.include("HOSTILE-BODY").and.not.include("$(touch");
    expect(a.length).to.be.below(2048);
  });

  it("a replayed start invokes the same session again (the task's session id is derived, not random)", async () => {
    agentcore.on(InvokeAgentRuntimeCommand).resolves({ contentType: "application/json", statusCode: 200, response: body([]) as never });
    const strategy = new AgentCoreStrategy(config());
    const first = await strategy.startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    const second = await new AgentCoreStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    expect(second).to.deep.equal(first);
    expect(invokeInputs().map((i) => i.runtimeSessionId)).to.deep.equal([first.sessionId, first.sessionId]);
  });

  it("stops reading a response that never ends after the read deadline, and closes it", async () => {
    const endless = body(["still working..."], false);
    agentcore.on(InvokeAgentRuntimeCommand).resolves({ contentType: "text/event-stream", statusCode: 200, response: endless as never });
    const started = Date.now();
    await new AgentCoreStrategy(config(), { responseReadTimeoutMs: 30 }).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL });
    expect(Date.now() - started).to.be.below(2000);
    expect(endless.destroyed).to.equal(true);
  });

  it("an error status from the agent fails the start, naming the runtime, session and status", async () => {
    agentcore.on(InvokeAgentRuntimeCommand).resolves({ contentType: "application/json", statusCode: 500, response: body(['{"error":"boom"}']) as never });
    const err = await new AgentCoreStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL }).catch((e: Error) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.include(RUNTIME_ARN).and.include("HTTP 500").and.include("boom").and.include(sessionIdForTask(TASK_ID));
  });

  const invokeErrors = [
    new ThrottlingException({ message: "Rate exceeded", $metadata: {} }),
    new ValidationException({ message: "runtimeSessionId too short", $metadata: {}, reason: "FieldValidationFailed" } as never),
    new ResourceNotFoundException({ message: "No agent runtime", $metadata: {} }),
  ];
  for (const error of invokeErrors) {
    it(`InvokeAgentRuntime ${error.name} is surfaced`, async () => {
      agentcore.on(InvokeAgentRuntimeCommand).rejects(error);
      const err = await new AgentCoreStrategy(config()).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL }).catch((e) => e);
      expect(err).to.have.property("name", error.name);
    });
  }

  it("without agentcore settings, start fails with a ConfigError naming runtimeArn", async () => {
    const err = await new AgentCoreStrategy(config(null)).startSession({ task: taskRecord(), payloadUrl: PAYLOAD_URL }).catch((e) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.include("agentcore.runtimeArn");
    expect(agentcore.calls()).to.have.length(0);
  });

  const handle: AgentCoreHandle = { type: "agentcore", runtimeArn: RUNTIME_ARN, qualifier: "live", sessionId: sessionIdForTask(TASK_ID) };

  it("poll reports UNOBSERVABLE without calling AWS (no session-status API exists)", async () => {
    const status = await new AgentCoreStrategy(config()).pollSession(handle);
    expect(status.state).to.equal("UNOBSERVABLE");
    expect(agentcore.calls()).to.have.length(0);
  });

  it("stop calls StopRuntimeSession with the handle's runtime, session and qualifier", async () => {
    agentcore.on(StopRuntimeSessionCommand).resolves({ runtimeSessionId: handle.sessionId, statusCode: 200 });
    await new AgentCoreStrategy(config()).stopSession(handle, "cancelled");
    expect(agentcore.commandCalls(StopRuntimeSessionCommand)[0].args[0].input).to.deep.equal({
      agentRuntimeArn: RUNTIME_ARN,
      runtimeSessionId: handle.sessionId,
      qualifier: "live",
    });
  });

  it("stop of a session that no longer exists (ResourceNotFoundException) is not an error", async () => {
    agentcore.on(StopRuntimeSessionCommand).rejects(new ResourceNotFoundException({ message: "Session not found", $metadata: {} }));
    await new AgentCoreStrategy(config()).stopSession(handle, "cancelled");
    expect(agentcore.commandCalls(StopRuntimeSessionCommand)).to.have.length(1);
  });

  for (const error of [
    new AccessDeniedException({ message: "not authorized", $metadata: {} }),
    new ThrottlingException({ message: "Rate exceeded", $metadata: {} }),
  ]) {
    it(`stop surfaces ${error.name}`, async () => {
      agentcore.on(StopRuntimeSessionCommand).rejects(error);
      const err = await new AgentCoreStrategy(config()).stopSession(handle, "x").catch((e) => e);
      expect(err).to.have.property("name", error.name);
    });
  }

  it("stop works from the persisted handle alone, without agentcore settings (cancel after a config change)", async () => {
    agentcore.on(StopRuntimeSessionCommand).resolves({});
    await new AgentCoreStrategy(config(null)).stopSession({ ...handle, qualifier: undefined }, "x");
    expect(agentcore.commandCalls(StopRuntimeSessionCommand)[0].args[0].input).to.not.have.property("qualifier");
  });
});
