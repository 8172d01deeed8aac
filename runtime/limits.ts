/**
 * Every limit and default that more than one part of the project states, in one place: the task API's checks,
 * repo blueprints (in the stack config and in the repos table), the CLI's help, the stack config and its
 * Pulumi.yaml (a test holds Pulumi.yaml's declared defaults equal to these), the Pulumi components and the
 * runtime all read them here. No imports but types, so anything may read it (the CLI, an agent, a Lambda).
 */
import type { LimitsConfig } from "./config";

/** An inclusive range. */
export interface Bounds {
  readonly min: number;
  readonly max: number;
}

/** What a stack's tasks get when its config says nothing (Pulumi.yaml declares the same values). */
export const DEFAULT_LIMITS: LimitsConfig = {
  maxConcurrentPerUser: 10,
  maxQueuedPerUser: 100,
  taskTimeoutSeconds: 8 * 3600,
  pollIntervalSeconds: 30,
  heartbeatTimeoutSeconds: 180,
  maxPollErrors: 5,
  maxFinishedPolls: 3,
  retentionDays: 30,
  startupGraceSeconds: 600,
  maxPollIntervalSeconds: 300,
  computeStopGraceSeconds: 120,
  infraRetries: 1,
};

/** Per-fleet defaults for an EC2 fleet's instance timings (Ec2FleetConfig). */
export const FLEET_DEFAULTS = {
  readyDeadlineSeconds: 900,
  maxInstanceLifetimeSeconds: 24 * 3600,
  // About one boot: keeping an idle instance that long costs no more than launching its replacement would, and a
  // fleet that drained at once relaunched most of what it drained (see docs/performance.md, fleet economics).
  scaleInIdleSeconds: 120,
} as const;

/** What a stack may set each of its task limits to. */
export const LIMIT_BOUNDS = {
  maxConcurrentPerUser: { min: 1, max: 10_000 },
  maxQueuedPerUser: { min: 1, max: 10_000 },
  /** Five minutes to seven days. */
  taskTimeoutSeconds: { min: 300, max: 7 * 24 * 3600 },
  pollIntervalSeconds: { min: 5, max: 300 },
  heartbeatTimeoutSeconds: { min: 60, max: 3600 },
  retentionDays: { min: 1, max: 3650 },
  /** At least a minute, at most the 8 hours of the longest session. */
  startupGraceSeconds: { min: 60, max: 8 * 3600 },
} as const satisfies Record<string, Bounds>;

/** Seconds between polls of a task, stack default or repo blueprint. */
export const POLL_INTERVAL_BOUNDS: Bounds = LIMIT_BOUNDS.pollIntervalSeconds;

/** How long a started session may go without its first RUNNING or heartbeat, stack default or repo blueprint. */
export const STARTUP_GRACE_BOUNDS: Bounds = LIMIT_BOUNDS.startupGraceSeconds;

/** Poll interval clamped to what the orchestrator accepts (5–300 s). */
export function clampPollInterval(seconds: number): number {
  if (!Number.isFinite(seconds)) return DEFAULT_LIMITS.pollIntervalSeconds;
  return Math.min(POLL_INTERVAL_BOUNDS.max, Math.max(POLL_INTERVAL_BOUNDS.min, seconds));
}

/** A task's turn limit, as a submit request or a repo blueprint may set it. */
export const MAX_TURNS_BOUNDS: Bounds = { min: 1, max: 500 };

/** A task's budget in USD (whole cents at least), as a submit request or a repo blueprint may set it. */
export const MAX_BUDGET_USD_BOUNDS: Bounds = { min: 0.01, max: 1000 };

/** Tasks per page of the task API's list: the default and the most a caller may ask for. */
export const LIST_LIMIT = { default: 20, max: 100 } as const;

/**
 * SSM SendCommand TimeoutSeconds (delivery) accepts 30–2,592,000 s; left out, SSM waits an hour for an unreachable
 * instance, so it is always sent. The stack's dispatchTimeoutSeconds.
 */
export const DELIVERY_TIMEOUT_BOUNDS: Bounds = { min: 30, max: 2_592_000 };
export const DEFAULT_DELIVERY_TIMEOUT_SECONDS = 600;

/**
 * An EC2 fleet instance's root volume (GiB): room for the OS, Docker and the agent image with its work tree. The
 * largest gp3 volume is 16 TiB.
 */
export const ROOT_VOLUME_GIB_BOUNDS: Bounds = { min: 30, max: 16_384 };
