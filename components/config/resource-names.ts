/**
 * Every physical name the stack creates starts with `<project>-<stack>` (index.ts), and a fleet's resources add
 * `-fleet-<fleet>`. Pulumi auto-names most resources by appending a random suffix to the logical name; explicit
 * names (task definition family, AgentCore runtime, secrets) are built from the same prefix. So bounding the prefix
 * and the fleet names bounds every name, and `pulumi preview` can refuse a stack or fleet name that some service
 * would refuse at `pulumi up`. NAME_LIMITS holds each service's limit; tests/pulumi-names.test.ts builds the stack
 * with the longest names allowed here and checks every resource's physical name against it.
 */

/** `<project>-<stack>` at most this long: the longest names are EventBridge rules (64) and fleet IAM roles (64). */
export const STACK_PREFIX_MAX_LENGTH = 28;
/** Lowercase letters, digits and '-': S3 bucket and ECR repository names allow no capitals or '_'. */
export const STACK_PREFIX_PATTERN = /^[a-z][a-z0-9-]*$/;
/** Fleet names: `<prefix>-fleet-<fleet>-agent-role` plus the suffix must fit IAM's 64 characters. */
export const FLEET_NAME_MAX_LENGTH = 9;
export const FLEET_NAME_PATTERN = new RegExp(`^[a-z][a-z0-9-]{0,${FLEET_NAME_MAX_LENGTH - 1}}$`);

/**
 * Characters Pulumi's auto-naming appends to a logical name: '-' and 7 random hex characters (the AWS provider's
 * default); one more is budgeted so a provider change cannot silently break the limits.
 */
export const AUTONAME_SUFFIX_LENGTH = 9;

export interface NameLimit {
  /** The input holding an explicit name; absent: the resource is auto-named from its logical name. */
  readonly field?: string;
  readonly maxLength: number;
  readonly pattern: RegExp;
  /** Where AWS states it. */
  readonly source: string;
}

const IAM_NAME = /^[\w+=,.@-]+$/;

/**
 * Each resource type the stack creates that has a physical name, with the name's limits. A type that is not here and
 * not in UNNAMED_TYPES fails tests/pulumi-names.test.ts, so a new resource cannot skip the check.
 */
