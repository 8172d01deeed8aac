/**
 * Stack config: read every key of the `agent-compute` namespace, check it in our own code, fill defaults.
 * Runs before any resource exists, so a bad stack fails with every wrong key named at once
 * (pulumi.InputPropertiesError), not halfway through an update.
 */
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_LIMITS, FLEET_DEFAULTS, POLL_INTERVAL_BOUNDS } from "../runtime/config";
import { AGENT_TASK_DOCUMENT_PARAMETERS } from "../runtime/fleet/document";

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
}

export type NetworkSettings =
  | { mode: "existing"; vpcId: string; privateSubnetIds: string[] }
  | { mode: "create"; cidrBlock: string; availabilityZones: number; natGateways: "Single" | "OnePerAz" };

export interface EcsSettings {
  cpu: number;
  memory: number;
  fargateSpot: boolean;
  ephemeralStorageGiB: number;
}

export interface AgentCoreSettings {
  /** ECR image URI the runtime runs (AgentCore accepts only ECR). */
  image: string;
  networkMode: "VPC" | "PUBLIC";
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
}

export interface StackLimits {
  maxConcurrentPerUser: number;
  taskTimeoutSeconds: number;
  pollIntervalSeconds: number;
  heartbeatTimeoutSeconds: number;
  retentionDays: number;
}

export interface StackConfig {
  backends: CloudBackend[];
  defaultBackend: CloudBackend;
  image: string;
  network: NetworkSettings;
  fleets: Record<string, FleetSettings>;
  defaultFleet?: string;
  repos: RepoSettings[];
  ecs: EcsSettings;
  agentcore: AgentCoreSettings;
  limits: StackLimits;
  payloadExpirationDays: number;
  /** Seconds SSM may take to deliver a command to an instance. */
  dispatchTimeoutSeconds: number;
  fleetManagerSchedule: string;
  logRetentionDays: number;
}

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
};

export const DEFAULTS = {
  backends: ["ecs"] as CloudBackend[],
  ecs: { cpu: 2048, memory: 4096, fargateSpot: false, ephemeralStorageGiB: 30 } as EcsSettings,
  agentcore: { networkMode: "VPC", idleTimeoutSeconds: 900, maxLifetimeSeconds: 28800 } as const,
  network: { cidrBlock: "10.40.0.0/16", availabilityZones: 2, natGateways: "Single" } as const,
  payloadExpirationDays: 7,
  dispatchTimeoutSeconds: 600,
  fleetManagerSchedule: "rate(1 minute)",
  logRetentionDays: 30,
};

/** Fargate's valid task sizes: CPU units → allowed memory (MiB). */
export const FARGATE_SIZES: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

/** Every key this program reads, with how it is parsed: "string" as is, "json" through JSON (numbers, lists, maps). */
export const CONFIG_KEYS = {
  backends: "json",
  defaultBackend: "string",
  image: "string",
  network: "json",
  fleets: "json",
  defaultFleet: "string",
  repos: "json",
  ecs: "json",
  agentcore: "json",
  maxConcurrentPerUser: "json",
  taskTimeoutSeconds: "json",
  pollIntervalSeconds: "json",
  heartbeatTimeoutSeconds: "json",
  retentionDays: "json",
  payloadExpirationDays: "json",
  dispatchTimeoutSeconds: "json",
  fleetManagerSchedule: "string",
  logRetentionDays: "json",
} as const;
export type ConfigKey = keyof typeof CONFIG_KEYS;
export type RawConfig = Partial<Record<string, unknown>>;

