/**
 * IAM documents, built by plain functions so that each grant is readable in one place and audited in tests. A
 * backend's control-plane grants are built by its own component (compute-backend.ts) and merged here.
 * Rules held here and there (docs/design.md, "Infrastructure and grants"): no mutating action on "*" without a condition; iam:PassRole only for exact
 * roles with iam:PassedToService; ssm:SendCommand only for our document and for instances carrying the fleet tag.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import type { AgentImageRef } from "./agent-image";
import type { ComputeBackend } from "./compute-backend";

export interface Statement {
  Sid: string;
  Effect: "Allow" | "Deny";
  Action: string[];
  Resource: pulumi.Input<string>[] | "*";
  Condition?: Record<string, Record<string, pulumi.Input<string> | pulumi.Input<string>[]>>;
}

export function policyDocument(statements: Statement[]): pulumi.Output<string> {
  return pulumi.jsonStringify({ Version: "2012-10-17", Statement: statements });
}

export function assumeRolePolicy(service: string, conditions?: Statement["Condition"]): pulumi.Output<string> {
  return pulumi.jsonStringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole", ...(conditions ? { Condition: conditions } : {}) }],
  });
}

/** A role with one inline policy, both children of `parent`. */
export function roleWithPolicy(
  name: string,
  args: { service: string; statements: Statement[]; managedPolicyArns?: string[]; trustConditions?: Statement["Condition"] },
  parent: pulumi.Resource,
): { role: aws.iam.Role; policy?: aws.iam.RolePolicy } {
  const role = new aws.iam.Role(`${name}-role`, {
    assumeRolePolicy: assumeRolePolicy(args.service, args.trustConditions),
  }, { parent });
  for (const arn of args.managedPolicyArns ?? []) {
    new aws.iam.RolePolicyAttachment(`${name}-${arn.split("/").pop()}`, { role: role.name, policyArn: arn }, { parent });
  }
  const policy = args.statements.length
    ? new aws.iam.RolePolicy(`${name}-policy`, { role: role.id, policy: policyDocument(args.statements) }, { parent })
    : undefined;
  return { role, policy };
}

export interface TableArns {
  tasks: pulumi.Input<string>;
  events: pulumi.Input<string>;
  leases: pulumi.Input<string>;
  concurrency: pulumi.Input<string>;
  repos: pulumi.Input<string>;
  waiters: pulumi.Input<string>;
}

type TableKey = keyof TableArns;

const DDB_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"];
const DDB_WRITE = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"];

/** Read/write on the named tables and their indexes (index ARNs are the table ARN + /index/*). */
export function tableStatement(sid: string, tables: TableArns, keys: TableKey[], write: boolean): Statement {
  const resources: pulumi.Input<string>[] = [];
  for (const k of keys) {
    resources.push(tables[k], pulumi.interpolate`${tables[k]}/index/*`);
  }
  return { Sid: sid, Effect: "Allow", Action: write ? [...DDB_READ, ...DDB_WRITE] : DDB_READ, Resource: resources };
}

export function payloadStatement(sid: string, bucketArn: pulumi.Input<string>, actions: ("get" | "put" | "delete")[]): Statement {
  const map = { get: "s3:GetObject", put: "s3:PutObject", delete: "s3:DeleteObject" } as const;
  return { Sid: sid, Effect: "Allow", Action: actions.map((a) => map[a]), Resource: [pulumi.interpolate`${bucketArn}/payloads/*`] };
}

export function logsStatement(sid: string, logGroupArn: pulumi.Input<string>): Statement {
  return { Sid: sid, Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [pulumi.interpolate`${logGroupArn}:*`] };
}

export function passRoleStatement(sid: string, roleArns: pulumi.Input<string>[], service: string): Statement {
  return {
    Sid: sid,
    Effect: "Allow",
    Action: ["iam:PassRole"],
    Resource: roleArns,
    Condition: { StringEquals: { "iam:PassedToService": service } },
  };
}

/** ECR pull: GetAuthorizationToken has no resource type (read-only, "*"); layers only from the image's repository. */
export function ecrPullStatements(sidPrefix: string, image: string | AgentImageRef): Statement[] {
  if (typeof image !== "string") {
    if (image.repositoryArn) return ecrRepositoryPullStatements(sidPrefix, image.repositoryArn);
    if (typeof image.uri !== "string") return [];
    image = image.uri;
  }
  const m = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)/.exec(image);
  if (!m) return [];
  const [, account, region, repo] = m;
  return [
    { Sid: `${sidPrefix}EcrToken`, Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
    {
      Sid: `${sidPrefix}EcrPull`,
      Effect: "Allow",
      Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
      Resource: [`arn:aws:ecr:${region}:${account}:repository/${repo}`],
    },
  ];
}

/** Pull rights on one repository (the stack-built image's), by ARN. */
function ecrRepositoryPullStatements(sidPrefix: string, repositoryArn: pulumi.Input<string>): Statement[] {
  return [
    { Sid: `${sidPrefix}EcrToken`, Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: "*" },
    { Sid: `${sidPrefix}EcrPull`, Effect: "Allow", Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], Resource: [repositoryArn] },
  ];
}

/** A cross-region inference profile id: a geography prefix before the model id (us., eu., apac., global., …). */
const PROFILE_ID = /^(us|eu|apac|us-gov|ca|jp|au|global)\.(.+)$/;

/**
 * The Bedrock resources invoking these models needs, and no others. A model id is a foundation model in this
 * region; an inference profile id is the profile in this account and region plus its model in every region the
 * profile routes to (a global profile's model ARN has no region); an ARN is taken as it is.
 */
export function bedrockModelResources(models: string[], region: pulumi.Input<string>, accountId: pulumi.Input<string>): pulumi.Input<string>[] {
  const out: pulumi.Input<string>[] = [];
  for (const model of [...new Set(models)].sort()) {
    if (model.startsWith("arn:")) {
      out.push(model);
      continue;
    }
    const profile = PROFILE_ID.exec(model);
    if (profile) {
      out.push(pulumi.interpolate`arn:aws:bedrock:${region}:${accountId}:inference-profile/${model}`);
      out.push(`arn:aws:bedrock:*::foundation-model/${profile[2]}`);
      if (profile[1] === "global") out.push(`arn:aws:bedrock:::foundation-model/${profile[2]}`);
    } else {
      out.push(pulumi.interpolate`arn:aws:bedrock:${region}::foundation-model/${model}`);
    }
  }
  return out;
}

/** Agents may invoke the stack's configured models, streaming or not; nothing else of Bedrock. */
export function bedrockInvokeStatement(sid: string, models: string[], region: pulumi.Input<string>, accountId: pulumi.Input<string>): Statement {
  return { Sid: sid, Effect: "Allow", Action: ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"], Resource: bedrockModelResources(models, region, accountId) };
}

/**
 * Start, poll and stop rights over every enabled backend's sessions (each backend's component states its own,
 * ComputeBackend.controlPlaneStatements); none for a disabled one. `start` false: poll/stop only.
 */
export function computeStatements(backends: readonly ComputeBackend[], start: boolean): Statement[] {
  return backends.flatMap((b) => b.controlPlaneStatements(start));
}
