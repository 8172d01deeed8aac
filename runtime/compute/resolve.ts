/**
 * Backend resolution, pure: which backend (and EC2 fleet) a task runs on, from the request, the repo blueprint
 * and the stack config. It loads no backend code; the registry (registry.ts) builds the strategies.
 */
import type { RuntimeConfig } from "../config";
import type { LeaseTable } from "../fleet/lease";
import type { RepoBlueprint } from "../repos/blueprints";
import type { BackendType } from "./handle";

export interface BackendChoice {
  backend: BackendType;
  /** Named EC2 fleet; only for backend ec2. */
  fleet?: string;
}

export class BackendResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackendResolutionError";
  }
}

/**
 * Which backend (and EC2 fleet) runs a task: the request's explicit choice, else the repo's blueprint, else the
 * stack default. The result must be enabled in this stack.
 */
export function resolveBackend(
  requested: { backend?: BackendType; fleet?: string },
  blueprint: Pick<RepoBlueprint, "backend" | "fleet"> | undefined,
  config: Pick<RuntimeConfig, "defaultBackend" | "enabledBackends" | "ec2">,
): BackendChoice {
  const backend = requested.backend ?? blueprint?.backend ?? config.defaultBackend;
  if (!config.enabledBackends.includes(backend)) {
    throw new BackendResolutionError(
      `backend '${backend}' is not enabled in this stack; enabled: ${config.enabledBackends.join(", ")}`,
    );
  }
  if (backend !== "ec2") {
    if (requested.fleet) throw new BackendResolutionError(`fleet '${requested.fleet}' applies only to backend ec2, not ${backend}`);
    return { backend };
  }
  const fleets = Object.keys(config.ec2?.fleets ?? {});
  const fleet = requested.fleet ?? blueprint?.fleet ?? config.ec2?.defaultFleet;
  if (!fleet || !fleets.includes(fleet)) {
    throw new BackendResolutionError(`EC2 fleet '${fleet ?? ""}' does not exist; fleets: ${fleets.join(", ") || "(none)"}`);
  }
  return { backend, fleet };
}
