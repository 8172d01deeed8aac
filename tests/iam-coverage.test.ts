import { expect } from "chai";
import { callSites, lambdaCalls, reachableFunctions, scriptCalls } from "./iam-calls";
import { coverage, coverageActions, isViolation, NOT_MADE, tableKeys, type CoverageRow } from "./iam-coverage";
import { isAllowed, roleStatements, type Request } from "./iam-evaluator";
import { documentActions } from "./iam-audit";
import { loadReference, type Reference } from "./iam-reference";
import { COMBINATIONS, policyDocuments, runProgramCached, type ProgramRun } from "./pulumi-mocks";
import { API_HANDLER } from "../components/task-api";
import { ORCHESTRATOR_HANDLER } from "../components/task-orchestrator";

describe("the AWS calls the code makes, found by parsing it", () => {
  it("maps commands, document-client commands, paginators and transactions to IAM actions, with their tables", () => {
    const text = [
      'import { GetCommand, TransactWriteCommand, paginateQuery } from "@aws-sdk/lib-dynamodb";',
      'import { InvokeCommand } from "@aws-sdk/client-lambda";',
      'import { paginateListCommands } from "@aws-sdk/client-ssm";',
      "class T {",
      "  async one() { await db.send(new GetCommand({ TableName: this.config.tables.tasks, Key: {} })); }",
      "  async two() { await db.send(new TransactWriteCommand({ TransactItems: [{ Put: { TableName: this.leasesTableName } }, { ConditionCheck: { TableName: cfg.tables.tasks } }] })); }",
      "  async three() { const input = { TableName: t.tables.events, IndexName: BY_X }; for await (const p of paginateQuery({ client: db }, input)) {} }",
      "  async four() { await lambda.send(new InvokeCommand({ FunctionName: f })); for await (const p of paginateListCommands({ client: ssm }, {})) {} }",
      "}",
      "async function dyn() { const m = await import(\"@aws-sdk/client-lambda\"); await c.send(new m.GetDurableExecutionCommand({})); }",
      "class L {",
      "  private async transact(items) { await db.send(new TransactWriteCommand({ TransactItems: items })); }",
      "  async five() { await this.transact([this.dropWaiter(), { Update: { TableName: this.leasesTableName } }]); }",
      "  private dropWaiter() { return { Delete: { TableName: this.waitersTableName } }; }",
      "  private async six() { await db.send(new TransactWriteCommand(build())); }",
      "}",
    ].join("\n");
    const sites = callSites("x.ts", text).map((s) => [s.action, s.within, s.tables.join(","), s.index ?? ""]);
    expect(sites).to.deep.equal([
      ["dynamodb:GetItem", "one", "this.config.tables.tasks", ""],
      ["dynamodb:PutItem", "two", "this.leasesTableName", ""],
      ["dynamodb:ConditionCheckItem", "two", "cfg.tables.tasks", ""],
      ["dynamodb:Query", "three", "t.tables.events", "BY_X"],
      ["lambda:InvokeFunction", "four", "", ""],
      ["ssm:ListCommands", "four", "", ""],
      ["lambda:GetDurableExecution", "dyn", "", ""],
      // Items handed to a helper are read at its callers, through the clauses they call.
      ["dynamodb:UpdateItem", "five", "this.leasesTableName", ""],
      ["dynamodb:DeleteItem", "five", "this.waitersTableName", ""],
      // Items it cannot read stay a (failing) call rather than vanish.
      ["dynamodb:TransactWriteItems", "six", "", ""],
    ]);
  });

  it("keeps only calls in functions the entry reaches by name", () => {
    const reached = reachableFunctions({
      "entry.ts": "export const handler = () => cancel();\nfunction cancel() { strategy.stopSession(); }",
      "s.ts": "class S { async startSession() { run(); }\n async stopSession() { stop(); } }",
    });
    expect([...reached].sort()).to.deep.equal(["entry.ts#cancel", "entry.ts#handler", "s.ts#stopSession"]);
  });

  it("the API's bundle holds the strategies but never reaches a start (so it is not asked to hold RunTask or SendCommand)", () => {
    const api = lambdaCalls(API_HANDLER);
    const unreached = api.unreached.map((s) => s.action);
    expect(unreached).to.include.members(["ecs:RunTask", "ssm:SendCommand", "bedrock-agentcore:InvokeAgentRuntime"]);
    expect(api.sites.map((s) => s.action)).to.include.members(["ecs:StopTask", "ssm:CancelCommand", "lambda:InvokeFunction"]);
    const orchestrator = lambdaCalls(ORCHESTRATOR_HANDLER);
    expect(orchestrator.sites.map((s) => s.action)).to.include.members(["ecs:RunTask", "ssm:SendCommand", "ssm:ListCommands", "lambda:CheckpointDurableExecution"]);
    expect(orchestrator.files).to.include("runtime/orchestrator/durable-handler.ts");
  });

  it("follows a table name through getters, helpers and parameters to the table", () => {
    const orchestrator = lambdaCalls(ORCHESTRATOR_HANDLER);
    const bundle = orchestrator.files.filter((f) => !f.startsWith("node_modules"));
    const keysOf = (file: string, within: string) => {
      const site = orchestrator.sites.find((s) => s.file === file && s.within === within)!;
      return [...new Set(site.tables.flatMap((t) => tableKeys(t, site, bundle)))];
    };
    expect(keysOf("runtime/tasks/store.ts", "get")).to.deep.equal(["tasks"]);
    expect(keysOf("runtime/fleet/waiters.ts", "oldestWaiters")).to.deep.equal(["waiters"]);
    expect(keysOf("runtime/orchestrator/slots.ts", "claim")).to.deep.equal(["concurrency"]);
  });

  it("reads the aws CLI calls and ECR pulls of a script", () => {
    const calls = scriptCalls(["aws ecr get-login-password --region r | docker login", 'aws ec2 create-tags --resources "$I" --tags "Key=agent-compute:boot,Value=ready"', "# aws s3 cp x y", 'if docker pull "$IMAGE"; then', 'echo "docker pull failed"'].join("\n"), true);
    expect(calls.map((c) => [c.line, c.action, c.tagKeys ?? []])).to.deep.equal([
      [1, "ecr:GetAuthorizationToken", []],
      [2, "ec2:CreateTags", ["agent-compute:boot"]],
      [4, "ecr:BatchGetImage", []],
      [4, "ecr:GetDownloadUrlForLayer", []],
    ]);
  });
});

