/**
 * One named EC2 fleet: launch template (AMI from an SSM parameter, IMDSv2 required with hop limit 1, encrypted
 * EBS, no key pair, no public IP, the boot script as user data), an Auto Scaling group carrying the fleet tag, an
 * egress-443-only security group, an SSM-managed instance role that may tag only the instance it runs on, and the
 * fleet's agent role: the configured models only, assumable only by the instance role, one session per task.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { AGENT_SESSION_PREFIX, AGENT_SESSION_TAG } from "../runtime/fleet/agent-credentials";
import { bootScript } from "../runtime/fleet/boot-script";
import { BOOT_TAG, FLEET_TAG, TERMINATION_HOOK_NAME } from "../runtime/fleet/tags";
import { ROOT_VOLUME_GIB_BOUNDS } from "../runtime/limits";
import type { Ec2FleetConfig } from "../runtime/config";
import { imageUri, type AgentImageRef, type AgentModels } from "./agent-image";
import { bedrockInvokeStatement, ecrPullStatements, policyDocument, assumeRolePolicy, type Statement } from "./iam";
import { egressHttpsOnly } from "./security-group";
import type { FleetSettings } from "./config/types";
import { USER_DATA_MAX_BYTES } from "./config/aws-quotas";

export const SSM_MANAGED_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
/** 30–7,200 s allowed. Long enough for the manager to drain the lease and the orchestrator to re-queue the task. */
export const TERMINATION_HOOK_HEARTBEAT_SECONDS = 300;

export interface Ec2AgentFleetArgs {
  readonly fleet: string;
  readonly settings: FleetSettings;
  readonly image: string | AgentImageRef;
  /** The models the fleet's agents may invoke (the agent role's only grant). */
  readonly models: AgentModels;
  readonly region: pulumi.Input<string>;
  readonly accountId: pulumi.Input<string>;
  readonly vpcId: pulumi.Input<string>;
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly tags?: Record<string, string>;
}

export class Ec2AgentFleet extends pulumi.ComponentResource {
  readonly launchTemplate: aws.ec2.LaunchTemplate;
  readonly autoScalingGroup: aws.autoscaling.Group;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly role: aws.iam.Role;
  readonly agentRole: aws.iam.Role;
  readonly autoScalingGroupName: pulumi.Output<string>;
  readonly autoScalingGroupArn: pulumi.Output<string>;
  /** This fleet's settings in the runtime config (RuntimeConfig.ec2.fleets[fleet]): its group and how it scales and heals. */
  readonly runtimeSettings: pulumi.Output<Ec2FleetConfig>;

  constructor(name: string, args: Ec2AgentFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:ec2:Ec2AgentFleet", name, {}, opts);
    const errors = fleetArgumentErrors(args);
    if (errors.length) throw new pulumi.InputPropertiesError({ message: `Ec2AgentFleet ${name}: invalid arguments`, errors });
    const built = createFleet(name, args, this);
    this.launchTemplate = built.launchTemplate;
    this.autoScalingGroup = built.autoScalingGroup;
    this.securityGroup = built.securityGroup;
    this.role = built.role;
    this.agentRole = built.agentRole;
    this.autoScalingGroupName = built.autoScalingGroup.name;
    this.autoScalingGroupArn = built.autoScalingGroup.arn;
    this.runtimeSettings = fleetRuntimeSettings(args.settings, this.autoScalingGroupName);
    this.registerOutputs({ autoScalingGroupName: this.autoScalingGroupName, launchTemplateId: this.launchTemplate.id });
  }
}

/**
 * What the runtime reads of a fleet (the fleet manager, the lease table): its group — whose min and max sizes bound
 * the manager's desired capacity — the warm buffer, and when instances are replaced.
 */
export function fleetRuntimeSettings(s: FleetSettings, autoScalingGroupName: pulumi.Input<string>): pulumi.Output<Ec2FleetConfig> {
  return pulumi.output({
    autoScalingGroupName,
    warmBuffer: s.warmBuffer,
    readyDeadlineSeconds: s.readyDeadlineSeconds,
    scaleInIdleSeconds: s.scaleInIdleSeconds,
    maxInstanceLifetimeSeconds: s.maxInstanceLifetimeSeconds,
    ...(s.maxTasksPerInstance !== undefined ? { maxTasksPerInstance: s.maxTasksPerInstance } : {}),
    terminationHookName: TERMINATION_HOOK_NAME,
  });
}

