/**
 * The `claude` driver: Claude Code through @anthropic-ai/claude-agent-sdk, on Amazon Bedrock by default (the
 * container's AWS credentials; the stack grants bedrock:InvokeModel on its configured models only), with the task's
 * model, max_turns and max_budget_usd. The SDK is not a dependency of this project (its licence is Anthropic's
 * commercial terms, not an open-source one): the agent image installs it (agent/package.json), and it is loaded
 * at run time from AGENT_CLAUDE_SDK or the ordinary module resolution.
 *
 * Provider: Bedrock unless AGENT_CLAUDE_PROVIDER=anthropic, which passes ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY
 * instead (the offline test points it at a scripted Messages API).
 */
import { BASE_ENV_KEYS, NETWORK_ENV_KEYS, pickEnv } from "../proc";
import type { Driver, DriverOutcome, DriverRequest } from "./driver";

export const CLAUDE_SDK_MODULE = "@anthropic-ai/claude-agent-sdk";

/** Tools Claude Code may use without asking (nobody is there to ask). */
export const DEFAULT_TOOLS = ["Read", "Write", "Edit", "MultiEdit", "Glob", "Grep", "LS", "Bash", "TodoWrite"];

const AWS_ENV_KEYS = [
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  // The EC2 fleet's container: a read-only config whose credential_process reads what the host refreshes.
  "AWS_CONFIG_FILE",
  "AWS_SDK_LOAD_CONFIG",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
];

/** The slice of the SDK's message union this driver reads. */
export interface SdkMessage {
  type: string;
  subtype?: string;
  message?: { content?: { type: string; text?: string; name?: string; input?: any }[] };
  total_cost_usd?: number;
  num_turns?: number;
  result?: string;
  errors?: string[];
  is_error?: boolean;
}

export type QueryFn = (args: { prompt: string; options: Record<string, unknown> }) => AsyncIterable<SdkMessage>;

export interface ClaudeDriverOptions {
  runnerEnv: NodeJS.ProcessEnv;
  /** Loads the SDK's query(); default: a dynamic import of AGENT_CLAUDE_SDK or the package name. */
  loadQuery?: () => Promise<QueryFn>;
}

/** How a result message ends the run. */
export function outcomeOfResult(m: SdkMessage): DriverOutcome {
  const facts = {
    ...(typeof m.total_cost_usd === "number" ? { costUsd: m.total_cost_usd } : {}),
    ...(typeof m.num_turns === "number" ? { turns: m.num_turns } : {}),
  };
  switch (m.subtype) {
    case "success":
      return m.is_error
        ? { kind: "failed", detail: `Claude Code ended with an error: ${(m.result ?? "").slice(0, 500)}`, ...facts }
        : { kind: "done", summary: m.result, ...facts };
    case "error_max_turns":
      return { kind: "turns_exceeded", detail: `Claude Code used all of its turns`, ...facts };
    case "error_max_budget_usd":
      return { kind: "budget_exceeded", detail: `Claude Code reached max_budget_usd`, ...facts };
    default:
      return { kind: "failed", detail: `Claude Code ended with ${m.subtype ?? "no result"}${m.errors?.length ? `: ${m.errors.join("; ").slice(0, 500)}` : ""}`, ...facts };
  }
}

/** One line of progress per assistant message: its tool calls, else the start of its text. */
export function progressOf(m: SdkMessage): string | undefined {
  if (m.type !== "assistant") return undefined;
  const content = m.message?.content ?? [];
  const tools = content.filter((c) => c.type === "tool_use").map((c) => `${c.name}${typeof c.input?.file_path === "string" ? ` ${c.input.file_path}` : ""}`);
  if (tools.length) return `tool: ${tools.join(", ")}`;
  const text = content.find((c) => c.type === "text" && c.text)?.text;
  return text ? text.split("\n")[0].slice(0, 300) : undefined;
}

