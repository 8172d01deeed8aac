/**
 * The EC2 backend: the stack-owned SSM Command document that runs one agent task, and one Ec2AgentFleet per named
 * fleet. It states what the runtime reads of it (RuntimeConfig.ec2: the document, each fleet's settings, the
 * timeouts, the image) and the control plane's rights over its instances. The fleet manager, which also exists only
 * with this backend, holds its own grants (fleet-manager.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import type { Ec2Config } from "../runtime/config";
import { AGENT_TASK_DOCUMENT_PARAMETERS, agentTaskDocument } from "../runtime/fleet/document";
import { FLEET_TAG } from "../runtime/fleet/tags";
import type { AgentImageRef, AgentModels } from "./agent-image";
import { CommandDocument } from "./command-document";
import type { ComputeBackend } from "./compute-backend";
import type { Architecture, FleetSettings } from "./config/types";
import { Ec2AgentFleet } from "./ec2-agent-fleet";
import type { Statement } from "./iam";

export interface Ec2BackendArgs {
  readonly fleets: Record<string, FleetSettings>;
  /** The fleet of a task that names none: one of `fleets`. */
  readonly defaultFleet?: string;
  /** The image each CPU architecture runs: a fleet pulls and runs the one of its instance type's architecture. */
  readonly images: Record<Architecture, string | AgentImageRef>;
  /** The models agents may invoke: each fleet's agent role's grant; the default is the document's ANTHROPIC_MODEL. */
  readonly models: AgentModels;
  readonly vpcId: pulumi.Input<string>;
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  /** Seconds SSM may take to deliver a command (the stack's dispatchTimeoutSeconds). */
  readonly deliveryTimeoutSeconds: number;
  /** Seconds the agent may run on an instance (the stack's taskTimeoutSeconds). */
  readonly executionTimeoutSeconds: number;
  readonly tags?: Record<string, string>;
  readonly region: pulumi.Input<string>;
  readonly accountId: pulumi.Input<string>;
}

export class Ec2Backend extends pulumi.ComponentResource implements ComputeBackend<"ec2"> {
  readonly backend = "ec2" as const;
  readonly document: CommandDocument;
  /** Each named fleet's component, by fleet name. */
  readonly fleets: Record<string, Ec2AgentFleet>;
  readonly runtimeSettings: pulumi.Output<Ec2Config>;
  private readonly region: pulumi.Input<string>;
  private readonly accountId: pulumi.Input<string>;

  /** Children are named `<name>-agent-task` and `<name>-fleet-<fleet>`. */
  constructor(name: string, args: Ec2BackendArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:ec2:Ec2Backend", name, {}, opts);
    const names = Object.keys(args.fleets);
    const defaultFleet = args.defaultFleet;
    if (!names.length || !defaultFleet || !names.includes(defaultFleet)) {
      throw new pulumi.InputPropertiesError({
        message: `Ec2Backend ${name}: invalid arguments`,
        errors: [
          names.length
            ? { propertyPath: "defaultFleet", reason: `is ${JSON.stringify(defaultFleet)}; allowed: ${names.join(", ")}` }
            : { propertyPath: "fleets", reason: "must name at least one fleet" },
        ],
      });
    }
    this.region = args.region;
    this.accountId = args.accountId;
    this.document = new CommandDocument(`${name}-agent-task`, { content: agentTaskDocument({ model: args.models.default }), parameters: AGENT_TASK_DOCUMENT_PARAMETERS }, { parent: this });
    const imageUri = (a: Architecture) => {
      const image = args.images[a];
      return pulumi.output(typeof image === "string" ? image : image.uri);
    };
    const defaultArchitecture = args.fleets[defaultFleet].architecture;
    this.fleets = Object.fromEntries(
      Object.entries(args.fleets).map(([fleet, settings]) => [
        fleet,
        new Ec2AgentFleet(
          `${name}-fleet-${fleet}`,
          {
            fleet,
            settings,
            image: args.images[settings.architecture],
            models: args.models,
            region: args.region,
            accountId: args.accountId,
            vpcId: args.vpcId,
            subnetIds: args.subnetIds,
            tags: args.tags,
          },
          { parent: this },
        ),
      ]),
    );
    this.runtimeSettings = pulumi.output({
      documentName: this.document.documentName,
      fleets: Object.fromEntries(
        Object.entries(this.fleets).map(([fleet, f]) => {
          const a = args.fleets[fleet].architecture;
          // Only a fleet whose image is not the default fleet's names its own (the Lambda environment is 4 KB).
          const own = args.images[a] !== args.images[defaultArchitecture];
          return [fleet, own ? pulumi.all([f.runtimeSettings, imageUri(a)]).apply(([s, image]) => ({ ...s, image })) : f.runtimeSettings];
        }),
      ),
      defaultFleet,
      deliveryTimeoutSeconds: args.deliveryTimeoutSeconds,
      executionTimeoutSeconds: args.executionTimeoutSeconds,
      image: imageUri(defaultArchitecture),
    });
    this.registerOutputs({ documentName: this.document.documentName });
  }

  get fleetNames(): string[] {
    return Object.keys(this.fleets);
  }

  controlPlaneStatements(start: boolean): Statement[] {
    return ec2ControlPlaneStatements({ documentArn: this.document.arn, fleetNames: this.fleetNames, region: this.region, accountId: this.accountId }, start);
  }
}

/**
 * Send our document, only to instances carrying a fleet tag; cancel and observe commands; mirror a lease on the
 * instance's tags.
 */
export function ec2ControlPlaneStatements(
  e: { documentArn: pulumi.Input<string>; fleetNames: string[]; region: pulumi.Input<string>; accountId: pulumi.Input<string> },
  start: boolean,
): Statement[] {
  const instances = pulumi.interpolate`arn:aws:ec2:${e.region}:${e.accountId}:instance/*`;
  const out: Statement[] = [];
  if (start) {
    out.push({ Sid: "SsmSendOurDocument", Effect: "Allow", Action: ["ssm:SendCommand"], Resource: [e.documentArn] });
    out.push({
      Sid: "SsmSendFleetInstances",
      Effect: "Allow",
      Action: ["ssm:SendCommand"],
      Resource: [instances],
      Condition: { StringEquals: { [`ssm:resourceTag/${FLEET_TAG}`]: e.fleetNames } },
    });
  }
  // CancelCommand supports no resource type and no condition key of its own (Service Authorization Reference):
  // only "*" matches, so it is scoped to the stack's Region by the global aws:RequestedRegion. It can only stop a
  // running Run Command command, never start one.
  out.push({
    Sid: "SsmCancelCommands",
    Effect: "Allow",
    Action: ["ssm:CancelCommand"],
    Resource: "*",
    Condition: { StringEquals: { "aws:RequestedRegion": e.region } },
  });
  out.push({
    Sid: "Ec2ObserveFleet",
    Effect: "Allow",
    Action: ["ssm:GetCommandInvocation", "ssm:ListCommandInvocations", "ssm:ListCommands", "ssm:DescribeInstanceInformation", "ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"],
    Resource: "*",
  });
  out.push({
    Sid: "Ec2MirrorLeaseTags",
    Effect: "Allow",
    Action: ["ec2:CreateTags"],
    Resource: [instances],
    Condition: { StringEquals: { [`aws:ResourceTag/${FLEET_TAG}`]: e.fleetNames } },
  });
  // No Auto Scaling grant: instances are protected from scale-in when registered (by the fleet manager), so a
  // claim or a release only writes tags.
  return out;
}