/** Sizes the ASG and launch template would reject, or that would strand the fleet manager; checked before any child. */
export function fleetArgumentErrors(args: Ec2AgentFleetArgs): pulumi.InputPropertyErrorDetails[] {
  const s = args.settings;
  const errors: pulumi.InputPropertyErrorDetails[] = [];
  const whole = (v: number, min: number) => Number.isInteger(v) && v >= min;
  if (!args.fleet) errors.push({ propertyPath: "fleet", reason: "must name the fleet (its instances carry it as a tag)" });
  if (!whole(s.minSize, 0)) errors.push({ propertyPath: "settings.minSize", reason: `must be a whole number ≥ 0, got ${s.minSize}` });
  if (!whole(s.maxSize, 1) || s.maxSize < s.minSize) {
    errors.push({ propertyPath: "settings.maxSize", reason: `must be a whole number ≥ 1 and ≥ minSize (${s.minSize}), got ${s.maxSize}` });
  }
  if (!whole(s.warmBuffer, 0) || s.warmBuffer > s.maxSize) {
    errors.push({ propertyPath: "settings.warmBuffer", reason: `must be a whole number from 0 to maxSize (${s.maxSize}), got ${s.warmBuffer}` });
  }
  if (!whole(s.rootVolumeGiB, ROOT_VOLUME_GIB_BOUNDS.min) || s.rootVolumeGiB > ROOT_VOLUME_GIB_BOUNDS.max) {
    errors.push({
      propertyPath: "settings.rootVolumeGiB",
      reason: `must be a whole number of GiB from ${ROOT_VOLUME_GIB_BOUNDS.min} to ${ROOT_VOLUME_GIB_BOUNDS.max}, got ${s.rootVolumeGiB}`,
    });
  }
  return errors;
}

/** EC2 user data is at most 16 KB before base64 (EC2 User Guide, "Work with instance user data"). */
export function userDataErrors(text: string): pulumi.InputPropertyErrorDetails[] {
  const bytes = Buffer.byteLength(text, "utf8");
  return bytes > USER_DATA_MAX_BYTES ? [{ propertyPath: "userData", reason: `is ${bytes} bytes; EC2 user data is at most ${USER_DATA_MAX_BYTES} bytes` }] : [];
}

/**
 * The instance may set its own boot tag and nothing else, on no other instance: the resource is the policy variable
 * ec2:SourceInstanceARN (the ARN of the instance the role credentials were issued to), a documented key, where
 * the undocumented aws:ARN condition key is not in the Service Authorization Reference.
 */
export function selfTagStatement() {
  return {
    Sid: "TagOnlyItself",
    Effect: "Allow" as const,
    Action: ["ec2:CreateTags"],
    Resource: ["${ec2:SourceInstanceARN}"],
    Condition: {
      "ForAllValues:StringEquals": { "aws:TagKeys": [BOOT_TAG] },
    },
  };
}

/**
 * The agent role's trust: only this fleet's instance role, only with a session named for a task, and only the
 * task-id session tag. (No aws:SourceAccount or sts:ExternalId: those guard a service or a third party acting for
 * us; here the one principal is a role of this account, named by ARN.)
 */
export function agentRoleTrustPolicy(instanceRoleArn: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.jsonStringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "FleetInstanceAssumesPerTask",
        Effect: "Allow",
        Principal: { AWS: instanceRoleArn },
        Action: "sts:AssumeRole",
        Condition: { StringLike: { "sts:RoleSessionName": `${AGENT_SESSION_PREFIX}*` } },
      },
      {
        Sid: "FleetInstanceTagsTheTask",
        Effect: "Allow",
        Principal: { AWS: instanceRoleArn },
        Action: "sts:TagSession",
        Condition: { "ForAllValues:StringEquals": { "aws:TagKeys": [AGENT_SESSION_TAG] } },
      },
    ],
  });
}

/** The instance role may assume the fleet's agent role (and tag the session), and no other role. */
export function assumeAgentRoleStatement(agentRoleArn: pulumi.Input<string>): Statement {
  return { Sid: "AssumeAgentRole", Effect: "Allow", Action: ["sts:AssumeRole", "sts:TagSession"], Resource: [agentRoleArn] };
}

