/**
 * Every AWS call a deployed principal makes, derived from the code:
 *   - a Lambda: the project modules its esbuild bundle holds (the metafile, from the handler the component
 *     deploys), the SDK commands, paginators and waiters those modules use (TypeScript's parser finds each
 *     `new XCommand(…)` and `paginateX(…)` and the package it comes from), kept only where the enclosing function is
 *     reachable from the handler by name (so the API, which never starts a task, is not asked to hold RunTask);
 *   - packages that call AWS themselves (the durable execution SDK: checkpoints) the same way, in their own code;
 *   - an EC2 instance: the `aws` CLI calls (and ECR pulls) in its boot script and in the SSM document's script;
 *   - an agent role: what docs/agent-contract.md leaves an agent (its model calls), and what the service does
 *     with the role (ECR pull, logs).
 * Pure parsing and bookkeeping: which ARN each call uses in a given stack is ./iam-coverage.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { ROOT } from "./pulumi-mocks";

export interface CallSite {
  /** Project-relative file (or package name) and 1-based line. */
  file: string;
  line: number;
  /** service:Action as IAM names it. */
  action: string;
  /** Table expressions the call names (TableName, RequestItems keys), as written. */
  tables: string[];
  /** IndexName as written, if any. */
  index?: string;
  /** The function or method the call is in ("" at module level). */
  within: string;
  /** Tag keys a CreateTags call sets, as written. */
  tagKeys?: string[];
}

/** SDK package → IAM service prefix. */
const PACKAGE_SERVICE: Record<string, string> = {
  "@aws-sdk/client-dynamodb": "dynamodb",
  "@aws-sdk/lib-dynamodb": "dynamodb",
  "@aws-sdk/client-s3": "s3",
  "@aws-sdk/client-lambda": "lambda",
  "@aws-sdk/client-ssm": "ssm",
  "@aws-sdk/client-ec2": "ec2",
  "@aws-sdk/client-ecs": "ecs",
  "@aws-sdk/client-auto-scaling": "autoscaling",
  "@aws-sdk/client-bedrock-agentcore": "bedrock-agentcore",
  "@aws-sdk/client-secrets-manager": "secretsmanager",
};

/** Where an operation's name and its IAM action differ. */
const ACTION_OF: Record<string, string> = {
  "lambda:Invoke": "lambda:InvokeFunction",
};

/** The document client's commands: the DynamoDB operation each sends. */
const DOCUMENT_CLIENT: Record<string, string> = {
  Get: "GetItem",
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  Query: "Query",
  Scan: "Scan",
  BatchGet: "BatchGetItem",
  BatchWrite: "BatchWriteItem",
  TransactGet: "TransactGetItems",
  TransactWrite: "TransactWriteItems",
  paginatedBatchGet: "BatchGetItem",
};

/** A transaction is authorized item by item (DynamoDB has no TransactWriteItems permission). */
const TRANSACT_ITEM: Record<string, string> = { Put: "PutItem", Update: "UpdateItem", Delete: "DeleteItem", ConditionCheck: "ConditionCheckItem", Get: "GetItem" };

/** SDK waiters: the operation each polls. */
const WAITERS: Record<string, string> = { waitUntilTableExists: "dynamodb:DescribeTable" };

/** Packages that call AWS from their own code (not through ours), and the one service they call. */
export const CALLING_PACKAGES: Record<string, string> = { "@aws/durable-execution-sdk-js": "lambda" };

function actionOf(pkg: string, operation: string): string {
  const service = PACKAGE_SERVICE[pkg];
  const op = pkg === "@aws-sdk/lib-dynamodb" ? (DOCUMENT_CLIENT[operation] ?? operation) : operation;
  const action = `${service}:${op}`;
  return ACTION_OF[action] ?? action;
}

