/**
 * The reference agent bundled to one JavaScript file (esbuild), as an agent image would ship it: a hundred agents
 * started through ts-node would measure the TypeScript compiler, not the platform.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as esbuild from "esbuild";

const ROOT = path.resolve(__dirname, "..", "..");

export async function bundleReferenceAgent(): Promise<{ command: string[]; cleanup(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-agent-"));
  const outfile = path.join(dir, "reference-agent.js");
  await esbuild.build({
    entryPoints: [path.join(ROOT, "runtime/agent/reference-agent.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    outfile,
    logLevel: "error",
  });
  return { command: [process.execPath, outfile], cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