const FLEET_KEYS = [
  "instanceType",
  "minSize",
  "maxSize",
  "warmBuffer",
  "rootVolumeGiB",
  "spot",
  "spotInstanceTypes",
  "amiParameter",
  "readyDeadlineSeconds",
  "maxInstanceLifetimeSeconds",
  "maxTasksPerInstance",
];
const REPO_KEYS = ["backend", "fleet", "model", "maxTurns", "maxBudgetUsd", "pollIntervalSeconds"];
const ECS_KEYS = ["cpu", "memory", "fargateSpot", "ephemeralStorageGiB"];
const AGENTCORE_KEYS = ["image", "networkMode", "idleTimeoutSeconds", "maxLifetimeSeconds"];
const NETWORK_KEYS = ["vpcId", "privateSubnetIds", "cidrBlock", "availabilityZones", "natGateways"];
const FLEET_NAME = /^[a-z][a-z0-9-]{0,19}$/;
const INSTANCE_TYPE = /^([a-z]+)(\d+)([a-z-]*)\.([a-z0-9]+)$/;
const ECR_IMAGE = /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/[a-z0-9._\/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/;
const SCHEDULE = /^(rate\(\d+ (minute|minutes|hour|hours)\)|cron\(.+\))$/;

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** Architecture and GPU-ness of an EC2 instance type, or undefined when the name is not an instance type. */
export function describeInstanceType(instanceType: string): { architecture: Architecture; gpu: boolean } | undefined {
  const m = INSTANCE_TYPE.exec(instanceType);
  if (!m) return undefined;
  const [, family, , attributes] = m;
  const architecture: Architecture = attributes.includes("g") || family === "a" ? "arm64" : "x86_64";
  const gpu = family === "g" || family === "p" || family === "gr";
  return { architecture, gpu };
}

/** The SSM public parameter of the default AMI: AL2023, or the AL2023 NVIDIA-driver base image for GPU types. */
export function defaultAmiParameter(architecture: Architecture, gpu: boolean): string {
  return gpu
    ? `/aws/service/deeplearning/ami/${architecture}/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id`
    : `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${architecture}`;
}

/** Collects problems as InputPropertyError details, keyed by the config path an operator would edit. */
class Problems {
  readonly list: pulumi.InputPropertyErrorDetails[] = [];
  add(propertyPath: string, reason: string): void {
    this.list.push({ propertyPath, reason });
  }
  has(prefix: string): boolean {
    return this.list.some((p) => p.propertyPath === prefix || p.propertyPath.startsWith(`${prefix}.`));
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function unknownKeys(p: Problems, path: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) p.add(`${path}.${key}`, `is not a known setting; allowed: ${allowed.join(", ")}`);
  }
}

function int(p: Problems, path: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    p.add(path, `must be a whole number between ${min} and ${max}, got ${JSON.stringify(value)}`);
    return fallback;
  }
  if (value < min || value > max) {
    p.add(path, `must be between ${min} and ${max}, got ${value}`);
    return fallback;
  }
  return value;
}

function optionalNumber(p: Problems, path: string, value: unknown, min: number, max: number, integer: boolean): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    p.add(path, `must be a ${integer ? "whole number" : "number"} between ${min} and ${max}, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

function bool(p: Problems, path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "boolean") {
    p.add(path, `must be true or false, got ${JSON.stringify(value)}`);
    return fallback;
  }
  return value;
}

function str(p: Problems, path: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.trim() === "") {
    p.add(path, `must be a non-empty string, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

function oneOf<T extends string>(p: Problems, path: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    p.add(path, `is ${JSON.stringify(value)}; allowed: ${allowed.join(", ")}`);
    return fallback;
  }
  return value as T;
}

