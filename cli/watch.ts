/**
 * `watch`: follow one task to its end. Each poll reads the task and its new events; events print as lines as
 * they arrive, and a status line (status, elapsed time, heartbeat age) is redrawn in place on a terminal or
 * printed on each change otherwise. The formatting is pure so it is tested without a clock.
 */
import type { ApiClient } from "./client";

const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

export interface TaskView {
  task_id: string;
  status: string;
  backend?: string;
  fleet?: string;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  agent_heartbeat_at?: string;
  error_message?: string;
  pr_url?: string;
  exit_code?: number;
  cost_usd?: number;
  [key: string]: unknown;
}

export interface EventView {
  event_id: string;
  type: string;
  message: string;
  status?: string;
  at: string;
}

export function isTerminalStatus(status: string): boolean {
  return TERMINAL.includes(status);
}

/** 75 → "1m15s"; 3725 → "1h02m05s". */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m${String(sec).padStart(2, "0")}s`;
  if (m) return `${m}m${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

/** e.g. "RUNNING  elapsed 1m05s  heartbeat 3s ago  (local)". */
export function formatStatusLine(task: TaskView, now: Date): string {
  const end = task.finished_at ? Date.parse(task.finished_at) : now.getTime();
  const parts = [task.status.padEnd(9), `elapsed ${formatDuration((end - Date.parse(task.created_at)) / 1000)}`];
  if (task.agent_heartbeat_at && !isTerminalStatus(task.status)) {
    parts.push(`heartbeat ${formatDuration((now.getTime() - Date.parse(task.agent_heartbeat_at)) / 1000)} ago`);
  } else if (task.status === "STARTING" || task.status === "RUNNING") {
    parts.push("no heartbeat yet");
  }
  if (task.backend) parts.push(`(${task.backend}${task.fleet ? `/${task.fleet}` : ""})`);
  return parts.join("  ");
}

/** e.g. "12:00:03  status   RUNNING: agent started". */
export function formatEvent(event: EventView): string {
  const time = event.at.slice(11, 19);
  return `${time}  ${event.type.padEnd(9)}${event.message}`;
}

/** The closing lines once a task is terminal. */
export function formatOutcome(task: TaskView): string {
  const bits = [`task ${task.task_id} ${task.status}`];
  if (task.exit_code !== undefined) bits.push(`exit code ${task.exit_code}`);
  if (task.pr_url) bits.push(`PR ${task.pr_url}`);
  if (task.cost_usd !== undefined) bits.push(`cost $${task.cost_usd}`);
  if (task.error_message) bits.push(`error: ${task.error_message}`);
  return bits.join("; ");
}

export interface WatchOptions {
  intervalMs?: number;
  write?: (text: string) => void;
  /** Redraw the status line in place (a terminal) rather than printing it on each change. */
  tty?: boolean;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** Give up after this long (ms) and return the last seen state. */
  timeoutMs?: number;
}

export async function watchTask(client: ApiClient, taskId: string, options: WatchOptions = {}): Promise<TaskView> {
  const write = options.write ?? ((t: string) => process.stdout.write(t));
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const interval = options.intervalMs ?? 1000;
  const deadline = options.timeoutMs !== undefined ? now().getTime() + options.timeoutMs : Infinity;
  const seen = new Set<string>();
  let lastStatus = "";
  let lastHeartbeat: string | undefined;
  let drawn = false;
  const id = encodeURIComponent(taskId);
  for (;;) {
    const { task } = await client.request<{ task: TaskView }>("GET", `/tasks/${id}`);
    const fresh: EventView[] = [];
    let token: string | undefined;
    do {
      const page = await client.request<{ events: EventView[]; next_token?: string }>("GET", `/tasks/${id}/events`, {
        query: { limit: 100, next_token: token },
      });
      for (const e of page.events) if (!seen.has(e.event_id)) fresh.push(e);
      token = page.next_token;
    } while (token);
    for (const e of fresh) seen.add(e.event_id);

    const line = formatStatusLine(task, now());
    if (options.tty) {
      // Events go above the status line: clear it, print them, redraw it.
      if (drawn) write("\r\x1b[2K");
      for (const e of fresh) write(`${formatEvent(e)}\n`);
      write(line);
      drawn = true;
    } else {
      for (const e of fresh) write(`${formatEvent(e)}\n`);
      // Without a terminal to redraw on, a line per status change and per new heartbeat.
      if (task.status !== lastStatus || task.agent_heartbeat_at !== lastHeartbeat) write(`${line}\n`);
    }
    lastStatus = task.status;
    lastHeartbeat = task.agent_heartbeat_at;
    if (isTerminalStatus(task.status) || now().getTime() >= deadline) {
      if (options.tty) write("\n");
      write(`${formatOutcome(task)}\n`);
      return task;
    }
    await sleep(interval);
  }
}
