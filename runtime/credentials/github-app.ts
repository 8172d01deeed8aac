/**
 * GitHub App installation tokens, minted by the control plane for one task: the app's JWT (RS256, signed with its
 * private key) finds the app's installation on the task's repository, then asks for a token limited to that one
 * repository and to contents + pull requests. The token expires within an hour; the app's key never leaves the
 * control plane.
 */
import { createSign } from "node:crypto";
import { repoPathOf, type CredentialsRequest, type GitCredentials, type RepoCredentialsProvider } from "./provider";

export const DEFAULT_GITHUB_API_URL = "https://api.github.com";

/** What an installation token may do: push the branch, open or update the pull request. */
export const INSTALLATION_PERMISSIONS = { contents: "write", pull_requests: "write" } as const;

const b64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

/**
 * The app's JWT. GitHub allows at most 10 minutes of validity; iat is set 60 s in the past against clock skew,
 * as GitHub recommends.
 */
export function githubAppJwt(appId: string, privateKeyPem: string, nowMs: number = Date.now()): string {
  const now = Math.floor(nowMs / 1000);
  const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify({ iat: now - 60, exp: now + 540, iss: appId }));
  const signature = createSign("RSA-SHA256").update(`${header}.${payload}`).sign(privateKeyPem);
  return `${header}.${payload}.${b64url(signature)}`;
}

export class GitHubAppError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GitHubAppError";
  }
}

export interface GitHubAppOptions {
  appId: string;
  privateKey: string;
  /** GitHub Enterprise: https://<host>/api/v3. Default api.github.com. */
  apiUrl?: string;
  fetch?: typeof fetch;
  now?: () => number;
}

export class GitHubAppCredentials implements RepoCredentialsProvider {
  private readonly api: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: GitHubAppOptions) {
    this.api = (options.apiUrl || DEFAULT_GITHUB_API_URL).replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? fetch;
  }

  private async call(method: string, route: string, body?: unknown): Promise<{ status: number; json: any }> {
    const jwt = githubAppJwt(this.options.appId, this.options.privateKey, (this.options.now ?? Date.now)());
    const res = await this.fetchImpl(`${this.api}${route}`, {
      method,
      headers: {
        accept: "application/vnd.github+json",
        authorization: `Bearer ${jwt}`,
        "x-github-api-version": "2022-11-28",
        "user-agent": "agent-compute",
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json: any = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { message: text.slice(0, 200) };
    }
    return { status: res.status, json };
  }

  /** undefined when the app is not installed on the repository (another provider may have a token for it). */
  async getGitCredentials(task: CredentialsRequest): Promise<GitCredentials | undefined> {
    const { owner, repo } = repoPathOf(task.repo_url);
    const o = encodeURIComponent(owner);
    const r = encodeURIComponent(repo);
    const inst = await this.call("GET", `/repos/${o}/${r}/installation`);
    if (inst.status === 404) return undefined;
    if (inst.status !== 200 || !Number.isInteger(inst.json.id)) {
      throw new GitHubAppError(`GitHub App ${this.options.appId}: looking up its installation on ${owner}/${repo} answered HTTP ${inst.status}: ${inst.json.message ?? "no message"}`);
    }
    const minted = await this.call("POST", `/app/installations/${inst.json.id}/access_tokens`, { repositories: [repo], permissions: INSTALLATION_PERMISSIONS });
    if (minted.status !== 201 || typeof minted.json.token !== "string") {
      throw new GitHubAppError(`GitHub App ${this.options.appId}: minting a token for ${owner}/${repo} answered HTTP ${minted.status}: ${minted.json.message ?? "no message"}`);
    }
    return { username: "x-access-token", token: minted.json.token, ...(minted.json.expires_at ? { expires_at: minted.json.expires_at } : {}) };
  }
}
