/**
 * Child processes for the runner: argv only (never a shell), an explicit environment, and a whole process group to
 * stop. Output is captured with a bound so a chatty child cannot grow the runner's memory without limit.
 */
import { spawn, type SpawnOptions } from "node:child_process";

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env: Record<string, string>;
  /** Written to the child's stdin, then stdin is closed. */
  input?: string;
  /** Largest amount of stdout/stderr kept, each (the tail is kept). Default 256 KiB. */
  maxOutput?: number;
}

/** Run to completion; never throws for a non-zero exit (the caller decides what the code means). */
export function run(argv: string[], options: RunOptions): Promise<RunResult> {
  const [program, ...args] = argv;
  const max = options.maxOutput ?? 256 * 1024;
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = { cwd: options.cwd, env: options.env, shell: false, stdio: ["pipe", "pipe", "pipe"] };
    const child = spawn(program, args, spawnOptions);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout = (stdout + d.toString("utf8")).slice(-max)));
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString("utf8")).slice(-max)));
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin!.on("error", () => undefined); // a child that exits without reading its stdin is not our error
    child.stdin!.end(options.input ?? "");
  });
}

/** Signal every process of a group; false if the group is gone. (runtime/compute/local.ts has the same two helpers; agent/
 * is the image's whole build context and imports nothing from runtime/.) */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Stop a process group: SIGTERM, then SIGKILL after `graceMs` if anything is left. Resolves once the group is
 * gone (or after the SIGKILL has had a moment).
 */
export async function stopGroup(pgid: number, graceMs: number, pollMs = 50): Promise<void> {
  if (!signalGroup(pgid, "SIGTERM")) return;
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, pollMs));
  if (groupAlive(pgid)) signalGroup(pgid, "SIGKILL");
  const hard = Date.now() + 2000;
  while (groupAlive(pgid) && Date.now() < hard) await new Promise((r) => setTimeout(r, pollMs));
}

/** Variables a child may inherit from the runner: what programs need to run, never a credential of ours. */
export const BASE_ENV_KEYS = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "SHELL", "TERM"] as const;

/** Network settings children need to reach hosts (proxies, private CAs). */
export const NETWORK_ENV_KEYS = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO"] as const;

export function pickEnv(source: NodeJS.ProcessEnv, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (source[k] !== undefined) out[k] = source[k]!;
  return out;
}
