/**
 * The registry: builds the strategy of a backend. Each backend's module (and with it that backend's AWS SDK client)
 * is required only when its strategy is first built, so a Lambda evaluates the code of the backends its
 * invocations use and no other. The bundler still puts every backend into a bundle that reaches this file:
 * deferring changes cold-start time, not archive size (`npm run bench:archive` shows both).
 */
import type { RuntimeConfig } from "../config";
import type { FleetHooks } from "../fleet/lease";
import { BACKEND_TYPES, type BackendType } from "./handle";
import { BackendResolutionError } from "./resolve";
import type { ComputeStrategy } from "./strategy";

/** What a strategy may take from the runtime that builds it. */
export interface StrategyContext {
  /** The runtime's clock. */
  now?: () => Date;
  /** Told when the EC2 fleet binds a waiting task to an instance (the runtime wakes its orchestrator). */
  fleetHooks?: FleetHooks;
}

/** The strategy for a backend. Exhaustive: a backend added to BACKEND_TYPES without a case here does not compile. */
export function createStrategy<T extends BackendType>(type: T, config: RuntimeConfig, context?: StrategyContext): ComputeStrategy<T>;
export function createStrategy(type: BackendType, config: RuntimeConfig, context: StrategyContext = {}): ComputeStrategy {
  switch (type) {
    case "agentcore": {
      const { AgentCoreStrategy } = require("./agentcore") as typeof import("./agentcore");
      return new AgentCoreStrategy(config) as ComputeStrategy;
    }
    case "ecs": {
      const { EcsStrategy } = require("./ecs") as typeof import("./ecs");
      return new EcsStrategy(config) as ComputeStrategy;
    }
    case "ec2": {
      const { Ec2Strategy } = require("./ec2") as typeof import("./ec2");
      const { LeaseTable } = require("../fleet/lease") as typeof import("../fleet/lease");
      return new Ec2Strategy(config, new LeaseTable(config, context.now, context.fleetHooks)) as ComputeStrategy;
    }
    case "local": {
      const { LocalStrategy } = require("./local") as typeof import("./local");
      return new LocalStrategy(config) as ComputeStrategy;
    }
    default: {
      const unhandled: never = type;
      throw new BackendResolutionError(`unknown backend '${String(unhandled)}'; known: ${BACKEND_TYPES.join(", ")}`);
    }
  }
}
