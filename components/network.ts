/**
 * Where tasks and instances run: an existing VPC's private subnets, or a new VPC (awsx) whose private subnets
 * reach the internet through NAT only. Our compute never gets a public IP in either case.
 */
import * as pulumi from "@pulumi/pulumi";
import * as awsx from "@pulumi/awsx";
import type { NetworkSettings } from "./config/types";

export interface NetworkArgs {
  readonly settings: NetworkSettings;
}

export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly privateSubnetIds: pulumi.Output<string[]>;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:network:Network", name, {}, opts);
    const built = createNetwork(name, args.settings, this);
    this.vpcId = built.vpcId;
    this.privateSubnetIds = built.privateSubnetIds;
    this.registerOutputs({ vpcId: this.vpcId, privateSubnetIds: this.privateSubnetIds });
  }
}

export function createNetwork(name: string, s: NetworkSettings, parent: pulumi.Resource) {
  if (s.mode === "existing") {
    return { vpcId: pulumi.output(s.vpcId), privateSubnetIds: pulumi.output(s.privateSubnetIds) };
  }
  const vpc = new awsx.ec2.Vpc(
    `${name}-vpc`,
    {
      cidrBlock: s.cidrBlock,
      numberOfAvailabilityZones: s.availabilityZones,
      enableDnsHostnames: true,
      enableDnsSupport: true,
      natGateways: { strategy: s.natGateways },
      subnetStrategy: "Auto",
      // Public subnets hold only the NAT gateways; tasks and instances go to the private ones.
      subnetSpecs: [{ type: awsx.ec2.SubnetType.Private }, { type: awsx.ec2.SubnetType.Public }],
    },
    { parent },
  );
  return { vpcId: vpc.vpcId, privateSubnetIds: vpc.privateSubnetIds };
}
