/**
 * The EC2 fleet manager (runtime/fleet/lambda.ts): every minute on a schedule (it loops passes inside the
 * invocation) and on each group's termination lifecycle events. Registers ready instances, replaces failed boots,
 * repairs leases, scales out, drains and terminates for scale-in. Exists only when backend ec2 is enabled.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { FLEET_TAG } from "../runtime/fleet/tags";
import type { RuntimeConfig } from "../runtime/config";
import { tableStatement, type TableArns } from "./iam";
import { createHandlerFunction } from "./handler-function";

export const FLEET_MANAGER_HANDLER = "runtime/fleet/lambda.ts";

export interface FleetManagerArgs {
  readonly runtimeConfig: pulumi.Output<RuntimeConfig>;
  readonly tableArns: TableArns;
  readonly autoScalingGroupArns: pulumi.Input<string>[];
  readonly autoScalingGroupNames: pulumi.Input<string>[];
  readonly fleetNames: string[];
  readonly schedule: string;
  readonly region: pulumi.Input<string>;
  readonly accountId: pulumi.Input<string>;
  readonly logRetentionDays: number;
}

export class FleetManager extends pulumi.ComponentResource {
  readonly function: aws.lambda.CallbackFunction<unknown, unknown>;

  constructor(name: string, args: FleetManagerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:ec2:FleetManager", name, {}, opts);
    this.function = createFleetManager(name, args, this).fn;
    this.registerOutputs({ functionName: this.function.name });
  }
}

export function createFleetManager(name: string, args: FleetManagerArgs, parent: pulumi.Resource) {
  const { fn, role } = createHandlerFunction(
    name,
    {
      handlerFile: FLEET_MANAGER_HANDLER,
      runtimeConfig: args.runtimeConfig,
      timeoutSeconds: 120,
      memoryMiB: 256,
      logRetentionDays: args.logRetentionDays,
      statements: () => [
        tableStatement("LeasesAndQueue", args.tableArns, ["leases", "waiters", "tasks", "events"], true),
        {
          Sid: "ObserveFleets",
          Effect: "Allow",
          Action: ["ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities"],
          Resource: "*",
        },
        {
          // Every one of these takes the autoScalingGroup resource type: scoped to the fleets' own groups.
          Sid: "ScaleDrainHealOurGroups",
          Effect: "Allow",
          Action: [
            "autoscaling:SetDesiredCapacity",
            "autoscaling:SetInstanceProtection",
            "autoscaling:TerminateInstanceInAutoScalingGroup",
            "autoscaling:SetInstanceHealth",
            "autoscaling:CompleteLifecycleAction",
          ],
          Resource: args.autoScalingGroupArns,
        },
        {
          Sid: "MirrorLeaseTags",
          Effect: "Allow",
          Action: ["ec2:CreateTags"],
          Resource: [pulumi.interpolate`arn:aws:ec2:${args.region}:${args.accountId}:instance/*`],
          Condition: { StringEquals: { [`aws:ResourceTag/${FLEET_TAG}`]: args.fleetNames } },
        },
        {
          // Orphans only: fleet instances found outside their group on two passes in a row.
          Sid: "TerminateFleetOrphans",
          Effect: "Allow",
          Action: ["ec2:TerminateInstances"],
          Resource: [pulumi.interpolate`arn:aws:ec2:${args.region}:${args.accountId}:instance/*`],
          Condition: { StringEquals: { [`aws:ResourceTag/${FLEET_TAG}`]: args.fleetNames } },
        },
      ],
    },
    parent,
  );
  const rule = new aws.cloudwatch.EventRule(`${name}-schedule`, { scheduleExpression: args.schedule, description: "agent-compute fleet manager" }, { parent });
  // Target ids are per rule and at most 64 characters (PutTargets): a fixed id, not one auto-named from the stack's name.
  new aws.cloudwatch.EventTarget(`${name}-target`, { rule: rule.name, targetId: "fleet-manager", arn: fn.arn }, { parent });
  new aws.lambda.Permission(`${name}-invoke`, { action: "lambda:InvokeFunction", function: fn.name, principal: "events.amazonaws.com", sourceArn: rule.arn }, { parent });
  // Terminations the groups start themselves reach the manager at once, through their lifecycle hook's event.
  const hookRule = new aws.cloudwatch.EventRule(
    `${name}-terminating`,
    {
      description: "agent-compute fleet groups terminating an instance",
      eventPattern: pulumi.jsonStringify({
        source: ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        detail: { AutoScalingGroupName: args.autoScalingGroupNames },
      }),
    },
    { parent },
  );
  new aws.cloudwatch.EventTarget(`${name}-terminating-target`, { rule: hookRule.name, targetId: "fleet-manager", arn: fn.arn }, { parent });
  new aws.lambda.Permission(`${name}-terminating-invoke`, { action: "lambda:InvokeFunction", function: fn.name, principal: "events.amazonaws.com", sourceArn: hookRule.arn }, { parent });
  return { fn, rule, hookRule, role };
}
