import { BACKEND_TYPES, isBackendType, type BackendType } from "./compute/handle";
import { DEFAULT_LIMITS } from "./limits";
import { identityConfigProblems } from "./identity";

/**
 * Everything the runtime needs to know about its stack. The Pulumi program writes it, as JSON, into
 * the AGENT_COMPUTE_CONFIG environment variable of each Lambda; the local platform builds it in code.
 */
export interface RuntimeConfig {
  region: string;
  /** Explicit service endpoints: the local platform's embedded DynamoDB. Deployed stacks leave this unset. */
  endpoints?: { dynamodb?: string };
  tables: {
    tasks: string;
    events: string;
    leases: string;
    concurrency: string;
    repos: string;
    /** EC2 capacity waiters (runtime/fleet/queue.ts); needed only when backend ec2 is enabled. */
    waiters?: string;
  };
  payload: { kind: "s3"; bucket: string; prefix?: string } | { kind: "file"; dir: string };
  defaultBackend: BackendType;
  enabledBackends: BackendType[];
  ecs?: EcsConfig;
  ec2?: Ec2Config;
  agentcore?: AgentCoreConfig;
  local?: LocalConfig;
  /**
   * Where repository credentials for the agent channel come from: Secrets Manager under a prefix (deployed
   * stacks), or the operator's token on the local platform (runtime/credentials/). Unset: none.
   */
  credentials?: { kind: "secrets-manager"; prefix: string } | { kind: "local" };
  /** The durable orchestrator the API starts one execution of per task (qualified alias ARN). */
  orchestrator?: { functionArn: string };
  /** Where agents report: the task API's base URL, handed to each agent inside its payload. */
  agentChannel?: AgentChannelConfig;
  /** Who a caller is: principals mapped to user names, and roles whose session names are trusted. */
  identity?: IdentityConfig;
  limits: LimitsConfig;
}

export interface AgentChannelConfig {
  /** Base URL of the API that serves /agent/v1 (no trailing slash). */
  url: string;
  /** Seconds a presigned payload URL stays valid (default 900). */
  payloadUrlSeconds?: number;
}

/** 15 minutes: an ECS task's image pull or an SSM delivery fits; a leaked URL is soon useless. */
export const DEFAULT_PAYLOAD_URL_SECONDS = 900;

export interface IdentityConfig {
  /** Principal (see runtime/identity.ts for the forms) → user name. */
  users?: Record<string, string>;
  /** Role ARNs whose trust policy pins the session name to the person (sts:SourceIdentity / aws:username). */
  sessionRoles?: string[];
}

export interface EcsConfig {
  cluster: string;
  /** Task definition family (or family:revision). */
  taskDefinition: string;
  containerName: string;
  subnets: string[];
  securityGroups: string[];
  fargateSpot?: boolean;
}

export interface Ec2FleetConfig {
  /** Auto Scaling group of this fleet: scale-in protection, scaling, draining, health. */
  autoScalingGroupName?: string;
  /** Agent image this fleet's instances run (the image of its CPU architecture); unset: ec2.image. */
  image?: string;
  /** Idle ready instances kept beyond current demand, for a fast start (fleet scaling; default 0). */
  warmBuffer?: number;
  /** An instance that has not reported boot=ready this long after launch is marked unhealthy (default 900 s). */
  readyDeadlineSeconds?: number;
  /** An instance older than this is drained and replaced once idle (default 86,400 s = 24 h). */
  maxInstanceLifetimeSeconds?: number;
  /** Scale-in drains an idle instance only after it has been idle this long (default 120 s). */
  scaleInIdleSeconds?: number;
  /** An instance that ran this many tasks is drained and replaced (default: unlimited). */
  maxTasksPerInstance?: number;
  /** Name of the group's termination lifecycle hook, completed once the instance holds no task. */
  terminationHookName?: string;
}

