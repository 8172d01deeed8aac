/**
 * Stack config: read every key of the `agent-compute` namespace, check it in our own code, fill defaults.
 * Runs before any resource exists, so a bad stack fails with every wrong key named at once
 * (pulumi.InputPropertiesError), not halfway through an update.
 */
import * as pulumi from "@pulumi/pulumi";
import { DELIVERY_TIMEOUT_BOUNDS, LIMIT_BOUNDS } from "../../runtime/limits";
import { validateAgentCore } from "./agentcore";
import { scheduleExpressionProblem } from "./aws-tables";
import { validateBackends } from "./backends";
import { int, Problems, str } from "./checks";
import { DEFAULTS } from "./defaults";
import { checkDeployLimits, checkLambdaEnvironment } from "./deploy-limits";
import { validateEcs } from "./ecs";
import { validateFleets } from "./fleets";
import { validateIdentity } from "./identity";
import { architectureUses, validateImages } from "./images";
import { validateNetwork } from "./network";
import { validateRepos } from "./repos";
import { stackPrefixProblem } from "./resource-names";
import { PROJECT, type RawConfig, type StackConfig, type StackLimits } from "./types";

/** Every key this program reads, with how it is parsed: "string" as is, "json" through JSON (numbers, lists, maps). */
export const CONFIG_KEYS = {
  backends: "json",
  defaultBackend: "string",
  image: "string",
  images: "json",
  imageMultiArch: "json",
  model: "string",
  network: "json",
  fleets: "json",
  defaultFleet: "string",
  repos: "json",
  ecs: "json",
  agentcore: "json",
  maxConcurrentPerUser: "json",
  maxQueuedPerUser: "json",
  identity: "json",
  taskTimeoutSeconds: "json",
  pollIntervalSeconds: "json",
  heartbeatTimeoutSeconds: "json",
  retentionDays: "json",
  startupGraceSeconds: "json",
  payloadExpirationDays: "json",
  dispatchTimeoutSeconds: "json",
  fleetManagerSchedule: "string",
  reconcilerSchedule: "string",
  logRetentionDays: "json",
} as const;
export type ConfigKey = keyof typeof CONFIG_KEYS;

/**
 * Check a stack's raw config (already parsed: numbers, lists and maps as values) and fill every default.
 * Throws one pulumi.InputPropertiesError naming every wrong key; `knownKeys` problems include misspellings.
 * With `names` (the program's project and stack), also refuses a stack name too long for some resource's name.
 */
export function validateStackConfig(raw: RawConfig, names?: { project: string; stack: string }): StackConfig {
  const p = new Problems();
  if (names) {
    const problem = stackPrefixProblem(names.project, names.stack);
    if (problem) p.add("stack", problem);
  }
  const allowedKeys = Object.keys(CONFIG_KEYS);
  for (const key of Object.keys(raw)) {
    if (!allowedKeys.includes(key)) p.add(key, `is not a known ${PROJECT} setting; allowed: ${allowedKeys.join(", ")}`);
  }
  const { backends, defaultBackend } = validateBackends(p, raw);
  const model = str(p, "model", raw.model) ?? DEFAULTS.model;
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/.test(model)) p.add("model", `must be a Bedrock model id, inference profile id or ARN, got '${model}'`);
  const network = validateNetwork(p, raw.network);
  const { fleets, defaultFleet } = validateFleets(p, raw, backends.includes("ec2"));
  const repos = validateRepos(p, raw.repos, backends, fleets);
  const ecs = validateEcs(p, raw.ecs, backends.includes("ecs"));
  const { image, images } = validateImages(p, raw, architectureUses(backends, ecs, fleets));
  const imageKey = (a: string) => (raw.images !== undefined ? `images.${a}` : "image");
  const agentcore = validateAgentCore(p, raw.agentcore, backends.includes("agentcore"), images.arm64, imageKey("arm64"));
  const limit = (key: keyof typeof LIMIT_BOUNDS) => int(p, key, raw[key], DEFAULTS[key], LIMIT_BOUNDS[key].min, LIMIT_BOUNDS[key].max);
  const taskTimeoutSeconds = limit("taskTimeoutSeconds");
  const limits: StackLimits = {
    maxConcurrentPerUser: limit("maxConcurrentPerUser"),
    maxQueuedPerUser: limit("maxQueuedPerUser"),
    taskTimeoutSeconds,
    pollIntervalSeconds: limit("pollIntervalSeconds"),
    heartbeatTimeoutSeconds: limit("heartbeatTimeoutSeconds"),
    retentionDays: limit("retentionDays"),
    startupGraceSeconds: limit("startupGraceSeconds"),
  };
  if (backends.includes("agentcore") && taskTimeoutSeconds > agentcore.maxLifetimeSeconds) {
    p.add("taskTimeoutSeconds", `(${taskTimeoutSeconds}) exceeds agentcore.maxLifetimeSeconds (${agentcore.maxLifetimeSeconds}): AgentCore would end sessions first`);
  }
  checkDeployLimits(p, { backends, fleets, images, imageKey, taskTimeoutSeconds });
  const identity = validateIdentity(p, raw.identity);
  checkLambdaEnvironment(p, { backends, fleets, defaultFleet, images, identity });
  const schedule = scheduleExpression(p, "fleetManagerSchedule", raw.fleetManagerSchedule, DEFAULTS.fleetManagerSchedule);
  const reconcilerSchedule = scheduleExpression(p, "reconcilerSchedule", raw.reconcilerSchedule, DEFAULTS.reconcilerSchedule);
  const config: StackConfig = {
    backends,
    defaultBackend,
    ...(image !== undefined ? { image } : {}),
    images,
    model,
    network,
    fleets,
    defaultFleet,
    repos,
    ecs,
    agentcore,
    limits,
    identity,
    payloadExpirationDays: int(p, "payloadExpirationDays", raw.payloadExpirationDays, DEFAULTS.payloadExpirationDays, 1, 365),
    dispatchTimeoutSeconds: int(p, "dispatchTimeoutSeconds", raw.dispatchTimeoutSeconds, DEFAULTS.dispatchTimeoutSeconds, DELIVERY_TIMEOUT_BOUNDS.min, DELIVERY_TIMEOUT_BOUNDS.max),
    fleetManagerSchedule: schedule,
    reconcilerSchedule,
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

/** An EventBridge schedule expression, exactly as EventBridge accepts it (examples in the message). */
function scheduleExpression(p: Problems, key: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  const problem = typeof value === "string" ? scheduleExpressionProblem(value) : "must be a string";
  if (problem) {
    p.add(key, `${JSON.stringify(value)}: ${problem} (e.g. rate(1 minute), rate(5 minutes), rate(1 day), cron(0/5 * * * ? *))`);
    return fallback;
  }
  return value as string;
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
  return validateStackConfig(readRawConfig(), { project: pulumi.getProject(), stack: pulumi.getStack() });
}
