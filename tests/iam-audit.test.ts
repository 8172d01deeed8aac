import { expect } from "chai";
import { auditDocuments, auditStatement, type AuditInput } from "./iam-audit";
import { agentPrincipals, isAllowed, otherTaskRequests, roleStatements, type Request } from "./iam-evaluator";
import { COMBINATIONS, policyDocuments, runProgramCached } from "./pulumi-mocks";

const identity = (statement: any, trustedServices: string[] = ["lambda.amazonaws.com"]): [AuditInput, any] => [
  { resource: "r", kind: "identity", trustedServices, document: { Statement: [statement] } },
  statement,
];

const trust = (statement: any): [AuditInput, any] => [{ resource: "r", kind: "trust", trustedServices: [], document: { Statement: [statement] } }, statement];

describe("the IAM audit rules", () => {
  const cases: [string, [AuditInput, any], RegExp | null][] = [
    ["a mutating action on * without a condition", identity({ Effect: "Allow", Action: ["ecs:RunTask"], Resource: "*" }), /mutating/],
    ["a mutating action on * with a condition", identity({ Effect: "Allow", Action: ["ecs:RunTask"], Resource: "*", Condition: { ArnEquals: { "ecs:cluster": "x" } } }), null],
    ["a read-only action on *", identity({ Effect: "Allow", Action: ["ec2:DescribeInstances"], Resource: "*" }), null],
    ["iam:PassRole on *", identity({ Effect: "Allow", Action: "iam:PassRole", Resource: "*", Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } } }), /wildcard/],
    ["iam:PassRole without iam:PassedToService", identity({ Effect: "Allow", Action: "iam:PassRole", Resource: ["arn:aws:iam::1:role/x"] }), /PassedToService/],
    ["iam:PassRole on exact roles for one service", identity({ Effect: "Allow", Action: "iam:PassRole", Resource: ["arn:aws:iam::1:role/x"], Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } } }), null],
    ["ssm:SendCommand on AWS-RunShellScript", identity({ Effect: "Allow", Action: "ssm:SendCommand", Resource: ["arn:aws:ssm:us-east-1::document/AWS-RunShellScript"] }), /AWS-RunShellScript/],
    ["ssm:SendCommand on instances without a tag condition", identity({ Effect: "Allow", Action: "ssm:SendCommand", Resource: ["arn:aws:ec2:us-east-1:1:instance/*"] }), /fleet-tag/],
    ["an instance role tagging any instance", identity({ Effect: "Allow", Action: "ec2:CreateTags", Resource: ["arn:aws:ec2:*:*:instance/*"] }, ["ec2.amazonaws.com"]), /other than itself/],
    ["an instance role tagging only itself", identity({ Effect: "Allow", Action: "ec2:CreateTags", Resource: ["arn:aws:ec2:*:*:instance/*"], Condition: { StringEquals: { "aws:ARN": "${ec2:SourceInstanceARN}" } } }, ["ec2.amazonaws.com"]), null],
    ["a Deny statement", identity({ Effect: "Deny", Action: "*", Resource: "*" }), null],
    ["sts:AssumeRole on any role", identity({ Effect: "Allow", Action: ["sts:AssumeRole"], Resource: ["arn:aws:iam::1:role/*"] }), /AssumeRole on a wildcard/],
    ["sts:AssumeRole on one named role", identity({ Effect: "Allow", Action: ["sts:AssumeRole"], Resource: ["arn:aws:iam::1:role/agent"] }), null],
    ["a trust policy for a whole account", trust({ Effect: "Allow", Principal: { AWS: "arn:aws:iam::123456789012:root" }, Action: "sts:AssumeRole" }), /trusts arn:aws:iam::123456789012:root/],
    ["a trust policy for anyone", trust({ Effect: "Allow", Principal: "*", Action: "sts:AssumeRole" }), /trusts \*/],
    ["a trust policy for one named role", trust({ Effect: "Allow", Principal: { AWS: "arn:aws:iam::123456789012:role/fleet" }, Action: "sts:AssumeRole" }), null],
    ["a trust policy for a service", trust({ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }), null],
  ];
  for (const [name, [doc, statement], expected] of cases) {
    it(`${expected ? "flags" : "passes"} ${name}`, () => {
      const v = auditStatement(doc, statement);
      if (expected) expect(v.join("; ")).to.match(expected);
      else expect(v).to.deep.equal([]);
    });
  }
});

