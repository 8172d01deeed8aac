/**
 * `identity`: which IAM principals are which users (runtime/identity.ts has the model). The checks are the runtime's
 * own, so preview refuses exactly what the API would misread. The map travels in every Lambda's environment (4 KB
 * in all), so its size is bounded here.
 */
import type { IdentityConfig } from "../../runtime/config";
import { identityConfigProblems } from "../../runtime/identity";
import type { Problems } from "./checks";

/** Bytes of JSON the identity settings may take in the Lambda environment (the rest of the config needs the room). */
export const IDENTITY_MAX_JSON_BYTES = 2048;

export function validateIdentity(p: Problems, raw: unknown): IdentityConfig {
  if (raw === undefined) return {};
  const problems = identityConfigProblems(raw);
  for (const problem of problems) {
    const [key, ...rest] = problem.split(" ");
    p.add(key, rest.join(" "));
  }
  if (problems.length) return {};
  const bytes = Buffer.byteLength(JSON.stringify(raw), "utf8");
  if (bytes > IDENTITY_MAX_JSON_BYTES) {
    p.add("identity", `is ${bytes} bytes as JSON; at most ${IDENTITY_MAX_JSON_BYTES} fit beside the rest of the Lambda environment (map roles, not sessions, where you can)`);
  }
  return raw as IdentityConfig;
}
