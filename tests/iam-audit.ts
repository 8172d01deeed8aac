/**
 * The IAM audit: checks every statement of every policy document a program run built against the project's IAM
 * rules (docs/design.md, "Infrastructure and grants"). Pure: give it documents, get one finding per statement checked.
 */
export interface AuditInput {
  resource: string;
  kind: "identity" | "trust" | "bucket";
  trustedServices: string[];
  document: { Statement: any[] };
}

export interface Finding {
  resource: string;
  sid: string;
  actions: string[];
  violations: string[];
}

const READ_ONLY = /^[a-z0-9-]+:(Describe|Get|List|BatchGet|Query|Scan|Head|Search|Lookup|Check|BatchCheck)/;

const asList = (v: unknown): string[] => (v === undefined ? [] : ([] as unknown[]).concat(v).map(String));

export function isMutating(action: string): boolean {
  return action === "*" || action.endsWith(":*") || !READ_ONLY.test(action);
}

function hasWildcardResource(resources: string[]): boolean {
  return resources.some((r) => r === "*");
}

function conditionValue(condition: any, operator: string, key: string): string[] {
  const block = condition?.[operator];
  if (!block) return [];
  const entry = Object.entries(block).find(([k]) => k.toLowerCase() === key.toLowerCase());
  return entry ? asList(entry[1]) : [];
}

/** A trust statement's AWS principals that are not one named role or user: anyone, or a whole account. */
function broadAwsPrincipals(statement: any): string[] {
  const principal = statement.Principal;
  const aws = principal === "*" ? ["*"] : asList(principal?.AWS);
  return aws.filter((p) => p === "*" || /^\d{12}$/.test(p) || /:root$/.test(p) || p.includes("*"));
}

export function auditStatement(doc: AuditInput, statement: any): string[] {
  const violations: string[] = [];
  if (statement.Effect === "Allow" && doc.kind === "trust") {
    const broad = broadAwsPrincipals(statement);
    if (broad.length) violations.push(`role trusts ${broad.join(", ")}: name the exact role that may assume it`);
    return violations;
  }
  if (statement.Effect !== "Allow" || doc.kind !== "identity") return violations;
  const actions = asList(statement.Action);
  const resources = asList(statement.Resource);
  const condition = statement.Condition;
  if (statement.NotAction || statement.NotResource) violations.push("uses NotAction/NotResource: grants more than it names");
  const mutating = actions.filter(isMutating);
  if (mutating.length && hasWildcardResource(resources) && !condition) {
    violations.push(`mutating action(s) ${mutating.join(", ")} on "*" without a condition`);
  }
  if (actions.some((a) => a === "*" || a === "iam:*" || a.toLowerCase() === "iam:passrole")) {
    if (hasWildcardResource(resources) || resources.some((r) => r.endsWith(":role/*") || r.endsWith("/*"))) {
      violations.push("iam:PassRole on a wildcard resource: name the exact roles");
    }
    if (!conditionValue(condition, "StringEquals", "iam:PassedToService").length) {
      violations.push("iam:PassRole without a StringEquals iam:PassedToService condition");
    }
  }
  if (actions.some((a) => a === "*" || a === "ssm:*" || a.toLowerCase() === "ssm:sendcommand")) {
    if (resources.some((r) => /document\/AWS-RunShellScript$/i.test(r) || r.includes("AWS-Run"))) {
      violations.push("ssm:SendCommand on AWS-RunShellScript: send only the stack-owned document");
    }
    if (hasWildcardResource(resources) || resources.some((r) => /document\/\*$/.test(r))) {
      violations.push("ssm:SendCommand on any document: name the stack-owned document");
    }
    const instanceResources = resources.filter((r) => r.includes(":instance/"));
    const tagged = Object.keys(condition?.StringEquals ?? {}).some((k) => /^(ssm|aws):resourceTag\//i.test(k));
    if (instanceResources.length && !tagged) violations.push("ssm:SendCommand on instances without a fleet-tag condition");
  }
  if (actions.some((a) => a === "*" || a === "sts:*" || a.toLowerCase() === "sts:assumerole")) {
    if (resources.some((r) => r.includes("*"))) violations.push("sts:AssumeRole on a wildcard resource: name the exact roles");
  }
  if (doc.trustedServices.includes("ec2.amazonaws.com")) {
    const tagActions = actions.filter((a) => a === "*" || a === "ec2:*" || /^ec2:(CreateTags|DeleteTags)$/i.test(a));
    if (tagActions.length) {
      const self = conditionValue(condition, "StringEquals", "aws:ARN");
      if (!self.includes("${ec2:SourceInstanceARN}")) {
        violations.push(`instance role may ${tagActions.join("/")} instances other than itself (needs aws:ARN = \${ec2:SourceInstanceARN})`);
      }
    }
  }
  return violations;
}

export function auditDocuments(docs: AuditInput[]): Finding[] {
  const findings: Finding[] = [];
  for (const doc of docs) {
    doc.document.Statement.forEach((s: any, i: number) => {
      findings.push({ resource: doc.resource, sid: s.Sid || `#${i}`, actions: asList(s.Action), violations: auditStatement(doc, s) });
    });
  }
  return findings;
}

export function formatFinding(label: string, f: Finding): string {
  const verdict = f.violations.length ? `VIOLATION: ${f.violations.join("; ")}` : "ok";
  return `[${label}] ${f.resource} ${f.sid} (${f.actions.join(", ")}): ${verdict}`;
}
