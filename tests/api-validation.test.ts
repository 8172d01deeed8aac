import { expect } from "chai";
import { handleApiRequest } from "../runtime/api/router";
import {
  PROMPT_MAX_BYTES,
  ValidationError,
  validateBranch,
  validateListQuery,
  validateRepoUrl,
  validateSubmitRequest,
} from "../runtime/api/validation";
import { apiFixture, GOOD_SUBMIT, type ApiFixture } from "./api-helpers";

const MiB = 1024 * 1024;

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.field;
    throw err;
  }
  return undefined;
}

describe("API validation (pure)", () => {
  const accepted: [string, unknown][] = [
    ["https://github.com/acme/app", "plain owner/repo"],
    ["https://github.com/acme/app.git", ".git suffix"],
    ["https://gitlab.example.com/team-1/my_repo.js/", "trailing slash, dots and underscores"],
  ];
  for (const [url, why] of accepted) {
    it(`accepts the repo URL ${url} (${why})`, () => {
      expect(validateRepoUrl(url)).to.equal(url);
    });
  }

  const rejectedUrls = [
    "http://github.com/acme/app",
    "git@github.com:acme/app.git",
    "ssh://github.com/acme/app",
    "https://github.com/acme",
    "https://github.com/acme/app/tree/main",
    "https://user:token@github.com/acme/app",
    "https://github.com/acme/app?ref=x",
    "https://localhost/acme/app",
    "https://github.com/acme/..",
    "not a url",
    "",
    // The URL parser forgives these, but the raw text is what is stored and handed to the agent.
    "https://github.com/acme/app\n",
    " https://github.com/acme/app",
    "https://github.com/ac\tme/app",
    "https://github.com/acme/app\r\nX-Injected: 1",
    "https://git%68ub.com/acme/app",
    "https://github.com\\acme\\app",
    "https://github.com/acme/app#",
  ];
  for (const url of rejectedUrls) {
    it(`refuses the repo URL ${JSON.stringify(url)} naming repo_url`, () => {
      expect(fieldOf(() => validateRepoUrl(url))).to.equal("repo_url");
    });
  }

  const branches: [string, boolean][] = [
    ["main", true],
    ["feature/login-v2", true],
    ["release-1.2", true],
    ["a..b", false],
    ["-x", false],
    ["has space", false],
    ["x.lock", false],
    ["a//b", false],
    ["end/", false],
    ["weird~1", false],
    ["colon:x", false],
    [".hidden", false],
    ["a/.b", false],
    ["x@{1}", false],
  ];
  for (const [branch, ok] of branches) {
    it(`${ok ? "accepts" : "refuses"} the branch '${branch}'`, () => {
      expect(fieldOf(() => validateBranch(branch))).to.equal(ok ? undefined : "branch");
    });
  }

  it("accepts a complete valid request and keeps every field", () => {
    const body = {
      ...GOOD_SUBMIT,
      backend: "ec2",
      fleet: "gpu",
      branch: "fix/ci",
      issue_number: 42,
      model: "anthropic.claude-sonnet-4",
      max_turns: 500,
      max_budget_usd: 1000,
      context: { work_seconds: 1 },
    };
    expect(validateSubmitRequest(body)).to.deep.equal(body);
  });

  it("accepts a prompt of exactly 1 MiB and refuses one byte more", () => {
    expect(fieldOf(() => validateSubmitRequest({ ...GOOD_SUBMIT, prompt: "p".repeat(PROMPT_MAX_BYTES) }))).to.equal(undefined);
    expect(fieldOf(() => validateSubmitRequest({ ...GOOD_SUBMIT, prompt: "p".repeat(PROMPT_MAX_BYTES + 1) }))).to.equal("prompt");
  });

  it("counts the prompt limit in UTF-8 bytes, not characters", () => {
    // 'é' is two bytes: half a MiB of characters plus one is over the byte limit.
    expect(fieldOf(() => validateSubmitRequest({ ...GOOD_SUBMIT, prompt: "é".repeat(PROMPT_MAX_BYTES / 2 + 1) }))).to.equal("prompt");
  });

  const listCases: [Record<string, string>, string | undefined][] = [
    [{}, undefined],
    [{ status: "RUNNING", limit: "100" }, undefined],
    [{ status: "running" }, "status"],
    [{ limit: "0" }, "limit"],
    [{ limit: "101" }, "limit"],
    [{ limit: "2.5" }, "limit"],
    [{ limit: "ten" }, "limit"],
    [{ user: "someone-else" }, "user"],
  ];
  for (const [query, field] of listCases) {
    it(`list query ${JSON.stringify(query)} → ${field ? `refused naming ${field}` : "accepted"}`, () => {
      expect(fieldOf(() => validateListQuery(query))).to.equal(field);
    });
  }
});

