/**
 * Who a caller is. API Gateway hands the API the ARN of the IAM principal that signed the request; this module
 * turns it into a stable user id that the caller cannot choose. Pure: no I/O.
 *
 * | principal (the signing ARN)                              | user id                                              |
 * |----------------------------------------------------------|------------------------------------------------------|
 * | IAM user  arn:aws:iam::A:user/path/alice                 | that ARN                                             |
 * | root      arn:aws:iam::A:root                            | that ARN                                             |
 * | assumed role  arn:aws:sts::A:assumed-role/Dev/anything   | the role: arn:aws:iam::A:role/Dev (every session)   |
 * | Identity Center  …:assumed-role/AWSReservedSSO_X_h/alice | the session ARN: AWS sets the session name (the user) |
 * | a role listed in identity.sessionRoles                   | the session ARN (the operator pinned session names)  |
 * | federated user  arn:aws:sts::A:federated-user/bob        | that ARN                                             |
 *
 * A role session name is chosen by whoever calls AssumeRole (the SDK's default is `aws-sdk-js-<timestamp>`, new each
 * run), so by default it says nothing about the person: everyone who can assume a role is one user of it. It counts
 * only where AWS sets it (Identity Center, whose roles only its SAML provider can assume) or where the operator lists
 * the role in `sessionRoles`, asserting that the role's trust policy pins the session name to the person
 * (`sts:RoleSessionName` = `${aws:username}`, or `sts:SourceIdentity` required and equal to it). API Gateway does not
 * pass the source identity to the API, so the platform cannot check that itself. Stack config may then map any of
 * these ids to a user name (`identity.users`), e.g. to make one person's two permission sets one user.
 */
import type { IdentityConfig } from "./config";

export type PrincipalKind = "iam-user" | "root" | "assumed-role" | "identity-center" | "federated-user";

export interface Principal {
  kind: PrincipalKind;
  account: string;
  /** The ARN as signed. */
  arn: string;
  /** Assumed roles: the role's ARN without its path (the session ARN does not carry it). */
  roleArn?: string;
  sessionName?: string;
}

/** Identity Center's permission-set roles; only its SAML provider can assume them, and it sets the session name. */
export const IDENTITY_CENTER_ROLE_PREFIX = "AWSReservedSSO_";

/** User names the stack config may map principals to: never containing ':', so never equal to an ARN. */
export const USER_NAME_PATTERN = /^[A-Za-z0-9._@+=-]{1,128}$/;

const PARTITION = "aws[a-z-]*";
const ACCOUNT = "\\d{12}";
const IAM_USER = new RegExp(`^arn:(${PARTITION}):iam::(${ACCOUNT}):user/(?:[^/]+/)*[^/]+$`);
const ROOT = new RegExp(`^arn:(${PARTITION}):iam::(${ACCOUNT}):root$`);
const ASSUMED_ROLE = new RegExp(`^arn:(${PARTITION}):sts::(${ACCOUNT}):assumed-role/([\\w+=,.@-]+)/([\\w+=,.@-]+)$`);
const FEDERATED = new RegExp(`^arn:(${PARTITION}):sts::(${ACCOUNT}):federated-user/([\\w+=,.@-]+)$`);
const ROLE = new RegExp(`^arn:(${PARTITION}):iam::(${ACCOUNT}):role/(?:[^/]+/)*([\\w+=,.@-]+)$`);

export function parseCallerArn(arn: string): Principal | undefined {
  let m: RegExpExecArray | null;
  if ((m = IAM_USER.exec(arn))) return { kind: "iam-user", account: m[2], arn };
  if ((m = ROOT.exec(arn))) return { kind: "root", account: m[2], arn };
  if ((m = FEDERATED.exec(arn))) return { kind: "federated-user", account: m[2], arn };
  if ((m = ASSUMED_ROLE.exec(arn))) {
    const [, partition, account, roleName, sessionName] = m;
    return {
      kind: roleName.startsWith(IDENTITY_CENTER_ROLE_PREFIX) ? "identity-center" : "assumed-role",
      account,
      arn,
      roleArn: `arn:${partition}:iam::${account}:role/${roleName}`,
      sessionName,
    };
  }
  return undefined;
}

