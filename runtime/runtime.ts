import type { RuntimeConfig } from "./config";
import { configuredRepoCredentials, type RepoCredentialsProvider } from "./channel/credentials";
import { createStrategy } from "./compute/resolve";
import type { BackendType } from "./compute/handle";
import type { ComputeStrategy } from "./compute/strategy";
import { LeaseTable } from "./fleet/lease";
import { createPayloadStore } from "./payload";
import type { PayloadStore, TaskEventLog, TaskStore } from "./ports";
import { createMetrics, type MetricsSink } from "./metrics";
import { LambdaDurableCallbacks, wakeOrchestrator, type DurableCallbacks } from "./orchestrator/wake";
import { RepoBlueprints } from "./repos/blueprints";
import { DynamoEventLog } from "./tasks/events";
import { DynamoTaskStore } from "./tasks/store";

/**
 * Everything a handler needs, wired from one config. Stores and strategies are created on first use, so a
 * Lambda pays only for what its invocation touches; tests override any part.
 */
export interface Runtime {
  readonly config: RuntimeConfig;
  readonly tasks: TaskStore;
  readonly events: TaskEventLog;
  readonly payloads: PayloadStore;
  readonly repos: RepoBlueprints;
  readonly leases: LeaseTable;
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
  let leases = overrides.leases;
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
    get leases() {
      // A task bound to an instance while it waited is woken at once, not at its next poll.
      return (leases ??= new LeaseTable(config, runtime.now, { bound: (b) => void wakeOrchestrator(runtime, b.taskId) }));
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
        s = createStrategy(type, config, runtime.leases);
        strategies.set(type, s);
      }
      return s;
    },
    now: overrides.now ?? (() => new Date()),
  };
  return runtime;
}
