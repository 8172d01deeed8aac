/**
 * The stack-owned SSM Command document that runs one agent task on a fleet instance. Its content (parameters
 * with allowedPattern, the script, the timeouts) is the runtime's (runtime/fleet/document.ts): one source.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export interface CommandDocumentArgs {
  /** The document body (schemaVersion 2.2 object). */
  readonly content: object;
}

export class CommandDocument extends pulumi.ComponentResource {
  readonly document: aws.ssm.Document;
  readonly documentName: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: CommandDocumentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:ec2:CommandDocument", name, {}, opts);
    this.document = new aws.ssm.Document(
      `${name}`,
      { documentType: "Command", documentFormat: "JSON", content: JSON.stringify(args.content), targetType: "/AWS::EC2::Instance" },
      { parent: this },
    );
    this.documentName = this.document.name;
    this.arn = this.document.arn;
    this.registerOutputs({ documentName: this.documentName });
  }
}