describe("the evaluator's strict mode (coverage: an allow must be proven)", () => {
  const cases: [string, any[], Request, boolean, boolean][] = [
    ["a condition on a key the request does not carry", [{ Effect: "Allow", Action: "ssm:SendCommand", Resource: "*", Condition: { StringEquals: { "ssm:resourceTag/f": "a" } } }], { action: "ssm:SendCommand", resource: "x" }, true, false],
    ["an operator it does not know", [{ Effect: "Allow", Action: "s3:GetObject", Resource: "*", Condition: { DateLessThan: { "aws:CurrentTime": "2030-01-01" } } }], { action: "s3:GetObject", resource: "x", context: { "aws:CurrentTime": ["2026-01-01"] } }, true, false],
    ["a policy variable filled from the request", [{ Effect: "Allow", Action: "ec2:CreateTags", Resource: "${ec2:SourceInstanceARN}" }], { action: "ec2:CreateTags", resource: "arn:aws:ec2:r:1:instance/i-1", context: { "ec2:SourceInstanceARN": ["arn:aws:ec2:r:1:instance/i-1"] } }, true, true],
    ["a policy variable naming another instance", [{ Effect: "Allow", Action: "ec2:CreateTags", Resource: "${ec2:SourceInstanceARN}" }], { action: "ec2:CreateTags", resource: "arn:aws:ec2:r:1:instance/i-2", context: { "ec2:SourceInstanceARN": ["arn:aws:ec2:r:1:instance/i-1"] } }, false, false],
    ["a policy variable the request does not carry", [{ Effect: "Allow", Action: "ec2:CreateTags", Resource: "${ec2:SourceInstanceARN}" }], { action: "ec2:CreateTags", resource: "arn:aws:ec2:r:1:instance/i-2" }, true, false],
    ["a met condition", [{ Effect: "Allow", Action: "ssm:CancelCommand", Resource: "*", Condition: { StringEquals: { "aws:RequestedRegion": "us-east-1" } } }], { action: "ssm:CancelCommand", resource: "*", context: { "aws:RequestedRegion": ["us-east-1"] } }, true, true],
  ];
  for (const [name, statements, req, lenient, strict] of cases) {
    it(`${name}: lenient ${lenient}, strict ${strict}`, () => {
      expect(isAllowed(statements, req)).to.equal(lenient);
      expect(isAllowed(statements, req, { strict: true })).to.equal(strict);
    });
  }
});

