/**
 * What a stack gets for each key it leaves unset. Task limits, fleet timings and the dispatch timeout come from runtime/limits.ts;
 * Pulumi.yaml declares the same values (tests/pulumi-config.test.ts holds them equal).
 */
import { DEFAULT_DELIVERY_TIMEOUT_SECONDS, DEFAULT_LIMITS, FLEET_DEFAULTS } from "../../runtime/limits";
import type { CloudBackend, EcsSettings, FleetSettings } from "./types";

export const DEFAULT_FLEET: Omit<FleetSettings, "architecture" | "gpu" | "amiParameter"> = {
  instanceType: "m7g.xlarge",
  minSize: 0,
  maxSize: 4,
  warmBuffer: 1,
  rootVolumeGiB: 100,
  spot: false,
  spotInstanceTypes: [],
  readyDeadlineSeconds: FLEET_DEFAULTS.readyDeadlineSeconds,
  maxInstanceLifetimeSeconds: FLEET_DEFAULTS.maxInstanceLifetimeSeconds,
  scaleInIdleSeconds: FLEET_DEFAULTS.scaleInIdleSeconds,
};

export const DEFAULTS = {
  backends: ["ecs"] as CloudBackend[],
  imageMultiArch: false,
  maxConcurrentPerUser: DEFAULT_LIMITS.maxConcurrentPerUser,
  maxQueuedPerUser: DEFAULT_LIMITS.maxQueuedPerUser,
  taskTimeoutSeconds: DEFAULT_LIMITS.taskTimeoutSeconds,
  pollIntervalSeconds: DEFAULT_LIMITS.pollIntervalSeconds,
  heartbeatTimeoutSeconds: DEFAULT_LIMITS.heartbeatTimeoutSeconds,
  retentionDays: DEFAULT_LIMITS.retentionDays,
  startupGraceSeconds: DEFAULT_LIMITS.startupGraceSeconds,
  ecs: { architecture: "ARM64", cpu: 2048, memory: 4096, fargateSpot: false, ephemeralStorageGiB: 30 } as EcsSettings,
  agentcore: { networkMode: "VPC", idleTimeoutSeconds: 900, maxLifetimeSeconds: 28800 } as const,
  network: { cidrBlock: "10.40.0.0/16", availabilityZones: 2, natGateways: "Single" } as const,
  payloadExpirationDays: 7,
  dispatchTimeoutSeconds: DEFAULT_DELIVERY_TIMEOUT_SECONDS,
  fleetManagerSchedule: "rate(1 minute)",
  reconcilerSchedule: "rate(5 minutes)",
  logRetentionDays: 30,
  /** A cross-region (global) inference profile: on-demand Claude 4.x models are invoked through a profile. */
  model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
};
