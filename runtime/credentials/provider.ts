/**
 * Repository credentials for one task, asked for by the agent channel's credentials route and handed to the agent
 * runner, which gives them to git and the pull-request call only. Providers here: a GitHub App installation token
 * scoped to the task's one repository (github-app.ts), a per-repo or stack token in Secrets Manager (secrets.ts),
 * an operator's token on the local platform (local.ts); `firstOf` tries them in order.
 */

export interface GitCredentials {
  username: string;
  token: string;
  /** ISO time the token stops working (installation tokens last an hour). */
  expires_at?: string;
}

/** The part of a task a provider decides on. */
export interface CredentialsRequest {
  task_id: string;
  repo_url: string;
}

export interface RepoCredentialsProvider {
  /** Credentials for this task's repository, or undefined when this provider has none for it. */
  getGitCredentials(task: CredentialsRequest): Promise<GitCredentials | undefined>;
}

/** The first provider that has credentials for the repository wins; an error (not "none") stops the search. */
export function firstOf(...providers: RepoCredentialsProvider[]): RepoCredentialsProvider {
  return {
    async getGitCredentials(task) {
      for (const p of providers) {
        const creds = await p.getGitCredentials(task);
        if (creds) return creds;
      }
      return undefined;
    },
  };
}

export interface RepoPath {
  host: string;
  owner: string;
  repo: string;
}

/** host/owner/repo of an https repository URL (normalised or not). */
export function repoPathOf(repoUrl: string): RepoPath {
  const u = new URL(repoUrl);
  const parts = u.pathname.replace(/\/+$/, "").replace(/\.git$/i, "").split("/").filter(Boolean);
  if (u.protocol !== "https:" || parts.length < 2) throw new RangeError(`repository URL '${repoUrl}' does not name https://host/owner/repo`);
  return { host: u.host.toLowerCase(), owner: parts[parts.length - 2], repo: parts[parts.length - 1] };
}
