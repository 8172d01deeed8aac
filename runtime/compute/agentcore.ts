/**
 * Amazon Bedrock AgentCore Runtime backend: one runtime session per agent task.
 * Start = InvokeAgentRuntime with a small JSON message that points at the payload; stop = StopRuntimeSession.
 */
import { createHash } from "node:crypto";
import {
  BedrockAgentCoreClient,
  InvokeAgentRuntimeCommand,
  StopRuntimeSessionCommand,
  type InvokeAgentRuntimeCommandInput,
} from "@aws-sdk/client-bedrock-agentcore";
import { awsClient } from "../aws/clients";
import { ConfigError, type AgentCoreConfig, type RuntimeConfig } from "../config";
import type { TaskRecord } from "../tasks/record";
import type { AgentCoreHandle } from "./handle";
import type { ComputeStrategy, SessionStatus, StartRequest } from "./strategy";

/** runtimeSessionId: 33–256 characters (InvokeAgentRuntime / StopRuntimeSession API reference). */
export const SESSION_ID_MIN = 33;
export const SESSION_ID_MAX = 256;
const TASK_PREFIX = "agent-compute-task-";
const HASH_PREFIX = "agent-compute-hash-";

/**
 * The runtime session of a task, derived only from its id: a replayed start step invokes the same session
 * (so AgentCore routes it to the same microVM instead of starting a second agent), and cancel can stop it
 * from any process. Readable ids keep the task id visible; ids too short, too long or with characters
 * outside [A-Za-z0-9_-] are hashed. The two prefixes keep the two forms from ever colliding.
 */
export function sessionIdForTask(taskId: string): string {
  const readable = `${TASK_PREFIX}${taskId}`;
  if (/^[A-Za-z0-9_-]+$/.test(taskId) && readable.length >= SESSION_ID_MIN && readable.length <= SESSION_ID_MAX) {
    return readable;
  }
  return `${HASH_PREFIX}${createHash("sha256").update(taskId).digest("hex")}`;
}

/**
 * The message the agent's entrypoint receives: the task id and a presigned URL of its payload, never the prompt,
 * and no table names: the agent reports through the channel named inside the payload.
 */
export interface AgentCoreInvocation {
  task_id: string;
  payload_url: string;
}

/** Bytes of the invocation response read before the stream is closed (an acknowledgement, not a transcript). */
const RESPONSE_READ_LIMIT = 64 * 1024;

export interface AgentCoreStrategyOptions {
  /** How long startSession reads the invocation's response before closing it (default 30 s). */
  responseReadTimeoutMs?: number;
}

/** Did StopRuntimeSession fail only because there is no such session (ended, expired, never started)? */
function isSessionGone(err: unknown): boolean {
  return (err as { name?: string })?.name === "ResourceNotFoundException";
}

export class AgentCoreStrategy implements ComputeStrategy<"agentcore"> {
  readonly type = "agentcore" as const;

  constructor(
    private readonly config: RuntimeConfig,
    private readonly options: AgentCoreStrategyOptions = {},
  ) {}

  private client(): BedrockAgentCoreClient {
    return awsClient(BedrockAgentCoreClient, { region: this.config.region });
  }

  private settings(): AgentCoreConfig {
    const agentcore = this.config.agentcore;
    if (!agentcore?.runtimeArn) throw new ConfigError("the AgentCore backend needs 'agentcore.runtimeArn' (the agent runtime's ARN)");
    return agentcore;
  }

  /** The exact InvokeAgentRuntime input for a task. */
  invokeInput({ task, payloadUrl }: StartRequest): InvokeAgentRuntimeCommandInput {
    const { runtimeArn, qualifier } = this.settings();
    const message: AgentCoreInvocation = { task_id: task.task_id, payload_url: payloadUrl };
    return {
      agentRuntimeArn: runtimeArn,
      ...(qualifier ? { qualifier } : {}),
      runtimeSessionId: sessionIdForTask(task.task_id),
      contentType: "application/json",
      accept: "application/json",
      payload: new TextEncoder().encode(JSON.stringify(message)),
    };
  }

  /** The session a start of this task would create: its id derives from the task id alone. */
  resumeStart(request: StartRequest): AgentCoreHandle {
    const input = this.invokeInput(request);
    return {
      type: "agentcore",
      runtimeArn: input.agentRuntimeArn!,
      ...(input.qualifier ? { qualifier: input.qualifier } : {}),
      sessionId: input.runtimeSessionId!,
    };
  }

