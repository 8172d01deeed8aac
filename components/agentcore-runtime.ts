/**
 * The AgentCore backend: an AgentCore Runtime running the agent image (from ECR) in our VPC, with its own role.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { imageUri, type AgentImageRef, type AgentModels } from "./agent-image";
import type { AgentCoreConfig } from "../runtime/config";
import type { ComputeBackend } from "./compute-backend";
import { bedrockInvokeStatement, ecrPullStatements, roleWithPolicy, type Statement } from "./iam";
import { egressHttpsOnly } from "./security-group";
import type { AgentCoreSettings } from "./config/types";

export interface AgentCoreRuntimeArgs {
  readonly settings: AgentCoreSettings;
  /** The stack-built image, used when settings.image is unset. */
  readonly image?: AgentImageRef;
  readonly models: AgentModels;
  readonly vpcId: pulumi.Input<string>;
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly region: pulumi.Input<string>;
  readonly accountId: pulumi.Input<string>;
}

/** AgentCore runtime names allow letters, digits and underscores only (max 48). */
export function agentRuntimeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_]/g, "_").replace(/^[^A-Za-z]+/, "");
  return (cleaned || "agent").slice(0, 48);
}

export class AgentCoreRuntime extends pulumi.ComponentResource implements ComputeBackend<"agentcore"> {
  readonly backend = "agentcore" as const;
  readonly runtime: aws.bedrock.AgentcoreAgentRuntime;
  readonly runtimeArn: pulumi.Output<string>;
  readonly role: aws.iam.Role;
  readonly runtimeSettings: pulumi.Output<AgentCoreConfig>;

  constructor(name: string, args: AgentCoreRuntimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:agentcore:AgentCoreRuntime", name, {}, opts);
    const built = createAgentCoreRuntime(name, args, this);
    this.runtime = built.runtime;
    this.role = built.role;
    this.runtimeArn = built.runtime.agentRuntimeArn;
    this.runtimeSettings = pulumi.output({ runtimeArn: this.runtimeArn });
    this.registerOutputs({ runtimeArn: this.runtimeArn });
  }

  controlPlaneStatements(start: boolean): Statement[] {
    return agentCoreControlPlaneStatements(this.runtimeArn, start);
  }
}

/** Invoke sessions of our runtime and stop them (sessions are sub-resources of the runtime's ARN). */
export function agentCoreControlPlaneStatements(runtimeArn: pulumi.Input<string>, start: boolean): Statement[] {
  return [
    {
      Sid: "AgentCoreSessions",
      Effect: "Allow",
      Action: start ? ["bedrock-agentcore:InvokeAgentRuntime", "bedrock-agentcore:StopRuntimeSession"] : ["bedrock-agentcore:StopRuntimeSession"],
      Resource: [runtimeArn, pulumi.interpolate`${runtimeArn}/*`],
    },
  ];
}

export function createAgentCoreRuntime(name: string, args: AgentCoreRuntimeArgs, parent: pulumi.Resource) {
  const s = args.settings;
  const image: string | AgentImageRef | undefined = s.image ?? args.image;
  if (!image) throw new pulumi.InputPropertiesError({ message: `AgentCoreRuntime ${name}: invalid arguments`, errors: [{ propertyPath: "image", reason: "is required when settings.image is unset" }] });
  const { role, policy } = roleWithPolicy(
    `${name}`,
    {
      service: "bedrock-agentcore.amazonaws.com",
      trustConditions: { StringEquals: { "aws:SourceAccount": args.accountId } },
      statements: [
        ...ecrPullStatements("Runtime", image),
        {
          Sid: "RuntimeLogs",
          Effect: "Allow",
          Action: ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
          Resource: [pulumi.interpolate`arn:aws:logs:${args.region}:${args.accountId}:log-group:/aws/bedrock-agentcore/runtimes/*`],
        },
        // No task tables, no payloads: the invocation carries a presigned payload URL, the payload the channel token.
        // Model access is the one thing an agent role holds.
        bedrockInvokeStatement("AgentInvokeModels", args.models.allowed, args.region, args.accountId),
      ],
    },
    parent,
  );
  const sg = s.networkMode === "VPC" ? egressHttpsOnly(`${name}-sessions`, args.vpcId, "AgentCore sessions: HTTPS out only", parent) : undefined;
  const runtime = new aws.bedrock.AgentcoreAgentRuntime(
    `${name}`,
    {
      agentRuntimeName: agentRuntimeName(name),
      description: "agent-compute coding agent",
      roleArn: role.arn,
      agentRuntimeArtifact: { containerConfiguration: { containerUri: imageUri(image) } },
      networkConfiguration: sg
        ? { networkMode: "VPC", networkModeConfig: { subnets: args.subnetIds, securityGroups: [sg.id] } }
        : { networkMode: "PUBLIC" },
      protocolConfiguration: { serverProtocol: "HTTP" },
      lifecycleConfigurations: [{ idleRuntimeSessionTimeout: s.idleTimeoutSeconds, maxLifetime: s.maxLifetimeSeconds }],
      environmentVariables: { AWS_REGION: args.region, ANTHROPIC_MODEL: args.models.default },
    },
    // The role's policy (its ECR pull above all) must exist before the service validates the runtime's access:
    // waiting for the role alone lets CreateAgentRuntime race the PutRolePolicy.
    { parent, dependsOn: [role, ...(policy ? [policy] : [])] },
  );
  return { runtime, role, policy, securityGroup: sg };
}
