/**
 * `npm run audit:iam`: builds the program under Pulumi mocks for every backend combination and audits every
 * policy document, against the project's rules and AWS's Service Authorization Reference. One line per statement
 * checked, then the coverage table (principal × call × granted), then the counts; exit code 1 on any violation.
 */
import { COMBINATIONS, policyDocuments, runProgram } from "./pulumi-mocks";
import { auditDocuments, documentActions, formatFinding } from "./iam-audit";
import { actionsBeyond, agentPrincipals, ec2AgentRoles, isAllowed, MODEL_INVOKE_ACTIONS, otherTaskRequests, roleArn, roleStatements, trustedAwsPrincipals } from "./iam-evaluator";
import { loadReference } from "./iam-reference";
import { coverage, coverageActions, formatRow, isViolation } from "./iam-coverage";

async function main(): Promise<number> {
  let statements = 0;
  let violations = 0;
  let calls = 0;
  let uncovered = 0;
  for (const [label, config] of Object.entries(COMBINATIONS)) {
    const run = await runProgram(config);
    if (run.error) {
      console.error(`[${label}] the program failed: ${String((run.error as Error).stack ?? run.error)}`);
      return 2;
    }
    const docs = policyDocuments(run);
    const reference = await loadReference([...documentActions(docs), ...coverageActions()]);
    for (const f of auditDocuments(docs, reference)) {
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
    // Coverage: every call each principal makes, on its concrete ARN, allowed to it; then one line per principal.
    const rows = coverage(run, reference);
    const byPrincipal = new Map<string, { granted: number; notMade: number; missing: number }>();
    for (const row of rows) {
      calls++;
      if (isViolation(row)) uncovered++;
      console.log(formatRow(label, row));
      const t = byPrincipal.get(row.principal) ?? { granted: 0, notMade: 0, missing: 0 };
      if (row.granted) t.granted++;
      else if (row.notMade) t.notMade++;
      else t.missing++;
      byPrincipal.set(row.principal, t);
    }
    for (const [principal, t] of byPrincipal) {
      console.log(`[${label}] coverage ${principal}: ${t.granted} granted, ${t.missing} not granted, ${t.notMade} not made in this stack`);
    }
  }
  console.log(`IAM audit: ${statements} statements checked in ${Object.keys(COMBINATIONS).length} combinations, ${violations} violation(s)`);
  console.log(`IAM coverage: ${calls} principal × call × resource rows, ${uncovered} not granted`);
  return violations + uncovered ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
