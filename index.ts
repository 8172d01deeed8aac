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
import { EcsAgentCluster, AGENT_CONTAINER } from "./components/ecs-agent-cluster";
import { AgentCoreRuntime } from "./components/agentcore-runtime";
import { Ec2AgentFleet } from "./components/ec2-agent-fleet";
import { CommandDocument } from "./components/command-document";
import { TaskOrchestrator } from "./components/task-orchestrator";
import { ApiEndpoint } from "./components/api-endpoint";
import { TaskApi } from "./components/task-api";
import { FleetManager } from "./components/fleet-manager";
import { RepoCredentialSecrets } from "./components/repo-credentials";
import { Reconciler } from "./components/reconciler";
import { Monitoring } from "./components/monitoring";
import type { ComputeGrants } from "./components/iam";
import { AGENT_TASK_DOCUMENT_PARAMETERS, agentTaskDocument } from "./runtime/fleet/document";
import { bootScript } from "./runtime/fleet/boot-script";
import { TERMINATION_HOOK_NAME } from "./runtime/fleet/tags";
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
const defaultFleetArchitecture: Architecture = config.fleets[config.defaultFleet ?? ""]?.architecture ?? "arm64";
const imageUriFor = (architecture: Architecture) => {
  const image = imageFor(architecture);
  return pulumi.output(typeof image === "string" ? image : image.uri);
};
// Agents may invoke the stack's default model and the models its repo blueprints name; nothing else.
const models: AgentModels = { default: config.model, allowed: [config.model, ...config.repos.flatMap((r) => (r.model ? [r.model] : []))] };
// The API's endpoint exists before the Lambdas: it is the agents' channel, named in every agent's payload.
const endpoint = new ApiEndpoint(`${stack}-api-endpoint`);

// 3. Backends: only the enabled ones.
const ecs = has("ecs")
  ? new EcsAgentCluster(`${stack}-ecs`, { settings: config.ecs, image: imageFor(ecsArchitecture), models, vpcId: network.vpcId, region, accountId, logRetentionDays: config.logRetentionDays })
  : undefined;
const agentcore = has("agentcore")
  ? new AgentCoreRuntime(`${stack}-agentcore`, { settings: config.agentcore, image: builtImage?.ref, models, vpcId: network.vpcId, subnetIds: network.privateSubnetIds, region, accountId })
  : undefined;
const document = has("ec2") ? new CommandDocument(`${stack}-agent-task`, { content: agentTaskDocument(), parameters: AGENT_TASK_DOCUMENT_PARAMETERS }) : undefined;
const fleets = Object.entries(config.fleets).map(
  ([fleet, settings]) =>
    [fleet, new Ec2AgentFleet(`${stack}-fleet-${fleet}`, {
      fleet,
      settings,
      image: imageFor(settings.architecture),
      vpcId: network.vpcId,
      subnetIds: network.privateSubnetIds,
      userData: imageUriFor(settings.architecture).apply((uri) => bootScript({ fleet, image: uri, gpu: settings.gpu })),
      tags: { "agent-compute:stack": stack },
    })] as const,
);