function validateBackends(p: Problems, raw: RawConfig): { backends: CloudBackend[]; defaultBackend: CloudBackend } {
  let backends: CloudBackend[] = [...DEFAULTS.backends];
  if (raw.backends !== undefined) {
    if (!Array.isArray(raw.backends) || raw.backends.length === 0) {
      p.add("backends", `must be a non-empty list; allowed values: ${CLOUD_BACKENDS.join(", ")}`);
    } else {
      backends = [];
      raw.backends.forEach((b, i) => {
        if (typeof b !== "string" || !(CLOUD_BACKENDS as readonly string[]).includes(b)) {
          p.add(`backends[${i}]`, `is ${JSON.stringify(b)}; allowed: ${CLOUD_BACKENDS.join(", ")}`);
        } else if (backends.includes(b as CloudBackend)) {
          p.add(`backends[${i}]`, `'${b}' is listed twice`);
        } else {
          backends.push(b as CloudBackend);
        }
      });
    }
  }
  let defaultBackend = backends[0] ?? "ecs";
  if (raw.defaultBackend !== undefined) {
    const d = raw.defaultBackend;
    if (typeof d !== "string" || !(CLOUD_BACKENDS as readonly string[]).includes(d)) {
      p.add("defaultBackend", `is ${JSON.stringify(d)}; allowed: ${CLOUD_BACKENDS.join(", ")}`);
    } else if (!backends.includes(d as CloudBackend)) {
      p.add("defaultBackend", `'${d}' is not enabled; enabled backends: ${backends.join(", ")}`);
    } else {
      defaultBackend = d as CloudBackend;
    }
  }
  return { backends, defaultBackend };
}

function validateNetwork(p: Problems, raw: unknown): NetworkSettings {
  const fallback: NetworkSettings = { mode: "create", ...DEFAULTS.network };
  if (raw === undefined || raw === null) return fallback;
  if (!isObject(raw)) {
    p.add("network", `must be an object with either vpcId + privateSubnetIds, or cidrBlock/availabilityZones/natGateways`);
    return fallback;
  }
  unknownKeys(p, "network", raw, NETWORK_KEYS);
  const vpcId = raw.vpcId;
  const subnets = raw.privateSubnetIds;
  if (vpcId !== undefined || subnets !== undefined) {
    for (const key of ["cidrBlock", "availabilityZones", "natGateways"]) {
      if (raw[key] !== undefined) p.add(`network.${key}`, "applies only when the stack creates its VPC; remove it or remove network.vpcId");
    }
    if (vpcId === undefined) {
      p.add("network.vpcId", "is required when network.privateSubnetIds is given (the VPC those subnets belong to)");
    } else if (typeof vpcId !== "string" || !/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) {
      p.add("network.vpcId", `must be a VPC id like vpc-0abc12345, got ${JSON.stringify(vpcId)}`);
    }
    if (subnets === undefined) {
      p.add("network.privateSubnetIds", "is required with network.vpcId: the private subnets tasks and instances run in");
    } else if (!Array.isArray(subnets) || subnets.length === 0) {
      p.add("network.privateSubnetIds", "must be a non-empty list of subnet ids (subnet-…)");
    } else {
      subnets.forEach((s, i) => {
        if (typeof s !== "string" || !/^subnet-[0-9a-f]{8,17}$/.test(s)) {
          p.add(`network.privateSubnetIds[${i}]`, `must be a subnet id like subnet-0abc12345, got ${JSON.stringify(s)}`);
        }
      });
    }
    if (p.has("network")) return fallback;
    return { mode: "existing", vpcId: vpcId as string, privateSubnetIds: subnets as string[] };
  }
  const cidrBlock = raw.cidrBlock ?? DEFAULTS.network.cidrBlock;
  if (typeof cidrBlock !== "string" || !/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/.test(cidrBlock)) {
    p.add("network.cidrBlock", `must be an IPv4 CIDR from /16 to /24, got ${JSON.stringify(cidrBlock)}`);
  }
  return {
    mode: "create",
    cidrBlock: cidrBlock as string,
    availabilityZones: int(p, "network.availabilityZones", raw.availabilityZones, DEFAULTS.network.availabilityZones, 2, 6),
    natGateways: oneOf(p, "network.natGateways", raw.natGateways, ["Single", "OnePerAz"] as const, DEFAULTS.network.natGateways),
  };
}

