/**
 * The local backend: the agent runs as a child process of this machine, in its own process group, with the agent
 * contract's environment and the payload as a file. It reports through the local platform's agent channel
 * (the loopback API), exactly as agents on AWS do.
 *
 * Docker: the agent image may run here when a Docker daemon is present (docs/design.md). This backend does not probe
 * for one or wrap the command in `docker run`; it runs exactly `config.local.command`, so an operator with a
 * daemon sets that command to their own `docker run …` argv (mounting the payload file read-only). The default is
 * the reference agent as a plain node process.
 *
 * The prompt never reaches a shell or an argv: spawn is called without a shell, and the agent reads the payload
 * from the file named in AGENT_PAYLOAD_URL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { LocalConfig, RuntimeConfig } from "../config";
import { checkTaskIdForPath } from "../payload/limits";
import type { TaskRecord } from "../tasks/record";
import type { LocalHandle } from "./handle";
import type { ComputeStrategy, SessionStatus, StartRequest } from "./strategy";

export const AGENT_LOG_FILE = "agent.log";
export const EXIT_FILE = "exit.json";
export const PID_FILE = "pid.json";

/**
 * argv that runs a node entry point given without its extension: through ts-node (transpile-only, as the tests
 * and the CLI run) when this code itself runs from .ts sources, else the compiled .js.
 * ts-node is run as its own bin with the project's tsconfig named explicitly: the agent runs in its run folder,
 * where `-r ts-node/register` would find no tsconfig and compile with ts-node's defaults instead of ours.
 */
export function nodeEntryCommand(entryWithoutExt: string): string[] {
  if (!path.isAbsolute(entryWithoutExt)) throw new RangeError(`entry point '${entryWithoutExt}' must be an absolute path`);
  const ts = `${entryWithoutExt}.ts`;
  const js = `${entryWithoutExt}.js`;
  if (__filename.endsWith(".ts") && existsSync(ts)) {
    const project = nearestTsconfig(path.dirname(ts));
    return [process.execPath, require.resolve("ts-node/dist/bin"), "--transpile-only", ...(project ? ["--project", project] : []), ts];
  }
  if (existsSync(js)) return [process.execPath, js];
  throw new Error(`entry point not found: neither ${ts} nor ${js} exists`);
}

function nearestTsconfig(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    const candidate = path.join(d, "tsconfig.json");
    if (existsSync(candidate)) return candidate;
    if (path.dirname(d) === d) return undefined;
  }
}

/** The reference agent's argv (the local backend's default command). */
export function referenceAgentCommand(): string[] {
  return nodeEntryCommand(path.join(__dirname, "..", "agent", "reference-agent"));
}

/** The agent runner's argv (agent/: clone, coding agent, push, pull request), for local.command. */
export function runnerCommand(): string[] {
  return nodeEntryCommand(path.join(__dirname, "..", "..", "agent", "src", "main"));
}

export interface ExitRecord {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** How a finished child is reported: a signal death counts as exit 128+n, as a shell would report it. */
export function statusOfExit(exit: ExitRecord): SessionStatus {
  if (exit.code !== null) return { state: "EXITED", exitCode: exit.code, raw: `exit ${exit.code}` };
  const signo = exit.signal ? osConstants.signals[exit.signal] : undefined;
  return {
    state: "EXITED",
    exitCode: signo !== undefined ? 128 + signo : undefined,
    reason: `terminated by ${exit.signal ?? "an unknown signal"}`,
    raw: exit.signal ?? "signal",
  };
}

export interface LocalStrategyOptions {
  /** Time between SIGTERM and SIGKILL in stopSession. Default 5000 ms. */
  stopGraceMs?: number;
  /** How often stopSession checks whether the process group is gone. Default 50 ms. */
  stopPollMs?: number;
}

interface Child {
  process: ChildProcess;
  exit?: ExitRecord;
  exited: Promise<ExitRecord>;
}

export class LocalStrategy implements ComputeStrategy<"local"> {
  readonly type = "local" as const;
  /** Children this process spawned, by pid: their exit is known first-hand. */
  private readonly children = new Map<number, Child>();
  private readonly local: LocalConfig;
  private readonly stopGraceMs: number;
  private readonly stopPollMs: number;

  constructor(
    private readonly config: RuntimeConfig,
    options: LocalStrategyOptions = {},
  ) {
    if (!config.local?.workDir) throw new RangeError("the local backend needs local.workDir (a folder for runs)");
    this.local = config.local;
    this.stopGraceMs = options.stopGraceMs ?? 5000;
    this.stopPollMs = options.stopPollMs ?? 50;
  }

  /** argv of the agent process. */
  command(): string[] {
    const cmd = this.local.command ?? referenceAgentCommand();
    if (cmd.length === 0 || !cmd[0]) throw new RangeError("local.command must name a program (argv[0])");
    return cmd;
  }

  /** Exactly the agent contract's variables, the configured extras, and PATH/HOME. Nothing from the task's text. */
  agentEnv(request: StartRequest): Record<string, string> {
    const env: Record<string, string> = {};
    if (process.env.PATH) env.PATH = process.env.PATH;
    if (process.env.HOME) env.HOME = process.env.HOME;
    Object.assign(env, this.local.env ?? {}, {
      TASK_ID: request.task.task_id,
      AGENT_PAYLOAD_URL: request.payloadUrl,
    });
    return env;
  }

  runDirOf(taskId: string): string {
    return path.join(path.resolve(this.local.workDir), checkTaskIdForPath(taskId));
  }

