/**
 * agent-compute: read and validate the stack config, build the enabled backends and the shared parts, export
 * what operators and the CLI need. The wiring lives in components/; this file only orders it.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { loadStackConfig } from "./components/config";
import { ECS_ARCHITECTURES } from "./components/config/aws-tables";
import type { Architecture } from "./components/config/types";
import { Network } from "./components/network";
import { AgentImage, type AgentImageRef, type AgentModels } from "./components/agent-image";
import { TaskTables } from "./components/task-tables";
import { PayloadBucket, PAYLOAD_PREFIX } from "./components/payload-bucket";
import { EcsAgentCluster } from "./components/ecs-agent-cluster";
import { AgentCoreRuntime } from "./components/agentcore-runtime";
import { Ec2Backend } from "./components/ec2-backend";
import { TaskOrchestrator } from "./components/task-orchestrator";
import { ApiEndpoint } from "./components/api-endpoint";
import { TaskApi } from "./components/task-api";
import { FleetManager } from "./components/fleet-manager";
import { RepoCredentialSecrets } from "./components/repo-credentials";
import { Reconciler } from "./components/reconciler";
import { Monitoring } from "./components/monitoring";
import type { ComputeBackend } from "./components/compute-backend";
import { runtimeConfigOf, withRuntimeSettings } from "./components/handler-function";
import { DEFAULT_LIMITS } from "./runtime/limits";

// 1. Config, checked before any resource exists.
const config = loadStackConfig();
const stack = `${pulumi.getProject()}-${pulumi.getStack()}`;
const has = (b: "agentcore" | "ecs" | "ec2") => config.backends.includes(b);
const region = aws.getRegionOutput().region;
const accountId = aws.getCallerIdentityOutput().accountId;

// 2. Shared parts.
const network = new Network(`${stack}-net`, { settings: config.network });
const tables = new TaskTables(`${stack}-tables`, { repos: config.repos });
const payloads = new PayloadBucket(`${stack}-payloads`, { expirationDays: config.payloadExpirationDays });
// The agent image of each CPU architecture: the operator's own (`image` or `images`), else agent/ built for
// linux/arm64 and linux/amd64 into a stack-owned ECR repository — only when some enabled backend runs it.
const ecsArchitecture = ECS_ARCHITECTURES[config.ecs.architecture];
const needsBuiltImage =
  (has("ecs") && !config.images[ecsArchitecture]) ||
  Object.values(config.fleets).some((f) => !config.images[f.architecture]) ||
  (has("agentcore") && !config.agentcore.image);
const builtImage = needsBuiltImage ? new AgentImage(`${stack}-agent-image`) : undefined;
const imageFor = (architecture: Architecture): string | AgentImageRef => config.images[architecture] ?? builtImage?.ref ?? "";
const imageUriFor = (architecture: Architecture) => {
  const image = imageFor(architecture);
  return pulumi.output(typeof image === "string" ? image : image.uri);
};
// Agents may invoke the stack's default model and the models its repo blueprints name; nothing else.
const models: AgentModels = { default: config.model, allowed: [config.model, ...config.repos.flatMap((r) => (r.model ? [r.model] : []))] };
// The API's endpoint exists before the Lambdas: it is the agents' channel, named in every agent's payload.
const endpoint = new ApiEndpoint(`${stack}-api-endpoint`);

// 3. Backends: only the enabled ones. Each states its own part of the runtime config and its control-plane grants.
const ecs = has("ecs")
  ? new EcsAgentCluster(`${stack}-ecs`, { settings: config.ecs, image: imageFor(ecsArchitecture), models, vpcId: network.vpcId, subnetIds: network.privateSubnetIds, region, accountId, logRetentionDays: config.logRetentionDays })
  : undefined;
const agentcore = has("agentcore")
  ? new AgentCoreRuntime(`${stack}-agentcore`, { settings: config.agentcore, image: builtImage?.ref, models, vpcId: network.vpcId, subnetIds: network.privateSubnetIds, region, accountId })
  : undefined;
// Named after the stack: its children keep the names `<stack>-agent-task` and `<stack>-fleet-<fleet>`.
const ec2 = has("ec2")
  ? new Ec2Backend(stack, {
      fleets: config.fleets,
      defaultFleet: config.defaultFleet,
      images: { arm64: imageFor("arm64"), x86_64: imageFor("x86_64") },
      models,
      vpcId: network.vpcId,
      subnetIds: network.privateSubnetIds,
      deliveryTimeoutSeconds: config.dispatchTimeoutSeconds,
      executionTimeoutSeconds: config.limits.taskTimeoutSeconds,
      tags: { "agent-compute:stack": stack },
      region,
      accountId,
    })
  : undefined;
const computeBackends: ComputeBackend[] = [ecs, agentcore, ec2].filter((b): b is NonNullable<typeof b> => b !== undefined);

// 4. The runtime config every Lambda reads (AGENT_COMPUTE_CONFIG), typed as the runtime's own RuntimeConfig.
const runtimeConfig = runtimeConfigOf({
  region,
  tables: tables.names,
  payload: { kind: "s3", bucket: payloads.bucketName, prefix: PAYLOAD_PREFIX },
  defaultBackend: config.defaultBackend,
  enabledBackends: config.backends,
  ecs: ecs?.runtimeSettings,
  ec2: ec2?.runtimeSettings,
  agentcore: agentcore?.runtimeSettings,
  agentChannel: { url: endpoint.url },
  identity: config.identity,
  // Every limit the runtime reads, stated: the stack's own over the code's defaults.
  limits: { ...DEFAULT_LIMITS, ...config.limits },
});

// Repository credentials for agents, handed out by the task API's agent channel; only the API may read them.
const credentialSecrets = new RepoCredentialSecrets(`${stack}-git`, { prefix: `${stack}/git`, region, accountId });

// 5. Orchestrator, API, reconciler, fleet manager.
const common = { tableArns: tables.arns, payloadBucketArn: payloads.arn, logRetentionDays: config.logRetentionDays };
const orchestrator = new TaskOrchestrator(`${stack}-orchestrator`, { runtimeConfig, computeBackends, taskTimeoutSeconds: config.limits.taskTimeoutSeconds, ...common });
const api = new TaskApi(`${stack}-api`, {
  api: endpoint.api,
  runtimeConfig: withRuntimeSettings(runtimeConfig, {
    orchestrator: { functionArn: orchestrator.aliasArn },
    credentials: { kind: "secrets-manager", prefix: credentialSecrets.prefix },
  }),
  orchestratorAliasArn: orchestrator.aliasArn,
  orchestratorFunctionArn: orchestrator.function.arn,
  computeBackends,
  credentialSecrets,
  ...common,
});
const reconciler = new Reconciler(`${stack}-reconciler`, {
  runtimeConfig: withRuntimeSettings(runtimeConfig, { orchestrator: { functionArn: orchestrator.aliasArn } }),
  orchestratorAliasArn: orchestrator.aliasArn,
  orchestratorFunctionArn: orchestrator.function.arn,
  computeBackends,
  schedule: config.reconcilerSchedule,
  ...common,
});
const fleetManager = ec2
  ? new FleetManager(`${stack}-fleet-manager`, {
      runtimeConfig,
      tableArns: tables.arns,
      autoScalingGroupArns: Object.values(ec2.fleets).map((f) => f.autoScalingGroupArn),
      autoScalingGroupNames: Object.values(ec2.fleets).map((f) => f.autoScalingGroupName),
      fleetNames: ec2.fleetNames,
      schedule: config.fleetManagerSchedule,
      region,
      accountId,
      logRetentionDays: config.logRetentionDays,
    })
  : undefined;

// 6. Alarms and the dashboard (docs/operations.md).
const monitoring = new Monitoring(`${stack}-monitoring`, {
  region,
  orchestratorFunctionName: orchestrator.function.name,
  functions: {
    orchestrator: orchestrator.function.name,
    api: api.function.name,
    reconciler: reconciler.function.name,
    ...(fleetManager ? { "fleet-manager": fleetManager.function.name } : {}),
  },
});

// 7. Outputs.
export const apiUrl = api.url;
export const enabledBackends = config.backends;
export const defaultBackend = config.defaultBackend;
export const tableNames = tables.names;
export const payloadBucket = payloads.bucketName;
export const orchestratorFunction = orchestrator.aliasArn;
export const ecsCluster = ecs?.cluster.name;
export const ecsTaskDefinitionFamily = ecs?.family;
export const agentCoreRuntimeArn = agentcore?.runtimeArn;
export const ec2Fleets = Object.fromEntries(Object.entries(ec2?.fleets ?? {}).map(([fleet, f]) => [fleet, f.autoScalingGroupName]));
export const ssmDocument = ec2?.document.documentName;
export const agentImages = Object.fromEntries(
  [...new Set([...(has("ecs") ? [ecsArchitecture] : []), ...(has("agentcore") ? ["arm64" as const] : []), ...Object.values(config.fleets).map((f) => f.architecture)])].map((a) => [a, imageUriFor(a)]),
);
export const repoCredentialSecretsPrefix = credentialSecrets.prefix;
export const dashboard = monitoring.dashboard.dashboardName;
