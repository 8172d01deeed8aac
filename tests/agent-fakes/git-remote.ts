/**
 * A local bare git repository standing in for https://github.com/<owner>/<repo>: seeded with one commit on `main`,
 * reached through git's own url.<base>.insteadOf rewrite (GIT_CONFIG_* variables), as an operator could point the
 * runner at a mirror.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

export interface BareRemote {
  dir: string;
  bare: string;
  /** GIT_CONFIG_* variables mapping https://github.com/ to the bare repository's folder. */
  gitEnv: Record<string, string>;
  git(...args: string[]): string;
}

const ID = { GIT_AUTHOR_NAME: "seed", GIT_AUTHOR_EMAIL: "seed@example.invalid", GIT_COMMITTER_NAME: "seed", GIT_COMMITTER_EMAIL: "seed@example.invalid" };

export function createBareRemote(owner = "acme", repo = "app"): BareRemote {
  const dir = mkdtempSync(path.join(tmpdir(), "agent-remote-"));
  const bare = path.join(dir, "github.com", owner, repo);
  const env = { ...process.env, ...ID };
  execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare], { env });
  const seed = path.join(dir, "seed");
  execFileSync("git", ["init", "--quiet", "--initial-branch=main", seed], { env });
  writeFileSync(path.join(seed, "README.md"), "# app\n");
  execFileSync("git", ["-C", seed, "add", "."], { env });
  execFileSync("git", ["-C", seed, "commit", "--quiet", "-m", "seed"], { env });
  execFileSync("git", ["-C", seed, "push", "--quiet", bare, "main"], { env });
  return {
    dir,
    bare,
    gitEnv: { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: `url.${path.join(dir, "github.com")}/.insteadOf`, GIT_CONFIG_VALUE_0: "https://github.com/" },
    git: (...args: string[]) => execFileSync("git", ["--git-dir", bare, ...args], { env, encoding: "utf8" }),
  };
}
