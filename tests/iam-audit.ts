/**
 * The IAM audit: checks every statement of every policy document a program run built against the project's IAM
 * rules (docs/design.md, "Infrastructure and grants") and, given the Service Authorization Reference
 * (./iam-reference), against AWS's own action, resource and condition-key data. Pure: give it documents, get one
 * finding per statement checked.
 */
import { referenceViolations, type Reference } from "./iam-reference";

export interface AuditInput {
  resource: string;
  kind: "identity" | "trust" | "bucket" | "secret";
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
    if (tagActions.length && !(resources.length && resources.every((r) => r === "${ec2:SourceInstanceARN}"))) {
      violations.push(`instance role may ${tagActions.join("/")} instances other than itself (its Resource must be \${ec2:SourceInstanceARN})`);
    }
  }
  return violations;
}

/** Every action the documents name (what the reference must be loaded for). */
export function documentActions(docs: AuditInput[]): string[] {
  return [...new Set(docs.flatMap((d) => d.document.Statement.flatMap((s: any) => asList(s.Action ?? s.NotAction))))];
}

/** One finding per statement; with `reference`, AWS's data is checked too (its violations say "reference:"). */
export function auditDocuments(docs: AuditInput[], reference?: Reference): Finding[] {
  const findings: Finding[] = [];
  for (const doc of docs) {
    doc.document.Statement.forEach((s: any, i: number) => {
      const violations = [...auditStatement(doc, s), ...(reference ? referenceViolations(reference, s).map((v) => `reference: ${v}`) : [])];
      findings.push({ resource: doc.resource, sid: s.Sid || `#${i}`, actions: asList(s.Action), violations });
    });
  }
  return findings;
}

export function formatFinding(label: string, f: Finding): string {
  const verdict = f.violations.length ? `VIOLATION: ${f.violations.join("; ")}` : "ok";
  return `[${label}] ${f.resource} ${f.sid} (${f.actions.join(", ")}): ${verdict}`;
}
