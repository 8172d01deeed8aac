import { configuredRepoCredentials, type RepoCredentialsProvider } from "./channel/credentials";
import type { BackendType } from "./compute/handle";
import { createStrategy } from "./compute/registry";
import type { ComputeStrategy } from "./compute/strategy";
import type { RuntimeConfig } from "./config";
import { createMetrics, type MetricsSink } from "./metrics";
import { fleetWakeHooks, LambdaDurableCallbacks, type DurableCallbacks } from "./orchestrator/wake";
import { createPayloadStore } from "./payload";
import type { PayloadStore, TaskEventLog, TaskStore } from "./ports";
import { RepoBlueprints } from "./repos/blueprints";
import { DynamoEventLog } from "./tasks/events";
import { DynamoTaskStore } from "./tasks/store";

/**
 * Everything a handler needs, wired from one config. Stores and strategies are created on first use, and a
 * backend's code is loaded when its strategy is first asked for (compute/registry.ts), so a Lambda pays only
 * for what its invocation touches; tests override any part.
 */
export interface Runtime {
  readonly config: RuntimeConfig;
  readonly tasks: TaskStore;
  readonly events: TaskEventLog;
  readonly payloads: PayloadStore;
  readonly repos: RepoBlueprints;
  /** Repository credentials handed to agents through the channel (RuntimeConfig.credentials; none when unset). */
  readonly repoCredentials: RepoCredentialsProvider;
  /** Completes the durable callbacks orchestrators wait on (runtime/orchestrator/wake.ts). */
  readonly callbacks: DurableCallbacks;
  /** CloudWatch metrics (EMF); whoever counts flushes, since a durable invocation can end at any wait. */
  readonly metrics: MetricsSink;
  strategy<T extends BackendType>(type: T): ComputeStrategy<T>;
  now(): Date;
}

export type RuntimeOverrides = Partial<Omit<Runtime, "config" | "strategy">> & {
  strategies?: Partial<{ [T in BackendType]: ComputeStrategy<T> }>;
};

export function createRuntime(config: RuntimeConfig, overrides: RuntimeOverrides = {}): Runtime {
  const strategies = new Map<string, unknown>(Object.entries(overrides.strategies ?? {}));
  let tasks = overrides.tasks;
  let events = overrides.events;
  let payloads = overrides.payloads;
  let repos = overrides.repos;
  let callbacks = overrides.callbacks;
  let metrics = overrides.metrics;
  const runtime: Runtime = {
    config,
    get tasks() {
      return (tasks ??= new DynamoTaskStore(config));
    },
    get events() {
      return (events ??= new DynamoEventLog(config));
    },
    get payloads() {
      return (payloads ??= createPayloadStore(config));
    },
    get repos() {
      return (repos ??= new RepoBlueprints(config));
    },
    repoCredentials: overrides.repoCredentials ?? configuredRepoCredentials(config),
    get callbacks() {
      return (callbacks ??= new LambdaDurableCallbacks(config));
    },
    get metrics() {
      return (metrics ??= createMetrics("agent-compute"));
    },
    strategy<T extends BackendType>(type: T): ComputeStrategy<T> {
      let s = strategies.get(type) as ComputeStrategy<T> | undefined;
      if (!s) {
        // A task bound to an EC2 instance while it waited is woken at once, not at its next poll.
        s = createStrategy(type, config, { now: runtime.now, fleetHooks: fleetWakeHooks(runtime) });
        strategies.set(type, s);
      }
      return s;
    },
    now: overrides.now ?? (() => new Date()),
  };
  return runtime;
}
