/**
 * Repository credential providers: the GitHub App token scoped to the task's repository (against a fake GitHub
 * App API), the per-repo and stack tokens in Secrets Manager (over moto), the local operator token, and their order.
 */
import { expect } from "chai";
import { createVerify, generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { awsClient } from "../runtime/aws/clients";
import { GitHubAppCredentials, githubAppJwt, INSTALLATION_PERMISSIONS } from "../runtime/credentials/github-app";
import { localCredentialsProvider } from "../runtime/credentials/local";
import { firstOf } from "../runtime/credentials/provider";
import { secretNames, secretsManagerProvider, secretsManagerReader, parseTokenSecret } from "../runtime/credentials/secrets";

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const PEM = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
const TASK = { task_id: "t-1", repo_url: "https://github.com/acme/app" };

interface FakeApp {
  url: string;
  minted: { installation: string; body: any; jwt: string }[];
  close(): Promise<void>;
}

/** A GitHub App API: acme/app is installed (installation 42), anything else is not. */
async function fakeGitHubApp(options: { failMint?: number } = {}): Promise<FakeApp> {
  const minted: FakeApp["minted"] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const reply = (code: number, body: unknown) => res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
      const jwt = (req.headers.authorization ?? "").replace(/^Bearer /, "");
      if (req.method === "GET" && req.url === "/repos/acme/app/installation") return reply(200, { id: 42 });
      if (req.method === "GET" && /^\/repos\/[^/]+\/[^/]+\/installation$/.test(req.url ?? "")) return reply(404, { message: "Not Found" });
      const m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(req.url ?? "");
      if (req.method === "POST" && m) {
        if (options.failMint) return reply(options.failMint, { message: "Bad credentials" });
        minted.push({ installation: m[1], body: JSON.parse(Buffer.concat(chunks).toString("utf8")), jwt });
        return reply(201, { token: "ghs_installationtoken0123456789", expires_at: "2026-01-01T01:00:00Z" });
      }
      reply(404, { message: "Not Found" });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    minted,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("GitHub App credentials", () => {
  it("the app JWT is RS256-signed by the app key, issued by the app, valid under GitHub's 10 minutes", () => {
    const now = Date.UTC(2026, 0, 1);
    const jwt = githubAppJwt("12345", PEM, now);
    const [h, p, sig] = jwt.split(".");
    expect(JSON.parse(Buffer.from(h, "base64url").toString())).to.deep.equal({ alg: "RS256", typ: "JWT" });
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    expect(claims.iss).to.equal("12345");
    expect(claims.iat).to.be.lessThan(now / 1000);
    expect(claims.exp - claims.iat).to.be.at.most(600);
    expect(createVerify("RSA-SHA256").update(`${h}.${p}`).verify(publicKey, Buffer.from(sig, "base64url"))).to.equal(true);
  });

  it("mints an installation token limited to the task's one repository, with contents and pull-request rights only", async () => {
    const api = await fakeGitHubApp();
    try {
      const creds = await new GitHubAppCredentials({ appId: "12345", privateKey: PEM, apiUrl: api.url }).getGitCredentials(TASK);
      expect(creds).to.deep.equal({ username: "x-access-token", token: "ghs_installationtoken0123456789", expires_at: "2026-01-01T01:00:00Z" });
      expect(api.minted).to.have.length(1);
      expect(api.minted[0].installation).to.equal("42");
      expect(api.minted[0].body).to.deep.equal({ repositories: ["app"], permissions: INSTALLATION_PERMISSIONS });
      expect(api.minted[0].jwt.split(".")).to.have.length(3);
    } finally {
      await api.close();
    }
  });

  it("has none for a repository the app is not installed on; a refused mint is an error naming the app and repository", async () => {
    const api = await fakeGitHubApp({ failMint: 401 });
    try {
      const app = new GitHubAppCredentials({ appId: "12345", privateKey: PEM, apiUrl: api.url });
      expect(await app.getGitCredentials({ task_id: "t", repo_url: "https://github.com/other/repo" })).to.equal(undefined);
      const err = await app.getGitCredentials(TASK).then(() => undefined, (e: Error) => e);
      expect(err?.message).to.equal("GitHub App 12345: minting a token for acme/app answered HTTP 401: Bad credentials");
    } finally {
      await api.close();
    }
  });
});

describe("Secrets Manager credentials (moto)", function () {
  this.timeout(30_000);
  const prefix = `agent-compute-test-${Date.now()}`;
  const sm = () => awsClient(SecretsManagerClient);

  it("names one secret per repository, one for the stack and one for the GitHub App, under the stack's prefix", () => {
    expect(secretNames("p", "https://github.com/Acme/App")).to.deep.equal({ githubApp: "p/github-app", repo: "p/repos/github.com/acme/app", stack: "p/default" });
  });

  it("a token secret is the token or {token, username}; anything else is refused by name", () => {
    expect(parseTokenSecret("s", " ghp_abc \n")).to.deep.equal({ username: "x-access-token", token: "ghp_abc" });
    expect(parseTokenSecret("s", '{"token":"t1","username":"bot"}')).to.deep.equal({ username: "bot", token: "t1" });
    expect(() => parseTokenSecret("s", '{"tok":"x"}')).to.throw('secret s has no "token"');
    expect(() => parseTokenSecret("s", "  ")).to.throw("secret s is empty");
  });

  it("the repository's own token wins over the stack's; the stack's serves other repositories; none without either", async () => {
    const provider = secretsManagerProvider(prefix, secretsManagerReader(sm()));
    expect(await provider.getGitCredentials(TASK)).to.equal(undefined);
    // A secret created without a value yet (as the stack creates them) is still "none".
    await sm().send(new CreateSecretCommand({ Name: `${prefix}/default` }));
    expect(await provider.getGitCredentials(TASK)).to.equal(undefined);
    await sm().send(new CreateSecretCommand({ Name: `${prefix}/repos/github.com/acme/app`, SecretString: "ghp_repotoken" }));
    await sm().send(new CreateSecretCommand({ Name: `${prefix}-2/default`, SecretString: '{"token":"ghp_stacktoken"}' }));
    expect(await provider.getGitCredentials(TASK)).to.deep.equal({ username: "x-access-token", token: "ghp_repotoken" });
    const other = secretsManagerProvider(`${prefix}-2`, secretsManagerReader(sm()));
    expect(await other.getGitCredentials({ task_id: "t", repo_url: "https://github.com/acme/other" })).to.deep.equal({ username: "x-access-token", token: "ghp_stacktoken" });
  });

  it("the GitHub App in <prefix>/github-app comes first, for the repositories it is installed on", async () => {
    const api = await fakeGitHubApp();
    const p = `${prefix}-app`;
    try {
      await sm().send(new CreateSecretCommand({ Name: `${p}/github-app`, SecretString: JSON.stringify({ app_id: 12345, private_key: PEM, api_url: api.url }) }));
      await sm().send(new CreateSecretCommand({ Name: `${p}/default`, SecretString: "ghp_stacktoken" }));
      const provider = secretsManagerProvider(p, secretsManagerReader(sm()));
      expect((await provider.getGitCredentials(TASK))?.token).to.equal("ghs_installationtoken0123456789");
      expect((await provider.getGitCredentials({ task_id: "t", repo_url: "https://github.com/other/repo" }))?.token).to.equal("ghp_stacktoken");
    } finally {
      await api.close();
    }
  });
});

describe("local credentials and the provider order", () => {
  it("reads the operator's token from the environment, else from the file at each request", async () => {
    expect(await localCredentialsProvider({}).getGitCredentials(TASK)).to.equal(undefined);
    expect(await localCredentialsProvider({ AGENT_COMPUTE_GIT_TOKEN: "ghp_env" }).getGitCredentials(TASK)).to.deep.equal({ username: "x-access-token", token: "ghp_env" });
    const file = path.join(mkdtempSync(path.join(tmpdir(), "creds-")), "token");
    writeFileSync(file, "ghp_file1\n");
    const provider = localCredentialsProvider({ AGENT_COMPUTE_GIT_TOKEN_FILE: file });
    expect((await provider.getGitCredentials(TASK))?.token).to.equal("ghp_file1");
    writeFileSync(file, "ghp_file2\n");
    expect((await provider.getGitCredentials(TASK))?.token).to.equal("ghp_file2");
    const missing = localCredentialsProvider({ AGENT_COMPUTE_GIT_TOKEN_FILE: "/nonexistent/token" });
    expect(await missing.getGitCredentials(TASK).then(() => "", (e: Error) => e.message)).to.equal("AGENT_COMPUTE_GIT_TOKEN_FILE /nonexistent/token cannot be read: ENOENT");
  });

  it("firstOf asks each provider in turn and stops at the first with credentials", async () => {
    const asked: string[] = [];
    const p = (name: string, token?: string) => ({ getGitCredentials: async () => (asked.push(name), token ? { username: "u", token } : undefined) });
    expect((await firstOf(p("a"), p("b", "tb"), p("c", "tc")).getGitCredentials(TASK))?.token).to.equal("tb");
    expect(asked).to.deep.equal(["a", "b"]);
  });
});