async function importSdk(specifier: string): Promise<QueryFn> {
  // A real dynamic import (the SDK is ESM only): TypeScript's CommonJS output would turn import() into require().
  const dynamicImport = new Function("s", "return import(s)") as (s: string) => Promise<any>;
  const mod = await dynamicImport(specifier);
  if (typeof mod.query !== "function") throw new Error(`${specifier} has no query() export`);
  return mod.query as QueryFn;
}

export class ClaudeDriver implements Driver {
  readonly name = "claude";
  constructor(private readonly options: ClaudeDriverOptions) {}

  /** Claude Code's environment: provider settings and what a shell needs; no channel or repository token. */
  childEnv(model: string | undefined): Record<string, string> {
    const e = this.options.runnerEnv;
    const env = pickEnv(e, [...BASE_ENV_KEYS, ...NETWORK_ENV_KEYS]);
    Object.assign(env, { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_AUTOUPDATER: "1", DISABLE_TELEMETRY: "1" });
    if (e.AGENT_CLAUDE_PROVIDER === "anthropic") {
      Object.assign(env, pickEnv(e, ["ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"]));
    } else {
      Object.assign(env, pickEnv(e, AWS_ENV_KEYS), { CLAUDE_CODE_USE_BEDROCK: "1" });
    }
    // The task's model, else the stack's (ANTHROPIC_MODEL in the runner's environment): the models the agent
    // principal may invoke. Without it Claude Code would pick its own default, which the stack does not grant.
    const chosen = model || e.ANTHROPIC_MODEL;
    if (chosen) env.ANTHROPIC_MODEL = chosen;
    return env;
  }

  async run(request: DriverRequest): Promise<DriverOutcome> {
    let query: QueryFn;
    try {
      query = await (this.options.loadQuery ?? (() => importSdk(this.options.runnerEnv.AGENT_CLAUDE_SDK || CLAUDE_SDK_MODULE)))();
    } catch (err) {
      return { kind: "failed", detail: `the claude driver cannot load ${CLAUDE_SDK_MODULE} (install it in the agent image): ${(err as Error).message}` };
    }
    const abortController = new AbortController();
    const onAbort = () => abortController.abort();
    request.signal.addEventListener("abort", onAbort, { once: true });
    const tools = this.options.runnerEnv.AGENT_CLAUDE_TOOLS?.split(",").map((t) => t.trim()).filter(Boolean) ?? DEFAULT_TOOLS;
    let last: DriverOutcome | undefined;
    try {
      const stream = query({
        prompt: request.prompt,
        options: {
          cwd: request.cwd,
          env: this.childEnv(request.model),
          ...(request.model ? { model: request.model } : {}),
          ...(request.maxTurns !== undefined ? { maxTurns: request.maxTurns } : {}),
          ...(request.maxBudgetUsd !== undefined ? { maxBudgetUsd: request.maxBudgetUsd } : {}),
          // Nobody can answer a permission prompt: the allowed tools run, anything else is refused.
          permissionMode: "dontAsk",
          allowedTools: tools,
          // The repository's CLAUDE.md and .claude/settings.json, not the machine's user settings.
          settingSources: ["project"],
          abortController,
          stderr: (data: string) => request.log(`[claude stderr] ${data.trimEnd()}`),
        },
      });
      for await (const m of stream) {
        const line = progressOf(m);
        if (line) request.progress(line);
        if (m.type === "result") last = outcomeOfResult(m);
      }
    } catch (err) {
      if (request.signal.aborted) return { kind: "cancelled" };
      return { kind: "failed", detail: `Claude Code failed: ${(err as Error).message}`, ...(last ? { costUsd: last.costUsd, turns: last.turns } : {}) };
    } finally {
      request.signal.removeEventListener("abort", onAbort);
    }
    if (request.signal.aborted) return { kind: "cancelled" };
    return last ?? { kind: "failed", detail: "Claude Code ended without a result" };
  }
}
