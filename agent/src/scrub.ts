/**
 * Secret scrubbing for everything the runner says (events, log lines, error messages, the result): the exact
 * secrets it holds (the channel token, repository tokens), plus token shapes it may not hold but must not repeat
 * (GitHub tokens, credentials embedded in URLs).
 */
const PATTERNS: RegExp[] = [
  /\bgh[pousr]_[A-Za-z0-9]{20,}\b/g,
  /\bgithub_pat_[A-Za-z0-9_]{20,}\b/g,
  /(https?:\/\/)[^/\s:@]+:[^/\s@]+@/g,
  /\b(AKIA|ASIA)[A-Z0-9]{16}\b/g,
];

export class Scrubber {
  private readonly secrets = new Set<string>();

  add(secret: string | undefined): void {
    // Short strings would blank out ordinary words; real tokens are long.
    if (secret && secret.length >= 8) this.secrets.add(secret);
  }

  scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join("***");
    for (const p of PATTERNS) out = out.replace(p, (m, scheme) => (typeof scheme === "string" && m.startsWith(scheme) ? `${scheme}***@` : "***"));
    return out;
  }

  /** Scrub every string inside a JSON-able value. */
  scrubValue<T>(value: T): T {
    return JSON.parse(this.scrub(JSON.stringify(value))) as T;
  }
}