describe("API submit: each bad input is a 4xx naming the field, and nothing is written", () => {
  let fx: ApiFixture;
  before(async () => {
    fx = await apiFixture();
  });
  after(async () => fx.cleanup());

  const bigPrompt = "x".repeat(MiB + 1);
  const cases: { name: string; body?: unknown; raw?: string; headers?: Record<string, string>; status: number; field: string }[] = [
    { name: "an unknown field", body: { ...GOOD_SUBMIT, colour: "red" }, status: 400, field: "colour" },
    { name: "a user_id in the body (identity comes from auth)", body: { ...GOOD_SUBMIT, user_id: "admin" }, status: 400, field: "user_id" },
    { name: "a missing repo_url", body: { prompt: "x" }, status: 400, field: "repo_url" },
    { name: "an http repo URL", body: { ...GOOD_SUBMIT, repo_url: "http://github.com/acme/app" }, status: 400, field: "repo_url" },
    { name: "a repo URL without owner/repo", body: { ...GOOD_SUBMIT, repo_url: "https://github.com/acme" }, status: 400, field: "repo_url" },
    { name: "a repo URL with a trailing newline", body: { ...GOOD_SUBMIT, repo_url: "https://github.com/acme/app\n" }, status: 400, field: "repo_url" },
    { name: "a non-string repo URL", body: { ...GOOD_SUBMIT, repo_url: 5 }, status: 400, field: "repo_url" },
    { name: "a repo URL with credentials", body: { ...GOOD_SUBMIT, repo_url: "https://x:y@github.com/a/b" }, status: 400, field: "repo_url" },
    { name: "a missing prompt", body: { repo_url: GOOD_SUBMIT.repo_url }, status: 400, field: "prompt" },
    { name: "an empty prompt", body: { ...GOOD_SUBMIT, prompt: "" }, status: 400, field: "prompt" },
    { name: "a whitespace prompt", body: { ...GOOD_SUBMIT, prompt: " \n\t " }, status: 400, field: "prompt" },
    { name: "a prompt over 1 MiB", body: { ...GOOD_SUBMIT, prompt: bigPrompt }, status: 400, field: "prompt" },
    { name: "a non-string prompt", body: { ...GOOD_SUBMIT, prompt: 12 }, status: 400, field: "prompt" },
    { name: "max_turns 0", body: { ...GOOD_SUBMIT, max_turns: 0 }, status: 400, field: "max_turns" },
    { name: "max_turns 501", body: { ...GOOD_SUBMIT, max_turns: 501 }, status: 400, field: "max_turns" },
    { name: "max_turns 2.5", body: { ...GOOD_SUBMIT, max_turns: 2.5 }, status: 400, field: "max_turns" },
    { name: "max_turns as text", body: { ...GOOD_SUBMIT, max_turns: "10" }, status: 400, field: "max_turns" },
    { name: "max_budget_usd 0", body: { ...GOOD_SUBMIT, max_budget_usd: 0 }, status: 400, field: "max_budget_usd" },
    { name: "max_budget_usd negative", body: { ...GOOD_SUBMIT, max_budget_usd: -5 }, status: 400, field: "max_budget_usd" },
    { name: "max_budget_usd 1000.01", body: { ...GOOD_SUBMIT, max_budget_usd: 1000.01 }, status: 400, field: "max_budget_usd" },
    { name: "an unknown backend", body: { ...GOOD_SUBMIT, backend: "k8s" }, status: 400, field: "backend" },
    { name: "a backend this stack did not enable", body: { ...GOOD_SUBMIT, backend: "ecs" }, status: 400, field: "backend" },
    { name: "an EC2 fleet that does not exist", body: { ...GOOD_SUBMIT, backend: "ec2", fleet: "tpu" }, status: 400, field: "fleet" },
    { name: "a fleet for a non-EC2 backend", body: { ...GOOD_SUBMIT, backend: "local", fleet: "gpu" }, status: 400, field: "fleet" },
    { name: "a malformed fleet name", body: { ...GOOD_SUBMIT, backend: "ec2", fleet: "gpu fleet!" }, status: 400, field: "fleet" },
    { name: "issue_number 0", body: { ...GOOD_SUBMIT, issue_number: 0 }, status: 400, field: "issue_number" },
    { name: "issue_number as text", body: { ...GOOD_SUBMIT, issue_number: "7" }, status: 400, field: "issue_number" },
    { name: "issue_number 1.5", body: { ...GOOD_SUBMIT, issue_number: 1.5 }, status: 400, field: "issue_number" },
    { name: "a branch with '..'", body: { ...GOOD_SUBMIT, branch: "a..b" }, status: 400, field: "branch" },
    { name: "a branch with a shell substitution", body: { ...GOOD_SUBMIT, branch: "$(touch /tmp/x)" }, status: 400, field: "branch" },
    { name: "a malformed model id", body: { ...GOOD_SUBMIT, model: "bad model" }, status: 400, field: "model" },
    { name: "a non-string fleet", body: { ...GOOD_SUBMIT, backend: "ec2", fleet: 5 }, status: 400, field: "fleet" },
    { name: "a null backend", body: { ...GOOD_SUBMIT, backend: null }, status: 400, field: "backend" },
    { name: "a null max_turns", body: { ...GOOD_SUBMIT, max_turns: null }, status: 400, field: "max_turns" },
    { name: "max_budget_usd as text", body: { ...GOOD_SUBMIT, max_budget_usd: "5" }, status: 400, field: "max_budget_usd" },
    { name: "a non-string branch", body: { ...GOOD_SUBMIT, branch: 3 }, status: 400, field: "branch" },
    { name: "a null context", body: { ...GOOD_SUBMIT, context: null }, status: 400, field: "context" },
    { name: "a __proto__ key", raw: `{"__proto__": {"admin": true}, "repo_url": "${GOOD_SUBMIT.repo_url}", "prompt": "x"}`, status: 400, field: "__proto__" },
    { name: "an Idempotency-Key of 256 characters", body: GOOD_SUBMIT, headers: { "Idempotency-Key": "k".repeat(256) }, status: 400, field: "Idempotency-Key" },
    { name: "a context that is not an object", body: { ...GOOD_SUBMIT, context: [1, 2] }, status: 400, field: "context" },
    { name: "a body that is not JSON", raw: "{repo_url:", status: 400, field: "body" },
    { name: "a JSON array body", raw: "[]", status: 400, field: "body" },
    { name: "an empty body", raw: "", status: 400, field: "body" },
    { name: "an Idempotency-Key with a space", body: GOOD_SUBMIT, headers: { "Idempotency-Key": "a b" }, status: 400, field: "Idempotency-Key" },
    {
      name: "a payload over the store's limit (1 MiB prompt + 1.5 MiB context)",
      body: { ...GOOD_SUBMIT, prompt: "p".repeat(MiB), context: { notes: "n".repeat(1.5 * MiB) } },
      status: 413,
      field: "context",
    },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.status} naming '${c.field}', nothing written`, async () => {
      const tasksBefore = await fx.taskCount();
      const eventsBefore = await fx.eventCount();
      const filesBefore = await fx.payloadFiles();
      const res = await handleApiRequest(fx.runtime, fx.dispatcher, {
        method: "POST",
        path: "/tasks",
        headers: c.headers ?? {},
        body: c.raw ?? JSON.stringify(c.body),
        userId: "arn:aws:iam::111122223333:user/alice",
      });
      expect(res.statusCode, res.body).to.equal(c.status);
      const body = JSON.parse(res.body);
      expect(body.field).to.equal(c.field);
      expect(body.error).to.be.a("string").and.not.empty;
      expect(await fx.taskCount()).to.equal(tasksBefore);
      expect(await fx.eventCount()).to.equal(eventsBefore);
      expect(await fx.payloadFiles()).to.deep.equal(filesBefore);
      expect(fx.dispatched).to.deep.equal([]);
    });
  }

  it("the same table's good request is accepted (the checks above can pass)", async () => {
    const res = await handleApiRequest(fx.runtime, fx.dispatcher, {
      method: "POST",
      path: "/tasks",
      body: JSON.stringify({ ...GOOD_SUBMIT, backend: "ec2", fleet: "gpu", max_turns: 1, max_budget_usd: 0.01, issue_number: 1, branch: "main" }),
      userId: "arn:aws:iam::111122223333:user/alice",
    });
    expect(res.statusCode, res.body).to.equal(201);
    expect(await fx.taskCount()).to.equal(1);
    expect(await fx.payloadFiles()).to.have.length(1);
  });
});