/** The SDK packages a file imports: named imports by name, plus namespace and dynamic imports. */
function sdkImports(source: ts.SourceFile): { named: Map<string, string>; namespaces: Map<string, string>; dynamic: string[] } {
  const named = new Map<string, string>();
  const namespaces = new Map<string, string>();
  const dynamic: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const pkg = node.moduleSpecifier.text;
      const bindings = node.importClause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) for (const e of bindings.elements) named.set(e.name.text, pkg);
      if (bindings && ts.isNamespaceImport(bindings)) namespaces.set(bindings.name.text, pkg);
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      dynamic.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { named, namespaces, dynamic };
}

/** The name a function-like node is known by (declaration, method, `const f = () =>`, `{ f: () => }`), or "". */
function functionName(n: ts.Node): string {
  if ((ts.isMethodDeclaration(n) || ts.isFunctionDeclaration(n) || ts.isGetAccessorDeclaration(n)) && n.name) return n.name.getText();
  if ((ts.isArrowFunction(n) || ts.isFunctionExpression(n)) && n.parent && (ts.isVariableDeclaration(n.parent) || ts.isPropertyAssignment(n.parent))) return n.parent.name.getText();
  return "";
}

/**
 * The outermost named function or method a node is in ("" at module level): the unit reachability is decided
 * for. A closure inside it runs only when it does, so it is not a unit of its own.
 */
function enclosing(node: ts.Node): string {
  let name = "";
  for (let n: ts.Node | undefined = node.parent; n; n = n.parent) name = functionName(n) || name;
  return name;
}

/** Property values named `key` anywhere inside `node` (as written). */
function propertyTexts(node: ts.Node, key: string): string[] {
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isPropertyAssignment(n) && n.name.getText() === key) out.push(n.initializer.getText());
    if (ts.isShorthandPropertyAssignment(n) && n.name.getText() === key) out.push(n.name.getText());
    ts.forEachChild(n, visit);
  };
  visit(node);
  return out;
}

/** RequestItems: { [table]: … } computed keys. */
function requestItemTables(node: ts.Node): string[] {
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isPropertyAssignment(n) && n.name.getText() === "RequestItems" && ts.isObjectLiteralExpression(n.initializer)) {
      for (const p of n.initializer.properties) if (p.name && ts.isComputedPropertyName(p.name)) out.push(p.name.expression.getText());
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
  return out;
}

/**
 * The object literal a call's input is: the argument itself, or the variable it names (declared in the same
 * function), so `new QueryCommand(input)` is read through `const input = {…}`.
 */
function inputNode(arg: ts.Expression | undefined): ts.Node | undefined {
  if (!arg) return undefined;
  if (!ts.isIdentifier(arg)) return arg;
  let scope: ts.Node | undefined = arg.parent;
  while (scope && !ts.isFunctionLike(scope) && !ts.isSourceFile(scope)) scope = scope.parent;
  let found: ts.Node | undefined;
  const visit = (n: ts.Node) => {
    if (ts.isVariableDeclaration(n) && n.name.getText() === arg.text && n.initializer) found = n.initializer;
    if (!found) ts.forEachChild(n, visit);
  };
  if (scope) visit(scope);
  return found ?? arg;
}

