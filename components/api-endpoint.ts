/**
 * The task API's HTTP API resource on its own. It exists before the Lambdas: its endpoint is the agents' channel
 * URL, which the orchestrator's config names, while the API Lambda (TaskApi) needs the orchestrator's alias. The
 * routes, stage and Lambda that make it answer are TaskApi's.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export class ApiEndpoint extends pulumi.ComponentResource {
  readonly api: aws.apigatewayv2.Api;
  /** https://<id>.execute-api.<region>.amazonaws.com: the $default stage serves at the root. */
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: Record<string, never> = {}, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:api:ApiEndpoint", name, args, opts);
    this.api = new aws.apigatewayv2.Api(name, { protocolType: "HTTP", description: "agent-compute task API (SigV4; agent channel by task token)" }, { parent: this });
    this.url = this.api.apiEndpoint;
    this.registerOutputs({ url: this.url });
  }
}
