/**
 * The `command` driver: any CLI coding agent (e.g. `codex exec`, `aider --yes-always --message-file -`, a script).
 * Its argv comes from the operator (AGENT_COMMAND, a JSON array), never from the task; the prompt arrives on stdin.
 * It runs in the repository with a small environment: PATH/HOME and the like, the variables the operator lists in
 * AGENT_COMMAND_ENV (e.g. its API key), and the task's limits:
 *   AGENT_MODEL, AGENT_MAX_TURNS, AGENT_MAX_BUDGET_USD  (when the task sets them)
 *   AGENT_RESULT_FILE  where it may write {"cost_usd", "turns", "summary", "outcome": "budget_exceeded"|"turns_exceeded"}
 * It runs in its own process group: a cancel stops every process it started.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { BASE_ENV_KEYS, NETWORK_ENV_KEYS, pickEnv, stopGroup } from "../proc";
import type { Driver, DriverOutcome, DriverRequest } from "./driver";

export const RESULT_FILE = "agent-result.json";

export interface CommandDriverOptions {
  argv: string[];
  /** Names of runner environment variables the agent may see (its own API keys, say). */
  passEnv?: string[];
  runnerEnv: NodeJS.ProcessEnv;
  /** Between SIGTERM and SIGKILL on cancel. Default 3000 ms. */
  stopGraceMs?: number;
}

/** AGENT_COMMAND: a JSON array of strings, argv[0] a program. */
export function parseCommand(raw: string | undefined): string[] {
  if (!raw) throw new Error("the command driver needs AGENT_COMMAND: a JSON array argv, e.g. [\"codex\",\"exec\",\"-\"]");
  let argv: unknown;
  try {
    argv = JSON.parse(raw);
  } catch {
    throw new Error(`AGENT_COMMAND must be a JSON array of strings, got ${JSON.stringify(raw.slice(0, 80))}`);
  }
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string") || !argv[0]) {
    throw new Error("AGENT_COMMAND must be a non-empty JSON array of strings (argv[0] the program)");
  }
  return argv as string[];
}

interface ReportedResult {
  cost_usd?: unknown;
  turns?: unknown;
  summary?: unknown;
  outcome?: unknown;
}

/** What the agent wrote to AGENT_RESULT_FILE, if anything usable. */
export function readReportedResult(file: string): { costUsd?: number; turns?: number; summary?: string; outcome?: "budget_exceeded" | "turns_exceeded" } {
  let raw: ReportedResult;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return {};
  }
  return {
    ...(typeof raw.cost_usd === "number" && raw.cost_usd >= 0 ? { costUsd: raw.cost_usd } : {}),
    ...(Number.isInteger(raw.turns) && (raw.turns as number) >= 0 ? { turns: raw.turns as number } : {}),
    ...(typeof raw.summary === "string" ? { summary: raw.summary } : {}),
    ...(raw.outcome === "budget_exceeded" || raw.outcome === "turns_exceeded" ? { outcome: raw.outcome } : {}),
  };
}

export class CommandDriver implements Driver {
  readonly name = "command";
  constructor(private readonly options: CommandDriverOptions) {}

  childEnv(request: DriverRequest): Record<string, string> {
    const env = pickEnv(this.options.runnerEnv, [...BASE_ENV_KEYS, ...NETWORK_ENV_KEYS, ...(this.options.passEnv ?? [])]);
    env.AGENT_RESULT_FILE = path.join(request.scratchDir, RESULT_FILE);
    if (request.model) env.AGENT_MODEL = request.model;
    if (request.maxTurns !== undefined) env.AGENT_MAX_TURNS = String(request.maxTurns);
    if (request.maxBudgetUsd !== undefined) env.AGENT_MAX_BUDGET_USD = String(request.maxBudgetUsd);
    return env;
  }

  async run(request: DriverRequest): Promise<DriverOutcome> {
    const [program, ...args] = this.options.argv;
    const env = this.childEnv(request);
    const child = spawn(program, args, { cwd: request.cwd, env, detached: true, shell: false, stdio: ["pipe", "pipe", "pipe"] });
    const spawned = await new Promise<Error | undefined>((resolve) => {
      child.once("spawn", () => resolve(undefined));
      child.once("error", resolve);
    });
    if (spawned) return { kind: "failed", detail: `cannot start ${program}: ${spawned.message}` };
    const pgid = child.pid!;
    let lastLines: string[] = [];
    const onLine = (stream: string) => {
      let buf = "";
      return (d: Buffer) => {
        buf += d.toString("utf8");
        const lines = buf.split("\n");
        buf = lines.pop()!.slice(-4000);
        for (const line of lines.map((l) => l.trimEnd()).filter(Boolean)) {
          request.log(`[agent ${stream}] ${line}`);
          request.progress(line);
          lastLines = [...lastLines, line].slice(-5);
        }
      };
    };
    child.stdout!.on("data", onLine("stdout"));
    child.stderr!.on("data", onLine("stderr"));
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(request.prompt);

    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("close", (code, signal) => resolve({ code, signal })));
    const grace = this.options.stopGraceMs ?? 3000;
    const onAbort = () => void stopGroup(pgid, grace);
    request.signal.addEventListener("abort", onAbort, { once: true });
    const { code, signal } = await exited;
    request.signal.removeEventListener("abort", onAbort);
    // Whatever the agent left running (a server, a watcher) must not outlive it: the push comes next.
    await stopGroup(pgid, request.signal.aborted ? grace : 500);
    if (request.signal.aborted) return { kind: "cancelled" };

    const reported = readReportedResult(env.AGENT_RESULT_FILE);
    const facts = { costUsd: reported.costUsd, turns: reported.turns, summary: reported.summary };
    if (reported.outcome === "budget_exceeded") return { kind: "budget_exceeded", detail: "the agent stopped at its budget", ...facts };
    if (reported.outcome === "turns_exceeded") return { kind: "turns_exceeded", detail: "the agent stopped at its turn limit", ...facts };
    if (code !== 0) {
      const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
      return { kind: "failed", detail: `${program} ${how}${lastLines.length ? `: ${lastLines[lastLines.length - 1]}` : ""}`, ...facts };
    }
    return { kind: "done", ...facts };
  }
}
