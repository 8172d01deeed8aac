/**
 * Git for the runner: clone, branch, commit, push. The repository token is handed to git by a credential helper
 * that reads a private file (mode 0600 in a 0700 folder outside the work tree) which exists only while a clone or a
 * push runs, so it is never in an argv, an environment, a remote URL in .git/config, or the agent's reach while the
 * agent runs. After the agent ran, the runner restores the clone's own git config and disables hooks and fsmonitor
 * for its own git commands: a hook or config the agent wrote must not run while the token is on disk.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { NETWORK_ENV_KEYS, BASE_ENV_KEYS, pickEnv, run, type RunResult } from "./proc";

export interface GitIdentity {
  name: string;
  email: string;
}

export interface GitCreds {
  username: string;
  token: string;
}

export class GitError extends Error {
  constructor(
    readonly step: string,
    readonly result: RunResult,
    detail: string,
  ) {
    super(`${step}: ${detail}`);
    this.name = "GitError";
  }
}

/** The last meaningful lines of git's stderr, for an operator to act on. */
export function gitProblem(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^(hint:|Cloning into|remote: (Counting|Compressing|Enumerating|Total))/.test(l));
  return lines.slice(-3).join(" / ").slice(0, 600) || "no message";
}

/** Git settings that keep a run non-interactive and ignore whatever the agent left in the clone. */
const HARDENING = [
  "-c", "core.hooksPath=/dev/null",
  "-c", "core.fsmonitor=false",
  "-c", "protocol.ext.allow=never",
  "-c", "credential.interactive=never",
];

export class Git {
  private readonly secretDir: string;
  private readonly helper: string;
  private readonly credFile: string;
  private pristineConfig?: string;

  constructor(
    readonly workTree: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly identity: GitIdentity,
  ) {
    this.secretDir = mkdtempSync(path.join(tmpdir(), "agent-git-"));
    chmodSync(this.secretDir, 0o700);
    this.credFile = path.join(this.secretDir, "credential");
    this.helper = path.join(this.secretDir, "helper.sh");
    // git runs a helper path as `<path> get|store|erase`; only `get` is answered, from the file while it exists.
    writeFileSync(this.helper, `#!/bin/sh\ntest "$1" = get || exit 0\ntest -f '${this.credFile}' && cat '${this.credFile}'\nexit 0\n`, { mode: 0o700 });
  }

  /** Environment of git children: what git needs, the operator's GIT_CONFIG_* (e.g. url rewrites), nothing else. */
  gitEnv(): Record<string, string> {
    const env: Record<string, string> = { ...pickEnv(this.env, [...BASE_ENV_KEYS, ...NETWORK_ENV_KEYS]) };
    for (const [k, v] of Object.entries(this.env)) if (/^GIT_CONFIG_(COUNT|KEY_\d+|VALUE_\d+)$/.test(k) && v !== undefined) env[k] = v;
    Object.assign(env, {
      GIT_TERMINAL_PROMPT: "0",
      GIT_ASKPASS: "/bin/false",
      GIT_AUTHOR_NAME: this.identity.name,
      GIT_AUTHOR_EMAIL: this.identity.email,
      GIT_COMMITTER_NAME: this.identity.name,
      GIT_COMMITTER_EMAIL: this.identity.email,
    });
    return env;
  }

  private async git(step: string, args: string[], options: { cwd?: string; input?: string; creds?: boolean } = {}): Promise<RunResult> {
    const helperArgs = options.creds ? ["-c", "credential.helper=", "-c", `credential.helper=${this.helper}`] : ["-c", "credential.helper="];
    const result = await run(["git", ...HARDENING, ...helperArgs, ...args], { cwd: options.cwd ?? this.workTree, env: this.gitEnv(), input: options.input });
    if (result.code !== 0) throw new GitError(step, result, gitProblem(result.stderr));
    return result;
  }

