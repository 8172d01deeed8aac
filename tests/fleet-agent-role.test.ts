/**
 * The EC2 fleet's agent role under Pulumi mocks, read with the IAM audit's evaluator: the container's credentials
 * can invoke the stack's models and nothing else; only the fleet's own instance role may assume it, per task; the
 * instance role may assume it and no other role.
 */
import { expect } from "chai";
import { DEFAULTS } from "../components/config/defaults";
import { AGENT_SESSION_PREFIX, AGENT_SESSION_TAG } from "../runtime/fleet/agent-credentials";
import {
  actionsBeyond,
  agentPrincipals,
  ec2AgentRoles,
  isAllowed,
  MODEL_INVOKE_ACTIONS,
  otherTaskRequests,
  roleArn,
  roleStatements,
  trustStatements,
} from "./iam-evaluator";
import { ACCOUNT, COMBINATIONS, REGION, runProgramCached } from "./pulumi-mocks";

const PROFILE = `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/${DEFAULTS.model}`;
const OTHER_MODEL = `arn:aws:bedrock:${REGION}::foundation-model/anthropic.claude-opus-4-1-20250805-v1:0`;

describe("the EC2 agent role: the stack's models only, assumed per task by its own fleet's instances only", function () {
  this.timeout(180_000);

  for (const label of ["ec2 alone", "all three", "two named ec2 fleets"]) {
    it(`${label}: one agent role per fleet, granted model invocation and nothing else`, async () => {
      const run = await runProgramCached(COMBINATIONS[label]);
      if (run.error) throw run.error;
      const agents = ec2AgentRoles(run);
      const fleets = run.byType("aws:iam/instanceProfile:InstanceProfile").map((p) => String(p.inputs.role));
      expect(agents.map((a) => a.instanceRole).sort(), "one agent role per fleet").to.deep.equal([...fleets].sort());
      for (const { role } of agents) {
        const statements = roleStatements(run, role);
        expect(actionsBeyond(statements, MODEL_INVOKE_ACTIONS), `${role} grants`).to.deep.equal([]);
        expect(run.byType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").filter((a) => a.inputs.role === role), "no managed policy").to.deep.equal([]);
        expect(isAllowed(statements, { action: "bedrock:InvokeModelWithResponseStream", resource: PROFILE }), "the stack's model").to.equal(true);
        expect(isAllowed(statements, { action: "bedrock:InvokeModel", resource: OTHER_MODEL }), "a model the stack does not configure").to.equal(false);
        for (const r of otherTaskRequests(run)) expect(isAllowed(statements, r), `${r.action} ${r.resource}`).to.equal(false);
      }
    });
  }

  it("the same models as the ECS task role and the AgentCore runtime role (a repo blueprint's model included)", async () => {
    const run = await runProgramCached(COMBINATIONS["all three"]);
    if (run.error) throw run.error;
    const resourcesOf = (labelled: string) => {
      const p = agentPrincipals(run).find((x) => x.label === labelled)!;
      return p.statements.filter((s) => s.Sid === "AgentInvokeModels").flatMap((s) => s.Resource);
    };
    const ec2 = resourcesOf("EC2 agent role");
    expect(ec2).to.include(PROFILE).and.include(`arn:aws:bedrock:${REGION}::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0`);
    expect(ec2).to.deep.equal(resourcesOf("ECS task role"));
    expect(ec2).to.deep.equal(resourcesOf("AgentCore runtime role"));
  });

  it("trusts only its own fleet's instance role, with a session named for a task and the task-id tag only", async () => {
    const run = await runProgramCached(COMBINATIONS["two named ec2 fleets"]);
    if (run.error) throw run.error;
    for (const { role, instanceRole } of ec2AgentRoles(run)) {
      const trust = trustStatements(run, role);
      expect(trust.every((s) => s.Effect === "Allow" && JSON.stringify(s.Principal) === JSON.stringify({ AWS: roleArn(instanceRole) })), JSON.stringify(trust)).to.equal(true);
      const assume = trust.filter((s) => [].concat(s.Action).includes("sts:AssumeRole" as never));
      expect(assume).to.have.length(1);
      expect(assume[0].Condition).to.deep.equal({ StringLike: { "sts:RoleSessionName": `${AGENT_SESSION_PREFIX}*` } });
      const tag = trust.filter((s) => [].concat(s.Action).includes("sts:TagSession" as never));
      expect(tag).to.have.length(1);
      expect(tag[0].Condition).to.deep.equal({ "ForAllValues:StringEquals": { "aws:TagKeys": [AGENT_SESSION_TAG] } });
      expect(trust.flatMap((s) => [].concat(s.Action)).sort()).to.deep.equal(["sts:AssumeRole", "sts:TagSession"]);
    }
  });

  it("each instance role may assume its own fleet's agent role, and no other role of the stack", async () => {
    const run = await runProgramCached(COMBINATIONS["two named ec2 fleets"]);
    if (run.error) throw run.error;
    const roles = run.byType("aws:iam/role:Role").map((r) => r.name);
    const agents = ec2AgentRoles(run);
    expect(agents).to.have.length(2);
    for (const { role, instanceRole } of agents) {
      const statements = roleStatements(run, instanceRole);
      for (const other of roles) {
        for (const action of ["sts:AssumeRole", "sts:TagSession"]) {
          expect(isAllowed(statements, { action, resource: roleArn(other) }), `${instanceRole} ${action} ${other}`).to.equal(other === role);
        }
      }
      // The instance role itself still holds no model.
      expect(isAllowed(statements, { action: "bedrock:InvokeModel", resource: PROFILE })).to.equal(false);
    }
  });
});