function validateFleet(p: Problems, name: string, raw: unknown): FleetSettings | undefined {
  const path = `fleets.${name}`;
  if (!FLEET_NAME.test(name)) {
    p.add(path, "fleet names are 1–20 lowercase letters, digits or '-', starting with a letter");
  }
  const settings = raw ?? {};
  if (!isObject(settings)) {
    p.add(path, `must be an object with any of: ${FLEET_KEYS.join(", ")}`);
    return undefined;
  }
  unknownKeys(p, path, settings, FLEET_KEYS);
  const instanceType = str(p, `${path}.instanceType`, settings.instanceType) ?? DEFAULT_FLEET.instanceType;
  const described = describeInstanceType(instanceType);
  if (!described) p.add(`${path}.instanceType`, `'${instanceType}' is not an EC2 instance type (e.g. m7g.xlarge, g5.xlarge)`);
  const minSize = int(p, `${path}.minSize`, settings.minSize, DEFAULT_FLEET.minSize, 0, 1000);
  const maxSize = int(p, `${path}.maxSize`, settings.maxSize, Math.max(DEFAULT_FLEET.maxSize, minSize), 1, 1000);
  if (minSize > maxSize) p.add(`${path}.maxSize`, `(${maxSize}) is below minSize (${minSize})`);
  const warmBuffer = int(p, `${path}.warmBuffer`, settings.warmBuffer, Math.min(DEFAULT_FLEET.warmBuffer, maxSize), 0, 1000);
  if (warmBuffer > maxSize) p.add(`${path}.warmBuffer`, `(${warmBuffer}) is above maxSize (${maxSize})`);
  const rootVolumeGiB = int(p, `${path}.rootVolumeGiB`, settings.rootVolumeGiB, DEFAULT_FLEET.rootVolumeGiB, 30, 16384);
  const spot = bool(p, `${path}.spot`, settings.spot, DEFAULT_FLEET.spot);
  const architecture = described?.architecture ?? "arm64";
  const spotInstanceTypes: string[] = [];
  if (settings.spotInstanceTypes !== undefined) {
    if (!spot) p.add(`${path}.spotInstanceTypes`, "applies only to a Spot fleet (spot: true)");
    if (!Array.isArray(settings.spotInstanceTypes)) {
      p.add(`${path}.spotInstanceTypes`, "must be a list of instance types, e.g. [\"m7g.2xlarge\", \"m6g.xlarge\"]");
    } else {
      settings.spotInstanceTypes.forEach((t, i) => {
        const d = typeof t === "string" ? describeInstanceType(t) : undefined;
        if (!d) p.add(`${path}.spotInstanceTypes[${i}]`, `${JSON.stringify(t)} is not an EC2 instance type`);
        else if (d.architecture !== architecture) p.add(`${path}.spotInstanceTypes[${i}]`, `'${t}' is ${d.architecture}; the fleet's instanceType ${instanceType} is ${architecture}`);
        else if (t !== instanceType && !spotInstanceTypes.includes(t as string)) spotInstanceTypes.push(t as string);
      });
    }
  }
  const readyDeadlineSeconds = int(p, `${path}.readyDeadlineSeconds`, settings.readyDeadlineSeconds, DEFAULT_FLEET.readyDeadlineSeconds, 60, 7200);
  const maxInstanceLifetimeSeconds = int(p, `${path}.maxInstanceLifetimeSeconds`, settings.maxInstanceLifetimeSeconds, DEFAULT_FLEET.maxInstanceLifetimeSeconds, 3600, 365 * 24 * 3600);
  const maxTasksPerInstance = optionalNumber(p, `${path}.maxTasksPerInstance`, settings.maxTasksPerInstance, 1, 1_000_000, true);
  const gpu = described?.gpu ?? false;
  let amiParameter = defaultAmiParameter(architecture, gpu);
  if (settings.amiParameter !== undefined) {
    const v = str(p, `${path}.amiParameter`, settings.amiParameter);
    if (v !== undefined && !v.startsWith("/")) p.add(`${path}.amiParameter`, `must be an SSM parameter path starting with '/', got '${v}'`);
    else if (v !== undefined) amiParameter = v;
  }
  return {
    instanceType,
    architecture,
    gpu,
    minSize,
    maxSize,
    warmBuffer,
    rootVolumeGiB,
    spot,
    spotInstanceTypes,
    amiParameter,
    readyDeadlineSeconds,
    maxInstanceLifetimeSeconds,
    ...(maxTasksPerInstance !== undefined ? { maxTasksPerInstance } : {}),
  };
}

