/**
 * `npm run bench:archive`: each callback Lambda's archive as this program builds it (the handler bundled with
 * exactly the modules it reaches, no node_modules) beside the same handler packaged with CallbackFunction's
 * defaults (the handler's own code, every npm package left to node_modules, every `dependencies` entry shipped),
 * measured in the same run: zipped bytes (deflate, every file in the archive, source map included) and cold
 * module-load time (fresh Node process with the function's NODE_OPTIONS, median of 5 requires of __index.js);
 * for the API also the time to its first answered request, where a handler that defers its imports pays them.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as esbuild from "esbuild";
import * as pulumi from "@pulumi/pulumi";
import { COMBINATIONS, materializeArchive, ROOT, runProgram, zipBytes } from "../tests/pulumi-mocks";

const HANDLERS = [
  { resource: "orchestrator", source: "runtime/orchestrator/durable-handler.ts", firstRequest: false },
  { resource: "api", source: "runtime/api/lambda.ts", firstRequest: true },
  { resource: "fleet-manager", source: "runtime/fleet/lambda.ts", firstRequest: false },
];

/** A minimal valid runtime config: enough for the API handler to build its runtime (no AWS call is made). */
const BENCH_CONFIG = JSON.stringify({
  region: "us-east-1",
  tables: { tasks: "t", events: "e", leases: "l", concurrency: "c", repos: "r" },
  payload: { kind: "s3", bucket: "b" },
  defaultBackend: "ecs",
  enabledBackends: ["ecs"],
  ecs: { cluster: "c", taskDefinition: "td", containerName: "agent", subnets: ["s"], securityGroups: ["g"] },
  orchestrator: { functionArn: "arn:aws:lambda:us-east-1:123456789012:function:o:live" },
});

/**
 * A signed submit with an empty body: the API answers 400 from its validation without touching AWS, but only
 * after loading its request handling. Measured because a handler that defers its imports loads fast and pays on
 * its first request instead.
 */
const REJECTED_SUBMIT = JSON.stringify({
  rawPath: "/tasks",
  body: "{}",
  requestContext: { http: { method: "POST" }, authorizer: { iam: { userArn: "arn:aws:iam::123456789012:user/bench" } } },
});

interface ColdFigures {
  loadMs: number;
  /** Load plus the first request answered (API only). */
  firstRequestMs?: number;
}

function coldLoad(dir: string, nodeOptions: string | undefined, firstRequest: boolean): ColdFigures {
  const script = firstRequest
    ? `const t=process.hrtime.bigint();const m=require('./__index.js');const l=Number(process.hrtime.bigint()-t)/1e6;` +
      `Promise.resolve(m.handler(${REJECTED_SUBMIT})).then((r)=>{if(r.statusCode!==400){console.error(JSON.stringify(r));process.exit(4)}` +
      `console.log(l+' '+Number(process.hrtime.bigint()-t)/1e6)})`
    : "const t=process.hrtime.bigint();const m=require('./__index.js');if(typeof m.handler!=='function')process.exit(3);console.log(Number(process.hrtime.bigint()-t)/1e6)";
  const env: NodeJS.ProcessEnv = { ...process.env, AGENT_COMPUTE_CONFIG: BENCH_CONFIG, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
  delete env.NODE_OPTIONS;
  delete env.NODE_PATH;
  if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
  const runs: number[][] = [];
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, ["-e", script], { cwd: dir, env, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`loading the handler failed in ${dir}: ${r.stderr}`);
    runs.push(r.stdout.trim().split(" ").map(Number));
  }
  const median = (k: number) => runs.map((r) => r[k]).sort((a, b) => a - b)[2];
  return { loadMs: median(0), ...(firstRequest ? { firstRequestMs: median(1) } : {}) };
}

function topLevelPackages(dir: string): number {
  const nm = path.join(dir, "node_modules");
  if (!fs.existsSync(nm)) return 0;
  return fs.readdirSync(nm).flatMap((n) => (n.startsWith("@") ? fs.readdirSync(path.join(nm, n)) : [n])).length;
}

/** The defaults: the same serialized entry, the handler's code with every package required from node_modules, all dependencies. */
async function defaultsArchive(ours: string, codeDir: string, source: string, into: string): Promise<void> {
  const built = esbuild.buildSync({
    absWorkingDir: ROOT, entryPoints: [path.join(ROOT, source)], bundle: true, packages: "external", platform: "node",
    target: "node22", format: "cjs", write: false, outfile: path.join(into, codeDir, "index.js"), logLevel: "silent",
  });
  fs.mkdirSync(path.join(into, codeDir), { recursive: true });
  fs.writeFileSync(path.join(into, codeDir, "index.js"), built.outputFiles[0].contents);
  const all = await pulumi.runtime.computeCodePaths({ extraExcludePackages: ["aws-sdk"] });
  const assets: Record<string, unknown> = { "__index.js": new pulumi.asset.StringAsset(fs.readFileSync(path.join(ours, "__index.js"), "utf8")) };
  for (const [k, v] of all) assets[k] = v;
  await materializeArchive({ assets }, into);
}

async function main(): Promise<void> {
  const run = await runProgram(COMBINATIONS["all three"]);
  if (run.error) throw run.error;
  for (const h of HANDLERS) {
    const fn = run.one("aws:lambda/function:Function", h.resource);
    const nodeOptions = fn.inputs.environment?.variables?.NODE_OPTIONS as string | undefined;
    const ours = fs.mkdtempSync(path.join(os.tmpdir(), "bench-ours-"));
    const entries = await materializeArchive(fn.inputs.code, ours);
    const codeDir = entries.find((e) => e.startsWith("dist/lambda/")) as string;
    const defaults = fs.mkdtempSync(path.join(os.tmpdir(), "bench-defaults-"));
    await defaultsArchive(ours, codeDir, h.source, defaults);
    const figures = [
      { label: "this program (bundle, no node_modules)", dir: ours },
      { label: "CallbackFunction defaults (all dependencies)", dir: defaults },
    ].map((r) => ({ ...r, bytes: zipBytes(r.dir), ...coldLoad(r.dir, nodeOptions, h.firstRequest), packages: topLevelPackages(r.dir) }));
    console.log(`${h.resource} Lambda archive (${h.source}; NODE_OPTIONS=${nodeOptions ?? ""})`);
    for (const f of figures) {
      const first = f.firstRequestMs === undefined ? "" : `, load + first request ${f.firstRequestMs.toFixed(0)} ms`;
      console.log(`  ${f.label.padEnd(46)} zipped ${String(f.bytes).padStart(10)} bytes (${(f.bytes / 1048576).toFixed(2)} MiB), ${String(f.packages).padStart(2)} node_modules packages, cold module load ${f.loadMs.toFixed(0)} ms${first}`);
    }
    const [a, b] = figures;
    const firstRatio = a.firstRequestMs !== undefined && b.firstRequestMs ? `, load + first request ${(a.firstRequestMs / b.firstRequestMs).toFixed(2)}` : "";
    console.log(`  ratio ours/defaults: size ${(a.bytes / b.bytes).toFixed(3)}, cold load ${(a.loadMs / b.loadMs).toFixed(2)}${firstRatio}`);
    for (const dir of [ours, defaults]) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
