/**
 * Coverage: every AWS call a deployed principal makes (./iam-calls.ts) is allowed to that principal, on the
 * concrete ARN the call uses in this stack, with the condition keys the request carries. The stack's facts come
 * from the program run: each Lambda's own runtime config (what its code reads at run time), the resources' ARNs,
 * the task definition, the launch template's user data, the document. The verdict is the strict evaluator's
 * (./iam-evaluator.ts): an undecidable condition does not count, so "granted" is a proof.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ACCOUNT, REGION, ROOT, type ProgramRun, type RecordedResource } from "./pulumi-mocks";
import { ec2AgentRoles, isAllowed, roleArn, roleStatements, whyDenied, type Request } from "./iam-evaluator";
import { lambdaCalls, scriptCalls, type CallSite } from "./iam-calls";
import type { Reference } from "./iam-reference";
import { ORCHESTRATOR_HANDLER } from "../components/task-orchestrator";
import { API_HANDLER } from "../components/task-api";
import { RECONCILER_HANDLER } from "../components/reconciler";
import { FLEET_MANAGER_HANDLER } from "../components/fleet-manager";
import { BOOT_TAG, FLEET_TAG, LEASE_TAG, ORPHAN_TAG, TASK_ID_TAG } from "../runtime/fleet/tags";
import * as tableConstants from "../runtime/tables";

/** Which handler each Lambda-owning component deploys (its component type → the handler module). */
export const LAMBDA_HANDLERS: Record<string, { label: string; handler: string }> = {
  "agent-compute:orchestrator:TaskOrchestrator": { label: "orchestrator Lambda", handler: ORCHESTRATOR_HANDLER },
  "agent-compute:api:TaskApi": { label: "API Lambda", handler: API_HANDLER },
  "agent-compute:orchestrator:Reconciler": { label: "reconciler Lambda", handler: RECONCILER_HANDLER },
  "agent-compute:ec2:FleetManager": { label: "fleet-manager Lambda", handler: FLEET_MANAGER_HANDLER },
};

export interface Call {
  principal: string;
  role: string;
  /** file:line of the call (or of the resource definition for what the service does with the role). */
  site: string;
  action: string;
  requests: Request[];
  /** Set when the call's ARN cannot be told from the code: a failure in itself. */
  unresolved?: string;
}

export interface CoverageRow {
  principal: string;
  role: string;
  site: string;
  action: string;
  resource: string;
  granted: boolean;
  /** What is missing, when not granted. */
  missing?: string;
  /** Why this stack never makes the call (its backend is off, or NOT_MADE says so): not a violation. */
  notMade?: string;
}

/**
 * Calls that reachability by name cannot rule out but that the principal never makes, each with the reason.
 * Names are not types: `get` is reached by every Map.get, `replace` by every String.replace. Kept short on purpose;
 * a test fails when an entry no longer matches any call (so none outlives its reason).
 */
export const NOT_MADE: { principal: RegExp; site: RegExp; action: string; reason: string }[] = [
  {
    principal: /^(orchestrator|API|reconciler|fleet-manager) Lambda$/,
    site: /^runtime\/fleet\/lease\.ts:\d+$/,
    action: "dynamodb:Scan",
    reason: "LeaseTable.list scans only when given no fleet; its bundled callers (fleet/manager.ts, fleet/lambda.ts) always pass one; the unfiltered scan is the CLI's fleet sync",
  },
  {
    principal: /^(API|reconciler) Lambda$/,
    site: /^runtime\/payload\/s3\.ts:\d+$/,
    action: "s3:GetObject",
    reason: "S3PayloadStore.get (readS3Payload) is called by the orchestrator's dispatch (channel/dispatch.ts) only; this bundle reaches the name get through Map.get",
  },
  {
    principal: /^reconciler Lambda$/,
    site: /^runtime\/payload\/s3\.ts:\d+$/,
    action: "s3:PutObject",
    reason: "S3PayloadStore.replace is called by the orchestrator's dispatch only; this bundle reaches the name replace through String.replace",
  },
  {
    principal: /^reconciler Lambda$/,
    site: /^runtime\/repos\/blueprints\.ts:\d+$/,
    action: "dynamodb:GetItem",
    reason: "blueprints are read at submit (API) and start (orchestrator); this bundle reaches the name get through Map.get",
  },
];

