/**
 * The local platform's repository credentials: the operator's own token, from AGENT_COMPUTE_GIT_TOKEN or the file
 * AGENT_COMPUTE_GIT_TOKEN_FILE (read at each request, so a rotated file is picked up), for every repository. The
 * token reaches the runner only through the channel's credentials route, never its environment.
 */
import { readFileSync } from "node:fs";
import type { GitCredentials, RepoCredentialsProvider } from "./provider";

export function localCredentialsProvider(env: NodeJS.ProcessEnv = process.env): RepoCredentialsProvider {
  return {
    async getGitCredentials(): Promise<GitCredentials | undefined> {
      let token = env.AGENT_COMPUTE_GIT_TOKEN?.trim();
      if (!token && env.AGENT_COMPUTE_GIT_TOKEN_FILE) {
        try {
          token = readFileSync(env.AGENT_COMPUTE_GIT_TOKEN_FILE, "utf8").trim();
        } catch (err) {
          throw new Error(`AGENT_COMPUTE_GIT_TOKEN_FILE ${env.AGENT_COMPUTE_GIT_TOKEN_FILE} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      if (!token) return undefined;
      return { username: env.AGENT_COMPUTE_GIT_USERNAME?.trim() || "x-access-token", token };
    },
  };
}
