/**
 * The stack-owned SSM Command document that runs one agent task on a fleet instance. Its content (parameters
 * with allowedPattern, the script, the timeouts) is the runtime's (runtime/fleet/document.ts): one source.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { SSM_DOCUMENT_MAX_BYTES } from "./config/aws-quotas";

/**
 * SSM counts the parameter values sent at run time against the document's 64 KB: the content plus the longest value
 * each parameter's allowedPattern admits must fit.
 */
export function documentSizeErrors(content: object, parameters: Record<string, { allowedPattern: string }>): pulumi.InputPropertyErrorDetails[] {
  const longest = (pattern: string) => [...pattern.matchAll(/\{(\d+),(\d+)\}/g)].reduce((n, m) => n + Number(m[2]), pattern.length);
  const bytes = Buffer.byteLength(JSON.stringify(content), "utf8") + Object.values(parameters).reduce((n, p) => n + longest(p.allowedPattern), 0);
  return bytes > SSM_DOCUMENT_MAX_BYTES
    ? [{ propertyPath: "content", reason: `is ${bytes} bytes with its largest parameter values; an SSM document is at most 64 KB (${SSM_DOCUMENT_MAX_BYTES} bytes)` }]
    : [];
}

export interface CommandDocumentArgs {
  /** The document body (schemaVersion 2.2 object). */
  readonly content: object;
  /** The document's parameters (their allowedPattern bounds the values sent at run time). Default: none. */
  readonly parameters?: Record<string, { allowedPattern: string }>;
}

export class CommandDocument extends pulumi.ComponentResource {
  readonly document: aws.ssm.Document;
  readonly documentName: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: CommandDocumentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:ec2:CommandDocument", name, {}, opts);
    const errors = documentSizeErrors(args.content, args.parameters ?? {});
    if (errors.length) throw new pulumi.InputPropertiesError({ message: `CommandDocument ${name}: invalid arguments`, errors });
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
