/** repos: per-repository blueprints (backend, fleet, model, limits), written to the repos table. */
import { MAX_BUDGET_USD_BOUNDS, MAX_TURNS_BOUNDS, POLL_INTERVAL_BOUNDS, STARTUP_GRACE_BOUNDS } from "../../runtime/limits";
import { isObject, optionalNumber, str, unknownKeys, type Problems } from "./checks";
import type { CloudBackend, FleetSettings, RepoSettings } from "./types";

const REPO_KEYS = ["backend", "fleet", "model", "maxTurns", "maxBudgetUsd", "pollIntervalSeconds", "startupGraceSeconds"];

export function validateRepos(p: Problems, raw: unknown, backends: CloudBackend[], fleets: Record<string, FleetSettings>): RepoSettings[] {
  if (raw === undefined || raw === null) return [];
  if (!isObject(raw)) {
    p.add("repos", "must map repository URLs to blueprints, e.g. {\"https://github.com/org/repo\": {\"backend\": \"ecs\"}}");
    return [];
  }
  const repos: RepoSettings[] = [];
  for (const [repoUrl, value] of Object.entries(raw)) {
    const path = `repos["${repoUrl}"]`;
    if (!/^https:\/\/[^\s/]+\/\S+$/.test(repoUrl)) p.add(path, "the key must be an https:// repository URL");
    const b = value ?? {};
    if (!isObject(b)) {
      p.add(path, `must be an object with any of: ${REPO_KEYS.join(", ")}`);
      continue;
    }
    unknownKeys(p, path, b, REPO_KEYS);
    const repo: RepoSettings = { repoUrl };
    if (b.backend !== undefined) {
      if (typeof b.backend !== "string" || !backends.includes(b.backend as CloudBackend)) {
        p.add(`${path}.backend`, `is ${JSON.stringify(b.backend)}; allowed (enabled backends): ${backends.join(", ")}`);
      } else repo.backend = b.backend as CloudBackend;
    }
    if (b.fleet !== undefined) {
      const names = Object.keys(fleets);
      if (typeof b.fleet !== "string" || !names.includes(b.fleet)) {
        p.add(`${path}.fleet`, `is ${JSON.stringify(b.fleet)}; allowed: ${names.join(", ") || "(no fleets: backend ec2 is not enabled)"}`);
      } else if (repo.backend !== undefined && repo.backend !== "ec2") {
        p.add(`${path}.fleet`, `applies only to backend ec2, not ${repo.backend}`);
      } else repo.fleet = b.fleet;
    }
    const model = str(p, `${path}.model`, b.model);
    if (model !== undefined) repo.model = model;
    const maxTurns = optionalNumber(p, `${path}.maxTurns`, b.maxTurns, MAX_TURNS_BOUNDS.min, MAX_TURNS_BOUNDS.max, true);
    if (maxTurns !== undefined) repo.maxTurns = maxTurns;
    const maxBudgetUsd = optionalNumber(p, `${path}.maxBudgetUsd`, b.maxBudgetUsd, MAX_BUDGET_USD_BOUNDS.min, MAX_BUDGET_USD_BOUNDS.max, false);
    if (maxBudgetUsd !== undefined) repo.maxBudgetUsd = maxBudgetUsd;
    const poll = optionalNumber(p, `${path}.pollIntervalSeconds`, b.pollIntervalSeconds, POLL_INTERVAL_BOUNDS.min, POLL_INTERVAL_BOUNDS.max, true);
    if (poll !== undefined) repo.pollIntervalSeconds = poll;
    const grace = optionalNumber(p, `${path}.startupGraceSeconds`, b.startupGraceSeconds, STARTUP_GRACE_BOUNDS.min, STARTUP_GRACE_BOUNDS.max, true);
    if (grace !== undefined) repo.startupGraceSeconds = grace;
    repos.push(repo);
  }
  return repos;
}
