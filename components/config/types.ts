import type { IdentityConfig } from "../../runtime/config";
import type { EcsArchitecture } from "./aws-tables";
/** The validated stack config: what the Pulumi program builds from (index.ts validates raw config into it). */

export const PROJECT = "agent-compute";

/** Backends a Pulumi stack can build. "local" needs no cloud resources and is not one of them. */
export const CLOUD_BACKENDS = ["agentcore", "ecs", "ec2"] as const;
export type CloudBackend = (typeof CLOUD_BACKENDS)[number];

export type Architecture = "arm64" | "x86_64";

export interface FleetSettings {
  instanceType: string;
  /** Derived from the instance type (Graviton families carry a "g" attribute, e.g. m7g, c7gn, g5g). */
  architecture: Architecture;
  /** GPU family (g*, p*): gets the NVIDIA-driver AMI by default. */
  gpu: boolean;
  minSize: number;
  maxSize: number;
  /** Idle ready instances kept beyond queue demand. */
  warmBuffer: number;
  rootVolumeGiB: number;
  spot: boolean;
  /** Further instance types a Spot fleet may launch (same architecture), for capacity-optimized allocation. */
  spotInstanceTypes: string[];
  /** SSM parameter the launch template resolves the AMI from at launch (always the latest patched image). */
  amiParameter: string;
  /** Seconds an instance may take to report boot=ready before it is marked unhealthy and replaced. */
  readyDeadlineSeconds: number;
  /** Seconds an instance must have been idle before scale-in may drain it. */
  scaleInIdleSeconds: number;
  /** Seconds after which an idle instance is drained and replaced. */
  maxInstanceLifetimeSeconds: number;
  /** Tasks after which an instance is drained and replaced; undefined = unlimited. */
  maxTasksPerInstance?: number;
}

export interface RepoSettings {
  repoUrl: string;
  backend?: CloudBackend;
  fleet?: string;
  model?: string;
  maxTurns?: number;
  maxBudgetUsd?: number;
  pollIntervalSeconds?: number;
  startupGraceSeconds?: number;
}

export type NetworkSettings =
  | { mode: "existing"; vpcId: string; privateSubnetIds: string[] }
  | { mode: "create"; cidrBlock: string; availabilityZones: number; natGateways: "Single" | "OnePerAz" };

export interface EcsSettings {
  /** The task's CPU architecture; Fargate Spot runs X86_64 only. */
  architecture: EcsArchitecture;
  cpu: number;
  memory: number;
  fargateSpot: boolean;
  ephemeralStorageGiB: number;
}

export interface AgentCoreSettings {
  /** ECR image URI the runtime runs (AgentCore accepts only ECR); undefined: the stack-built image. */
  image?: string;
  networkMode: "VPC" | "PUBLIC";
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
}

export interface StackLimits {
  maxConcurrentPerUser: number;
  maxQueuedPerUser: number;
  taskTimeoutSeconds: number;
  pollIntervalSeconds: number;
  heartbeatTimeoutSeconds: number;
  retentionDays: number;
  startupGraceSeconds: number;
}

export interface StackConfig {
  backends: CloudBackend[];
  defaultBackend: CloudBackend;
  /** The operator's one agent image for every backend (multi-arch when both architectures run); see `images`. */
  image?: string;
  /**
   * The operator's image per CPU architecture in use (from `image` or `images`); an architecture missing here runs
   * the image the stack builds from agent/ (linux/arm64 and linux/amd64) into its own ECR repository.
   */
  images: Partial<Record<Architecture, string>>;
  /** Bedrock model (or inference profile) agents use when the task and its repo blueprint name none. */
  model: string;
  network: NetworkSettings;
  fleets: Record<string, FleetSettings>;
  defaultFleet?: string;
  repos: RepoSettings[];
  ecs: EcsSettings;
  agentcore: AgentCoreSettings;
  limits: StackLimits;
  /** Principals mapped to user names; roles whose session names are trusted. */
  identity: IdentityConfig;
  payloadExpirationDays: number;
  /** Seconds SSM may take to deliver a command to an instance. */
  dispatchTimeoutSeconds: number;
  fleetManagerSchedule: string;
  /** EventBridge schedule of the task reconciler (one pass per run). */
  reconcilerSchedule: string;
  logRetentionDays: number;
}

/** Raw values of the `agent-compute` namespace, already parsed (numbers, lists and maps as values). */
export type RawConfig = Partial<Record<string, unknown>>;