export const NAME_LIMITS: Readonly<Record<string, NameLimit>> = {
  "aws:iam/role:Role": { maxLength: 64, pattern: IAM_NAME, source: "IAM API Reference, CreateRole RoleName" },
  "aws:iam/rolePolicy:RolePolicy": { maxLength: 128, pattern: IAM_NAME, source: "IAM API Reference, PutRolePolicy PolicyName" },
  "aws:iam/instanceProfile:InstanceProfile": { maxLength: 128, pattern: IAM_NAME, source: "IAM API Reference, CreateInstanceProfile InstanceProfileName" },
  "aws:lambda/function:Function": { maxLength: 64, pattern: /^[a-zA-Z0-9_-]+$/, source: "Lambda API Reference, CreateFunction FunctionName (64 for a bare name)" },
  "aws:lambda/alias:Alias": { field: "name", maxLength: 128, pattern: /^[a-zA-Z0-9_-]+$/, source: "Lambda API Reference, CreateAlias Name" },
  "aws:lambda/permission:Permission": { maxLength: 100, pattern: /^[a-zA-Z0-9_-]+$/, source: "Lambda API Reference, AddPermission StatementId" },
  "aws:cloudwatch/eventRule:EventRule": { maxLength: 64, pattern: /^[.\-_A-Za-z0-9]+$/, source: "EventBridge API Reference, PutRule Name" },
  "aws:cloudwatch/eventTarget:EventTarget": { field: "targetId", maxLength: 64, pattern: /^[.\-_A-Za-z0-9]+$/, source: "EventBridge API Reference, Target Id" },
  "aws:cloudwatch/logGroup:LogGroup": { maxLength: 512, pattern: /^[.\-_/#A-Za-z0-9]+$/, source: "CloudWatch Logs API Reference, CreateLogGroup logGroupName" },
  "aws:cloudwatch/metricAlarm:MetricAlarm": { maxLength: 255, pattern: /^[^\x00-\x1f]+$/, source: "CloudWatch API Reference, PutMetricAlarm AlarmName" },
  "aws:cloudwatch/dashboard:Dashboard": { maxLength: 255, pattern: /^[A-Za-z0-9_-]+$/, source: "CloudWatch API Reference, PutDashboard DashboardName" },
  "aws:dynamodb/table:Table": { maxLength: 255, pattern: /^[a-zA-Z0-9_.-]{3,}$/, source: "DynamoDB API Reference, CreateTable TableName" },
  "aws:s3/bucket:Bucket": { field: "bucket", maxLength: 63, pattern: /^[a-z0-9][a-z0-9.-]+[a-z0-9]$/, source: "S3 User Guide, general purpose bucket naming rules" },
  "aws:ec2/launchTemplate:LaunchTemplate": { maxLength: 128, pattern: /^[a-zA-Z0-9().\-/_]{3,}$/, source: "EC2 API Reference, CreateLaunchTemplate LaunchTemplateName" },
  "aws:ec2/securityGroup:SecurityGroup": { maxLength: 255, pattern: /^[\x20-\x7e]+$/, source: "EC2 API Reference, CreateSecurityGroup GroupName" },
  "aws:autoscaling/group:Group": { maxLength: 255, pattern: /^[\x20-\x7e]+$/, source: "Auto Scaling API Reference, CreateAutoScalingGroup AutoScalingGroupName" },
  "aws:ecs/cluster:Cluster": { maxLength: 255, pattern: /^[a-zA-Z0-9_-]+$/, source: "ECS API Reference, CreateCluster clusterName" },
  "aws:ecs/taskDefinition:TaskDefinition": { field: "family", maxLength: 255, pattern: /^[a-zA-Z0-9_-]+$/, source: "ECS API Reference, RegisterTaskDefinition family" },
  "aws:ssm/document:Document": { maxLength: 128, pattern: /^[a-zA-Z0-9_.-]{3,}$/, source: "SSM API Reference, CreateDocument Name" },
  "aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime": { field: "agentRuntimeName", maxLength: 48, pattern: /^[a-zA-Z][a-zA-Z0-9_]*$/, source: "AgentCore Control API Reference, CreateAgentRuntime agentRuntimeName" },
  "aws:ecr/repository:Repository": { maxLength: 256, pattern: /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/, source: "ECR API Reference, CreateRepository repositoryName" },
  "aws:secretsmanager/secret:Secret": { field: "name", maxLength: 512, pattern: /^[a-zA-Z0-9/_+=.@-]+$/, source: "Secrets Manager API Reference, CreateSecret Name" },
  "aws:apigatewayv2/api:Api": { maxLength: 128, pattern: /^[\x20-\x7e]+$/, source: "API Gateway V2 API Reference, CreateApi Name" },
  "aws:apigatewayv2/stage:Stage": { field: "name", maxLength: 128, pattern: /^[$a-zA-Z0-9_-]+$/, source: "API Gateway V2 API Reference, CreateStage StageName" },
};

/** Resource types without a physical name of their own (attachments, policies on another resource, routes, items). */
export const UNNAMED_TYPES: readonly string[] = [
  "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  "aws:apigatewayv2/integration:Integration",
  "aws:apigatewayv2/route:Route",
  "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
  "aws:s3/bucketPolicy:BucketPolicy",
  "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
  "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  "aws:secretsmanager/secretPolicy:SecretPolicy",
  "aws:ecr/lifecyclePolicy:LifecyclePolicy",
  "aws:dynamodb/tableItem:TableItem",
  // awsx's VPC: its subnets, gateways and routes carry only Name tags (256 characters), far above our names.
  "awsx:ec2:Vpc",
  // The image build pushes a tag of the repository (128 characters: "runner-" and a 16-character hash).
  "docker-build:index:Image",
];

/** The physical name a resource will get: its explicit name input, else its logical name plus Pulumi's suffix. */
export function physicalNameLength(type: string, logicalName: string, inputs: Record<string, unknown>): { name: string; length: number } | undefined {
  const limit = NAME_LIMITS[type];
  if (!limit) return undefined;
  const explicit = limit.field ? inputs[limit.field] : inputs.name;
  if (typeof explicit === "string") return { name: explicit, length: explicit.length };
  return { name: `${logicalName}-xxxxxxxx`, length: logicalName.length + AUTONAME_SUFFIX_LENGTH };
}

/** Problems with the `<project>-<stack>` prefix every physical name starts with. */
export function stackPrefixProblem(project: string, stack: string): string | undefined {
  const prefix = `${project}-${stack}`;
  if (!STACK_PREFIX_PATTERN.test(prefix)) {
    return `'${prefix}' (project-stack) must be lowercase letters, digits and '-': S3 bucket and ECR repository names allow nothing else`;
  }
  if (prefix.length > STACK_PREFIX_MAX_LENGTH) {
    return `'${prefix}' (project-stack) is ${prefix.length} characters; at most ${STACK_PREFIX_MAX_LENGTH} (stack names up to ${STACK_PREFIX_MAX_LENGTH - project.length - 1} characters for project '${project}'), so that every EventBridge rule and IAM role name fits its 64 characters`;
  }
  return undefined;
}
