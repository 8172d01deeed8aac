/**
 * `agent-compute`: submit, follow and cancel agent tasks on a deployed stack (SigV4) or the local platform,
 * serve the local platform, and run the demo. Every API error ends as one line on stderr and a non-zero exit.
 */
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { LIST_LIMIT, MAX_BUDGET_USD_BOUNDS, MAX_TURNS_BOUNDS } from "../runtime/limits";
import { ApiClient, ApiError, resolveTarget } from "./client";
import { formatEvent, formatStatusLine, watchTask, type EventView, type TaskView } from "./watch";

/** Exit codes: 0 completed / ok, 1 the task ended otherwise, 2 a usage or API error. */
export const EXIT = { ok: 0, taskNotCompleted: 1, error: 2 } as const;

interface GlobalOptions {
  apiUrl?: string;
  region?: string;
  json?: boolean;
}

function intArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function numArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

export function buildProgram(io: { out: (t: string) => void; err: (t: string) => void; isTTY: boolean } = defaultIo()): Command {
  const program = new Command();
  program
    .name("agent-compute")
    .description("Run background coding agents on AgentCore, ECS Fargate, an EC2 fleet, or locally.")
    .option("--api-url <url>", "task API of a deployed stack (the stack's apiUrl output); env AGENT_COMPUTE_API_URL; default: the local platform")
    .option("--region <region>", "AWS region for SigV4 signing (default: AWS_REGION, or the one in the API URL)")
    .option("--json", "print raw JSON answers")
    .showHelpAfterError("(agent-compute <command> --help for usage)")
    // Usage errors come back as exceptions (main() picks the exit code); set before the commands inherit it.
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  const client = async (): Promise<ApiClient> => {
    const g = program.opts<GlobalOptions>();
    return new ApiClient(await resolveTarget({ apiUrl: g.apiUrl, region: g.region }));
  };
  const asJson = () => Boolean(program.opts<GlobalOptions>().json);
  const print = (value: unknown) => io.out(`${JSON.stringify(value, null, 2)}\n`);

  program
    .command("submit")
    .description("submit a task; prints its id")
    .argument("<repo>", "repository URL (https://host/owner/repo)")
    .argument("[prompt]", "what the agent should do (or --prompt-file)")
    .option("--prompt-file <path>", "read the prompt from a file ('-' for stdin)")
    .addOption(new Option("--backend <backend>", "compute backend").choices(["agentcore", "ecs", "ec2", "local"]))
    .option("--fleet <name>", "named EC2 fleet (backend ec2)")
    .option("--branch <name>", "branch for the agent's work")
    .option("--issue <number>", "issue number", intArg("--issue", 1, 2 ** 31 - 1))
    .option("--model <id>", "model id")
    .option(
      "--max-turns <n>",
      `turn limit (${MAX_TURNS_BOUNDS.min}–${MAX_TURNS_BOUNDS.max})`,
      intArg("--max-turns", MAX_TURNS_BOUNDS.min, MAX_TURNS_BOUNDS.max),
    )
    .option("--max-budget-usd <usd>", `budget limit in USD (${MAX_BUDGET_USD_BOUNDS.min}–${MAX_BUDGET_USD_BOUNDS.max})`, numArg("--max-budget-usd"))
    .option("--context <json>", "extra context for the agent, as a JSON object")
    .option("--idempotency-key <key>", "resubmitting with the same key returns the same task")
    .option("--watch", "follow the task until it ends (exit code as for watch)")
    .action(async (repo: string, prompt: string | undefined, o) => {
      if (prompt !== undefined && o.promptFile) throw new ApiError("give the prompt either as an argument or with --prompt-file, not both");
      const text = o.promptFile ? readFileSync(o.promptFile === "-" ? 0 : o.promptFile, "utf8") : prompt;
      if (text === undefined) throw new ApiError("a prompt is required: pass it as the second argument or with --prompt-file");
      let context: unknown;
      if (o.context !== undefined) {
        try {
          context = JSON.parse(o.context);
        } catch {
          throw new ApiError("--context must be a JSON object, e.g. '{\"work_seconds\": 5}'");
        }
      }
      const body = {
        repo_url: repo,
        prompt: text,
        backend: o.backend,
        fleet: o.fleet,
        branch: o.branch,
        issue_number: o.issue,
        model: o.model,
        max_turns: o.maxTurns,
        max_budget_usd: o.maxBudgetUsd,
        context,
      };
      const api = await client();
      const res = await api.request<{ task: TaskView }>("POST", "/tasks", {
        body: JSON.parse(JSON.stringify(body)),
        headers: o.idempotencyKey ? { "Idempotency-Key": o.idempotencyKey } : {},
      });
      if (asJson()) print(res);
      else io.out(`${res.task.task_id}\n`);
      if (o.watch) return watchExit(await watchTask(api, res.task.task_id, { write: io.out, tty: io.isTTY }));
    });

  program
    .command("status")
    .description("show one task")
    .argument("<task-id>")
    .action(async (id: string) => {
      const { task } = await (await client()).request<{ task: TaskView }>("GET", `/tasks/${encodeURIComponent(id)}`);
      if (asJson()) return print({ task });
      io.out(`${task.task_id}  ${formatStatusLine(task, new Date())}\n`);
      io.out(`  repo ${task.repo_url}\n  created ${task.created_at}${task.finished_at ? `, finished ${task.finished_at}` : ""}\n`);
      if (task.error_message) io.out(`  error: ${task.error_message}\n`);
      if (task.pr_url) io.out(`  PR ${task.pr_url}\n`);
    });

  program
    .command("watch")
    .description("follow a task until it ends; exit 0 if it COMPLETED, 1 otherwise")
    .argument("<task-id>")
    .option("--interval <seconds>", "poll interval", numArg("--interval"), 2)
    .action(async (id: string, o: { interval: number }) => {
      const task = await watchTask(await client(), id, { intervalMs: Math.max(0.2, o.interval) * 1000, write: io.out, tty: io.isTTY });
      return watchExit(task);
    });

  program
    .command("cancel")
    .description("cancel a task and stop its compute")
    .argument("<task-id>")
    .option("--reason <text>", "why (kept in the task's events)")
    .action(async (id: string, o: { reason?: string }) => {
      const res = await (await client()).request<{ task: TaskView }>("POST", `/tasks/${encodeURIComponent(id)}/cancel`, {
        body: o.reason ? { reason: o.reason } : {},
      });
      if (asJson()) return print(res);
      io.out(`${res.task.task_id} ${res.task.status}\n`);
    });

  program
    .command("list")
    .description("list your tasks, newest first")
    .addOption(new Option("--status <status>", "only tasks in this status").choices(["SUBMITTED", "QUEUED", "STARTING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]))
    .option("--limit <n>", `tasks per page (1–${LIST_LIMIT.max})`, intArg("--limit", 1, LIST_LIMIT.max), LIST_LIMIT.default)
    .option("--next-token <token>", "continue from a previous page")
    .action(async (o: { status?: string; limit: number; nextToken?: string }) => {
      const res = await (await client()).request<{ tasks: TaskView[]; next_token?: string }>("GET", "/tasks", {
        query: { status: o.status, limit: o.limit, next_token: o.nextToken },
      });
      if (asJson()) return print(res);
      if (!res.tasks.length) io.out("no tasks\n");
      for (const t of res.tasks) io.out(`${t.task_id}  ${t.status.padEnd(9)}  ${t.created_at}  ${t.repo_url}\n`);
      if (res.next_token) io.out(`more: --next-token ${res.next_token}\n`);
    });

  program
    .command("events")
    .description("show a task's events, oldest first")
    .argument("<task-id>")
    .action(async (id: string) => {
      const api = await client();
      const all: EventView[] = [];
      let token: string | undefined;
      do {
        const page = await api.request<{ events: EventView[]; next_token?: string }>("GET", `/tasks/${encodeURIComponent(id)}/events`, {
          query: { limit: 100, next_token: token },
        });
        all.push(...page.events);
        token = page.next_token;
      } while (token);
      if (asJson()) return print({ events: all });
      for (const e of all) io.out(`${formatEvent(e)}\n`);
    });

  program
    .command("local")
    .description("serve the local platform (API on 127.0.0.1, orchestrator, local backend, embedded store) until Ctrl-C")
    .option("--port <port>", "port (0 = any free port)", intArg("--port", 0, 65535), 8787)
    .action(async (o: { port: number }) => {
      const { serveLocal } = await import("./local");
      await serveLocal({ port: o.port, out: io.out });
    });

  program
    .command("demo")
    .description("start the local platform, let the agent runner change a local git repository (a branch with a commit), print its diff stat, and stop")
    .addOption(new Option("--driver <driver>", "the coding agent: the scripted stand-in, or Claude Code on Bedrock (your AWS credentials)").choices(["scripted", "claude"]).default("scripted"))
    .option("--model <id>", "Bedrock model or inference profile for --driver claude")
    .action(async (o: { driver: "scripted" | "claude"; model?: string }) => {
      const { runDemo } = await import("./demo");
      const task = await runDemo({ driver: o.driver, model: o.model, out: io.out, tty: io.isTTY });
      return watchExit(task);
    });

  return program;
}

function watchExit(task: TaskView): void {
  process.exitCode = task.status === "COMPLETED" ? EXIT.ok : EXIT.taskNotCompleted;
}

function defaultIo() {
  return {
    out: (t: string) => void process.stdout.write(t),
    err: (t: string) => void process.stderr.write(t),
    isTTY: Boolean(process.stdout.isTTY),
  };
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === "string" && e.code.startsWith("commander.")) {
      // commander already printed the usage error; help and version exit 0.
      process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.error;
      return;
    }
    process.stderr.write(`agent-compute: ${e.message ?? String(err)}\n`);
    process.exitCode = EXIT.error;
  }
}

