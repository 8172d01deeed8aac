/**
 * A small IAM evaluator for the audit: does a role's policy set allow one request? Explicit Deny wins; an Allow
 * must match the action (wildcards, case-insensitive), the resource (wildcards) and its conditions. It errs towards
 * "allowed": a condition it cannot decide (an operator it does not know, a key the request does not carry) counts as
 * met, so a "denied" from it is a proof, not a guess. It also finds the agent principals of a program run.
 */
import { ACCOUNT, REGION, type ProgramRun } from "./pulumi-mocks";

export interface Request {
  action: string;
  resource: string;
  /** Condition keys the request carries, e.g. dynamodb:LeadingKeys. */
  context?: Record<string, string[]>;
}

export interface Principal {
  /** What the role is to the platform, e.g. "ECS task role". */
  label: string;
  role: string;
  statements: any[];
}

const asList = (v: unknown): string[] => (v === undefined ? [] : ([] as unknown[]).concat(v).map(String));

function glob(pattern: string, value: string, caseInsensitive: boolean): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.split("?").map((q) => q.replace(/[.+^${}()|[\]\\]/g, "\\$&")).join(".")).join(".*")}$`, caseInsensitive ? "i" : "");
  return re.test(value);
}

function conditionMet(condition: Record<string, Record<string, unknown>> | undefined, context: Record<string, string[]>): boolean {
  for (const [rawOperator, block] of Object.entries(condition ?? {})) {
    const [qualifier, operator] = rawOperator.includes(":") ? rawOperator.split(":") : ["", rawOperator];
    for (const [key, expected] of Object.entries(block)) {
      const actual = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
      if (actual === undefined) continue; // undecidable here: counted as met
      const wanted = asList(expected);
      const like = /Like$/.test(operator);
      const matches = (v: string) => wanted.some((w) => (like || operator.startsWith("Arn") ? glob(w, v, false) : w === v));
      let ok: boolean;
      if (/^(StringEquals|StringLike|ArnEquals|ArnLike)$/.test(operator)) {
        ok = qualifier === "ForAllValues" ? actual.every(matches) : actual.some(matches);
      } else if (/^(StringNotEquals|StringNotLike|ArnNotEquals|ArnNotLike)$/.test(operator)) {
        ok = !actual.some((v) => wanted.some((w) => (/Like$/.test(operator) ? glob(w, v, false) : w === v)));
      } else {
        continue; // an operator this evaluator does not know: counted as met
      }
      if (!ok) return false;
    }
  }
  return true;
}

function statementMatches(s: any, req: Request): boolean {
  const actions = asList(s.Action);
  const resources = asList(s.Resource);
  const actionHit = s.NotAction ? !asList(s.NotAction).some((a) => glob(a, req.action, true)) : actions.some((a) => glob(a, req.action, true));
  const resourceHit = s.NotResource ? !asList(s.NotResource).some((r) => glob(r, req.resource, false)) : resources.some((r) => glob(r, req.resource, false));
  return actionHit && resourceHit && conditionMet(s.Condition, req.context ?? {});
}

export function isAllowed(statements: any[], req: Request): boolean {
  if (statements.some((s) => s.Effect === "Deny" && statementMatches(s, req))) return false;
  return statements.some((s) => s.Effect === "Allow" && statementMatches(s, req));
}

/**
 * AWS managed policies our roles attach, as supersets of what they grant (the audit has no network): a request
 * they do not allow here, they do not allow in AWS either.
 */
export const MANAGED_POLICY_SUPERSETS: Record<string, any[]> = {
  "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore": [{ Effect: "Allow", Action: ["ssm:*", "ssmmessages:*", "ec2messages:*"], Resource: "*" }],
};

/** Every statement a role holds: inline policies and attached managed policies (unknown ones: everything). */
export function roleStatements(run: ProgramRun, roleName: string): any[] {
  const parse = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v) as { Statement: any[] };
  const inline = run.byType("aws:iam/rolePolicy:RolePolicy").filter((p) => p.inputs.role === `${roleName}-id` || p.inputs.role === roleName);
  const attached = run.byType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").filter((a) => a.inputs.role === roleName);
  return [
    ...inline.flatMap((p) => parse(p.inputs.policy).Statement),
    ...attached.flatMap((a) => MANAGED_POLICY_SUPERSETS[a.inputs.policyArn] ?? [{ Effect: "Allow", Action: "*", Resource: "*" }]),
  ];
}

const roleNameOfArn = (arn: string) => arn.split(":role/")[1];
export const roleArn = (roleName: string) => `arn:aws:iam::${ACCOUNT}:role/${roleName}`;

/** The role's trust policy statements. */
export function trustStatements(run: ProgramRun, roleName: string): any[] {
  const role = run.byType("aws:iam/role:Role").find((r) => r.name === roleName);
  if (!role) throw new Error(`no role ${roleName}`);
  const doc = typeof role.inputs.assumeRolePolicy === "string" ? JSON.parse(role.inputs.assumeRolePolicy) : role.inputs.assumeRolePolicy;
  return doc.Statement;
}

/** The AWS principals (ARNs) a role's trust policy lets assume it. */
export function trustedAwsPrincipals(run: ProgramRun, roleName: string): string[] {
  return trustStatements(run, roleName)
    .filter((s) => s.Effect === "Allow" && asList(s.Action).some((a) => glob(a, "sts:AssumeRole", true)))
    .flatMap((s) => asList(s.Principal?.AWS));
}

/** The roles each fleet's instance role may assume and whose trust names it: the EC2 agent roles. */
export function ec2AgentRoles(run: ProgramRun): { role: string; instanceRole: string }[] {
  const out: { role: string; instanceRole: string }[] = [];
  for (const profile of run.byType("aws:iam/instanceProfile:InstanceProfile")) {
    const instanceRole = String(profile.inputs.role);
    const statements = roleStatements(run, instanceRole);
    for (const r of run.byType("aws:iam/role:Role")) {
      const assumable = isAllowed(statements, { action: "sts:AssumeRole", resource: roleArn(r.name) });
      if (assumable && trustedAwsPrincipals(run, r.name).includes(roleArn(instanceRole))) out.push({ role: r.name, instanceRole });
    }
  }
  return out;
}

/** The roles whose credentials an agent (or code an agent runs) could hold, per backend. */
export function agentPrincipals(run: ProgramRun): Principal[] {
  const out: Principal[] = [];
  const add = (label: string, role: string | undefined) => {
    if (role) out.push({ label, role, statements: roleStatements(run, role) });
  };
  for (const td of run.byType("aws:ecs/taskDefinition:TaskDefinition")) add("ECS task role", roleNameOfArn(String(td.inputs.taskRoleArn)));
  for (const rt of run.byType("aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime")) add("AgentCore runtime role", roleNameOfArn(String(rt.inputs.roleArn)));
  // The agent container cannot reach it (bridge network, IMDSv2 hop limit 1); it is checked as if it could.
  for (const profile of run.byType("aws:iam/instanceProfile:InstanceProfile")) add("EC2 instance role", String(profile.inputs.role));
  // What the container does hold: the agent role's credentials, which the host assumes for its task.
  for (const { role } of ec2AgentRoles(run)) add("EC2 agent role", role);
  return out;
}

/** What an agent must never do: touch another task's record, events or payload. */
export function otherTaskRequests(run: ProgramRun, otherTaskId = "another-users-task"): Request[] {
  const tables = run.byType("aws:dynamodb/table:Table").map((t) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${t.name}`);
  const buckets = run.byType("aws:s3/bucket:Bucket").map((b) => `arn:aws:s3:::${b.name}`);
  const context = { "dynamodb:LeadingKeys": [otherTaskId] };
  return [
    ...tables.flatMap((table) =>
      ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem"].map((a) => ({ action: `dynamodb:${a}`, resource: table, context })),
    ),
    ...buckets.flatMap((bucket) => ["GetObject", "PutObject", "DeleteObject"].map((a) => ({ action: `s3:${a}`, resource: `${bucket}/payloads/${otherTaskId}/payload.json` }))),
  ];
}

/** Bedrock's model invocations: all an EC2 agent role may do. */
export const MODEL_INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"];

/**
 * What a role's Allow statements grant beyond the given actions: any other action, any wildcard action, any
 * NotAction (unknown managed policies count as "*"). Empty means the role can do those actions and nothing else.
 */
export function actionsBeyond(statements: any[], allowed: string[]): string[] {
  const known = new Set(allowed.map((a) => a.toLowerCase()));
  return statements
    .filter((s) => s.Effect === "Allow")
    .flatMap((s) => (s.NotAction ? ["NotAction"] : asList(s.Action)))
    .filter((a) => a.includes("*") || !known.has(a.toLowerCase()));
}