function validateFleets(p: Problems, raw: RawConfig, ec2Enabled: boolean): { fleets: Record<string, FleetSettings>; defaultFleet?: string } {
  const fleets: Record<string, FleetSettings> = {};
  if (!ec2Enabled) {
    if (raw.fleets !== undefined) p.add("fleets", "is set but backend 'ec2' is not enabled; add ec2 to backends or remove fleets");
    if (raw.defaultFleet !== undefined) p.add("defaultFleet", "is set but backend 'ec2' is not enabled");
    return { fleets };
  }
  const given = raw.fleets ?? { default: {} };
  if (!isObject(given) || Object.keys(given).length === 0) {
    p.add("fleets", "must map one or more fleet names to settings, e.g. {\"default\": {\"instanceType\": \"m7g.xlarge\"}}");
    return { fleets };
  }
  for (const [name, settings] of Object.entries(given)) {
    const f = validateFleet(p, name, settings);
    if (f) fleets[name] = f;
  }
  const names = Object.keys(given);
  let defaultFleet = names.includes("default") ? "default" : names[0];
  if (raw.defaultFleet !== undefined) {
    if (typeof raw.defaultFleet !== "string" || !names.includes(raw.defaultFleet)) {
      p.add("defaultFleet", `is ${JSON.stringify(raw.defaultFleet)}; allowed: ${names.join(", ")}`);
    } else {
      defaultFleet = raw.defaultFleet;
    }
  }
  return { fleets, defaultFleet };
}

function validateRepos(p: Problems, raw: unknown, backends: CloudBackend[], fleets: Record<string, FleetSettings>): RepoSettings[] {
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
    const maxTurns = optionalNumber(p, `${path}.maxTurns`, b.maxTurns, 1, 10000, true);
    if (maxTurns !== undefined) repo.maxTurns = maxTurns;
    const maxBudgetUsd = optionalNumber(p, `${path}.maxBudgetUsd`, b.maxBudgetUsd, 0.01, 100000, false);
    if (maxBudgetUsd !== undefined) repo.maxBudgetUsd = maxBudgetUsd;
    const poll = optionalNumber(p, `${path}.pollIntervalSeconds`, b.pollIntervalSeconds, POLL_INTERVAL_BOUNDS.min, POLL_INTERVAL_BOUNDS.max, true);
    if (poll !== undefined) repo.pollIntervalSeconds = poll;
    repos.push(repo);
  }
  return repos;
}

function validateEcs(p: Problems, raw: unknown, enabled: boolean): EcsSettings {
  if (raw === undefined || raw === null) return { ...DEFAULTS.ecs };
  if (!enabled) p.add("ecs", "is set but backend 'ecs' is not enabled; add ecs to backends or remove this key");
  if (!isObject(raw)) {
    p.add("ecs", `must be an object with any of: ${ECS_KEYS.join(", ")}`);
    return { ...DEFAULTS.ecs };
  }
  unknownKeys(p, "ecs", raw, ECS_KEYS);
  const cpuAllowed = Object.keys(FARGATE_SIZES).map(Number);
  let cpu = DEFAULTS.ecs.cpu;
  if (raw.cpu !== undefined) {
    if (typeof raw.cpu !== "number" || !cpuAllowed.includes(raw.cpu)) p.add("ecs.cpu", `is ${JSON.stringify(raw.cpu)}; allowed: ${cpuAllowed.join(", ")}`);
    else cpu = raw.cpu;
  }
  // Without an explicit memory, keep the default when Fargate allows it with this cpu, else the smallest allowed.
  let memory = FARGATE_SIZES[cpu].includes(DEFAULTS.ecs.memory) ? DEFAULTS.ecs.memory : FARGATE_SIZES[cpu][0];
  if (raw.memory !== undefined) {
    const allowed = FARGATE_SIZES[cpu];
    if (typeof raw.memory !== "number" || !allowed.includes(raw.memory)) {
      p.add("ecs.memory", `is ${JSON.stringify(raw.memory)}; with cpu ${cpu} Fargate allows: ${allowed.join(", ")}`);
    } else memory = raw.memory;
  }
  return {
    cpu,
    memory,
    fargateSpot: bool(p, "ecs.fargateSpot", raw.fargateSpot, DEFAULTS.ecs.fargateSpot),
    ephemeralStorageGiB: int(p, "ecs.ephemeralStorageGiB", raw.ephemeralStorageGiB, DEFAULTS.ecs.ephemeralStorageGiB, 21, 200),
  };
}

