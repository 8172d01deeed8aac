/**
 * Per-repository blueprints: which backend (and EC2 fleet), model and limits a repository's tasks get, so one
 * stack can serve repos on different backends. Keyed by the normalised repository URL; a repo without a
 * blueprint gets the stack default (runtime/compute/resolve.ts decides).
 */
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { documentClient } from "../aws/dynamodb";
import { BACKEND_TYPES, isBackendType, type BackendType } from "../compute/handle";
import type { RuntimeConfig } from "../config";
import { MAX_BUDGET_USD_BOUNDS, MAX_TURNS_BOUNDS, POLL_INTERVAL_BOUNDS, STARTUP_GRACE_BOUNDS } from "../limits";

export interface RepoBlueprint {
  /** Normalised (normalizeRepoUrl). */
  repo_url: string;
  backend?: BackendType;
  /** Named EC2 fleet; only with backend ec2 (or a stack whose default is ec2). */
  fleet?: string;
  model?: string;
  max_turns?: number;
  max_budget_usd?: number;
  /** The orchestrator clamps it to 5–300 s. */
  poll_interval_seconds?: number;
  /** Overrides the stack's startupGraceSeconds for this repo's tasks (e.g. a multi-GB image). */
  startup_grace_seconds?: number;
}

export class RepoUrlError extends RangeError {
  constructor(url: string, problem: string) {
    super(`repository URL '${url}' ${problem}; expected https://host/owner/repo`);
    this.name = "RepoUrlError";
  }
}

/** Hosts whose owner and repository names are case-insensitive, so case is folded for them. */
const CASE_INSENSITIVE_HOSTS = new Set(["github.com", "www.github.com"]);

/**
 * One spelling per repository: https only; host lower-cased (and www.github.com → github.com); default port
 * dropped; `.git` suffix and trailing slashes removed; for GitHub, owner and repo lower-cased (GitHub ignores
 * their case). At least owner/repo; deeper paths (GitLab groups) are kept.
 */
export function normalizeRepoUrl(url: string): string {
  const raw = url.trim();
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new RepoUrlError(url, "is not a URL");
  }
  if (u.protocol !== "https:") throw new RepoUrlError(url, `uses ${u.protocol.replace(/:$/, "")}, not https`);
  if (u.username || u.password) throw new RepoUrlError(url, "carries credentials");
  if (u.search || u.hash) throw new RepoUrlError(url, "has a query or fragment");
  let host = u.host.toLowerCase();
  if (host === "www.github.com") host = "github.com";
  const segments = u.pathname
    .replace(/\/+$/, "")
    .replace(/\.git$/i, "")
    .split("/")
    .slice(1);
  if (segments.length < 2 || !segments.every((s) => /^[A-Za-z0-9_.-]+$/.test(s) && s !== "." && s !== "..")) {
    throw new RepoUrlError(url, "does not name owner/repo");
  }
  const path = segments.join("/");
  return `https://${host}/${CASE_INSENSITIVE_HOSTS.has(host) ? path.toLowerCase() : path}`;
}

/** Every problem of a blueprint, named; empty when it is valid. */
export function blueprintProblems(bp: RepoBlueprint): string[] {
  const problems: string[] = [];
  try {
    normalizeRepoUrl(bp.repo_url);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (bp.backend !== undefined && !isBackendType(bp.backend)) {
    problems.push(`backend '${bp.backend}' is not one of ${BACKEND_TYPES.join(", ")}`);
  }
  if (bp.fleet !== undefined && bp.backend !== undefined && bp.backend !== "ec2") {
    problems.push(`fleet '${bp.fleet}' applies only to backend ec2, not ${bp.backend}`);
  }
  if (bp.fleet !== undefined && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(bp.fleet)) {
    problems.push(`fleet '${bp.fleet}' must be 1–32 lower-case letters, digits or '-'`);
  }
  if (bp.model !== undefined && (typeof bp.model !== "string" || bp.model.trim() === "")) {
    problems.push("model must be a non-empty string");
  }
  const turns = bp.max_turns;
  if (turns !== undefined && !(Number.isInteger(turns) && turns >= MAX_TURNS_BOUNDS.min && turns <= MAX_TURNS_BOUNDS.max)) {
    problems.push(`max_turns must be an integer from ${MAX_TURNS_BOUNDS.min} to ${MAX_TURNS_BOUNDS.max}, got ${turns}`);
  }
  const budget = bp.max_budget_usd;
  if (budget !== undefined && !(typeof budget === "number" && budget >= MAX_BUDGET_USD_BOUNDS.min && budget <= MAX_BUDGET_USD_BOUNDS.max)) {
    problems.push(`max_budget_usd must be a number from ${MAX_BUDGET_USD_BOUNDS.min} to ${MAX_BUDGET_USD_BOUNDS.max}, got ${budget}`);
  }
  const poll = bp.poll_interval_seconds;
  if (poll !== undefined && !(typeof poll === "number" && poll >= POLL_INTERVAL_BOUNDS.min && poll <= POLL_INTERVAL_BOUNDS.max)) {
    problems.push(`poll_interval_seconds must be between ${POLL_INTERVAL_BOUNDS.min} and ${POLL_INTERVAL_BOUNDS.max}, got ${poll}`);
  }
  const grace = bp.startup_grace_seconds;
  if (grace !== undefined && !(Number.isInteger(grace) && grace >= STARTUP_GRACE_BOUNDS.min && grace <= STARTUP_GRACE_BOUNDS.max)) {
    problems.push(`startup_grace_seconds must be an integer between ${STARTUP_GRACE_BOUNDS.min} and ${STARTUP_GRACE_BOUNDS.max}, got ${grace}`);
  }
  return problems;
}

export class RepoBlueprints {
  constructor(private readonly config: Pick<RuntimeConfig, "region" | "endpoints" | "tables">) {}

  private get doc() {
    return documentClient(this.config);
  }

  /** The blueprint of a repository, under any spelling of its URL; undefined when it has none. */
  async get(repoUrl: string): Promise<RepoBlueprint | undefined> {
    let key: string;
    try {
      key = normalizeRepoUrl(repoUrl);
    } catch {
      return undefined; // a URL no blueprint could be stored under has none
    }
    const out = await this.doc.send(new GetCommand({ TableName: this.config.tables.repos, Key: { repo_url: key } }));
    return out.Item as RepoBlueprint | undefined;
  }

  /** Create or replace a blueprint; its URL is stored normalised. Returns what was stored. */
  async put(blueprint: RepoBlueprint): Promise<RepoBlueprint> {
    const problems = blueprintProblems(blueprint);
    if (problems.length) throw new RangeError(`invalid repo blueprint: ${problems.join("; ")}`);
    const item: RepoBlueprint = { ...blueprint, repo_url: normalizeRepoUrl(blueprint.repo_url) };
    await this.doc.send(new PutCommand({ TableName: this.config.tables.repos, Item: item }));
    return item;
  }
}
