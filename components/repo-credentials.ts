/**
 * Where the stack keeps repository credentials: Secrets Manager secrets under one prefix, read by the control plane
 * only (the task API, whose agent channel hands a task its repository's credentials). The stack creates the two
 * fixed secrets without a value; the operator fills the one they use:
 *   <prefix>/github-app   {"app_id", "private_key", "api_url"?}  (preferred: one-hour tokens scoped to one repository)
 *   <prefix>/default      the stack's token for every repository
 * and may add <prefix>/repos/<host>/<owner>/<repo> secrets for single repositories (runtime/credentials/secrets.ts).
 * No agent principal is granted any Secrets Manager action; the fixed secrets also deny reads to every principal
 * but the readers named here, by resource policy.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import type { Statement } from "./iam";

export interface RepoCredentialSecretsArgs {
  /** Secret name prefix, e.g. "agent-compute-dev/git". */
  readonly prefix: string;
  readonly region: pulumi.Input<string>;
  readonly accountId: pulumi.Input<string>;
}

export class RepoCredentialSecrets extends pulumi.ComponentResource {
  readonly prefix: string;
  readonly secrets: aws.secretsmanager.Secret[];
  /** Every secret under the prefix (the fixed ones and the operator's per-repository ones). */
  readonly arnPattern: pulumi.Output<string>;
  private readonly baseName: string;

  constructor(name: string, args: RepoCredentialSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:credentials:RepoCredentialSecrets", name, {}, opts);
    if (!/^[A-Za-z0-9/_+=.@-]{1,400}$/.test(args.prefix)) {
      throw new pulumi.InputPropertiesError({ message: `RepoCredentialSecrets ${name}: invalid arguments`, errors: [{ propertyPath: "prefix", reason: `must be a Secrets Manager name prefix (letters, digits, /_+=.@-), got '${args.prefix}'` }] });
    }
    this.prefix = args.prefix;
    this.baseName = name;
    this.secrets = [
      new aws.secretsmanager.Secret(`${name}-github-app`, { name: `${args.prefix}/github-app`, description: "agent-compute: GitHub App {app_id, private_key, api_url?} for repository tokens" }, { parent: this }),
      new aws.secretsmanager.Secret(`${name}-default`, { name: `${args.prefix}/default`, description: "agent-compute: the stack's repository token (fallback)" }, { parent: this }),
    ];
    this.arnPattern = pulumi.interpolate`arn:aws:secretsmanager:${args.region}:${args.accountId}:secret:${args.prefix}/*`;
    this.registerOutputs({ prefix: this.prefix });
  }

  /** The control plane's grant: read the secrets under the prefix, nothing else. */
  readStatement(): Statement {
    return { Sid: "RepoCredentialSecrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [this.arnPattern] };
  }

  /** Deny reads of the fixed secrets to every principal but `readerRoleArns` (children of this component). */
  restrictReadsTo(readerRoleArns: pulumi.Input<string>[]): void {
    this.secrets.forEach((secret, i) => {
      new aws.secretsmanager.SecretPolicy(
        `${this.baseName}-${["github-app", "default"][i]}-readers`,
        {
          secretArn: secret.arn,
          policy: pulumi.jsonStringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "OnlyTheControlPlaneReads",
                Effect: "Deny",
                Principal: "*",
                Action: "secretsmanager:GetSecretValue",
                Resource: "*",
                Condition: { StringNotEquals: { "aws:PrincipalArn": readerRoleArns } },
              },
            ],
          }),
        },
        { parent: this },
      );
    });
  }
}
