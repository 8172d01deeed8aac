/**
 * Page tokens of the task API's lists. A token is the DynamoDB LastEvaluatedKey, as base64url JSON; one handed
 * back is checked to be a plain key object before it reaches DynamoDB.
 */

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;

/** A nextToken that this store did not issue (or that was altered). */
export class InvalidPageTokenError extends Error {
  constructor(detail: string) {
    super(`nextToken is not a page token issued by this API (${detail}); omit it to start from the first page`);
    this.name = "InvalidPageTokenError";
  }
}

export function encodePageToken(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key), "utf8").toString("base64url") : undefined;
}

export function decodePageToken(token: string | undefined): Record<string, unknown> | undefined {
  if (token === undefined || token === "") return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new InvalidPageTokenError("not base64url");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw new InvalidPageTokenError("not JSON");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new InvalidPageTokenError("not a key object");
  for (const v of Object.values(parsed)) {
    if (typeof v !== "string" && typeof v !== "number") throw new InvalidPageTokenError("key values must be strings or numbers");
  }
  return parsed as Record<string, unknown>;
}

/** The page size a caller asked for, capped; absent means the default. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  return Math.min(limit, MAX_PAGE_LIMIT);
}