  /**
   * AgentCore offers no status of a session: a task whose start may have been sent (start_sent_at) may have its
   * session running, and stopping a session that is not there is harmless.
   */
  async findUnrecordedSessions(task: TaskRecord): Promise<AgentCoreHandle[]> {
    // Naming a session needs the task alone; the agent's payload URL plays no part (and is never stored).
    return task.start_sent_at ? [this.resumeStart({ task, payloadUrl: "" })] : [];
  }

  async startSession(request: StartRequest): Promise<AgentCoreHandle> {
    const input = this.invokeInput(request);
    const out = await this.client().send(new InvokeAgentRuntimeCommand(input));
    // The agent acknowledges and keeps working in the background (AgentCore's asynchronous pattern, its
    // /ping reporting HealthyBusy); the contract has it report progress through the agent channel, not this
    // stream. Read a bounded acknowledgement and close the stream so the connection is released.
    const body = await readBounded(out.response, RESPONSE_READ_LIMIT, this.options.responseReadTimeoutMs ?? 30_000);
    if (out.statusCode !== undefined && out.statusCode >= 400) {
      throw new Error(
        `AgentCore runtime ${input.agentRuntimeArn} refused task ${request.task.task_id} (session ${input.runtimeSessionId}) with HTTP ${out.statusCode}: ${body.slice(0, 500)}`,
      );
    }
    return {
      type: "agentcore",
      runtimeArn: input.agentRuntimeArn!,
      ...(input.qualifier ? { qualifier: input.qualifier } : {}),
      sessionId: out.runtimeSessionId ?? input.runtimeSessionId!,
    };
  }

  /**
   * The AgentCore data plane has no call that reports a runtime session's state: its runtime operations are
   * InvokeAgentRuntime, InvokeAgentRuntimeCommand, StopRuntimeSession and GetAgentCard, and its
   * ListSessions/Get*Session calls belong to Memory, Browser and Code Interpreter. Invoking the session to
   * ask would route work into it (or start a fresh microVM if it had ended). So the honest answer is
   * UNOBSERVABLE: liveness relies on the agent's heartbeats and terminal writes (runtime/liveness.ts).
   */
  async pollSession(_handle: AgentCoreHandle): Promise<SessionStatus> {
    return { state: "UNOBSERVABLE", reason: "AgentCore offers no session status API; liveness comes from heartbeats" };
  }

  async stopSession(handle: AgentCoreHandle, _reason: string): Promise<void> {
    try {
      await this.client().send(
        new StopRuntimeSessionCommand({
          agentRuntimeArn: handle.runtimeArn,
          runtimeSessionId: handle.sessionId,
          ...(handle.qualifier ? { qualifier: handle.qualifier } : {}),
        }),
      );
    } catch (err) {
      if (!isSessionGone(err)) throw err;
    }
  }
}

/**
 * Read at most `limit` bytes of a streaming SDK body as text, for at most `deadlineMs`, then close it.
 * The deadline keeps a start step from hanging on an agent that streams for hours instead of acknowledging:
 * by the time the body streams, AgentCore has accepted the session, so stopping to read loses nothing.
 */
async function readBounded(stream: unknown, limit: number, deadlineMs: number): Promise<string> {
  if (!stream) return "";
  const body = stream as AsyncIterable<Uint8Array | string> & { destroy?: () => void };
  if (typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== "function") {
    // Non-Node bodies (web streams, already-buffered blobs): the SDK's own mixin reads them whole.
    const whole = stream as { transformToString?: () => Promise<string> };
    return whole.transformToString ? (await whole.transformToString()).slice(0, limit) : "";
  }
  const iterator = body[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), deadlineMs);
  });
  try {
    while (size < limit) {
      const next = await Promise.race([iterator.next(), deadline]);
      if (next === "deadline" || next.done) break;
      const buf = Buffer.from(next.value);
      chunks.push(buf);
      size += buf.length;
    }
  } finally {
    clearTimeout(timer);
    body.destroy?.();
    // Ends the iteration so nothing keeps the socket; the stream may already be finished, which is fine.
    void iterator.return?.()?.catch?.(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}
