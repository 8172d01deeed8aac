/**
 * The runner's own settings: from the environment the operator gives the image (or the local backend's config),
 * never from the task. The task chooses the repository, prompt, model and limits; the operator chooses the agent.
 */
import * as path from "node:path";
import { ClaudeDriver } from "./drivers/claude";
import { CommandDriver, parseCommand } from "./drivers/command";
import { DRIVER_NAMES, type Driver, type DriverName } from "./drivers/driver";
import type { RunnerSettings } from "./runner";

export const DEFAULT_HEARTBEAT_SECONDS = 30;
export const MAX_HEARTBEAT_SECONDS = 45;

/**
 * | variable | meaning | default |
 * | AGENT_DRIVER | claude or command | claude |
 * | AGENT_COMMAND | command driver argv, JSON array | (required for command) |
 * | AGENT_COMMAND_ENV | comma-separated variable names the command agent may see | none |
 * | AGENT_WORK_DIR | where the repository is cloned | the current directory |
 * | AGENT_HEARTBEAT_SECONDS | (0, 45] | 30 |
 * | AGENT_PULL_REQUESTS | on / off | on |
 * | GITHUB_API_URL | GitHub (Enterprise) REST API | https://api.github.com |
 * | AGENT_GIT_AUTHOR_NAME / AGENT_GIT_AUTHOR_EMAIL | commit identity | agent-compute / agent@agent-compute.invalid |
 */
export function readSettings(env: NodeJS.ProcessEnv, cwd = process.cwd()): RunnerSettings {
  const problems: string[] = [];
  const driverName = (env.AGENT_DRIVER || "claude") as DriverName;
  if (!DRIVER_NAMES.includes(driverName)) problems.push(`AGENT_DRIVER must be one of ${DRIVER_NAMES.join(", ")}, got '${env.AGENT_DRIVER}'`);
  const beat = env.AGENT_HEARTBEAT_SECONDS ? Number(env.AGENT_HEARTBEAT_SECONDS) : DEFAULT_HEARTBEAT_SECONDS;
  if (!(beat > 0 && beat <= MAX_HEARTBEAT_SECONDS)) problems.push(`AGENT_HEARTBEAT_SECONDS must be in (0, ${MAX_HEARTBEAT_SECONDS}], got '${env.AGENT_HEARTBEAT_SECONDS}'`);
  const prs = (env.AGENT_PULL_REQUESTS || "on").toLowerCase();
  if (!["on", "off"].includes(prs)) problems.push(`AGENT_PULL_REQUESTS must be on or off, got '${env.AGENT_PULL_REQUESTS}'`);
  let driver: Driver | undefined;
  try {
    driver =
      driverName === "command"
        ? new CommandDriver({
            argv: parseCommand(env.AGENT_COMMAND),
            passEnv: (env.AGENT_COMMAND_ENV ?? "").split(",").map((s) => s.trim()).filter(Boolean),
            runnerEnv: env,
          })
        : new ClaudeDriver({ runnerEnv: env });
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length) throw new Error(problems.join("; "));
  return {
    workDir: path.resolve(cwd, env.AGENT_WORK_DIR || "."),
    driver: driver!,
    heartbeatMs: beat * 1000,
    pullRequests: prs === "on",
    githubApiUrl: env.GITHUB_API_URL || undefined,
    identity: { name: env.AGENT_GIT_AUTHOR_NAME || "agent-compute", email: env.AGENT_GIT_AUTHOR_EMAIL || "agent@agent-compute.invalid" },
  };
}