describe("coverage: every AWS call a deployed principal makes is allowed to it", function () {
  this.timeout(300_000);
  const runs = new Map<string, { run: ProgramRun; ref: Reference; rows: CoverageRow[] }>();
  const covered = async (label: string) => {
    if (!runs.has(label)) {
      const run = await runProgramCached(COMBINATIONS[label]);
      if (run.error) throw run.error;
      const ref = await loadReference([...documentActions(policyDocuments(run)), ...coverageActions()]);
      runs.set(label, { run, ref, rows: coverage(run, ref) });
    }
    return runs.get(label)!;
  };

  const principals: Record<string, string[]> = {
    ecs: ["ECS execution role", "ECS task role"],
    agentcore: ["AgentCore runtime role"],
    ec2: ["fleet-manager Lambda", "EC2 instance role"],
  };
  for (const label of Object.keys(COMBINATIONS)) {
    it(`${label}: every call granted, for every principal the stack deploys`, async () => {
      const { rows } = await covered(label);
      expect(rows.filter(isViolation).map((r) => `${r.principal} ${r.site} ${r.action} ${r.resource}: ${r.missing}`)).to.deep.equal([]);
      const seen = new Set(rows.map((r) => r.principal.replace(/ \(fleet .*\)$/, "")));
      for (const p of ["orchestrator Lambda", "API Lambda", "reconciler Lambda"]) expect(seen.has(p), p).to.equal(true);
      for (const b of COMBINATIONS[label].backends as string[] ?? []) for (const p of principals[b]) expect(seen.has(p), p).to.equal(true);
      expect(rows.filter((r) => r.granted).length).to.be.greaterThan(40);
    });
  }

  it("every NOT_MADE entry still excuses a call (none outlives its reason)", async () => {
    const used = new Set<number>();
    for (const label of Object.keys(COMBINATIONS)) {
      for (const r of (await covered(label)).rows) {
        const i = NOT_MADE.findIndex((n) => n.reason === r.notMade);
        if (i >= 0) used.add(i);
      }
    }
    expect([...used].sort()).to.deep.equal(NOT_MADE.map((_, i) => i));
  });

  /** The grants as they stood before this check existed, put back one at a time: each must fail, naming the call. */
  const defects: [string, (s: any) => void, RegExp][] = [
    [
      "ssm:CancelCommand granted on instance ARNs",
      (s) => {
        if (s.Sid === "SsmCancelCommands") {
          s.Resource = ["arn:aws:ec2:us-east-1:123456789012:instance/*"];
          s.Condition = { StringEquals: { "ssm:resourceTag/agent-compute:fleet": ["default"] } };
        }
      },
      /^orchestrator Lambda runtime\/compute\/ec2\.ts:\d+ ssm:CancelCommand \*: SsmCancelCommands allows ssm:CancelCommand on arn:aws:ec2:.*instance\/\*, not \*$/,
    ],
    [
      "ssm:ListCommands granted to no role",
      (s) => {
        s.Action = [].concat(s.Action).filter((a) => a !== "ssm:ListCommands");
      },
      /^orchestrator Lambda runtime\/compute\/ec2\.ts:\d+ ssm:ListCommands \*: no Allow statement names ssm:ListCommands$/,
    ],
    [
      "the reconciler unable to scan the slots",
      (s) => {
        if (s.Sid === "ScanSlots") s.Action = [];
      },
      /^reconciler Lambda runtime\/reconciler\/observe\.ts:\d+ dynamodb:Scan .*table\/agent-compute-test-tables-concurrency: no Allow statement names dynamodb:Scan$/,
    ],
  ];
  for (const [defect, weaken, expected] of defects) {
    it(`catches ${defect}`, async () => {
      const { run, ref } = await covered("ec2 + ecs");
      const weakened = (role: string) => JSON.parse(JSON.stringify(roleStatements(run, role))).map((s: any) => (weaken(s), s));
      const failures = coverage(run, ref, weakened).filter(isViolation).map((r) => `${r.principal} ${r.site} ${r.action} ${r.resource}: ${r.missing}`);
      expect(failures.length, failures.join("\n")).to.be.greaterThan(0);
      expect(failures.filter((f) => expected.test(f)), failures.join("\n")).to.have.length.greaterThan(0);
    });
  }
});