// 4. The runtime config every Lambda reads (AGENT_COMPUTE_CONFIG), and the grants of the enabled backends.
const runtimeConfig = {
  region,
  tables: tables.names,
  payload: { kind: "s3" as const, bucket: payloads.bucketName, prefix: PAYLOAD_PREFIX },
  defaultBackend: config.defaultBackend,
  enabledBackends: config.backends,
  ...(ecs && {
    ecs: {
      cluster: ecs.cluster.name,
      taskDefinition: ecs.family,
      containerName: AGENT_CONTAINER,
      subnets: network.privateSubnetIds,
      securityGroups: [ecs.securityGroup.id],
      fargateSpot: config.ecs.fargateSpot,
    },
  }),
  ...(document && {
    ec2: {
      documentName: document.documentName,
      fleets: Object.fromEntries(
        fleets.map(([fleet, f]) => {
          const s = config.fleets[fleet];
          return [
            fleet,
            {
              autoScalingGroupName: f.autoScalingGroupName,
              // Only a fleet of the other architecture names its image (the environment is 4 KB).
              ...(imageFor(s.architecture) !== imageFor(defaultFleetArchitecture) ? { image: imageUriFor(s.architecture) } : {}),
              warmBuffer: s.warmBuffer,
              readyDeadlineSeconds: s.readyDeadlineSeconds,
              maxInstanceLifetimeSeconds: s.maxInstanceLifetimeSeconds,
              ...(s.maxTasksPerInstance !== undefined ? { maxTasksPerInstance: s.maxTasksPerInstance } : {}),
              terminationHookName: TERMINATION_HOOK_NAME,
            },
          ];
        }),
      ),
      defaultFleet: config.defaultFleet,
      deliveryTimeoutSeconds: config.dispatchTimeoutSeconds,
      executionTimeoutSeconds: config.limits.taskTimeoutSeconds,
      image: imageUriFor(defaultFleetArchitecture),
    },
  }),
  ...(agentcore && { agentcore: { runtimeArn: agentcore.runtimeArn } }),
  agentChannel: { url: endpoint.url },
  identity: config.identity,
  limits: { ...config.limits, maxPollErrors: DEFAULT_LIMITS.maxPollErrors, maxFinishedPolls: DEFAULT_LIMITS.maxFinishedPolls },
};
const grants: ComputeGrants = {
  region,
  accountId,
  ...(ecs && {
    ecs: {
      taskDefinitionFamilyArn: pulumi.interpolate`arn:aws:ecs:${region}:${accountId}:task-definition/${ecs.family}`,
      clusterArn: ecs.cluster.arn,
      clusterName: ecs.cluster.name,
      passRoles: [ecs.taskRole.arn, ecs.executionRole.arn],
    },
  }),
  ...(document && { ec2: { documentArn: document.arn, fleetNames: fleets.map(([f]) => f), autoScalingGroupArns: fleets.map(([, f]) => f.autoScalingGroupArn) } }),
  ...(agentcore && { agentcore: { runtimeArn: agentcore.runtimeArn } }),
};

// Repository credentials for agents, handed out by the task API's agent channel; only the API may read them.
const credentialSecrets = new RepoCredentialSecrets(`${stack}-git`, { prefix: `${stack}/git`, region, accountId });

// 5. Orchestrator, API, reconciler, fleet manager.
const common = { tableArns: tables.arns, payloadBucketArn: payloads.arn, logRetentionDays: config.logRetentionDays };
const orchestrator = new TaskOrchestrator(`${stack}-orchestrator`, { runtimeConfig, grants, taskTimeoutSeconds: config.limits.taskTimeoutSeconds, ...common });
const api = new TaskApi(`${stack}-api`, {
  api: endpoint.api,
  runtimeConfig: { ...runtimeConfig, orchestrator: { functionArn: orchestrator.aliasArn }, credentials: { kind: "secrets-manager" as const, prefix: credentialSecrets.prefix } },
  orchestratorAliasArn: orchestrator.aliasArn,
  orchestratorFunctionArn: orchestrator.function.arn,
  grants,
  credentialSecrets,
  ...common,
});
const reconciler = new Reconciler(`${stack}-reconciler`, {
  runtimeConfig: { ...runtimeConfig, orchestrator: { functionArn: orchestrator.aliasArn } },
  orchestratorAliasArn: orchestrator.aliasArn,
  orchestratorFunctionArn: orchestrator.function.arn,
  grants,
  schedule: config.reconcilerSchedule,
  ...common,
});
const fleetManager = document
  ? new FleetManager(`${stack}-fleet-manager`, {
      runtimeConfig,
      tableArns: tables.arns,
      autoScalingGroupArns: fleets.map(([, f]) => f.autoScalingGroupArn),
      autoScalingGroupNames: fleets.map(([, f]) => f.autoScalingGroupName),
      fleetNames: fleets.map(([f]) => f),
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
export const ec2Fleets = Object.fromEntries(fleets.map(([fleet, f]) => [fleet, f.autoScalingGroupName]));
export const ssmDocument = document?.documentName;
export const agentImages = Object.fromEntries(
  [...new Set([...(has("ecs") ? [ecsArchitecture] : []), ...(has("agentcore") ? ["arm64" as const] : []), ...Object.values(config.fleets).map((f) => f.architecture)])].map((a) => [a, imageUriFor(a)]),
);
export const repoCredentialSecretsPrefix = credentialSecrets.prefix;
export const dashboard = monitoring.dashboard.dashboardName;
