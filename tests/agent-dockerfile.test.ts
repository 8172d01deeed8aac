/**
 * agent/Dockerfile, checked statically (no Docker daemon here): base images pinned, a non-root user, git, the
 * runner as the entry point, every file it copies present, the SDK locked for both architectures. Each rule is
 * also shown to fail on a Dockerfile weakened its way. And the runner bundle is built as the image builds it and run.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { buildSync } from "esbuild";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const AGENT = path.resolve(__dirname, "..", "agent");
const DOCKERFILE = readFileSync(path.join(AGENT, "Dockerfile"), "utf8");

interface Instruction {
  op: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
export function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\r?\n/g, " ");
  return joined
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

/** Every rule the image must keep; empty when it does. */
export function dockerfileProblems(text: string, contextDir: string): string[] {
  const ins = instructions(text);
  const problems: string[] = [];
  const stages = new Set<string>();
  for (const from of ins.filter((i) => i.op === "FROM")) {
    const words = from.args.split(/\s+/).filter((w) => !w.startsWith("--"));
    const image = words[0];
    if (words[1]?.toUpperCase() === "AS") stages.add(words[2]);
    if (stages.has(image)) continue;
    if (!/@sha256:[0-9a-f]{64}$/.test(image) && !/:\d+\.\d+\.\d+[\w.-]*$/.test(image)) problems.push(`base image ${image} is not pinned to a digest or an exact version`);
  }
  const users = ins.filter((i) => i.op === "USER");
  const user = users[users.length - 1]?.args.split(":")[0];
  if (!user || user === "root" || user === "0") problems.push(`the image runs as ${user ?? "root (no USER)"}, not a non-root user`);
  if (!ins.some((i) => i.op === "RUN" && /apt-get install[^&]*\bgit\b/.test(i.args))) problems.push("git is not installed");
  const entry = ins.filter((i) => i.op === "ENTRYPOINT").pop();
  let argv: string[] = [];
  try {
    argv = entry ? JSON.parse(entry.args) : [];
  } catch {
    problems.push("ENTRYPOINT is not in exec (JSON array) form");
  }
  if (argv[0] !== "node" || !argv[1]?.endsWith("runner.js")) problems.push(`the entry point is ${JSON.stringify(argv)}, not the runner`);
  const copies = ins.filter((i) => i.op === "COPY");
  if (argv[1] && !copies.some((c) => /--from=/.test(c.args) && c.args.endsWith(`./${path.basename(argv[1])}`))) problems.push(`nothing copies the bundled runner to ${argv[1]}`);
  for (const c of copies.filter((c) => !/--from=/.test(c.args))) {
    const words = c.args.split(/\s+/).filter((w) => !w.startsWith("--"));
    for (const src of words.slice(0, -1)) if (!existsSync(path.join(contextDir, src))) problems.push(`COPY source ${src} is not in ${contextDir}`);
  }
  if (!ins.some((i) => i.op === "RUN" && /esbuild src\/main\.ts --bundle/.test(i.args))) problems.push("the runner bundle is not built from src/main.ts");
  return problems;
}

describe("agent/Dockerfile (static checks)", () => {
  it("passes every rule", () => {
    expect(dockerfileProblems(DOCKERFILE, AGENT)).to.deep.equal([]);
  });

  const weakened: { name: string; edit: (t: string) => string; problem: RegExp }[] = [
    { name: "an unpinned base", edit: (t) => t.replace(/FROM node:[^\s]+\n/, "FROM node:22-bookworm-slim\n"), problem: /not pinned/ },
    { name: "a latest base", edit: (t) => t.replace(/AS build/, "AS build\nFROM debian:latest AS other"), problem: /debian:latest is not pinned/ },
    { name: "root", edit: (t) => t.replace(/USER 10001:10001/, "USER root"), problem: /runs as root/ },
    { name: "no USER", edit: (t) => t.replace(/USER 10001:10001\n/, ""), problem: /runs as root \(no USER\)/ },
    { name: "no git", edit: (t) => t.replace(/ git ca-certificates/, " ca-certificates"), problem: /git is not installed/ },
    { name: "a shell-form entry point", edit: (t) => t.replace(/ENTRYPOINT .*/, "ENTRYPOINT node /opt/agent/runner.js"), problem: /exec/ },
    { name: "another entry point", edit: (t) => t.replace(/ENTRYPOINT .*/, 'ENTRYPOINT ["bash"]'), problem: /not the runner/ },
    { name: "a missing COPY source", edit: (t) => t.replace(/COPY scripted-agent.js/, "COPY nothing-here.js"), problem: /nothing-here.js is not in/ },
  ];
  for (const w of weakened) {
    it(`refuses ${w.name}`, () => {
      const edited = w.edit(DOCKERFILE);
      expect(edited).not.to.equal(DOCKERFILE);
      expect(dockerfileProblems(edited, AGENT).join("\n")).to.match(w.problem);
    });
  }

  it("locks the Claude Agent SDK at package.json's exact version, with its Claude Code binary for arm64 and amd64", () => {
    const pkg = JSON.parse(readFileSync(path.join(AGENT, "package.json"), "utf8"));
    const lock = JSON.parse(readFileSync(path.join(AGENT, "package-lock.json"), "utf8"));
    const version = pkg.dependencies["@anthropic-ai/claude-agent-sdk"];
    expect(version).to.match(/^\d+\.\d+\.\d+$/);
    expect(lock.packages["node_modules/@anthropic-ai/claude-agent-sdk"].version).to.equal(version);
    expect(lock.packages).to.have.any.keys("node_modules/@anthropic-ai/claude-agent-sdk-linux-arm64");
    expect(lock.packages).to.have.any.keys("node_modules/@anthropic-ai/claude-agent-sdk-linux-x64");
  });

  it("builds with the project's own esbuild version", () => {
    const root = JSON.parse(readFileSync(path.resolve(AGENT, "..", "package.json"), "utf8"));
    expect(DOCKERFILE).to.contain(`esbuild@${root.dependencies.esbuild}`);
  });

  it("the bundle, built as the image builds it, runs and names what its environment lacks", () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), "agent-bundle-")), "runner.js");
    buildSync({ entryPoints: [path.join(AGENT, "src", "main.ts")], bundle: true, platform: "node", target: "node22", outfile: out, logLevel: "warning" });
    const r = spawnSync(process.execPath, [out], { env: { PATH: process.env.PATH, TASK_ID: "t-1", AGENT_DRIVER: "command", AGENT_COMMAND: '["true"]' }, encoding: "utf8", timeout: 20_000 });
    expect(r.status).to.equal(2);
    expect(r.stdout).to.contain("missing environment variable(s): AGENT_PAYLOAD_URL");
  });
});