const roleNameOfArn = (arn: string) => String(arn).split(":role/")[1];
const parse = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v);
const SAMPLE_TASK = "01JTASK0000000000000000000";
const SAMPLE_INSTANCE = "i-0123456789abcdef0";
const TAG_CONSTANTS: Record<string, string> = { BOOT_TAG, FLEET_TAG, LEASE_TAG, ORPHAN_TAG, TASK_ID_TAG };

/** Request context every request carries. */
const base = (extra: Record<string, string[]> = {}): Record<string, string[]> => ({ "aws:RequestedRegion": [REGION], ...extra });

const texts = new Map<string, string>();
const textOf = (file: string) => {
  if (!texts.has(file)) texts.set(file, fs.readFileSync(path.join(ROOT, file), "utf8"));
  return texts.get(file)!;
};

/**
 * Which task table a TableName expression names: `….tables.<key>`, `<key>TableName`, a getter or field of the
 * same file that returns one, or a parameter of the enclosing function followed to its callers in the bundle.
 */
export function tableKeys(expr: string, site: CallSite, bundle: string[], depth = 0): string[] {
  const direct = /\btables\.(\w+)/.exec(expr) ?? /\b(\w+)TableName\b/.exec(expr);
  if (direct) return [direct[1]];
  if (depth > 3) return [];
  const call = /^(?:[\w$.]+\.)?(\w+)\s*\(/.exec(expr);
  if (call) {
    // A helper that returns the name: what its `return` says, wherever in the bundle it is defined.
    for (const f of bundle) {
      const m = new RegExp(`function\\s+${call[1]}\\s*\\([^)]*\\)[^{]*\\{[^}]*?return\\s+([^;]+);`).exec(textOf(f));
      if (m) return tableKeys(m[1], { ...site, file: f }, bundle, depth + 1);
    }
    return [];
  }
  const name = expr.replace(/!$/, "").split(".").pop()!;
  if (!/^[\w$]+$/.test(name)) return [];
  const text = textOf(site.file);
  const defined = new RegExp(`(?:get\\s+)?\\b${name}\\s*\\(\\)\\s*(?::\\s*[\\w<>\\[\\]"| ]+)?\\{\\s*return\\s+([^;]+);|\\b${name}\\s*=\\s*([^;=][^;]*);`).exec(text);
  if (defined) return tableKeys(defined[1] ?? defined[2], site, bundle, depth + 1);
  // A parameter of the enclosing function: what its callers pass in that position.
  const decl = new RegExp(`function\\s+${site.within}\\s*\\(([^)]*)\\)`).exec(text);
  const params = decl ? decl[1].split(",").map((p) => p.split(":")[0].trim()) : [];
  const at = params.indexOf(name);
  if (at < 0) return [];
  const out = new Set<string>();
  for (const f of bundle) {
    for (const m of textOf(f).matchAll(new RegExp(`(?<![\\w$])${site.within}\\s*\\(([^)]*)\\)`, "g"))) {
      const arg = m[1].split(",")[at]?.trim();
      if (arg && arg !== name) for (const k of tableKeys(arg, { ...site, file: f }, bundle, depth + 1)) out.add(k);
    }
  }
  return [...out];
}

interface LambdaContext {
  run: ProgramRun;
  config: any;
  /** The function's own ARN (its durable executions extend it). */
  selfArn: string;
  bundle: string[];
}

const tableArn = (name: string) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;
const unqualified = (fnArn: string) => fnArn.split(":").slice(0, 7).join(":");
const durableExecution = (fnArn: string) => `${unqualified(fnArn)}:1/durable-execution/${SAMPLE_TASK}/0a1b2c3d-4e5f-6789-abcd-ef0123456789`;
const instanceArn = `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${SAMPLE_INSTANCE}`;

function fleetInstances(config: any, extra: (fleet: string) => Record<string, string[]> = () => ({})): Request[] {
  return Object.keys(config.ec2?.fleets ?? {}).map((fleet) => ({
    action: "",
    resource: instanceArn,
    context: base({ [`ssm:resourceTag/${FLEET_TAG}`]: [fleet], [`aws:ResourceTag/${FLEET_TAG}`]: [fleet], [`ec2:ResourceTag/${FLEET_TAG}`]: [fleet], ...extra(fleet) }),
  }));
}

/**
 * Each backend's code runs only when the backend is enabled (runtime/compute/resolve.ts requires a strategy when
 * first used; the lease and waiter tables are the EC2 strategy's), and so do the services only a backend calls.
 */
const BACKEND_CODE: [RegExp, string][] = [
  [/^runtime\/fleet\//, "ec2"],
  [/^runtime\/compute\/ec2\.ts$/, "ec2"],
  [/^runtime\/compute\/ecs\.ts$/, "ecs"],
  [/^runtime\/compute\/agentcore\.ts$/, "agentcore"],
];
const SERVICE_BACKEND: Record<string, string> = { ssm: "ec2", ec2: "ec2", autoscaling: "ec2", ecs: "ecs", "bedrock-agentcore": "agentcore" };

/** The requests one SDK call site of a Lambda makes in this stack, or why they cannot be told. */
function lambdaRequests(site: CallSite, ctx: LambdaContext, ref: Reference): Request[] | string {
  const { config, run } = ctx;
  const [service] = site.action.split(":");
  const info = ref.action(site.action);
  if (!info) return `${site.action} is no action in the Service Authorization Reference (an SDK operation the audit does not map)`;
  const backend = BACKEND_CODE.find(([re]) => re.test(site.file))?.[1] ?? SERVICE_BACKEND[service];
  if (backend && !config[backend]) return `not made: backend ${backend} is not enabled (the runtime config has no ${backend} section)`;
  if (!info.resourceTypes.length) return [{ action: site.action, resource: "*", context: base() }];
  switch (service) {
    case "dynamodb": {
      const keys = [...new Set(site.tables.flatMap((t) => tableKeys(t, site, ctx.bundle)))];
      if (!keys.length) return `cannot tell which table ${site.tables.join(", ") || "(no TableName)"} names`;
      const missing = keys.filter((k) => !config.tables?.[k]);
      if (missing.length) return `the Lambda's runtime config names no ${missing.join(", ")} table`;
      const index = site.index ? String((tableConstants as Record<string, unknown>)[site.index] ?? site.index).replace(/^"|"$/g, "") : undefined;
      return keys.map((k) => ({ action: site.action, resource: index ? `${tableArn(config.tables[k])}/index/${index}` : tableArn(config.tables[k]), context: base() }));
    }
    case "s3": {
      if (config.payload?.kind !== "s3") return "not made: the Lambda's runtime config has no S3 payload store";
      return [{ action: site.action, resource: `arn:aws:s3:::${config.payload.bucket}/${config.payload.prefix ?? ""}${SAMPLE_TASK}/payload.json`, context: base() }];
    }
    case "lambda": {
      if (site.action === "lambda:InvokeFunction") {
        if (!config.orchestrator?.functionArn) return "not made: the Lambda's runtime config names no orchestrator";
        return [{ action: site.action, resource: config.orchestrator.functionArn, context: base() }];
      }
      // The orchestrator's own executions (checkpoints) extend its own ARN; everyone else's, the orchestrator's.
      const fn = site.file.startsWith("@aws/durable-execution-sdk-js") ? ctx.selfArn : config.orchestrator?.functionArn ?? ctx.selfArn;
      if (site.action === "lambda:ListDurableExecutionsByFunction") return [{ action: site.action, resource: unqualified(fn), context: base() }];
      return [{ action: site.action, resource: durableExecution(fn), context: base() }];
    }
    case "ssm": {
      if (!config.ec2) return "not made: backend ec2 is not enabled (the runtime config has no ec2 section)";
      if (site.action !== "ssm:SendCommand") return `${site.action}: no resolver for its resource types`;
      return [
        { action: site.action, resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:document/${config.ec2.documentName}`, context: base() },
        ...fleetInstances(config).map((r) => ({ ...r, action: site.action })),
      ];
    }
    case "ec2": {
      if (!config.ec2) return "not made: backend ec2 is not enabled (the runtime config has no ec2 section)";
      const tagKeys = (site.tagKeys ?? []).map((k) => TAG_CONSTANTS[k] ?? k.replace(/^["'`]|["'`]$/g, ""));
      return fleetInstances(config, (): Record<string, string[]> => (tagKeys.length ? { "aws:TagKeys": tagKeys } : {})).map((r) => ({ ...r, action: site.action }));
    }
    case "autoscaling": {
      if (!config.ec2) return "not made: backend ec2 is not enabled (the runtime config has no ec2 section)";
      return Object.values(config.ec2.fleets as Record<string, { autoScalingGroupName: string }>).map((f) => {
        const asg = run.byType("aws:autoscaling/group:Group").find((g) => (g.inputs.name ?? g.name) === f.autoScalingGroupName);
        return { action: site.action, resource: asg ? arnOf(asg) : `no group ${f.autoScalingGroupName}`, context: base() };
      });
    }
    case "ecs": {
      if (!config.ecs) return "not made: backend ecs is not enabled (the runtime config has no ecs section)";
      const cluster = run.byType("aws:ecs/cluster:Cluster").find((c) => (c.inputs.name ?? c.name) === config.ecs.cluster);
      const clusterArn = cluster ? arnOf(cluster) : `no cluster ${config.ecs.cluster}`;
      const context = base({ "ecs:cluster": [clusterArn] });
      if (site.action !== "ecs:RunTask") {
        // The resource type the reference gives the action: a task, or (ListTasks) a container instance.
        const type = info.resourceTypes.some((t) => t.name === "task") ? "task" : info.resourceTypes[0].name;
        return [{ action: site.action, resource: `arn:aws:ecs:${REGION}:${ACCOUNT}:${type}/${config.ecs.cluster}/0123456789abcdef0123456789abcdef`, context }];
      }
      const td = run.byType("aws:ecs/taskDefinition:TaskDefinition").find((t) => t.inputs.family === config.ecs.taskDefinition);
      if (!td) return `no task definition of family ${config.ecs.taskDefinition}`;
      // RunTask passes the task definition's roles to ECS: iam:PassRole on each (the reference lists it on no action).
      const passed = [td.inputs.taskRoleArn, td.inputs.executionRoleArn].filter(Boolean).map((arn: string) => ({
        action: "iam:PassRole",
        resource: arn,
        context: base({ "iam:PassedToService": ["ecs-tasks.amazonaws.com"] }),
      }));
      return [{ action: site.action, resource: arnOf(td), context }, ...passed];
    }
    case "bedrock-agentcore": {
      if (!config.agentcore) return "not made: backend agentcore is not enabled (the runtime config has no agentcore section)";
      return [
        { action: site.action, resource: config.agentcore.runtimeArn, context: base() },
        { action: site.action, resource: `${config.agentcore.runtimeArn}/runtime-endpoint/DEFAULT`, context: base() },
      ];
    }
    case "secretsmanager": {
      if (config.credentials?.kind !== "secrets-manager") return "not made: the runtime config names no Secrets Manager credentials, so no credential provider reads them";
      // The names runtime/credentials/secrets.ts reads, as Secrets Manager's ARNs carry them (name + 6 characters).
      return ["github-app", "default", "repos/github.com/acme/app"].map((n) => ({
        action: site.action,
        resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${config.credentials.prefix}/${n}-Ab12Cd`,
        context: base(),
      }));
    }
    default:
      return `${site.action}: no resolver for service ${service}`;
  }
}

/** The ARN a recorded resource got (the mocks give each type AWS's shape). */
function arnOf(r: RecordedResource): string {
  const name = r.inputs.name ?? r.name;
  switch (r.type) {
    case "aws:autoscaling/group:Group":
      return `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0:autoScalingGroupName/${name}`;
    case "aws:ecs/cluster:Cluster":
      return `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`;
    case "aws:ecs/taskDefinition:TaskDefinition":
      return `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${r.inputs.family}:1`;
    case "aws:lambda/function:Function":
      return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
    default:
      throw new Error(`coverage: no ARN for ${r.type}`);
  }
}

const logStream = (group: string, stream: string) => `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${group}:log-stream:${stream}`;

/** ECR pull of an image: the token (wildcard-only) and the layers of its repository. */
function ecrPull(image: string): { action: string; resource: string }[] {
  const m = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)/.exec(image);
  if (!m) return [];
  const repo = `arn:aws:ecr:${m[2]}:${m[1]}:repository/${m[3]}`;
  return [
    { action: "ecr:GetAuthorizationToken", resource: "*" },
    { action: "ecr:BatchGetImage", resource: repo },
    { action: "ecr:GetDownloadUrlForLayer", resource: repo },
  ];
}

/** The models an agent may be asked to run: the stack's default and each repo blueprint's. */
function agentModels(run: ProgramRun, defaultModel: string | undefined): string[] {
  const repoModels = run.byType("aws:dynamodb/tableItem:TableItem").flatMap((i) => {
    const item = parse(i.inputs.item) as Record<string, { S?: string }>;
    return item.model?.S ? [item.model.S] : [];
  });
  return [...new Set([...(defaultModel ? [defaultModel] : []), ...repoModels])];
}

/** A model call's resources: the model (or profile and the model in a Region it routes to). */
function modelResources(model: string): string[] {
  if (model.startsWith("arn:")) return [model];
  const profile = /^(us|eu|apac|us-gov|ca|jp|au|global)\.(.+)$/.exec(model);
  if (!profile) return [`arn:aws:bedrock:${REGION}::foundation-model/${model}`];
  const routedTo: Record<string, string> = { us: "us-west-2", eu: "eu-west-1", apac: "ap-northeast-1", "us-gov": "us-gov-west-1", ca: "ca-central-1", jp: "ap-northeast-3", au: "ap-southeast-2", global: "eu-west-1" };
  return [
    `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/${model}`,
    `arn:aws:bedrock:${routedTo[profile[1]]}::foundation-model/${profile[2]}`,
    ...(profile[1] === "global" ? [`arn:aws:bedrock:::foundation-model/${profile[2]}`] : []),
  ];
}

/** The agent contract leaves an agent one AWS call: its model, by Bedrock (docs/agent-contract.md, docs/agent.md). */
function modelCalls(principal: string, role: string, site: string, models: string[]): Call[] {
  return ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"].map((action) => ({
    principal,
    role,
    site,
    action,
    requests: models.flatMap((m) => modelResources(m).map((resource) => ({ action, resource, context: base() }))),
  }));
}

const componentFile = (name: string) => `components/${name}.ts`;
function lineOf(file: string, pattern: RegExp): string {
  const i = textOf(file).split("\n").findIndex((l) => pattern.test(l));
  return `${file}:${i + 1}`;
}

/** Every call of every principal the run deploys. */
export function principalCalls(run: ProgramRun, ref: Reference): Call[] {
  const calls: Call[] = [];
  // Lambdas: their bundles' calls, plus the logs Lambda writes with the role.
  for (const fn of run.byType("aws:lambda/function:Function")) {
    const owner = run.parentOf(fn);
    const known = owner && LAMBDA_HANDLERS[owner.type];
    const role = roleNameOfArn(fn.inputs.role);
    if (!known) {
      calls.push({ principal: `Lambda ${fn.name}`, role, site: "index.ts", action: "(unknown)", requests: [], unresolved: `a Lambda of ${owner?.type ?? "no component"} the coverage does not know` });
      continue;
    }
    const config = parse(fn.inputs.environment?.variables?.AGENT_COMPUTE_CONFIG);
    const found = lambdaCalls(known.handler);
    const ctx: LambdaContext = { run, config, selfArn: arnOf(fn), bundle: found.files.filter((f) => !f.startsWith("node_modules")) };
    for (const site of found.sites) {
      const requests = lambdaRequests(site, ctx, ref);
      const base = { principal: known.label, role, site: `${site.file}:${site.line}`, action: site.action };
      calls.push(typeof requests === "string" ? { ...base, requests: [], unresolved: requests } : { ...base, requests });
    }
    const group = fn.inputs.loggingConfig?.logGroup;
    for (const action of ["logs:CreateLogStream", "logs:PutLogEvents"]) {
      calls.push({ principal: known.label, role, site: `${lineOf(componentFile("handler-function"), /loggingConfig/)} (Lambda writes the function's logs)`, action, requests: [{ action, resource: logStream(group, "2026/11/29/[1]0123abcd"), context: base() }] });
    }
  }

  // ECS: the execution role pulls the image and writes the container's logs; the task role is the agent's.
  for (const td of run.byType("aws:ecs/taskDefinition:TaskDefinition")) {
    const containers = parse(td.inputs.containerDefinitions) as any[];
    const exec = roleNameOfArn(td.inputs.executionRoleArn);
    const site = lineOf(componentFile("ecs-agent-cluster"), /containerDefinitions/);
    for (const c of containers) {
      for (const p of ecrPull(c.image)) calls.push({ principal: "ECS execution role", role: exec, site: `${site} (ECS pulls ${c.image})`, action: p.action, requests: [{ ...p, context: base() }] });
      const group = c.logConfiguration?.options?.["awslogs-group"];
      if (group) {
        for (const action of ["logs:CreateLogStream", "logs:PutLogEvents"]) {
          calls.push({ principal: "ECS execution role", role: exec, site: `${site} (awslogs driver)`, action, requests: [{ action, resource: logStream(group, `agent/${c.name}/0123456789abcdef`), context: base() }] });
        }
      }
      const model = (c.environment ?? []).find((e: any) => e.name === "ANTHROPIC_MODEL")?.value;
      calls.push(...modelCalls("ECS task role", roleNameOfArn(td.inputs.taskRoleArn), "docs/agent-contract.md (the agent's model calls)", agentModels(run, model)));
    }
  }

  // AgentCore: the runtime role pulls the image, writes the runtime's logs, and is the agent's.
  for (const rt of run.byType("aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime")) {
    const role = roleNameOfArn(rt.inputs.roleArn);
    const site = lineOf(componentFile("agentcore-runtime"), /agentRuntimeArtifact/);
    const image = rt.inputs.agentRuntimeArtifact?.containerConfiguration?.containerUri;
    for (const p of ecrPull(image)) calls.push({ principal: "AgentCore runtime role", role, site: `${site} (AgentCore pulls ${image})`, action: p.action, requests: [{ ...p, context: base() }] });
    const runtimeId = `${rt.inputs.agentRuntimeName}-abc123`;
    const group = `/aws/bedrock-agentcore/runtimes/${runtimeId}-DEFAULT`;
    for (const action of ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]) {
      const resource = action === "logs:CreateLogGroup" ? `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${group}` : logStream(group, "runtime-logs");
      calls.push({ principal: "AgentCore runtime role", role, site: `${site} (the runtime's logs)`, action, requests: [{ action, resource, context: base() }] });
    }
    calls.push(...modelCalls("AgentCore runtime role", role, "docs/agent-contract.md (the agent's model calls)", agentModels(run, rt.inputs.environmentVariables?.ANTHROPIC_MODEL)));
  }

  // EC2: the instance role runs the boot script (user data) and the document's script.
  const documents = run.byType("aws:ssm/document:Document");
  for (const lt of run.byType("aws:ec2/launchTemplate:LaunchTemplate")) {
    const fleet = lt.inputs.tagSpecifications?.[0]?.tags?.[FLEET_TAG];
    const profile = run.byType("aws:iam/instanceProfile:InstanceProfile").find((p) => lt.inputs.iamInstanceProfile?.arn?.endsWith(`/${p.inputs.name ?? p.name}`));
    const role = profile ? String(profile.inputs.role) : "(no instance profile)";
    const userData = Buffer.from(String(lt.inputs.userData), "base64").toString("utf8");
    const image = /^AGENT_IMAGE='([^']+)'/m.exec(userData)?.[1] ?? "";
    const ecr = /\.dkr\.ecr\./.test(image);
    const self = base({ "ec2:SourceInstanceARN": [instanceArn], "ec2:SourceInstanceArn": [instanceArn], [`aws:ResourceTag/${FLEET_TAG}`]: [fleet] });
    const scripts: [string, string][] = [["runtime/fleet/boot-script.ts (user data)", userData]];
    // The document's script (runtime/fleet/document.ts, with runtime/fleet/agent-credentials.ts) runs as the instance role too.
    for (const d of documents) {
      const content = parse(d.inputs.content);
      scripts.push([`runtime/fleet/document.ts (document ${d.name})`, content.mainSteps.flatMap((s: any) => s.inputs?.runCommand ?? []).join("\n")]);
    }
    for (const [where, script] of scripts) {
      for (const c of scriptCalls(script, ecr)) {
        const info = ref.action(c.action);
        let requests: Request[];
        if (!info) requests = [];
        else if (!info.resourceTypes.length) requests = [{ action: c.action, resource: "*", context: self }];
        else if (c.action.startsWith("ecr:")) requests = ecrPull(image).filter((p) => p.action === c.action).map((p) => ({ ...p, context: self }));
        else if (c.action === "ec2:CreateTags") requests = [{ action: c.action, resource: instanceArn, context: { ...self, "aws:TagKeys": c.tagKeys ?? [] } }];
        else if (c.action === "sts:AssumeRole") {
          // The fleet's agent role (the one role whose trust names this instance role); --tags is sts:TagSession too.
          requests = ec2AgentRoles(run)
            .filter((a) => a.instanceRole === role)
            .flatMap((a) => [c.action, ...(c.tagKeys?.length ? ["sts:TagSession"] : [])].map((action) => ({ action, resource: roleArn(a.role), context: { ...self, ...(action === "sts:TagSession" ? { "aws:TagKeys": c.tagKeys ?? [] } : {}) } })));
        }
        else requests = [];
        calls.push({
          principal: `EC2 instance role (fleet ${fleet})`,
          role,
          site: `${where} line ${c.line}: ${c.text.slice(0, 60)}`,
          action: c.action,
          requests,
          ...(requests.length ? {} : { unresolved: info ? `no resolver for ${c.action}'s resources` : `${c.action} is no action in the Service Authorization Reference` }),
        });
      }
    }
  }
  return calls;
}

/**
 * Evaluate every call: one row per request. An unresolved call is one ungranted row. `statementsOf` gives a role's
 * statements (default: what the run built; a test hands in weakened ones).
 */
export function coverage(run: ProgramRun, ref: Reference, statementsOf: (role: string) => any[] = (role) => roleStatements(run, role)): CoverageRow[] {
  const rows: CoverageRow[] = [];
  const statements = new Map<string, any[]>();
  for (const call of principalCalls(run, ref)) {
    if (!statements.has(call.role)) statements.set(call.role, statementsOf(call.role));
    const held = statements.get(call.role)!;
    if (call.unresolved?.startsWith("not made: ")) {
      rows.push({ principal: call.principal, role: call.role, site: call.site, action: call.action, resource: "-", granted: false, notMade: call.unresolved.slice("not made: ".length) });
      continue;
    }
    if (call.unresolved) {
      rows.push({ principal: call.principal, role: call.role, site: call.site, action: call.action, resource: "?", granted: false, missing: call.unresolved });
      continue;
    }
    const excused = NOT_MADE.find((n) => n.principal.test(call.principal) && n.site.test(call.site) && n.action === call.action);
    for (const req of call.requests) {
      const granted = isAllowed(held, req, { strict: true });
      const row: CoverageRow = { principal: call.principal, role: call.role, site: call.site, action: req.action, resource: req.resource, granted };
      if (!granted && excused) row.notMade = excused.reason;
      else if (!granted) row.missing = whyDenied(held, req);
      rows.push(row);
    }
  }
  return rows;
}

/** The services whose reference the coverage reads (every call's action is looked up in it). */
export function coverageActions(): string[] {
  return ["dynamodb", "s3", "lambda", "ssm", "ec2", "ecs", "autoscaling", "bedrock-agentcore", "secretsmanager", "iam", "logs", "ecr", "bedrock", "sts"].map((s) => `${s}:*`);
}

/** A row that fails the audit: a call the principal makes and is not allowed. */
export const isViolation = (r: CoverageRow) => !r.granted && !r.notMade;

export function formatRow(label: string, r: CoverageRow): string {
  const verdict = r.granted ? "granted" : r.notMade ? `not made here (${r.notMade})` : `NOT GRANTED: ${r.missing}`;
  return `[${label}] ${r.principal} | ${r.site} | ${r.action} ${r.resource} | ${verdict}`;
}
