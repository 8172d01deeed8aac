/**
 * Repository credentials kept in AWS Secrets Manager, read by the control plane only (the task API's role; no agent
 * role may read them). Under the stack's prefix:
 *   <prefix>/github-app                       {"app_id": "...", "private_key": "-----BEGIN ...", "api_url"?: "..."}
 *   <prefix>/repos/<host>/<owner>/<repo>      a token for that repository (the string, or {"token", "username"?})
 *   <prefix>/default                          the stack's token, for every repository without its own
 * The GitHub App is preferred (a one-hour token scoped to the task's repository); then the repository's own
 * token; then the stack's. A secret that does not exist, or has no value yet, is "none", not an error.
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { awsClient } from "../aws/clients";
import { GitHubAppCredentials } from "./github-app";
import { firstOf, repoPathOf, type CredentialsRequest, type GitCredentials, type RepoCredentialsProvider } from "./provider";

export function secretNames(prefix: string, repoUrl: string): { githubApp: string; repo: string; stack: string } {
  const { host, owner, repo } = repoPathOf(repoUrl);
  return { githubApp: `${prefix}/github-app`, repo: `${prefix}/repos/${host}/${owner}/${repo}`.toLowerCase(), stack: `${prefix}/default` };
}

export interface SecretReader {
  /** The secret's current string, or undefined if it does not exist or has no value. */
  read(name: string): Promise<string | undefined>;
}

export function secretsManagerReader(client: SecretsManagerClient = awsClient(SecretsManagerClient)): SecretReader {
  return {
    async read(name) {
      try {
        const out = await client.send(new GetSecretValueCommand({ SecretId: name }));
        return out.SecretString || undefined;
      } catch (err) {
        if ((err as { name?: string }).name === "ResourceNotFoundException") return undefined;
        throw err;
      }
    },
  };
}

/** A token secret's value: the token itself, or {"token", "username"?}. */
export function parseTokenSecret(name: string, value: string): GitCredentials {
  const trimmed = value.trim();
  if (trimmed.startsWith("{")) {
    let parsed: any;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new Error(`secret ${name} looks like JSON but does not parse`);
    }
    if (typeof parsed.token !== "string" || !parsed.token) throw new Error(`secret ${name} has no "token"`);
    return { username: typeof parsed.username === "string" && parsed.username ? parsed.username : "x-access-token", token: parsed.token };
  }
  if (!trimmed) throw new Error(`secret ${name} is empty`);
  return { username: "x-access-token", token: trimmed };
}

/** The per-repo token, else the stack token. */
export class SecretTokenCredentials implements RepoCredentialsProvider {
  constructor(
    private readonly prefix: string,
    private readonly secrets: SecretReader,
  ) {}

  async getGitCredentials(task: CredentialsRequest): Promise<GitCredentials | undefined> {
    const names = secretNames(this.prefix, task.repo_url);
    for (const name of [names.repo, names.stack]) {
      const value = await this.secrets.read(name);
      if (value !== undefined) return parseTokenSecret(name, value);
    }
    return undefined;
  }
}

/** The GitHub App whose key is in <prefix>/github-app, if that secret has a value. */
export class SecretGitHubAppCredentials implements RepoCredentialsProvider {
  constructor(
    private readonly prefix: string,
    private readonly secrets: SecretReader,
    private readonly fetchImpl?: typeof fetch,
  ) {}

  async getGitCredentials(task: CredentialsRequest): Promise<GitCredentials | undefined> {
    const name = `${this.prefix}/github-app`;
    const value = await this.secrets.read(name);
    if (value === undefined) return undefined;
    let app: any;
    try {
      app = JSON.parse(value);
    } catch {
      throw new Error(`secret ${name} must be JSON {"app_id", "private_key", "api_url"?}`);
    }
    if (!app || (typeof app.app_id !== "string" && typeof app.app_id !== "number") || typeof app.private_key !== "string") {
      throw new Error(`secret ${name} must hold "app_id" and "private_key"`);
    }
    return new GitHubAppCredentials({ appId: String(app.app_id), privateKey: app.private_key, apiUrl: app.api_url, fetch: this.fetchImpl }).getGitCredentials(task);
  }
}

/** The cloud's provider: the GitHub App, then the repository's token, then the stack's. */
export function secretsManagerProvider(prefix: string, secrets: SecretReader = secretsManagerReader(), fetchImpl?: typeof fetch): RepoCredentialsProvider {
  return firstOf(new SecretGitHubAppCredentials(prefix, secrets, fetchImpl), new SecretTokenCredentials(prefix, secrets));
}
