/**
 * `npm run bench:archive`: the orchestrator's Lambda archive as this program builds it (handler graph + only the
 * packages it needs) beside the same handler packaged with CallbackFunction's defaults (every `dependencies`
 * entry), measured in the same run: zipped bytes (deflate) and cold module-load time (fresh Node process,
 * median of 5 requires of __index.js).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { COMBINATIONS, materializeArchive, runProgram } from "../tests/pulumi-mocks";

function zipBytes(dir: string): number {
  const zip = path.join(os.tmpdir(), `bench-${process.pid}-${Math.random().toString(36).slice(2)}.zip`);
  const py = "import os,sys,zipfile\nz=zipfile.ZipFile(sys.argv[2],'w',zipfile.ZIP_DEFLATED)\nfor r,_,fs in os.walk(sys.argv[1]):\n  for f in fs:\n    p=os.path.join(r,f); z.write(p, os.path.relpath(p, sys.argv[1]))\nz.close()";
  const res = spawnSync("python3", ["-c", py, dir, zip], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`zip failed: ${res.stderr}`);
  const size = fs.statSync(zip).size;
  fs.rmSync(zip);
  return size;
}

function coldLoadMs(dir: string): number {
  const script = "const t=process.hrtime.bigint();const m=require('./__index.js');if(typeof m.handler!=='function')process.exit(3);console.log(Number(process.hrtime.bigint()-t)/1e6)";
  const env: NodeJS.ProcessEnv = { ...process.env, AGENT_COMPUTE_CONFIG: "{}" };
  delete env.NODE_OPTIONS;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, ["-e", script], { cwd: dir, env, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`loading the handler failed in ${dir}: ${r.stderr}`);
    times.push(Number(r.stdout.trim()));
  }
  return times.sort((a, b) => a - b)[2];
}

async function main(): Promise<void> {
  const run = await runProgram(COMBINATIONS["ecs alone"]);
  if (run.error) throw run.error;
  const fn = run.one("aws:lambda/function:Function", "orchestrator");
  const ours = fs.mkdtempSync(path.join(os.tmpdir(), "bench-ours-"));
  const entries = await materializeArchive(fn.inputs.code, ours);
  // Defaults: the same serialized entry and handler graph, with every dependency CallbackFunction would ship.
  const defaults = fs.mkdtempSync(path.join(os.tmpdir(), "bench-defaults-"));
  const codeDir = entries.find((e) => e.startsWith("dist/lambda/")) as string;
  const all = await pulumi.runtime.computeCodePaths({ extraIncludePaths: [codeDir], extraExcludePackages: ["aws-sdk"] });
  const assets: Record<string, unknown> = { "__index.js": new pulumi.asset.StringAsset(fs.readFileSync(path.join(ours, "__index.js"), "utf8")) };
  for (const [k, v] of all) assets[k] = v;
  await materializeArchive({ assets }, defaults);
  const rows = [
    ["this program (handler + needed packages)", ours],
    ["CallbackFunction defaults (all dependencies)", defaults],
  ] as const;
  console.log("orchestrator Lambda archive (runtime/orchestrator/durable-handler.ts)");
  for (const [label, dir] of rows) {
    const bytes = zipBytes(dir);
    const packages = fs.readdirSync(path.join(dir, "node_modules")).flatMap((n) => (n.startsWith("@") ? fs.readdirSync(path.join(dir, "node_modules", n)).map((s) => `${n}/${s}`) : [n])).length;
    console.log(`  ${label.padEnd(46)} zipped ${String(bytes).padStart(10)} bytes (${(bytes / 1048576).toFixed(2)} MiB), ${packages} top-level packages, cold module load ${coldLoadMs(dir).toFixed(0)} ms`);
  }
  for (const dir of [ours, defaults]) fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
