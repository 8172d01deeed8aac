import { expect } from "chai";
import { resolveBackend } from "../runtime/compute/resolve";
import { blueprintProblems, normalizeRepoUrl, RepoBlueprints, RepoUrlError, type RepoBlueprint } from "../runtime/repos/blueprints";
import { createTables, ec2Settings, runtimeConfig } from "./fixtures";

describe("repo blueprints", () => {
  const normalised: [string, string][] = [
    ["https://github.com/acme/app", "https://github.com/acme/app"],
    ["https://github.com/acme/app.git", "https://github.com/acme/app"],
    ["https://github.com/acme/app/", "https://github.com/acme/app"],
    ["https://github.com/acme/app.git/", "https://github.com/acme/app"],
    ["  https://GitHub.COM/Acme/App  ", "https://github.com/acme/app"],
    ["https://www.github.com/acme/app", "https://github.com/acme/app"],
    ["https://github.com:443/acme/app", "https://github.com/acme/app"],
    ["https://GITLAB.example.com/Group/Sub/Repo.git", "https://gitlab.example.com/Group/Sub/Repo"],
    ["https://git.example.com:8443/Team/Repo", "https://git.example.com:8443/Team/Repo"],
    ["https://github.com/acme/my.repo", "https://github.com/acme/my.repo"],
  ];
  for (const [input, expected] of normalised) {
    it(`normalises ${JSON.stringify(input)} to ${expected}`, () => {
      expect(normalizeRepoUrl(input)).to.equal(expected);
      expect(normalizeRepoUrl(expected)).to.equal(expected); // idempotent
    });
  }

  const refused: [string, RegExp][] = [
    ["http://github.com/acme/app", /uses http, not https/],
    ["git@github.com:acme/app.git", /not a URL|not https/],
    ["ssh://git@github.com/acme/app", /not https/],
    ["https://user:pw@github.com/acme/app", /credentials/],
    ["https://github.com/acme", /owner\/repo/],
    ["https://github.com/acme/app?x=1", /query or fragment/],
    ["https://github.com/acme/../app", /owner\/repo/],
    ["not a url", /not a URL/],
  ];
  for (const [input, why] of refused) {
    it(`refuses ${JSON.stringify(input)}, saying why`, () => {
      expect(() => normalizeRepoUrl(input)).to.throw(RepoUrlError, why);
    });
  }

  const problems: [Partial<RepoBlueprint>, RegExp | null][] = [
    [{ backend: "ec2", fleet: "gpu", model: "m", max_turns: 10, max_budget_usd: 2.5, poll_interval_seconds: 15 }, null],
    [{ backend: "lambda" as never }, /backend 'lambda'/],
    [{ backend: "ecs", fleet: "gpu" }, /only to backend ec2/],
    [{ max_turns: 0 }, /max_turns/],
    [{ max_budget_usd: -1 }, /max_budget_usd/],
    [{ poll_interval_seconds: 1 }, /between 5 and 300/],
    [{ startup_grace_seconds: 30 }, /startup_grace_seconds must be an integer between 60 and 28800, got 30/],
    [{ startup_grace_seconds: 1800 }, null],
    [{ fleet: "GPU fleet" }, /fleet/],
  ];
  for (const [fields, why] of problems) {
    it(`${why ? "refuses" : "accepts"} a blueprint with ${JSON.stringify(fields)}`, () => {
      const found = blueprintProblems({ repo_url: "https://github.com/a/b", ...fields });
      if (why) expect(found.join("; ")).to.match(why);
      else expect(found).to.deep.equal([]);
    });
  }

  describe("stored in the repos table (moto)", () => {
    const config = runtimeConfig("bp", { enabledBackends: ["local", "ec2"], ec2: ec2Settings(["default", "gpu"]) });
    const repos = new RepoBlueprints(config);
    before(async () => {
      await createTables(config);
    });

    it("put stores under the normalised URL and get finds it under any spelling", async () => {
      const stored = await repos.put({ repo_url: "https://GitHub.com/Acme/Gpu-Work.git", backend: "ec2", fleet: "gpu", max_turns: 50 });
      expect(stored.repo_url).to.equal("https://github.com/acme/gpu-work");
      for (const spelling of ["https://github.com/acme/gpu-work", "https://github.com/ACME/gpu-work/", "https://github.com/acme/gpu-work.git"]) {
        expect(await repos.get(spelling), spelling).to.deep.equal(stored);
      }
    });

    it("put replaces an earlier blueprint of the same repository", async () => {
      await repos.put({ repo_url: "https://github.com/acme/swap", backend: "ec2" });
      await repos.put({ repo_url: "https://github.com/acme/swap.git", backend: "local", model: "small" });
      expect(await repos.get("https://github.com/acme/swap")).to.deep.equal({
        repo_url: "https://github.com/acme/swap",
        backend: "local",
        model: "small",
      });
    });

    it("a repository without a blueprint (or with an unusable URL) has none, and gets the stack default", async () => {
      expect(await repos.get("https://github.com/acme/none")).to.equal(undefined);
      expect(await repos.get("ftp://weird")).to.equal(undefined);
      expect(resolveBackend({}, await repos.get("https://github.com/acme/none"), config)).to.deep.equal({ backend: "local" });
    });

    it("a stored blueprint drives backend resolution: one stack, repos on different backends", async () => {
      await repos.put({ repo_url: "https://github.com/acme/on-gpu", backend: "ec2", fleet: "gpu" });
      expect(resolveBackend({}, await repos.get("https://github.com/acme/on-gpu.git"), config)).to.deep.equal({ backend: "ec2", fleet: "gpu" });
    });

    it("put refuses an invalid blueprint and stores nothing", async () => {
      const err = await repos.put({ repo_url: "https://github.com/acme/bad", backend: "ecs", fleet: "gpu" }).catch((e) => e);
      expect(err).to.be.instanceOf(RangeError);
      expect(err.message).to.contain("only to backend ec2");
      expect(await repos.get("https://github.com/acme/bad")).to.equal(undefined);
    });
  });
});