  async startSession(request: StartRequest): Promise<LocalHandle> {
    const taskId = request.task.task_id;
    const runDir = this.runDirOf(taskId);
    mkdirSync(runDir, { recursive: true, mode: 0o700 });

    // Idempotent: a retried start finds the run it already began (alive, or finished with an exit record).
    const previous = readJson<{ task_id: string; pid: number }>(path.join(runDir, PID_FILE));
    if (previous?.task_id === taskId && Number.isInteger(previous.pid)) {
      if (this.children.has(previous.pid) || existsSync(path.join(runDir, EXIT_FILE)) || processRunsTask(previous.pid, taskId)) {
        return { type: "local", pid: previous.pid, runDir };
      }
    }

    const [program, ...args] = this.command();
    const log = openSync(path.join(runDir, AGENT_LOG_FILE), "a", 0o600);
    let child: ChildProcess;
    try {
      child = spawn(program, args, {
        cwd: runDir,
        env: this.agentEnv(request),
        detached: true, // its own process group, so stop reaches everything the agent started
        shell: false,
        stdio: ["ignore", log, log],
      });
    } finally {
      closeSync(log);
    }
    if (child.pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once("error", resolve));
      throw new Error(`cannot start the local agent command '${program}': ${err.message}`);
    }
    const pid = child.pid;
    rmSync(path.join(runDir, EXIT_FILE), { force: true });
    writeAtomic(path.join(runDir, PID_FILE), { task_id: taskId, pid, started_at: new Date().toISOString() });

    const entry: Child = {
      process: child,
      exited: new Promise<ExitRecord>((resolve) => {
        child.once("exit", (code, signal) => {
          entry.exit = { code, signal };
          // Any other process (a CLI invocation, a recovering orchestrator) learns the outcome from this file.
          // A throw here would be uncaught and end the whole platform process; if the run folder was removed
          // (workDir cleaned up) this process still knows the exit, and others rightly see the run as LOST.
          try {
            writeAtomic(path.join(runDir, EXIT_FILE), entry.exit);
          } catch {
            // nothing to record into
          }
          resolve(entry.exit);
        });
      }),
    };
    this.children.set(pid, entry);
    // The platform process may end before the agent does; the agent keeps running on its own.
    child.unref();
    return { type: "local", pid, runDir };
  }

  /** The run's agent process, by the pid file its start wrote, while it still runs this task. */
  async findUnrecordedSessions(task: TaskRecord): Promise<LocalHandle[]> {
    const runDir = this.runDirOf(task.task_id);
    const started = readJson<{ task_id: string; pid: number }>(path.join(runDir, PID_FILE));
    if (started?.task_id !== task.task_id || !Number.isInteger(started.pid) || existsSync(path.join(runDir, EXIT_FILE))) return [];
    const mine = this.children.get(started.pid);
    const runs = mine ? !mine.exit : processRunsTask(started.pid, task.task_id);
    return runs ? [{ type: "local", pid: started.pid, runDir }] : [];
  }

  async pollSession(handle: LocalHandle): Promise<SessionStatus> {
    const mine = this.children.get(handle.pid);
    if (mine) return mine.exit ? statusOfExit(mine.exit) : { state: "RUNNING", raw: `pid ${handle.pid}` };
    const taskId = path.basename(handle.runDir);
    const exitFile = path.join(handle.runDir, EXIT_FILE);
    const recorded = readJson<ExitRecord>(exitFile);
    if (recorded) return statusOfExit(recorded);
    if (processRunsTask(handle.pid, taskId)) return { state: "RUNNING", raw: `pid ${handle.pid}` };
    // It may have exited between the two reads.
    const late = readJson<ExitRecord>(exitFile);
    if (late) return statusOfExit(late);
    return {
      state: "LOST",
      reason: `process ${handle.pid} is gone and left no exit status (the process that started it ended first)`,
      raw: "gone",
    };
  }

  async stopSession(handle: LocalHandle, _reason: string): Promise<void> {
    const mine = this.children.get(handle.pid);
    if (!mine && pidRecycled(handle.pid, path.basename(handle.runDir))) return;
    if (!signalGroup(handle.pid, "SIGTERM")) return;
    if (!(await this.waitGone(handle.pid, mine, this.stopGraceMs))) {
      signalGroup(handle.pid, "SIGKILL");
      await this.waitGone(handle.pid, mine, Math.max(1000, this.stopPollMs * 20));
    }
  }

  /** True once no process of the group is left (and our own child has been reaped). */
  private async waitGone(pid: number, mine: Child | undefined, withinMs: number): Promise<boolean> {
    const until = Date.now() + withinMs;
    for (;;) {
      const leaderDone = !mine || mine.exit !== undefined;
      if (leaderDone && !groupAlive(pid)) return true;
      if (Date.now() >= until) return false;
      await sleep(this.stopPollMs);
    }
  }
}

/** Send a signal to a process group; false if the group no longer exists. */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Is `pid` alive and running this task? On Linux the process's environment must carry TASK_ID=<taskId>, which
 * guards against a recycled pid; elsewhere, signal 0 is the only test available.
 */
export function processRunsTask(pid: number, taskId: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (!existsSync("/proc/self/environ")) return true;
  try {
    return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`TASK_ID=${taskId}`);
  } catch {
    return false;
  }
}

/** The pid is alive but is not this task's agent (Linux only): its group is someone else's. */
function pidRecycled(pid: number, taskId: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !processRunsTask(pid, taskId);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

function writeAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  renameSync(tmp, file);
}

