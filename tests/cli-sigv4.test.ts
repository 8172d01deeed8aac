import { createHash, createHmac } from "node:crypto";
import { expect } from "chai";
import { regionFromUrl, signingServiceFor, signRequest, type PlainRequest } from "../cli/sigv4";

const CREDS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const AT = new Date("2026-01-15T12:34:56Z");
const API = "https://abc123.execute-api.eu-west-1.amazonaws.com";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const hmac = (key: Buffer | string, s: string) => createHmac("sha256", key).update(s).digest();

/** SigV4 computed from the published algorithm, independently of @smithy/signature-v4. */
function expectedSignature(req: PlainRequest, headers: Record<string, string>, region: string, service: string): string {
  const url = new URL(req.url);
  const auth = headers.authorization;
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)![1].split(";");
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const query = [...url.searchParams]
    .map(([k, v]) => [enc(k), enc(v)])
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonical = [
    req.method,
    url.pathname.split("/").map(enc).join("/"),
    query,
    signedHeaders.map((h) => `${h}:${lower[h].trim()}\n`).join(""),
    signedHeaders.join(";"),
    sha(req.body ?? ""),
  ].join("\n");
  const amzDate = lower["x-amz-date"];
  const scope = `${amzDate.slice(0, 8)}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha(canonical)].join("\n");
  let key = hmac(`AWS4${CREDS.secretAccessKey}`, amzDate.slice(0, 8));
  for (const part of [region, service, "aws4_request"]) key = hmac(key, part);
  return hmac(key, toSign).toString("hex");
}

describe("CLI SigV4 signing", () => {
  const post: PlainRequest = {
    method: "POST",
    url: `${API}/tasks`,
    headers: { "content-type": "application/json", "idempotency-key": "k-1" },
    body: JSON.stringify({ repo_url: "https://github.com/acme/app", prompt: "hi" }),
  };

  it("adds host, x-amz-date and an AWS4-HMAC-SHA256 authorization scoped to region and execute-api", async () => {
    const h = await signRequest(post, { credentials: CREDS, region: "eu-west-1", service: "execute-api", signingDate: AT });
    expect(h.host).to.equal("abc123.execute-api.eu-west-1.amazonaws.com");
    expect(h["x-amz-date"]).to.equal("20260115T123456Z");
    expect(h.authorization).to.match(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20260115\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/,
    );
    const signed = /SignedHeaders=([^,]+)/.exec(h.authorization)![1].split(";");
    expect(signed).to.include.members(["host", "x-amz-date", "content-type", "idempotency-key"]);
  });

  it("carries the session token of temporary credentials", async () => {
    const h = await signRequest(post, { credentials: { ...CREDS, sessionToken: "FQoG-session" }, region: "eu-west-1", service: "execute-api", signingDate: AT });
    expect(h["x-amz-security-token"]).to.equal("FQoG-session");
  });

  it("is deterministic for a fixed clock and credentials", async () => {
    const opts = { credentials: CREDS, region: "eu-west-1", service: "execute-api" as const, signingDate: AT };
    const a = await signRequest(post, opts);
    const b = await signRequest(post, opts);
    expect(a.authorization).to.equal(b.authorization);
  });

  const variants: [string, PlainRequest, string, "execute-api" | "lambda"][] = [
    ["a POST with a JSON body", post, "eu-west-1", "execute-api"],
    ["a GET with query parameters", { method: "GET", url: `${API}/tasks?status=RUNNING&limit=5&next_token=eyJ0IjoiYSJ9` }, "eu-west-1", "execute-api"],
    ["a function URL request", { method: "GET", url: "https://xyz.lambda-url.us-east-2.on.aws/tasks/abc" }, "us-east-2", "lambda"],
  ];
  for (const [name, req, region, service] of variants) {
    it(`matches an independent SigV4 computation for ${name}`, async () => {
      const h = await signRequest(req, { credentials: CREDS, region, service, signingDate: AT });
      const signature = /Signature=([0-9a-f]{64})/.exec(h.authorization)![1];
      expect(signature).to.equal(expectedSignature(req, h, region, service));
    });
  }

  it("changes the signature when the body changes", async () => {
    const opts = { credentials: CREDS, region: "eu-west-1", service: "execute-api" as const, signingDate: AT };
    const a = await signRequest(post, opts);
    const b = await signRequest({ ...post, body: post.body!.replace("hi", "ho") }, opts);
    expect(a.authorization).to.not.equal(b.authorization);
  });

  const services: [string, string, string | undefined][] = [
    ["https://abc123.execute-api.eu-west-1.amazonaws.com", "execute-api", "eu-west-1"],
    ["https://abc123.execute-api.us-east-1.amazonaws.com/prod", "execute-api", "us-east-1"],
    ["https://xyz.lambda-url.us-east-2.on.aws/", "lambda", "us-east-2"],
    ["https://tasks.example.com", "execute-api", undefined],
  ];
  for (const [url, service, region] of services) {
    it(`signs ${url} for ${service}${region ? ` in ${region}` : " (region from --region/AWS_REGION)"}`, () => {
      expect(signingServiceFor(url)).to.equal(service);
      expect(regionFromUrl(url)).to.equal(region);
    });
  }
});