/** A role ARN with any path removed: the form an assumed-role session can be compared with. */
export function roleArnWithoutPath(roleArn: string): string | undefined {
  const m = ROLE.exec(roleArn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : undefined;
}

/** The stable principal a caller stands for, before any mapping to a user name. */
export function principalId(p: Principal, identity: IdentityConfig = {}): string {
  switch (p.kind) {
    case "iam-user":
    case "root":
    case "federated-user":
    case "identity-center":
      return p.arn;
    case "assumed-role": {
      const trusted = (identity.sessionRoles ?? []).some((r) => roleArnWithoutPath(r) === p.roleArn);
      return trusted ? p.arn : p.roleArn!;
    }
    default: {
      const unhandled: never = p.kind;
      throw new Error(`unknown principal kind ${String(unhandled)}`);
    }
  }
}

export type UserResult = { ok: true; userId: string; principal: Principal } | { ok: false; reason: string };

export function userOf(callerArn: string, identity: IdentityConfig = {}): UserResult {
  const principal = parseCallerArn(callerArn);
  if (!principal) {
    return { ok: false, reason: "the request's IAM principal is not an IAM user, role session, Identity Center session or federated user" };
  }
  const id = principalId(principal, identity);
  return { ok: true, userId: identity.users?.[id] ?? id, principal };
}

/**
 * Problems with an identity config, each naming its key (the stack config check and the runtime config check share
 * it). Keys of `users` are principal ids as principalId returns them; role ARNs in `sessionRoles` may carry a path.
 */
export function identityConfigProblems(identity: unknown, at = "identity"): string[] {
  if (identity === undefined) return [];
  if (!identity || typeof identity !== "object" || Array.isArray(identity)) return [`${at} must be an object with 'users' and/or 'sessionRoles'`];
  const problems: string[] = [];
  const { users, sessionRoles, ...rest } = identity as Record<string, unknown>;
  for (const k of Object.keys(rest)) problems.push(`${at}.${k} is not a setting; allowed: users, sessionRoles`);
  if (sessionRoles !== undefined) {
    if (!Array.isArray(sessionRoles)) problems.push(`${at}.sessionRoles must be a list of IAM role ARNs`);
    else
      sessionRoles.forEach((r, i) => {
        if (typeof r !== "string" || !roleArnWithoutPath(r)) problems.push(`${at}.sessionRoles[${i}] must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)`);
      });
  }
  if (users !== undefined) {
    if (!users || typeof users !== "object" || Array.isArray(users)) problems.push(`${at}.users must map principal ARNs to user names`);
    else
      for (const [key, name] of Object.entries(users)) {
        const p = parseCallerArn(key);
        const role = roleArnWithoutPath(key);
        if (!p && !(role && role === key)) {
          problems.push(
            `${at}.users key '${key.slice(0, 200)}' is not a principal: use an IAM user, root or federated-user ARN, a role ARN without path (every session), or an assumed-role session ARN (Identity Center or sessionRoles)`,
          );
        } else if (p?.kind === "assumed-role" && !(Array.isArray(sessionRoles) && sessionRoles.some((r) => typeof r === "string" && roleArnWithoutPath(r) === p.roleArn))) {
          problems.push(`${at}.users key '${key}' names one session of a role whose session names are not trusted; list ${p.roleArn} in ${at}.sessionRoles or map the role ARN`);
        }
        if (typeof name !== "string" || !USER_NAME_PATTERN.test(name)) {
          problems.push(`${at}.users['${key.slice(0, 200)}'] must be a user name of 1–128 letters, digits or ._@+=- (no ':')`);
        }
      }
  }
  return problems;
}
