/**
 * The code a callback Lambda deploys: one runtime handler module and exactly what it needs.
 *
 * Why not let closure serialization walk the handler: the runtime is TypeScript (no build step) and its module
 * graph holds classes, SDK clients and `#private` state that serialization cannot carry. Instead:
 *   1. the handler's module graph (relative imports only) is transpiled to CommonJS into dist/lambda/<name>-<hash>/,
 *      which CallbackFunction ships through codePathOptions.extraIncludePaths;
 *   2. the packages that graph requires, plus their own dependencies, are kept; every other `dependencies` entry
 *      of package.json goes to extraExcludePackages (CallbackFunction would otherwise ship all of them);
 *   3. the serialized callback is a factory capturing only the entry path string; Lambda runs it once per cold
 *      start and it `require`s the transpiled handler, so SDK clients are created there, lazily.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { builtinModules } from "node:module";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";

export const PROJECT_ROOT = path.resolve(__dirname, "..");

export interface HandlerCode {
  /** Folder of the transpiled module graph, relative to the working directory (its path inside the archive). */
  dir: string;
  /** Path of the handler module inside the archive, from the archive root ("./dist/lambda/…/x.js"). */
  entry: string;
  /** Project source files (relative to the project root) in the graph. */
  sources: string[];
  /** npm packages the graph requires directly. */
  packages: string[];
  /** Those packages and everything they depend on: what the archive must carry. */
  packageClosure: string[];
}

export interface BuildOptions {
  root?: string;
  /** Where transpiled graphs go; default <root>/dist/lambda. */
  outDir?: string;
}

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function packageNameOf(spec: string): string {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

function resolveSource(fromFile: string, spec: string): string {
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const candidate of [base, `${base}.ts`, `${base}.js`, `${base}.json`, path.join(base, "index.ts"), path.join(base, "index.js")]) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  }
  throw new Error(`lambda code: '${spec}' imported by ${fromFile} does not resolve to a .ts/.js/.json file`);
}

/** require("x") and the commonjs form of import("x"), as TypeScript emits them. */
const REQUIRE = /\brequire\(\s*["']([^"']+)["']\s*\)/g;

function transpile(file: string, source: string): string {
  if (!file.endsWith(".ts")) return source;
  // typescript is a build-time (dev) dependency: loaded only while the program runs, never shipped.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ts = require("typescript") as typeof import("typescript");
  return ts.transpileModule(source, {
    fileName: file,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      sourceMap: false,
      removeComments: true,
    },
  }).outputText;
}

function outName(file: string): string {
  return file.endsWith(".ts") ? `${file.slice(0, -3)}.js` : file;
}

/** Every package the given ones depend on at run time (dependencies + non-optional peers installed), recursively. */
export function packageClosure(packages: string[], root: string): string[] {
  const seen = new Set<string>();
  const visit = (name: string, fromDir: string): void => {
    let pkgJson: string;
    try {
      pkgJson = require.resolve(`${name}/package.json`, { paths: [fromDir] });
    } catch {
      // Packages whose exports map hides package.json: find the folder on the node_modules path.
      const found = findPackageDir(name, fromDir);
      if (!found) throw new Error(`lambda code: package '${name}' is required but not installed (looked from ${fromDir})`);
      pkgJson = path.join(found, "package.json");
    }
    const dir = path.dirname(pkgJson);
    const key = `${name}\0${dir}`;
    if (seen.has(key)) return;
    seen.add(key);
    const manifest = JSON.parse(fs.readFileSync(pkgJson, "utf8")) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep, dir);
  };
  for (const p of packages) visit(p, root);
  return [...new Set([...seen].map((k) => k.slice(0, k.indexOf("\0"))))].sort();
}

function findPackageDir(name: string, fromDir: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Transpile a handler's module graph into its own content-addressed folder. Safe to call from concurrent
 * processes: the folder is written under a temporary name and renamed into place.
 */
export function buildHandlerCode(name: string, handlerFile: string, options: BuildOptions = {}): HandlerCode {
  const root = options.root ?? PROJECT_ROOT;
  const start = path.resolve(root, handlerFile);
  if (!fs.existsSync(start)) throw new Error(`lambda code: handler ${handlerFile} does not exist under ${root}`);
  const outputs = new Map<string, string>();
  const packages = new Set<string>();
  const queue = [start];
  while (queue.length) {
    const file = queue.pop() as string;
    const rel = path.relative(root, file);
    if (outputs.has(rel)) continue;
    if (rel.startsWith("..")) throw new Error(`lambda code: ${file} is outside the project root ${root}`);
    const text = transpile(file, fs.readFileSync(file, "utf8"));
    outputs.set(rel, text);
    if (file.endsWith(".json")) continue;
    for (const m of text.matchAll(REQUIRE)) {
      const spec = m[1];
      if (spec.startsWith(".")) queue.push(resolveSource(file, spec));
      else if (!BUILTINS.has(spec)) packages.add(packageNameOf(spec));
    }
  }
  for (const p of packages) {
    if (p.startsWith("@pulumi/")) throw new Error(`lambda code: ${handlerFile} reaches ${p}; the runtime must never import @pulumi/*`);
  }
  const sources = [...outputs.keys()].sort();
  const hash = crypto.createHash("sha256");
  for (const rel of sources) hash.update(rel).update("\0").update(outputs.get(rel) as string).update("\0");
  const outDir = options.outDir ?? path.join(root, "dist", "lambda");
  const finalDir = path.join(outDir, `${name}-${hash.digest("hex").slice(0, 16)}`);
  if (!fs.existsSync(finalDir)) {
    const tmp = `${finalDir}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
    for (const rel of sources) {
      const target = path.join(tmp, outName(rel));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, outputs.get(rel) as string);
    }
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
  const direct = [...packages].sort();
  return {
    dir,
    entry: `./${dir}/${outName(path.relative(root, start)).split(path.sep).join("/")}`,
    sources,
    packages: direct,
    packageClosure: packageClosure(direct, root),
  };
}

/** codePathOptions shipping the transpiled graph and excluding every project dependency the handler does not need. */
export function codePathOptions(code: HandlerCode, root: string = PROJECT_ROOT): pulumi.runtime.CodePathOptions {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const keep = new Set(code.packageClosure);
  return {
    extraIncludePaths: [code.dir],
    extraExcludePackages: Object.keys(manifest.dependencies ?? {}).filter((d) => !keep.has(d)),
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
