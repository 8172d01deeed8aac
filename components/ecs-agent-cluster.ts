/**
 * The ECS Fargate backend: a cluster with Container Insights, a Fargate task definition of ecs.architecture running
 * the agent image, its log group, its task and execution roles, and an egress-443-only security group. Optional
 * Fargate Spot (X86_64 only).
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { imageUri, type AgentImageRef, type AgentModels } from "./agent-image";
import type { EcsConfig } from "../runtime/config";
import type { ComputeBackend } from "./compute-backend";
import { bedrockInvokeStatement, ecrPullStatements, logsStatement, passRoleStatement, roleWithPolicy, type Statement } from "./iam";
import { egressHttpsOnly } from "./security-group";
import { FARGATE_SIZES } from "./config/aws-tables";
import type { EcsSettings } from "./config/types";

export const AGENT_CONTAINER = "agent";

export interface EcsAgentClusterArgs {
  readonly settings: EcsSettings;
  readonly image: string | AgentImageRef;
  readonly models: AgentModels;
  readonly vpcId: pulumi.Input<string>;
  /** Where the tasks run (private subnets: no public IP). */
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly region: pulumi.Input<string>;
  readonly accountId: pulumi.Input<string>;
  readonly logRetentionDays: number;
}

export class EcsAgentCluster extends pulumi.ComponentResource implements ComputeBackend<"ecs"> {
  readonly backend = "ecs" as const;
  readonly cluster: aws.ecs.Cluster;
  readonly taskDefinition: aws.ecs.TaskDefinition;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly taskRole: aws.iam.Role;
  readonly executionRole: aws.iam.Role;
  readonly family: pulumi.Output<string>;
  readonly runtimeSettings: pulumi.Output<EcsConfig>;
  private readonly region: pulumi.Input<string>;
  private readonly accountId: pulumi.Input<string>;

  constructor(name: string, args: EcsAgentClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:ecs:EcsAgentCluster", name, {}, opts);
    const errors = ecsArgumentErrors(args.settings);
    if (errors.length) throw new pulumi.InputPropertiesError({ message: `EcsAgentCluster ${name}: invalid arguments`, errors });
    const built = createEcsCluster(name, args, this);
    this.cluster = built.cluster;
    this.taskDefinition = built.taskDefinition;
    this.securityGroup = built.securityGroup;
    this.taskRole = built.taskRole;
    this.executionRole = built.executionRole;
    this.family = built.taskDefinition.family;
    this.region = args.region;
    this.accountId = args.accountId;
    this.runtimeSettings = pulumi.output({
      cluster: this.cluster.name,
      taskDefinition: this.family,
      containerName: AGENT_CONTAINER,
      subnets: args.subnetIds,
      securityGroups: [this.securityGroup.id],
      fargateSpot: args.settings.fargateSpot,
    });
    this.registerOutputs({ clusterArn: this.cluster.arn, family: this.family });
  }

  controlPlaneStatements(start: boolean): Statement[] {
    return ecsControlPlaneStatements(
      {
        taskDefinitionFamilyArn: pulumi.interpolate`arn:aws:ecs:${this.region}:${this.accountId}:task-definition/${this.family}`,
        clusterArn: this.cluster.arn,
        clusterName: this.cluster.name,
        passRoles: [this.taskRole.arn, this.executionRole.arn],
        region: this.region,
        accountId: this.accountId,
      },
      start,
    );
  }
}

/** RunTask of our task definition in our cluster (passing only its two roles); observe and stop our tasks. */
export function ecsControlPlaneStatements(
  e: {
    taskDefinitionFamilyArn: pulumi.Input<string>;
    clusterArn: pulumi.Input<string>;
    clusterName: pulumi.Input<string>;
    passRoles: pulumi.Input<string>[];
    region: pulumi.Input<string>;
    accountId: pulumi.Input<string>;
  },
  start: boolean,
): Statement[] {
  const out: Statement[] = [];
  if (start) {
    out.push({
      Sid: "EcsRunTask",
      Effect: "Allow",
      Action: ["ecs:RunTask"],
      Resource: [pulumi.interpolate`${e.taskDefinitionFamilyArn}:*`],
      Condition: { ArnEquals: { "ecs:cluster": e.clusterArn } },
    });
    out.push(passRoleStatement("EcsPassTaskRoles", e.passRoles, "ecs-tasks.amazonaws.com"));
  }
  out.push({
    Sid: "EcsObserveStopTask",
    Effect: "Allow",
    Action: ["ecs:DescribeTasks", "ecs:StopTask"],
    Resource: [pulumi.interpolate`arn:aws:ecs:${e.region}:${e.accountId}:task/${e.clusterName}/*`],
  });
  // ListTasks (by startedBy) finds a task whose handle a crash lost; its resource type is container-instance and it
  // takes the ecs:cluster condition key.
  out.push({
    Sid: "EcsListClusterTasks",
    Effect: "Allow",
    Action: ["ecs:ListTasks"],
    Resource: [pulumi.interpolate`arn:aws:ecs:${e.region}:${e.accountId}:container-instance/${e.clusterName}/*`],
    Condition: { ArnEquals: { "ecs:cluster": e.clusterArn } },
  });
  return out;
}

