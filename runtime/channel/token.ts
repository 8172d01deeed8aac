/**
 * The agent's capability: a random 256-bit token, created when the task's compute is started and handed to the
 * agent inside its payload. The task record keeps only its SHA-256, so a leak of the table leaks no token.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** 32 random bytes as unpadded base64url: always 43 characters. */
export const AGENT_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface AgentToken {
  token: string;
  sha256: string;
}

export function newAgentToken(): AgentToken {
  const token = randomBytes(32).toString("base64url");
  return { token, sha256: hashAgentToken(token) };
}

export function hashAgentToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Does `token` hash to `storedSha256`? Constant-time in the comparison, and false for anything malformed. */
export function tokenMatches(token: string | undefined, storedSha256: string | undefined): boolean {
  if (!token || !storedSha256 || !AGENT_TOKEN_PATTERN.test(token) || !/^[0-9a-f]{64}$/.test(storedSha256)) return false;
  return timingSafeEqual(Buffer.from(hashAgentToken(token), "hex"), Buffer.from(storedSha256, "hex"));
}

/** The token of an `Authorization: Bearer <token>` header, if the header has that form. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer ([^\s]+)$/i.exec(header?.trim() ?? "");
  return m ? m[1] : undefined;
}