function validateAgentCore(p: Problems, raw: unknown, enabled: boolean, image: string | undefined): AgentCoreSettings {
  const settings = raw ?? {};
  if (raw !== undefined && raw !== null && !enabled) p.add("agentcore", "is set but backend 'agentcore' is not enabled");
  if (!isObject(settings)) {
    p.add("agentcore", `must be an object with any of: ${AGENTCORE_KEYS.join(", ")}`);
    return { image: image ?? "", ...DEFAULTS.agentcore };
  }
  unknownKeys(p, "agentcore", settings, AGENTCORE_KEYS);
  const own = str(p, "agentcore.image", settings.image);
  const runtimeImage = own ?? image ?? "";
  if (enabled && runtimeImage && !ECR_IMAGE.test(runtimeImage)) {
    p.add(own ? "agentcore.image" : "image", `AgentCore runs only images from Amazon ECR (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>), got '${runtimeImage}'; set agentcore.image to an ECR copy`);
  }
  const idle = int(p, "agentcore.idleTimeoutSeconds", settings.idleTimeoutSeconds, DEFAULTS.agentcore.idleTimeoutSeconds, 60, 28800);
  const life = int(p, "agentcore.maxLifetimeSeconds", settings.maxLifetimeSeconds, DEFAULTS.agentcore.maxLifetimeSeconds, 60, 28800);
  if (idle > life) p.add("agentcore.idleTimeoutSeconds", `(${idle}) exceeds agentcore.maxLifetimeSeconds (${life})`);
  return {
    image: runtimeImage,
    networkMode: oneOf(p, "agentcore.networkMode", settings.networkMode, ["VPC", "PUBLIC"] as const, DEFAULTS.agentcore.networkMode),
    idleTimeoutSeconds: idle,
    maxLifetimeSeconds: life,
  };
}

/**
 * Check a stack's raw config (already parsed: numbers, lists and maps as values) and fill every default.
 * Throws one pulumi.InputPropertiesError naming every wrong key; `knownKeys` problems include misspellings.
 */