describe("the IAM audit over every policy document the program builds", function () {
  this.timeout(180_000);
  for (const [label, config] of Object.entries(COMBINATIONS)) {
    it(`${label}: no violations`, async () => {
      const run = await runProgramCached(config);
      if (run.error) throw run.error;
      const findings = auditDocuments(policyDocuments(run));
      expect(findings.length).to.be.greaterThan(10);
      expect(findings.filter((f) => f.violations.length).map((f) => `${f.resource} ${f.sid}: ${f.violations.join("; ")}`)).to.deep.equal([]);
      const sids = findings.map((f) => f.sid);
      const backends = config.backends as string[];
      expect(sids.includes("EcsRunTask"), "ECS grant present iff ecs enabled").to.equal(backends.includes("ecs"));
      expect(sids.includes("SsmSendOurDocument"), "SSM grant present iff ec2 enabled").to.equal(backends.includes("ec2"));
      expect(sids.includes("AgentCoreSessions"), "AgentCore grant present iff agentcore enabled").to.equal(backends.includes("agentcore"));
    });
  }
});

describe("the IAM audit on the program's own documents, each weakened by one rule", function () {
  this.timeout(180_000);
  /** [rule, sid of a statement the program builds, how to weaken it, what the audit must say] */
  const weakenings: [string, string, (s: any) => void, RegExp][] = [
    ["mutating action on * without a condition", "EcsRunTask", (s) => { s.Resource = "*"; delete s.Condition; }, /mutating action\(s\) ecs:RunTask on "\*"/],
    ["iam:PassRole without iam:PassedToService", "EcsPassTaskRoles", (s) => { delete s.Condition; }, /without a StringEquals iam:PassedToService/],
    ["iam:PassRole on *", "EcsPassTaskRoles", (s) => { s.Resource = "*"; }, /PassRole on a wildcard/],
    ["ssm:SendCommand on AWS-RunShellScript", "SsmSendOurDocument", (s) => { s.Resource = ["arn:aws:ssm:us-east-1::document/AWS-RunShellScript"]; }, /AWS-RunShellScript/],
    ["ssm:SendCommand on untagged instances", "SsmSendFleetInstances", (s) => { delete s.Condition; }, /fleet-tag condition/],
    ["an instance role tagging other instances", "TagOnlyItself", (s) => { delete s.Condition.StringEquals; }, /other than itself/],
    ["an instance role assuming any role", "AssumeAgentRole", (s) => { s.Resource = ["arn:aws:iam::123456789012:role/*"]; }, /AssumeRole on a wildcard/],
  ];
  for (const [rule, sid, weaken, expected] of weakenings) {
    it(`flags ${rule} (${sid} weakened)`, async () => {
      const run = await runProgramCached(COMBINATIONS["ec2 + ecs"]);
      if (run.error) throw run.error;
      const docs = policyDocuments(run);
      const holders = docs.filter((d) => d.document.Statement.some((s) => s.Sid === sid));
      expect(holders, `documents with ${sid}`).to.have.length.greaterThan(0);
      expect(auditDocuments(holders).flatMap((f) => f.violations), "as built").to.deep.equal([]);
      for (const d of holders) d.document = JSON.parse(JSON.stringify(d.document));
      for (const d of holders) d.document.Statement.filter((s) => s.Sid === sid).forEach(weaken);
      const flagged = auditDocuments(holders).filter((f) => f.sid === sid && f.violations.length);
      expect(flagged, "weakened statements flagged").to.have.length(holders.length);
      for (const f of flagged) expect(f.violations.join("; ")).to.match(expected);
    });
  }

  it("knows each fleet's instance role trusts EC2, so the self-tagging rule applies to it", async () => {
    const run = await runProgramCached(COMBINATIONS["two named ec2 fleets"]);
    if (run.error) throw run.error;
    const instancePolicies = policyDocuments(run).filter((d) => d.kind === "identity" && d.document.Statement.some((s) => s.Sid === "TagOnlyItself"));
    expect(instancePolicies.map((d) => d.resource).sort()).to.deep.equal(["agent-compute-test-fleet-default-policy", "agent-compute-test-fleet-gpu-policy"]);
    for (const d of instancePolicies) expect(d.trustedServices).to.deep.equal(["ec2.amazonaws.com"]);
  });
});

