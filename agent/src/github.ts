/**
 * Pull requests through the GitHub REST API: open one for the work branch, or update the open one it already has.
 * GITHUB_API_URL points it at GitHub Enterprise (https://ghe.example.com/api/v3) or a test server.
 */

export const DEFAULT_GITHUB_API_URL = "https://api.github.com";

export interface RepoRef {
  owner: string;
  repo: string;
}

/** owner/repo of an https://host/owner/repo URL (a .git suffix and trailing slash allowed). */
export function repoRefOf(repoUrl: string): RepoRef {
  const u = new URL(repoUrl);
  const parts = u.pathname.replace(/\/+$/, "").replace(/\.git$/i, "").split("/").filter(Boolean);
  if (parts.length !== 2) throw new Error(`cannot open a pull request for ${repoUrl}: expected https://host/owner/repo`);
  return { owner: parts[0], repo: parts[1] };
}

export class GitHubError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = "GitHubError";
  }
}

export interface PullRequestInput {
  head: string;
  base: string;
  title: string;
  body: string;
}

export interface PullRequest {
  url: string;
  number: number;
  updated: boolean;
}

export class GitHubClient {
  private readonly api: string;
  constructor(
    apiUrl: string | undefined,
    private readonly token: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.api = (apiUrl || DEFAULT_GITHUB_API_URL).replace(/\/+$/, "");
  }

  private async call(method: string, route: string, body?: unknown): Promise<any> {
    const res = await this.fetchImpl(`${this.api}${route}`, {
      method,
      headers: {
        accept: "application/vnd.github+json",
        authorization: `Bearer ${this.token}`,
        "x-github-api-version": "2022-11-28",
        "user-agent": "agent-compute-runner",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { message: text.slice(0, 200) };
    }
    if (!res.ok) {
      const detail = Array.isArray(parsed.errors) ? parsed.errors.map((e: any) => e.message ?? e.code).filter(Boolean).join("; ") : "";
      throw new GitHubError(res.status, `${method} ${route} answered HTTP ${res.status}: ${parsed.message ?? "no message"}${detail ? ` (${detail})` : ""}`);
    }
    return parsed;
  }

  /** Open the pull request, or update the open one whose head is this branch. */
  async openOrUpdate(ref: RepoRef, pr: PullRequestInput): Promise<PullRequest> {
    const base = `/repos/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}/pulls`;
    const open = await this.call("GET", `${base}?state=open&head=${encodeURIComponent(`${ref.owner}:${pr.head}`)}`);
    const existing = Array.isArray(open) ? open[0] : undefined;
    if (existing?.number) {
      const updated = await this.call("PATCH", `${base}/${existing.number}`, { title: pr.title, body: pr.body });
      return { url: updated.html_url ?? existing.html_url, number: existing.number, updated: true };
    }
    const created = await this.call("POST", base, { title: pr.title, head: pr.head, base: pr.base, body: pr.body });
    return { url: created.html_url, number: created.number, updated: false };
  }
}
