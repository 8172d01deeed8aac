/**
 * Drives a batch of short tasks through a local platform started in this process and reports, per task, the
 * times the record and event log hold: submit (created_at), agent process started (started_at), the agent's
 * terminal report (finished_at), finalized (the final event). Used by the throughput bench (in a child process,
 * so that its peak memory is the platform's alone) and by the latency bench.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ApiClient } from "../../cli/client";
import { startLocalPlatform } from "../../runtime/local/platform";
import type { Runtime } from "../../runtime/runtime";
import { isTerminal } from "../../runtime/tasks/status";

export interface TaskTiming {
  taskId: string;
  status: string;
  /** Why it did not complete, if it did not. */
  error?: string;
  submitToStartedMs: number;
  reportToFinalizedMs: number;
  finalizedAtMs: number;
}

export interface BatchResult {
  tasks: TaskTiming[];
  /** From the first submit to the last task finalized. */
  elapsedMs: number;
}

export interface BatchOptions {
  count: number;
  agentCommand: string[];
  pollSeconds: number;
  /** Seconds of work of task i. */
  workSeconds(i: number): number;
}

/** Each task's times, from its record and its final event. */
export async function collectTimings(runtime: Runtime, ids: readonly string[]): Promise<TaskTiming[]> {
  const tasks: TaskTiming[] = [];
  for (const id of ids) {
    const record = await runtime.tasks.get(id);
    if (!record || !isTerminal(record.status)) throw new Error(`bench task ${id} is ${record?.status ?? "missing"} after its orchestration ended`);
    const events = await runtime.events.list(id, { limit: 200 });
    const final = events.items.find((e) => e.data?.final === true);
    if (!final || !record.started_at || !record.finished_at) throw new Error(`bench task ${id} has no start, finish or final event`);
    const finalizedAt = Date.parse(final.at);
    tasks.push({
      taskId: id,
      status: record.status,
      ...(record.error_message ? { error: record.error_message } : {}),
      submitToStartedMs: Date.parse(record.started_at) - Date.parse(record.created_at),
      reportToFinalizedMs: finalizedAt - Date.parse(record.finished_at),
      finalizedAtMs: finalizedAt,
    });
  }
  return tasks;
}

export async function runLocalBatch(options: BatchOptions): Promise<BatchResult> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-local-"));
  const platform = await startLocalPlatform({
    stateDir,
    agentCommand: options.agentCommand,
    pollSeconds: options.pollSeconds,
    limits: { maxConcurrentPerUser: options.count, pollIntervalSeconds: options.pollSeconds },
  });
  try {
    const api = new ApiClient({ url: platform.url });
    const started = Date.now();
    const ids = await Promise.all(
      Array.from({ length: options.count }, async (_, i) => {
        const { task } = await api.request<{ task: { task_id: string } }>("POST", "/tasks", {
          body: { repo_url: "https://github.com/acme/app", prompt: `bench task ${i}`, backend: "local", context: { work_seconds: options.workSeconds(i) } },
        });
        return task.task_id;
      }),
    );
    await platform.dispatcher.idle();
    const tasks = await collectTimings(platform.runtime, ids);
    return { tasks, elapsedMs: Math.max(...tasks.map((t) => t.finalizedAtMs)) - started };
  } finally {
    await platform.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Child-process entry of the throughput bench: one batch, then this process's peak RSS, as JSON on stdout. */
if (require.main === module) {
  const [count, agent] = [Number(process.argv[2]), process.argv.slice(3)];
  runLocalBatch({ count, agentCommand: agent, pollSeconds: 1, workSeconds: () => 1 }).then(
    (result) => {
      process.stdout.write(`${JSON.stringify({ ...result, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