/** Task sizes Fargate would refuse at RegisterTaskDefinition; checked before any child. */
export function ecsArgumentErrors(s: EcsSettings): pulumi.InputPropertyErrorDetails[] {
  const errors: pulumi.InputPropertyErrorDetails[] = [];
  const memories = FARGATE_SIZES[s.cpu];
  if (!memories) {
    errors.push({ propertyPath: "settings.cpu", reason: `is ${s.cpu}; Fargate allows: ${Object.keys(FARGATE_SIZES).join(", ")}` });
  } else if (!memories.includes(s.memory)) {
    errors.push({ propertyPath: "settings.memory", reason: `is ${s.memory}; with cpu ${s.cpu} Fargate allows: ${memories.join(", ")}` });
  }
  // Fargate Spot runs X86_64 Linux tasks only (ECS Developer Guide, "AWS Fargate capacity providers").
  if (s.fargateSpot && s.architecture !== "X86_64") {
    errors.push({ propertyPath: "settings.fargateSpot", reason: `Fargate Spot runs only X86_64 tasks; settings.architecture is ${s.architecture}` });
  }
  if (!Number.isInteger(s.ephemeralStorageGiB) || s.ephemeralStorageGiB < 21 || s.ephemeralStorageGiB > 200) {
    errors.push({ propertyPath: "settings.ephemeralStorageGiB", reason: `must be a whole number from 21 to 200 (Fargate's range), got ${s.ephemeralStorageGiB}` });
  }
  return errors;
}

export function createEcsCluster(name: string, args: EcsAgentClusterArgs, parent: pulumi.Resource) {
  const s = args.settings;
  const cluster = new aws.ecs.Cluster(`${name}`, { settings: [{ name: "containerInsights", value: "enabled" }] }, { parent });
  new aws.ecs.ClusterCapacityProviders(
    `${name}-capacity`,
    {
      clusterName: cluster.name,
      capacityProviders: s.fargateSpot ? ["FARGATE", "FARGATE_SPOT"] : ["FARGATE"],
      defaultCapacityProviderStrategies: [{ capacityProvider: s.fargateSpot ? "FARGATE_SPOT" : "FARGATE", weight: 1 }],
    },
    { parent },
  );
  const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, { retentionInDays: args.logRetentionDays }, { parent });
  const trust = { StringEquals: { "aws:SourceAccount": args.accountId } };
  const execution = roleWithPolicy(
    `${name}-execution`,
    {
      service: "ecs-tasks.amazonaws.com",
      trustConditions: trust,
      statements: [...ecrPullStatements("Execution", args.image), logsStatement("AgentLogs", logGroup.arn)],
    },
    parent,
  );
  const task = roleWithPolicy(
    `${name}-task`,
    {
      service: "ecs-tasks.amazonaws.com",
      trustConditions: trust,
      // Nothing of the platform's: the agent reads its payload by a presigned URL and reports through the
      // channel with its task's token. Model access is the only grant an agent role holds.
      statements: [bedrockInvokeStatement("AgentInvokeModels", args.models.allowed, args.region, args.accountId)],
    },
    parent,
  );
  const securityGroup = egressHttpsOnly(`${name}-tasks`, args.vpcId, "ECS agent tasks: HTTPS out only", parent);
  const taskDefinition = new aws.ecs.TaskDefinition(
    `${name}-agent`,
    {
      family: `${name}-agent`,
      requiresCompatibilities: ["FARGATE"],
      networkMode: "awsvpc",
      cpu: String(s.cpu),
      memory: String(s.memory),
      runtimePlatform: { cpuArchitecture: s.architecture, operatingSystemFamily: "LINUX" },
      ephemeralStorage: { sizeInGib: s.ephemeralStorageGiB },
      executionRoleArn: execution.role.arn,
      taskRoleArn: task.role.arn,
      containerDefinitions: pulumi.jsonStringify([
        {
          name: AGENT_CONTAINER,
          image: imageUri(args.image),
          essential: true,
          // Container-level memory too: some tooling (and moto) require it even on Fargate.
          memory: s.memory,
          environment: [
            { name: "AWS_REGION", value: args.region },
            { name: "ANTHROPIC_MODEL", value: args.models.default },
          ],
          logConfiguration: {
            logDriver: "awslogs",
            options: { "awslogs-group": logGroup.name, "awslogs-region": args.region, "awslogs-stream-prefix": "agent" },
          },
        },
      ]),
    },
    { parent },
  );
  return { cluster, taskDefinition, securityGroup, taskRole: task.role, executionRole: execution.role, logGroup };
}