export function createFleet(name: string, args: Ec2AgentFleetArgs, parent: pulumi.Resource) {
  const s = args.settings;
  const role = new aws.iam.Role(`${name}-role`, { assumeRolePolicy: assumeRolePolicy("ec2.amazonaws.com") }, { parent });
  new aws.iam.RolePolicyAttachment(`${name}-ssm-core`, { role: role.name, policyArn: SSM_MANAGED_POLICY }, { parent });
  // What the agent container gets: the stack's models and nothing else (no tables, payloads, image or logs).
  const agentRole = new aws.iam.Role(`${name}-agent-role`, { assumeRolePolicy: agentRoleTrustPolicy(role.arn) }, { parent });
  new aws.iam.RolePolicy(
    `${name}-agent-policy`,
    { role: agentRole.id, policy: policyDocument([bedrockInvokeStatement("AgentInvokeModels", args.models.allowed, args.region, args.accountId)]) },
    { parent },
  );
  new aws.iam.RolePolicy(
    `${name}-policy`,
    {
      role: role.id,
      policy: policyDocument([
        selfTagStatement(),
        // No task tables, no payloads, no models: the SSM document fetches the payload by its presigned URL, and
        // the agent container (bridge network, IMDSv2 hop limit 1) cannot reach this role at all; it gets the
        // agent role's credentials, which the document's script assumes for its task.
        assumeAgentRoleStatement(agentRole.arn),
        ...ecrPullStatements("Instance", args.image),
      ]),
    },
    { parent },
  );
  const userData = pulumi
    .all([imageUri(args.image), agentRole.arn])
    .apply(([image, agentRoleArn]) => {
      const text = bootScript({ fleet: args.fleet, image, agentRoleArn, gpu: args.settings.gpu });
      // Known only now (the image and the role are outputs): checked here, before the launch template is sent.
      const errors = userDataErrors(text);
      if (errors.length) throw new pulumi.InputPropertiesError({ message: `Ec2AgentFleet ${name}: invalid arguments`, errors });
      return Buffer.from(text, "utf8").toString("base64");
    });
  const profile = new aws.iam.InstanceProfile(`${name}-profile`, { role: role.name }, { parent });
  const securityGroup = egressHttpsOnly(`${name}-instances`, args.vpcId, `EC2 fleet ${args.fleet}: HTTPS out only`, parent);
  const tags = { ...(args.tags ?? {}), [FLEET_TAG]: args.fleet };
  const launchTemplate = new aws.ec2.LaunchTemplate(
    `${name}-lt`,
    {
      description: `agent-compute fleet ${args.fleet}`,
      // Resolved by EC2 at each launch: new instances always get the latest patched image.
      imageId: `resolve:ssm:${s.amiParameter}`,
      instanceType: s.instanceType,
      iamInstanceProfile: { arn: profile.arn },
      metadataOptions: { httpEndpoint: "enabled", httpTokens: "required", httpPutResponseHopLimit: 1, instanceMetadataTags: "enabled" },
      blockDeviceMappings: [
        { deviceName: "/dev/xvda", ebs: { volumeSize: s.rootVolumeGiB, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" } },
      ],
      networkInterfaces: [{ deviceIndex: 0, associatePublicIpAddress: "false", securityGroups: [securityGroup.id], deleteOnTermination: "true" }],
      userData,
      tagSpecifications: [
        { resourceType: "instance", tags },
        { resourceType: "volume", tags },
      ],
      updateDefaultVersion: true,
    },
    { parent },
  );
  const template = { id: launchTemplate.id, version: "$Latest" };
  const autoScalingGroup = new aws.autoscaling.Group(
    `${name}-asg`,
    {
      minSize: s.minSize,
      maxSize: s.maxSize,
      vpcZoneIdentifiers: args.subnetIds,
      // EC2 status checks; a boot that failed or never reported ready is marked unhealthy by the fleet manager.
      healthCheckType: "EC2",
      // The group never picks instances to remove: the fleet manager drains an idle one, then terminates it through
      // the group (TerminateInstanceInAutoScalingGroup), so no scale-in can race a claim.
      protectFromScaleIn: true,
      // Terminations the group starts itself (rebalancing, refresh, health, Spot) wait here until the instance's
      // lease is drained and its task let go (or the heartbeat runs out).
      initialLifecycleHooks: [
        { name: TERMINATION_HOOK_NAME, lifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING", heartbeatTimeout: TERMINATION_HOOK_HEARTBEAT_SECONDS, defaultResult: "CONTINUE" },
      ],
      capacityRebalance: s.spot,
      // Spot across several types, capacity-optimized. (Warm pools cannot be combined with Spot or mixed instances.)
      ...(s.spot
        ? {
            mixedInstancesPolicy: {
              launchTemplate: {
                launchTemplateSpecification: { launchTemplateId: launchTemplate.id, version: "$Latest" },
                overrides: [s.instanceType, ...s.spotInstanceTypes].map((instanceType) => ({ instanceType })),
              },
              instancesDistribution: { onDemandBaseCapacity: 0, onDemandPercentageAboveBaseCapacity: 0, spotAllocationStrategy: "capacity-optimized" },
            },
          }
        : { launchTemplate: template }),
      tags: Object.entries(tags).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
    },
    // The fleet manager owns desired capacity (queue depth + warm buffer); an update must not reset it.
    { parent, ignoreChanges: ["desiredCapacity"] },
  );
  return { role, agentRole, profile, securityGroup, launchTemplate, autoScalingGroup };
}
