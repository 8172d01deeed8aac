/**
 * The code a callback Lambda deploys: one runtime handler module bundled, with exactly the code it reaches, into
 * a single CommonJS file.
 *
 * Why not let closure serialization walk the handler: the runtime is TypeScript (no build step) and its module
 * graph holds classes, SDK clients and `#private` state that serialization cannot carry. Why a bundle rather than
 * node_modules folders: the SDK packages ship ESM, CJS, type declarations and source maps side by side, and a
 * client such as client-ec2 is megabytes of commands the handler never sends; a bundle holds only the modules the
 * handler's import graph reaches (about a fifth of the size, and one file to read at cold start). So:
 *   1. esbuild bundles the handler (TypeScript, relative imports and npm packages) into
 *      dist/lambda/<name>-<hash>/index.js, which CallbackFunction ships through
 *      codePathOptions.extraIncludePaths;
 *   2. every `dependencies` entry of package.json goes to extraExcludePackages: the archive has no node_modules;
 *   3. the serialized callback is a factory capturing only the entry path string; Lambda runs it once per cold
 *      start and it `require`s the bundle, so SDK clients are created there, lazily.
 * The build fails if the bundle reaches @pulumi/*, a dev dependency, or a test/bench file.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";

export const PROJECT_ROOT = path.resolve(__dirname, "..");

/**
 * Left as run-time requires: ts-node is only `require.resolve`d by the local backend to spawn the reference agent
 * on a developer's machine; a Lambda never runs the local backend (nothing to resolve, nothing to bundle).
 */
const EXTERNAL = ["ts-node"];

export interface HandlerCode {
  /** Folder holding the bundle, relative to the working directory (its path inside the archive). */
  dir: string;
  /** Path of the bundle inside the archive, from the archive root ("./dist/lambda/<name>-<hash>/index.js"). */
  entry: string;
  /** Project source files (relative to the project root) in the bundle. */
  sources: string[];
  /** npm packages with modules in the bundle. */
  packages: string[];
  /** Bytes of each file written into `dir`. */
  files: Record<string, number>;
}

export interface BuildOptions {
  root?: string;
  /** Where bundles go; default <root>/dist/lambda. */
  outDir?: string;
}

/** "node_modules/@aws-sdk/client-ecs/dist-cjs/index.js" → "@aws-sdk/client-ecs" (innermost node_modules wins). */
function packageOfInput(input: string): string | undefined {
  const at = input.lastIndexOf("node_modules/");
  if (at < 0) return undefined;
  const parts = input.slice(at + "node_modules/".length).split("/");
  return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
}

/**
 * Bundle a handler into its own content-addressed folder. Safe to call from concurrent processes: the folder is
 * written under a temporary name and renamed into place.
 */
export function buildHandlerCode(name: string, handlerFile: string, options: BuildOptions = {}): HandlerCode {
  const root = options.root ?? PROJECT_ROOT;
  const start = path.resolve(root, handlerFile);
  if (!fs.existsSync(start)) throw new Error(`lambda code: handler ${handlerFile} does not exist under ${root}`);
  const outDir = options.outDir ?? path.join(root, "dist", "lambda");
  // A process that runs the program more than once (the test suite runs it per backend combination) bundles a
  // handler again only when one of the files the last bundle read has changed: bundling is most of a run's time.
  const key = JSON.stringify([name, start, outDir, process.cwd()]);
  const cached = builtBundles.get(key);
  if (cached && fs.existsSync(path.join(root, cached.code.dir)) && cached.inputs.every(([file, stamp]) => fileStamp(file) === stamp)) {
    return cached.code;
  }
  const code = bundleHandler(name, handlerFile, root, start, outDir);
  builtBundles.set(key, { code: code.code, inputs: code.inputs.map((file) => [file, fileStamp(file)]) });
  return code.code;
}

const builtBundles = new Map<string, { code: HandlerCode; inputs: [string, string][] }>();

