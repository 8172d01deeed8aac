/**
 * Repository credentials reach an agent only through the channel's credentials route, never inside its payload:
 * the route can refuse a finished task, and a provider can mint a short-lived token scoped to the one repository.
 */
import type { TaskRecord } from "../tasks/record";

export interface GitCredentials {
  username: string;
  token: string;
  /** ISO 8601; when the token stops working, if it expires. */
  expires_at?: string;
}

/** The port a credentials source implements (a GitHub App, Secrets Manager, the operator's local token). */
export interface RepoCredentialsProvider {
  /** Credentials for the task's repository, or undefined when none are configured for it. */
  getGitCredentials(task: TaskRecord): Promise<GitCredentials | undefined>;
}

/** The default: no repository credentials anywhere, so the route answers 404. */
export const NO_REPO_CREDENTIALS: RepoCredentialsProvider = {
  getGitCredentials: async () => undefined,
};
