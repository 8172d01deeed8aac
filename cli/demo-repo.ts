/**
 * A local git repository standing in for a GitHub repository, for the demo (and the runner's tests): a bare
 * repository under `<dir>/github.com/<owner>/<repo>` seeded with one commit on `main`, reached by the runner's
 * ordinary https URL through git's own `url.<base>.insteadOf` rewrite (GIT_CONFIG_* variables). No network.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";

export interface LocalRemote {
  /** The folder standing in for https://github.com/ */
  root: string;
  bare: string;
  repoUrl: string;
  /** GIT_CONFIG_* variables that send https://github.com/ to `root`. */
  gitEnv: Record<string, string>;
  /** git against the bare repository. */
  git(...args: string[]): string;
}

const SEED_IDENTITY = { GIT_AUTHOR_NAME: "seed", GIT_AUTHOR_EMAIL: "seed@example.invalid", GIT_COMMITTER_NAME: "seed", GIT_COMMITTER_EMAIL: "seed@example.invalid" };

export function createLocalRemote(dir: string, owner: string, repo: string, files: Record<string, string> = { "README.md": `# ${repo}\n` }): LocalRemote {
  const root = path.join(dir, "github.com");
  const bare = path.join(root, owner, repo);
  rmSync(bare, { recursive: true, force: true });
  mkdirSync(path.dirname(bare), { recursive: true });
  const env = { PATH: process.env.PATH ?? "", HOME: dir, ...SEED_IDENTITY };
  execFileSync("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare], { env });
  const seed = mkdtempSync(path.join(dir, "seed-"));
  try {
    execFileSync("git", ["init", "--quiet", "--initial-branch=main", seed], { env });
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(seed, name)), { recursive: true });
      writeFileSync(path.join(seed, name), text);
    }
    execFileSync("git", ["-C", seed, "add", "."], { env });
    execFileSync("git", ["-C", seed, "commit", "--quiet", "-m", "Initial commit"], { env });
    execFileSync("git", ["-C", seed, "push", "--quiet", bare, "main"], { env });
  } finally {
    rmSync(seed, { recursive: true, force: true });
  }
  return {
    root,
    bare,
    repoUrl: `https://github.com/${owner}/${repo}`,
    gitEnv: { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: `url.${root}/.insteadOf`, GIT_CONFIG_VALUE_0: "https://github.com/" },
    git: (...args: string[]) => execFileSync("git", ["--git-dir", bare, ...args], { env, encoding: "utf8" }),
  };
}
