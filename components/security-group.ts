/** The one security group shape our compute uses: no ingress, HTTPS out only. */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export function egressHttpsOnly(name: string, vpcId: pulumi.Input<string>, description: string, parent: pulumi.Resource): aws.ec2.SecurityGroup {
  return new aws.ec2.SecurityGroup(
    name,
    {
      vpcId,
      description,
      ingress: [],
      egress: [{ description: "HTTPS out (AWS APIs, registry, git)", protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] }],
      // Without this, AWS keeps its default allow-all egress rule next to ours.
      revokeRulesOnDelete: true,
    },
    { parent },
  );
}
