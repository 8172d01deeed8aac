import type { RuntimeConfig } from "../config";
import type { LeaseTable } from "../fleet/lease";
import type { RepoBlueprint } from "../repos/blueprints";
import { AgentCoreStrategy } from "./agentcore";
import { Ec2Strategy } from "./ec2";
import { EcsStrategy } from "./ecs";
import { BACKEND_TYPES, type BackendType } from "./handle";
import { LocalStrategy } from "./local";
import type { ComputeStrategy } from "./strategy";

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

/** The strategy for a backend. Exhaustive: a backend added to BACKEND_TYPES without a case here does not compile. */
export function createStrategy<T extends BackendType>(type: T, config: RuntimeConfig, leases?: LeaseTable): ComputeStrategy<T>;
/** `leases`: the runtime's lease table (whose hooks wake a task bound while it waits); the EC2 strategy uses it. */
export function createStrategy(type: BackendType, config: RuntimeConfig, leases?: LeaseTable): ComputeStrategy {
  switch (type) {
    case "agentcore":
      return new AgentCoreStrategy(config) as ComputeStrategy;
    case "ecs":
      return new EcsStrategy(config) as ComputeStrategy;
    case "ec2":
      return new Ec2Strategy(config, leases) as ComputeStrategy;
    case "local":
      return new LocalStrategy(config) as ComputeStrategy;
    default: {
      const unhandled: never = type;
      throw new BackendResolutionError(`unknown backend '${String(unhandled)}'; known: ${BACKEND_TYPES.join(", ")}`);
    }
  }
}