describe("the IAM evaluator the audit uses", () => {
  const cases: [string, any[], Request, boolean][] = [
    ["an exact allow", [{ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k" }], { action: "s3:GetObject", resource: "arn:aws:s3:::b/k" }, true],
    ["wildcards in action (any case) and resource", [{ Effect: "Allow", Action: "S3:Get*", Resource: "arn:aws:s3:::b/*" }], { action: "s3:GetObject", resource: "arn:aws:s3:::b/x/y" }, true],
    ["another resource", [{ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/mine/*" }], { action: "s3:GetObject", resource: "arn:aws:s3:::b/other/k" }, false],
    ["an explicit deny wins", [{ Effect: "Allow", Action: "*", Resource: "*" }, { Effect: "Deny", Action: "s3:*", Resource: "*" }], { action: "s3:GetObject", resource: "arn:aws:s3:::b/k" }, false],
    ["a LeadingKeys condition for another key", [{ Effect: "Allow", Action: "dynamodb:GetItem", Resource: "*", Condition: { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["mine"] } } }], { action: "dynamodb:GetItem", resource: "arn:aws:dynamodb:us-east-1:1:table/t", context: { "dynamodb:LeadingKeys": ["other"] } }, false],
    ["a condition it cannot decide counts as met", [{ Effect: "Allow", Action: "dynamodb:GetItem", Resource: "*", Condition: { NumericLessThan: { "aws:EpochTime": "1" } } }], { action: "dynamodb:GetItem", resource: "arn:aws:dynamodb:us-east-1:1:table/t" }, true],
    ["no statements", [], { action: "s3:GetObject", resource: "arn:aws:s3:::b/k" }, false],
  ];
  for (const [name, statements, req, allowed] of cases) {
    it(`${allowed ? "allows" : "denies"}: ${name}`, () => expect(isAllowed(statements, req)).to.equal(allowed));
  }
});

describe("agent principals reach no other task (the audit's evaluator over the program's own roles)", function () {
  this.timeout(180_000);
  const expectedLabels: Record<string, string[]> = { ecs: ["ECS task role"], agentcore: ["AgentCore runtime role"], ec2: ["EC2 instance role", "EC2 agent role"] };
  for (const [label, config] of Object.entries(COMBINATIONS)) {
    it(`${label}: every agent principal is denied another task's record, events and payload`, async () => {
      const run = await runProgramCached(config);
      if (run.error) throw run.error;
      const principals = agentPrincipals(run);
      const labels = new Set(principals.map((p) => p.label));
      for (const b of config.backends as string[]) for (const l of expectedLabels[b]) expect(labels.has(l), `${l} found`).to.equal(true);
      const requests = otherTaskRequests(run);
      expect(requests.length).to.be.greaterThan(20);
      const allowed = principals.flatMap((p) => requests.filter((r) => isAllowed(p.statements, r)).map((r) => `${p.label} ${p.role}: ${r.action} ${r.resource}`));
      expect(allowed).to.deep.equal([]);
      // The evaluator can say yes: the orchestrator, which owns the payloads, is allowed what the agents are not.
      const orchestrator = run.byType("aws:iam/role:Role").find((r) => r.name.includes("orchestrator"))!;
      const payloadGet = requests.find((r) => r.action === "s3:GetObject")!;
      expect(isAllowed(roleStatements(run, orchestrator.name), payloadGet), "orchestrator reads payloads").to.equal(true);
    });
  }
});