/** The bodies of the same file's functions an input is built by (`{ ...this.byStatus(s) }`), followed once. */
function helperBodies(source: ts.SourceFile, input: ts.Node): ts.Node[] {
  const names = new Set<string>();
  const visit = (n: ts.Node) => {
    if (ts.isCallExpression(n)) {
      const c = n.expression;
      if (ts.isIdentifier(c)) names.add(c.text);
      if (ts.isPropertyAccessExpression(c) && c.expression.kind === ts.SyntaxKind.ThisKeyword) names.add(c.name.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(input);
  const out: ts.Node[] = [];
  const find = (n: ts.Node) => {
    if ((ts.isMethodDeclaration(n) || ts.isFunctionDeclaration(n)) && n.name && names.has(n.name.getText(source)) && n.body) out.push(n.body);
    ts.forEachChild(n, find);
  };
  find(source);
  return out;
}

/** The items of a transaction (Put/Update/Delete/ConditionCheck/Get), read in `node` and the helpers it calls. */
function transactItems(file: string, source: ts.SourceFile, node: ts.Node, line: number, within: string): CallSite[] {
  const items: CallSite[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isPropertyAssignment(n) && TRANSACT_ITEM[n.name.getText()] && ts.isObjectLiteralExpression(n.initializer)) {
      items.push({ file, line, action: `dynamodb:${TRANSACT_ITEM[n.name.getText()]}`, tables: propertyTexts(n.initializer, "TableName"), within });
    }
    ts.forEachChild(n, visit);
  };
  for (const part of [node, ...helperBodies(source, node)]) visit(part);
  return items;
}

function sitesOfCall(file: string, source: ts.SourceFile, node: ts.Node, action: string, input: ts.Node | undefined): CallSite[] {
  const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const within = enclosing(node);
  const parts = input ? [input, ...helperBodies(source, input)] : [];
  const tables = parts.flatMap((p) => [...propertyTexts(p, "TableName"), ...requestItemTables(p)]);
  const index = parts.flatMap((p) => propertyTexts(p, "IndexName"))[0];
  if (/^dynamodb:Transact(Write|Get)Items$/.test(action)) {
    const items = input ? transactItems(file, source, input, line, within) : [];
    // Items handed in by the caller (`private transact(items)`): read them at each call of the enclosing function.
    if (!items.length && within) {
      const visit = (n: ts.Node) => {
        if (ts.isCallExpression(n) && n.arguments[0] && (ts.isIdentifier(n.expression) ? n.expression.text : ts.isPropertyAccessExpression(n.expression) ? n.expression.name.text : "") === within) {
          const at = source.getLineAndCharacterOfPosition(n.getStart(source)).line + 1;
          items.push(...transactItems(file, source, n.arguments[0], at, enclosing(n)));
        }
        ts.forEachChild(n, visit);
      };
      visit(source);
    }
    // A transaction whose items cannot be read must fail the coverage, not vanish from it.
    return items.length ? items : [{ file, line, action, tables: [], within }];
  }
  const site: CallSite = { file, line, action, tables, within, ...(index ? { index } : {}) };
  if (action === "ec2:CreateTags" && input) site.tagKeys = propertyTexts(input, "Key");
  return [site];
}

/**
 * Every SDK call in one source file. `defaultPackage`: for a package's own code, whose clients are not imported
 * by name (the durable SDK builds its Lambda client module at run time).
 */
export function callSites(file: string, text: string, defaultPackage?: string): CallSite[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const { named, namespaces, dynamic } = sdkImports(source);
  const sdk = (p: string) => p in PACKAGE_SERVICE;
  const fallback = [...new Set([...namespaces.values(), ...dynamic].filter(sdk))];
  const packageOf = (name: string, qualifier?: string): string | undefined => {
    if (qualifier && namespaces.has(qualifier)) return namespaces.get(qualifier);
    if (!qualifier && named.has(name)) return named.get(name);
    if (fallback.length === 1) return fallback[0];
    if (fallback.length > 1) return fallback.find((p) => name in (require(p) as object));
    return defaultPackage;
  };
  const out: CallSite[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isNewExpression(node)) {
      const callee = node.expression;
      const name = ts.isIdentifier(callee) ? callee.text : ts.isPropertyAccessExpression(callee) ? callee.name.text : "";
      const qualifier = ts.isPropertyAccessExpression(callee) ? callee.expression.getText(source) : undefined;
      const m = /^(\w+)Command$/.exec(name);
      const pkg = m ? packageOf(name, qualifier) : undefined;
      if (m && pkg && sdk(pkg)) out.push(...sitesOfCall(file, source, node, actionOf(pkg, m[1]), inputNode(node.arguments?.[0])));
    }
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const name = ts.isIdentifier(callee) ? callee.text : ts.isPropertyAccessExpression(callee) ? callee.name.text : "";
      const qualifier = ts.isPropertyAccessExpression(callee) ? callee.expression.getText(source) : undefined;
      const paginator = /^paginate([A-Z]\w+)$/.exec(name);
      if (paginator || name === "paginatedBatchGet") {
        const pkg = packageOf(name, qualifier);
        if (pkg && sdk(pkg)) out.push(...sitesOfCall(file, source, node, actionOf(pkg, paginator ? paginator[1] : name), inputNode(node.arguments[1])));
      }
      if (/^waitUntil[A-Z]/.test(name)) {
        const pkg = packageOf(name, qualifier);
        if (pkg && sdk(pkg)) {
          const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
          out.push({ file, line, action: WAITERS[name] ?? `unknown waiter ${name}`, tables: inputNode(node.arguments[1]) ? propertyTexts(inputNode(node.arguments[1])!, "TableName") : [], within: enclosing(node) });
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The project files and external packages of a handler's bundle, from esbuild's metafile. */
export function bundleInputs(handlerFile: string): { files: string[]; packages: string[] } {
  // Same entry and resolution as components/lambda-code.ts; packages stay external (their own modules are not
  // ours to scan, except CALLING_PACKAGES), which keeps this a fraction of a second.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const esbuild = require("esbuild") as typeof import("esbuild");
  const result = esbuild.buildSync({
    absWorkingDir: ROOT,
    entryPoints: [path.join(ROOT, handlerFile)],
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    mainFields: ["module", "main"],
    packages: "external",
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  const inputs = result.metafile.inputs;
  const files = Object.keys(inputs).sort();
  const packages = [...new Set(Object.values(inputs).flatMap((i) => i.imports.filter((x) => x.external).map((x) => x.path.split("/").slice(0, x.path.startsWith("@") ? 2 : 1).join("/"))))].sort();
  return { files, packages };
}

/** Source text without comments (so a name in a comment does not count as a call). */
function codeOf(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

interface FunctionBody {
  file: string;
  name: string;
  text: string;
}

/** Each named function and method of a file with its body's text; the rest of the file is module-level code. */
function functionBodies(file: string, text: string): { bodies: FunctionBody[]; moduleLevel: string } {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const bodies: FunctionBody[] = [];
  let moduleLevel = text;
  // Outermost functions only (as `enclosing` counts them): a closure's text is part of its function's body.
  const visit = (node: ts.Node) => {
    const name = functionName(node);
    const body = (node as ts.FunctionLikeDeclaration).body;
    if (name && body) {
      // The whole declaration, name included, leaves module-level code: naming itself must not reach it.
      const declaration = ts.isArrowFunction(node) || ts.isFunctionExpression(node) ? node.parent : node;
      bodies.push({ file, name, text: body.getText(source) });
      moduleLevel = moduleLevel.replace(declaration.getText(source), "");
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { bodies, moduleLevel };
}

const mentions = (code: string, name: string) => new RegExp(`(?<![\\w$])${name.replace(/[$]/g, "\\$")}(?![\\w$])`).test(codeOf(code));

/**
 * The functions reachable from a bundle's module-level code and its `handler` by name:
 * a function is reached when reached code mentions its name. Names are not types, so this over-approximates (every
 * `get` is reached once anything calls a Map's get), which only ever asks for more grants, never fewer.
 */
export function reachableFunctions(files: Record<string, string>): Set<string> {
  const all: FunctionBody[] = [];
  // Lambda calls the entry's exported `handler` (components/lambda-code.ts, handlerFactory).
  let frontier: string[] = ["handler()"];
  for (const [file, text] of Object.entries(files)) {
    const { bodies, moduleLevel } = functionBodies(file, text);
    all.push(...bodies);
    frontier.push(moduleLevel);
  }
  const reached = new Set<string>();
  while (frontier.length) {
    const next: string[] = [];
    for (const f of all) {
      const key = `${f.file}#${f.name}`;
      if (reached.has(key)) continue;
      if (frontier.some((code) => mentions(code, f.name))) {
        reached.add(key);
        next.push(f.text);
      }
    }
    frontier = next;
  }
  return reached;
}

export interface LambdaCalls {
  handlerFile: string;
  files: string[];
  sites: CallSite[];
  /** Calls found in the bundle but in functions the handler never reaches (reported, not required). */
  unreached: CallSite[];
}

const lambdaCache = new Map<string, LambdaCalls>();

/** Every AWS call a Lambda's handler can make, by its bundle. Memoised per handler (the code does not change in a run). */
export function lambdaCalls(handlerFile: string): LambdaCalls {
  const cached = lambdaCache.get(handlerFile);
  if (cached) return cached;
  const { files, packages } = bundleInputs(handlerFile);
  const texts: Record<string, string> = {};
  for (const f of files) texts[f] = fs.readFileSync(path.join(ROOT, f), "utf8");
  const reached = reachableFunctions(texts);
  const sites: CallSite[] = [];
  const unreached: CallSite[] = [];
  for (const f of files) {
    for (const site of callSites(f, texts[f])) (site.within === "" || reached.has(`${f}#${site.within}`) ? sites : unreached).push(site);
  }
  for (const pkg of packages.filter((p) => p in CALLING_PACKAGES)) {
    const entry = require.resolve(pkg, { paths: [ROOT] });
    const service = CALLING_PACKAGES[pkg];
    const clientPackage = Object.keys(PACKAGE_SERVICE).find((p) => PACKAGE_SERVICE[p] === service && p.startsWith("@aws-sdk/client-"))!;
    for (const site of callSites(pkg, fs.readFileSync(entry, "utf8"), clientPackage)) sites.push({ ...site, file: `${pkg} (${path.relative(ROOT, entry)})` });
  }
  const result = { handlerFile, files, sites, unreached };
  lambdaCache.set(handlerFile, result);
  return result;
}

/** An `aws <service> <command>` line of a shell script: the IAM action the CLI sends. */
const CLI_ACTION: Record<string, string> = { "ecr get-login-password": "ecr:GetAuthorizationToken" };

export interface ScriptCall {
  line: number;
  action: string;
  /** The CLI line, for the report. */
  text: string;
  /** --tags Key=… keys of a create-tags call. */
  tagKeys?: string[];
}

/** The AWS calls a shell script makes: each `aws` CLI call, and the ECR pull behind `docker pull` of an ECR image. */
export function scriptCalls(script: string, ecrImage: boolean): ScriptCall[] {
  const out: ScriptCall[] = [];
  // A command continued with a trailing backslash is one command (its first line numbers it).
  const lines = script.split("\n");
  const commands: [number, string][] = [];
  for (let i = 0; i < lines.length; i++) {
    let text = lines[i];
    const first = i;
    while (/\\\s*$/.test(text) && i + 1 < lines.length) text = text.replace(/\\\s*$/, " ") + lines[++i];
    commands.push([first, text]);
  }
  commands.forEach(([i, raw]) => {
    const text = raw.replace(/(^|\s)#.*$/, "$1");
    for (const m of text.matchAll(/(?:^|[|;&(]\s*|\s)aws\s+([a-z0-9-]+)\s+([a-z0-9-]+)/g)) {
      const key = `${m[1]} ${m[2]}`;
      const action = CLI_ACTION[key] ?? `${m[1]}:${m[2].replace(/(^|-)([a-z])/g, (_x, _d, c: string) => c.toUpperCase())}`;
      const tagKeys = [...text.matchAll(/Key=([^,"' ]+)/g)].map((t) => t[1]);
      out.push({ line: i + 1, action, text: text.trim(), ...(tagKeys.length ? { tagKeys } : {}) });
    }
    if (ecrImage && /(?:^|[;&|(]|\bif|\bthen|\bdo)\s*docker\s+pull\b/.test(text)) {
      for (const action of ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]) out.push({ line: i + 1, action, text: text.trim() });
    }
  });
  return out;
}