export function validateStackConfig(raw: RawConfig): StackConfig {
  const p = new Problems();
  const allowedKeys = Object.keys(CONFIG_KEYS);
  for (const key of Object.keys(raw)) {
    if (!allowedKeys.includes(key)) p.add(key, `is not a known ${PROJECT} setting; allowed: ${allowedKeys.join(", ")}`);
  }
  const { backends, defaultBackend } = validateBackends(p, raw);
  const image = str(p, "image", raw.image);
  if (image === undefined && !p.has("image")) p.add("image", "is required: the agent container image every backend runs (e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.0)");
  if (image !== undefined && backends.includes("ec2") && !new RegExp(AGENT_TASK_DOCUMENT_PARAMETERS.image.allowedPattern).test(image)) {
    p.add("image", `'${image}' cannot be sent to EC2 instances: the SSM document accepts only ${AGENT_TASK_DOCUMENT_PARAMETERS.image.allowedPattern}`);
  }
  const network = validateNetwork(p, raw.network);
  const { fleets, defaultFleet } = validateFleets(p, raw, backends.includes("ec2"));
  const repos = validateRepos(p, raw.repos, backends, fleets);
  const ecs = validateEcs(p, raw.ecs, backends.includes("ecs"));
  const agentcore = validateAgentCore(p, raw.agentcore, backends.includes("agentcore"), image);
  const taskTimeoutSeconds = int(p, "taskTimeoutSeconds", raw.taskTimeoutSeconds, DEFAULT_LIMITS.taskTimeoutSeconds, 300, 7 * 24 * 3600);
  const limits: StackLimits = {
    maxConcurrentPerUser: int(p, "maxConcurrentPerUser", raw.maxConcurrentPerUser, DEFAULT_LIMITS.maxConcurrentPerUser, 1, 10000),
    taskTimeoutSeconds,
    pollIntervalSeconds: int(p, "pollIntervalSeconds", raw.pollIntervalSeconds, DEFAULT_LIMITS.pollIntervalSeconds, POLL_INTERVAL_BOUNDS.min, POLL_INTERVAL_BOUNDS.max),
    heartbeatTimeoutSeconds: int(p, "heartbeatTimeoutSeconds", raw.heartbeatTimeoutSeconds, DEFAULT_LIMITS.heartbeatTimeoutSeconds, 60, 3600),
    retentionDays: int(p, "retentionDays", raw.retentionDays, DEFAULT_LIMITS.retentionDays, 1, 3650),
  };
  if (backends.includes("agentcore") && taskTimeoutSeconds > agentcore.maxLifetimeSeconds) {
    p.add("taskTimeoutSeconds", `(${taskTimeoutSeconds}) exceeds agentcore.maxLifetimeSeconds (${agentcore.maxLifetimeSeconds}): AgentCore would end sessions first`);
  }
  const schedule = raw.fleetManagerSchedule ?? DEFAULTS.fleetManagerSchedule;
  if (typeof schedule !== "string" || !SCHEDULE.test(schedule)) {
    p.add("fleetManagerSchedule", `must be an EventBridge rate(...) or cron(...) expression, got ${JSON.stringify(schedule)}`);
  }
  const config: StackConfig = {
    backends,
    defaultBackend,
    image: image ?? "",
    network,
    fleets,
    defaultFleet,
    repos,
    ecs,
    agentcore,
    limits,
    payloadExpirationDays: int(p, "payloadExpirationDays", raw.payloadExpirationDays, DEFAULTS.payloadExpirationDays, 1, 365),
    dispatchTimeoutSeconds: int(p, "dispatchTimeoutSeconds", raw.dispatchTimeoutSeconds, DEFAULTS.dispatchTimeoutSeconds, 30, 2592000),
    fleetManagerSchedule: schedule as string,
    logRetentionDays: int(p, "logRetentionDays", raw.logRetentionDays, DEFAULTS.logRetentionDays, 1, 3653),
  };
  if (p.list.length) {
    throw new pulumi.InputPropertiesError({
      message: `invalid ${PROJECT} stack config (${p.list.length} problem${p.list.length > 1 ? "s" : ""}):\n` +
        p.list.map((e) => `  ${PROJECT}:${e.propertyPath} ${e.reason}`).join("\n"),
      errors: p.list,
    });
  }
  return config;
}

/** Read the stack's raw values of the `agent-compute` namespace; JSON keys that do not parse become problems. */
export function readRawConfig(all: Record<string, string> = pulumi.runtime.allConfig()): RawConfig {
  const raw: RawConfig = {};
  const parseErrors: pulumi.InputPropertyErrorDetails[] = [];
  for (const [fullKey, value] of Object.entries(all)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    const kind = (CONFIG_KEYS as Record<string, string>)[key];
    if (kind === "json") {
      try {
        raw[key] = JSON.parse(value);
      } catch {
        parseErrors.push({ propertyPath: key, reason: `is not valid YAML/JSON structured config: ${value.slice(0, 80)}` });
      }
    } else if (value !== "") {
      // Pulumi.yaml gives optional string keys a "" default: that means unset.
      raw[key] = value;
    }
  }
  if (parseErrors.length) {
    throw new pulumi.InputPropertiesError({ message: `invalid ${PROJECT} stack config`, errors: parseErrors });
  }
  return raw;
}

/** The stack's validated config: the program's first step. */
export function loadStackConfig(): StackConfig {
  return validateStackConfig(readRawConfig());
}
