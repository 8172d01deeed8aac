/**
 * `npm run audit:iam`: builds the program under Pulumi mocks for every backend combination and audits every
 * policy document. One line per statement checked, then the violation count; exit code 1 on any violation.
 */
import { COMBINATIONS, policyDocuments, runProgram } from "./pulumi-mocks";
import { auditDocuments, formatFinding } from "./iam-audit";
import { actionsBeyond, agentPrincipals, ec2AgentRoles, isAllowed, MODEL_INVOKE_ACTIONS, otherTaskRequests, roleArn, roleStatements, trustedAwsPrincipals } from "./iam-evaluator";

async function main(): Promise<number> {
  let statements = 0;
  let violations = 0;
  for (const [label, config] of Object.entries(COMBINATIONS)) {
    const run = await runProgram(config);
    if (run.error) {
      console.error(`[${label}] the program failed: ${String((run.error as Error).stack ?? run.error)}`);
      return 2;
    }
    for (const f of auditDocuments(policyDocuments(run))) {
      statements++;
      violations += f.violations.length;
      console.log(formatFinding(label, f));
    }
    // Agents are untrusted: each role an agent could hold is denied every request on another task's data.
    const requests = otherTaskRequests(run);
    for (const p of agentPrincipals(run)) {
      const allowed = requests.filter((r) => isAllowed(p.statements, r));
      violations += allowed.length;
      const verdict = allowed.length ? `VIOLATION: may ${allowed.map((r) => `${r.action} ${r.resource}`).join("; ")}` : "ok (no access beyond its own task)";
      console.log(`[${label}] agent principal ${p.label} ${p.role}: ${requests.length} requests on another task's record, events and payload: ${verdict}`);
    }
    // The EC2 container's credentials: models only, assumable only by its own fleet's instance role.
    for (const { role, instanceRole } of ec2AgentRoles(run)) {
      const beyond = actionsBeyond(roleStatements(run, role), MODEL_INVOKE_ACTIONS);
      const trusted = trustedAwsPrincipals(run, role).filter((p) => p !== roleArn(instanceRole));
      const problems = [...beyond.map((a) => `may ${a}`), ...trusted.map((p) => `trusts ${p}`)];
      violations += problems.length;
      const verdict = problems.length ? `VIOLATION: ${problems.join("; ")}` : `ok (${MODEL_INVOKE_ACTIONS.join(", ")} only; assumable by ${instanceRole} only)`;
      console.log(`[${label}] EC2 agent role ${role}: ${verdict}`);
    }
  }
  console.log(`IAM audit: ${statements} statements checked in ${Object.keys(COMBINATIONS).length} combinations, ${violations} violation(s)`);
  return violations ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