  /** Run `fn` with the credential file present; it is removed afterwards whatever happens. */
  private async withCredentials<T>(creds: GitCreds | undefined, fn: () => Promise<T>): Promise<T> {
    if (!creds) return fn();
    writeFileSync(this.credFile, `username=${creds.username}\npassword=${creds.token}\n`, { mode: 0o600 });
    try {
      return await fn();
    } finally {
      rmSync(this.credFile, { force: true });
    }
  }

  /** Clone and return the default branch (what the remote's HEAD names). */
  async clone(url: string, creds: GitCreds | undefined): Promise<string> {
    await this.withCredentials(creds, () =>
      this.git("clone", ["clone", "--no-tags", "--", url, this.workTree], { cwd: path.dirname(this.workTree), creds: true }),
    );
    this.pristineConfig = readFileSync(path.join(this.workTree, ".git", "config"), "utf8");
    const head = await this.git("clone", ["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"]).catch(() => undefined);
    const def = head?.stdout.trim().replace(/^origin\//, "");
    if (!def) {
      const heads = await this.git("clone", ["branch", "-r"]);
      if (!heads.stdout.trim()) throw new GitError("clone", heads, "the repository is empty (no branch to start from)");
      throw new GitError("clone", heads, "the remote names no default branch (origin/HEAD)");
    }
    return def;
  }

  async remoteBranchExists(branch: string): Promise<boolean> {
    const r = await run(["git", "rev-parse", "--verify", "--quiet", `refs/remotes/origin/${branch}`], { cwd: this.workTree, env: this.gitEnv() });
    return r.code === 0;
  }

  /** Check out the work branch: the remote's if it exists (continue its work), else new from `base`. Returns the start commit. */
  async checkoutWorkBranch(branch: string, base: string): Promise<string> {
    const from = (await this.remoteBranchExists(branch)) ? `origin/${branch}` : `origin/${base}`;
    await this.git("checkout", ["checkout", "--quiet", "--no-track", "-B", branch, from]);
    return (await this.git("checkout", ["rev-parse", "HEAD"])).stdout.trim();
  }

  /**
   * Put back the clone's own .git/config and leave no hook to run: whatever the agent wrote there (a credential
   * helper, a url rewrite, a hook) is gone before the token is on disk again.
   */
  restoreConfig(): void {
    if (this.pristineConfig === undefined) return;
    writeFileSync(path.join(this.workTree, ".git", "config"), this.pristineConfig, { mode: 0o644 });
    rmSync(path.join(this.workTree, ".git", "hooks"), { recursive: true, force: true });
  }

  /** Commit everything the agent changed (if anything is uncommitted); the message goes through stdin. */
  async commitAll(message: string): Promise<boolean> {
    await this.git("commit", ["add", "--all"]);
    const staged = await run(["git", ...HARDENING, "diff", "--cached", "--quiet"], { cwd: this.workTree, env: this.gitEnv() });
    if (staged.code === 0) return false;
    await this.git("commit", ["commit", "--quiet", "--no-verify", "--file=-"], { input: message });
    return true;
  }

  async head(): Promise<string> {
    return (await this.git("rev-parse", ["rev-parse", "HEAD"])).stdout.trim();
  }

  async diffStat(from: string): Promise<string> {
    return (await this.git("diff", ["diff", "--stat", "--no-color", from, "HEAD"])).stdout.trimEnd();
  }

  async changedFiles(from: string): Promise<string[]> {
    return (await this.git("diff", ["diff", "--name-only", from, "HEAD"])).stdout.split("\n").filter(Boolean);
  }

  /** Push HEAD to the work branch of `url` (named explicitly, so a remote the agent re-pointed is not used). */
  async push(url: string, branch: string, creds: GitCreds | undefined): Promise<void> {
    await this.withCredentials(creds, () =>
      this.git("push", ["push", "--porcelain", "--no-verify", "--", url, `HEAD:refs/heads/${branch}`], { creds: true }),
    );
  }

  /** Remove the private folder (helper and any credential left by a crash). */
  dispose(): void {
    rmSync(this.secretDir, { recursive: true, force: true });
  }
}