function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.size}:${st.mtimeMs}`;
  } catch {
    return "missing";
  }
}

function bundleHandler(
  name: string,
  handlerFile: string,
  root: string,
  start: string,
  outDir: string,
): { code: HandlerCode; inputs: string[] } {
  // esbuild is a build-time tool: loaded only while the program runs, never shipped (all dependencies are excluded).
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const esbuild = require("esbuild") as typeof import("esbuild");
  const result = esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: [start],
    outfile: path.join(outDir, name, "index.js"),
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    // ESM builds first (as AWS recommends for bundling SDK v3): unused commands and schemas are shaken out.
    mainFields: ["module", "main"],
    // Whitespace and syntax only: identifiers stay readable, so stack traces name real functions without shipping
    // a source map (parsing one at cold start under --enable-source-maps costs more than it is worth here).
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    external: EXTERNAL,
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  if (result.warnings.length) {
    const text = esbuild.formatMessagesSync(result.warnings, { kind: "warning" }).join("\n");
    throw new Error(`lambda code: bundling ${handlerFile} produced warnings (each may be a module missing at run time):\n${text}`);
  }

  const inputs = Object.keys(result.metafile.inputs);
  const packages = [...new Set(inputs.map(packageOfInput).filter((p): p is string => !!p))].sort();
  const sources = inputs.filter((i) => !packageOfInput(i)).sort();
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { devDependencies?: Record<string, string> };
  const dev = new Set(Object.keys(manifest.devDependencies ?? {}));
  for (const p of packages) {
    if (p.startsWith("@pulumi/")) throw new Error(`lambda code: ${handlerFile} reaches ${p}; the runtime must never import @pulumi/*`);
    if (dev.has(p)) throw new Error(`lambda code: ${handlerFile} reaches dev dependency ${p}; move it to dependencies or stop importing it from runtime code`);
  }
  for (const s of sources) {
    if (s.startsWith("..") || path.isAbsolute(s)) throw new Error(`lambda code: ${s} (reached from ${handlerFile}) is outside the project root ${root}`);
    if (/^(tests|bench)\//.test(s) || /\.test\.ts$/.test(s)) throw new Error(`lambda code: ${handlerFile} reaches ${s}; runtime code must not import tests or benches`);
  }

  const files = new Map(result.outputFiles.map((f) => [path.basename(f.path), f.contents]));
  const hash = crypto.createHash("sha256");
  for (const [file, bytes] of [...files].sort(([a], [b]) => a.localeCompare(b))) hash.update(file).update("\0").update(bytes).update("\0");
  const finalDir = path.join(outDir, `${name}-${hash.digest("hex").slice(0, 16)}`);
  if (!fs.existsSync(finalDir)) {
    const tmp = `${finalDir}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
    fs.mkdirSync(tmp, { recursive: true });
    for (const [file, bytes] of files) fs.writeFileSync(path.join(tmp, file), bytes);
    try {
      fs.renameSync(tmp, finalDir);
    } catch (err) {
      // Another process won the race with identical content.
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(finalDir)) throw err;
    }
  }
  const dir = path.relative(process.cwd(), finalDir).split(path.sep).join("/");
  if (dir.startsWith("..")) throw new Error(`lambda code: run the program from the project root (${root}); cwd is ${process.cwd()}`);
  return {
    code: {
      dir,
      entry: `./${dir}/index.js`,
      sources,
      packages,
      files: Object.fromEntries([...files].map(([file, bytes]) => [file, bytes.length])),
    },
    inputs: [...inputs.map((i) => path.resolve(root, i)), path.join(root, "package.json")],
  };
}

/** codePathOptions shipping the bundle and no node_modules: every project dependency is excluded. */
export function codePathOptions(code: HandlerCode, root: string = PROJECT_ROOT): pulumi.runtime.CodePathOptions {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  return {
    extraIncludePaths: [code.dir],
    extraExcludePackages: Object.keys(manifest.dependencies ?? {}),
  };
}

/**
 * The serialized Lambda entry point: runs once per cold start and returns the runtime handler. It captures
 * only two strings, so closure serialization never reaches runtime objects.
 */
export function handlerFactory<E, R>(entry: string, exportName = "handler"): () => (event: E, context: unknown) => Promise<R> {
  return () => {
    const mod = require(entry) as Record<string, unknown>;
    const fn = mod[exportName];
    if (typeof fn !== "function") throw new Error(`${entry} does not export a function '${exportName}'`);
    return fn as (event: E, context: unknown) => Promise<R>;
  };
}