export interface Ec2Config {
  /** The stack-owned SSM Command document that runs one agent task. */
  documentName: string;
  fleets: Record<string, Ec2FleetConfig>;
  defaultFleet: string;
  /** Seconds SSM may take to deliver the command to the instance (SendCommand TimeoutSeconds). */
  deliveryTimeoutSeconds: number;
  /** Seconds the agent may run on the instance (the document's executionTimeout parameter). */
  executionTimeoutSeconds: number;
  /** Agent image an instance runs when its fleet names none. */
  image: string;
}

export interface AgentCoreConfig {
  runtimeArn: string;
  qualifier?: string;
}

export interface LocalConfig {
  /** argv of the agent process; the reference agent when omitted. */
  command?: string[];
  /** Folder for payloads, logs and exit files of runs. */
  workDir: string;
  /** Extra environment for the agent (e.g. the embedded store's endpoint). */
  env?: Record<string, string>;
}

export interface LimitsConfig {
  maxConcurrentPerUser: number;
  /** Tasks one user may have waiting (SUBMITTED or QUEUED); a submit past it is refused with 429. */
  maxQueuedPerUser: number;
  taskTimeoutSeconds: number;
  pollIntervalSeconds: number;
  /** A RUNNING task whose last heartbeat is older than this has lost its agent. */
  heartbeatTimeoutSeconds: number;
  /** Consecutive poll errors before the task fails. */
  maxPollErrors: number;
  /** Consecutive polls that see the compute finished while the task is not terminal, before it fails. */
  maxFinishedPolls: number;
  /** Days a finished record is kept before TTL removes it. */
  retentionDays: number;
  /**
   * How long a started session may go without its first RUNNING or heartbeat: Fargate provisioning and multi-GB
   * image pulls take minutes. A repo blueprint may override it (startup_grace_seconds).
   */
  startupGraceSeconds: number;
  /**
   * The longest the orchestrator sleeps between polls of a started task. The agent's terminal report (and a
   * cancel) wakes it at once, so polls are only the safety net: they start at pollIntervalSeconds, double, and
   * stop growing here — which bounds a task's durable operations (see runtime/orchestrator/await-schedule.ts).
   */
  maxPollIntervalSeconds: number;
  /** A finished task's compute that still runs after this many seconds is stopped (an agent hung after its result). */
  computeStopGraceSeconds: number;
  /**
   * New attempts a task gets when its compute is lost to infrastructure (Spot interruption, instance terminated,
   * undeliverable command) rather than to the agent. Optional so that older configs keep working (default 1).
   */
  infraRetries?: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export const CONFIG_ENV = "AGENT_COMPUTE_CONFIG";

/** Read and check the config a deployed Lambda was given. */
export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const raw = env[CONFIG_ENV];
  if (!raw) throw new ConfigError(`${CONFIG_ENV} is not set`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`${CONFIG_ENV} is not valid JSON: ${(err as Error).message}`);
  }
  return checkRuntimeConfig(parsed as RuntimeConfig);
}

export function checkRuntimeConfig(config: RuntimeConfig): RuntimeConfig {
  const problems: string[] = [];
  if (!config.region) problems.push("region is required");
  for (const key of ["tasks", "events", "leases", "concurrency", "repos"] as const) {
    if (!config.tables?.[key]) problems.push(`tables.${key} is required`);
  }
  const enabled = config.enabledBackends ?? [];
  for (const b of enabled) {
    if (!isBackendType(b)) problems.push(`enabledBackends has '${b}'; allowed: ${BACKEND_TYPES.join(", ")}`);
  }
  if (!enabled.includes(config.defaultBackend)) {
    problems.push(`defaultBackend '${config.defaultBackend}' is not among enabledBackends (${enabled.join(", ")})`);
  }
  for (const b of enabled) {
    if (b !== "local" && !config[b]) problems.push(`backend '${b}' is enabled but its '${b}' settings are missing`);
  }
  problems.push(...identityConfigProblems(config.identity));
  if (config.agentChannel && !/^https?:\/\/[^\s/]+/.test(config.agentChannel.url ?? "")) problems.push("agentChannel.url must be an http(s) URL");
  if (problems.length) throw new ConfigError(`invalid runtime config: ${problems.join("; ")}`);
  return { ...config, limits: { ...DEFAULT_LIMITS, ...config.limits } };
}
