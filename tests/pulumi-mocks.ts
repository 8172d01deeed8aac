/**
 * Runs the Pulumi program (index.ts) under pulumi.runtime.setMocks, in this process, once per call: each run
 * gets fresh mocks, fresh config and a fresh copy of the program's modules, so several stacks can be checked in
 * one mocha run. Records every resource with its inputs and its parent's URN.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

export const ROOT = path.resolve(__dirname, "..");
const PROGRAM = path.join(ROOT, "index.ts");
const PROGRAM_DIRS = [path.join(ROOT, "components") + path.sep, PROGRAM];

export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  /** URN of the parent resource ("" for the stack itself). */
  parent: string;
  /** URNs the registration waits for (dependsOn and the inputs' resources). */
  dependencies: string[];
  inputs: Record<string, any>;
  custom: boolean;
}

export interface ProgramRun {
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
  error?: unknown;
  byType(type: string): RecordedResource[];
  one(type: string, nameIncludes?: string): RecordedResource;
  /** The component resource a recorded resource's parent URN names. */
  parentOf(r: RecordedResource): RecordedResource | undefined;
}

export const STACK = "test";
export const PROJECT = "agent-compute";
export const ACCOUNT = "123456789012";
export const REGION = "us-east-1";

/**
 * Each resource type's ARN as AWS gives it (https://docs.aws.amazon.com/service-authorization/latest/reference/),
 * so the IAM checks measure the program's policies, not the mocks. A type not listed gets no `arn`: a policy built
 * from it would show "undefined" and fail the audit, rather than pass on an invented shape.
 */
const ARNS: Record<string, (name: string, inputs: Record<string, any>) => string> = {
  "aws:dynamodb/table:Table": (n) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${n}`,
  "aws:s3/bucket:Bucket": (n) => `arn:aws:s3:::${n}`,
  "aws:iam/role:Role": (n) => `arn:aws:iam::${ACCOUNT}:role/${n}`,
  "aws:iam/instanceProfile:InstanceProfile": (n) => `arn:aws:iam::${ACCOUNT}:instance-profile/${n}`,
  "aws:lambda/function:Function": (n) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${n}`,
  "aws:lambda/alias:Alias": (_n, i) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${i.functionName}:${i.name}`,
  "aws:ecs/taskDefinition:TaskDefinition": (_n, i) => `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${i.family}:1`,
  "aws:ecs/cluster:Cluster": (n) => `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${n}`,
  "aws:autoscaling/group:Group": (n) => `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0:autoScalingGroupName/${n}`,
  "aws:ssm/document:Document": (n) => `arn:aws:ssm:${REGION}:${ACCOUNT}:document/${n}`,
  // The provider strips the ":*" the Logs API appends.
  "aws:cloudwatch/logGroup:LogGroup": (n) => `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${n}`,
  "aws:cloudwatch/eventRule:EventRule": (n) => `arn:aws:events:${REGION}:${ACCOUNT}:rule/${n}`,
  "aws:cloudwatch/metricAlarm:MetricAlarm": (n) => `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${n}`,
  "aws:cloudwatch/dashboard:Dashboard": (n) => `arn:aws:cloudwatch::${ACCOUNT}:dashboard/${n}`,
  // Secrets Manager appends a hyphen and six random characters to the name.
  "aws:secretsmanager/secret:Secret": (n) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${n}-Ab12Cd`,
  "aws:ecr/repository:Repository": (n) => `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${n}`,
  "aws:ec2/securityGroup:SecurityGroup": () => `arn:aws:ec2:${REGION}:${ACCOUNT}:security-group/sg-0123456789abcdef0`,
  "aws:ec2/launchTemplate:LaunchTemplate": () => `arn:aws:ec2:${REGION}:${ACCOUNT}:launch-template/lt-0123456789abcdef0`,
  "aws:apigatewayv2/api:Api": () => `arn:aws:apigateway:${REGION}::/apis/api123`,
  "aws:apigatewayv2/stage:Stage": (n) => `arn:aws:apigateway:${REGION}::/apis/api123/stages/${n}`,
  "aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime": (_n, i) => `arn:aws:bedrock-agentcore:${REGION}:${ACCOUNT}:runtime/${i.agentRuntimeName}-abc123`,
};

/** The ARN the mocks give a resource (undefined for a type without one). */
export function mockArn(type: string, name: string, inputs: Record<string, any>): string | undefined {
  return ARNS[type]?.(inputs.name ?? name, inputs);
}

/** Plausible outputs for the resources the program reads attributes of. */
function mockState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
  const resourceName = inputs.name ?? name;
  const arn = mockArn(type, name, inputs);
  const state: Record<string, any> = { ...inputs, ...(arn ? { arn } : {}), name: resourceName };
  switch (type) {
    case "aws:s3/bucket:Bucket":
      return { ...state, bucket: name };
    case "aws:lambda/function:Function":
      return { ...state, version: "1" };
    case "aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime":
      return { ...state, agentRuntimeArn: arn };
    case "aws:apigatewayv2/api:Api":
      return { ...state, executionArn: `arn:aws:execute-api:${REGION}:${ACCOUNT}:api123`, apiEndpoint: "https://api123.execute-api.us-east-1.amazonaws.com" };
    case "aws:apigatewayv2/stage:Stage":
      return { ...state, invokeUrl: "https://api123.execute-api.us-east-1.amazonaws.com/" };
    case "aws:ecr/repository:Repository":
      return { ...state, repositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${name}`, registryId: ACCOUNT };
    case "docker-build:index:Image":
      return { ...state, digest: `sha256:${"d".repeat(64)}`, ref: `${inputs.tags?.[0]}@sha256:${"d".repeat(64)}` };
    case "awsx:ec2:Vpc":
      return { ...state, vpcId: "vpc-0123456789abcdef0", privateSubnetIds: ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"], publicSubnetIds: ["subnet-0bbbbbbbbbbbbbbb1"] };
    default:
      return state;
  }
}

/**
 * Kept across runs: the bundler holds no Pulumi state (it imports Pulumi's types only), and its per-process cache
 * of handler bundles saves most of each run's time.
 */
const KEPT_MODULES = [require.resolve("../components/lambda-code")];

function freshProgramModules(): void {
  for (const key of Object.keys(require.cache)) {
    if (KEPT_MODULES.includes(key)) continue;
    if (PROGRAM_DIRS.some((p) => key === p || key.startsWith(p))) delete require.cache[key];
  }
}

/**
 * Run the program with the given stack config (values as they would appear in Pulumi.<stack>.yaml: strings,
 * numbers, lists, maps). Never throws: a program error is returned in `error`.
 */
const cache = new Map<string, Promise<ProgramRun>>();

/** runProgram, memoised per config: the program is deterministic, and each run costs seconds (archives). */
export function runProgramCached(stackConfig: Record<string, unknown>): Promise<ProgramRun> {
  const key = JSON.stringify(stackConfig);
  let run = cache.get(key);
  if (!run) {
    run = runProgram(stackConfig);
    cache.set(key, run);
  }
  return run;
}

/** The stack config as Pulumi hands it to a program: `namespace:key` → string (structured values as JSON). */
export function pulumiConfigValues(stackConfig: Record<string, unknown>): Record<string, string> {
  const config: Record<string, string> = { "aws:region": REGION };
  for (const [k, v] of Object.entries(stackConfig)) {
    config[k.includes(":") ? k : `${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return config;
}

export async function runProgram(stackConfig: Record<string, unknown>, program: string = PROGRAM, stack: string = STACK): Promise<ProgramRun> {
  const resources: RecordedResource[] = [];
  const parents = new Map<string, string>();
  const dependencies = new Map<string, string[]>();
  pulumi.runtime.setAllConfig(pulumiConfigValues(stackConfig));
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const urnType = args.type;
        const state = mockState(urnType, args.name, args.inputs);
        resources.push({ type: args.type, name: args.name, urn: "", parent: parents.get(`${args.type}::${args.name}`) ?? "", dependencies: [], inputs: args.inputs, custom: !!args.custom });
        return { id: `${args.name}-id`, state };
      },
      call(args) {
        switch (args.token) {
          case "aws:index/getRegion:getRegion":
            return { region: REGION, name: REGION, id: REGION };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/test`, userId: "AIDTEST", id: ACCOUNT };
          case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return { userName: "AWS", password: "mock-ecr-password", proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`, authorizationToken: "mock", expiresAt: "2099-01-01T00:00:00Z", id: ACCOUNT };
          case "aws:index/getPartition:getPartition":
            return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
          default:
            return args.inputs;
        }
      },
    },
    PROJECT,
    stack,
    false,
  );
  // Record each registration's parent URN: the mock callback itself is not told it.
  const monitor = (pulumi.runtime as unknown as { getMonitor(): any }).getMonitor();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, cb: any) => {
    parents.set(`${req.getType()}::${req.getName()}`, req.getParent());
    dependencies.set(`${req.getType()}::${req.getName()}`, req.getDependenciesList());
    return register(req, cb);
  };
  freshProgramModules();
  delete require.cache[program];
  let outputs: Record<string, unknown> = {};
  let error: unknown;
  try {
    outputs = (await pulumi.runtime.runInPulumiStack(async () => ({ ...(require(program) as object) }))) as Record<string, unknown>;
  } catch (err) {
    error = err;
  }
  // Also after a program error: a registration started before the error reaches the mocks only once its inputs
  // resolve, so without this wait "no resource was registered before the error" could never fail.
  try {
    await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  } catch (err) {
    error ??= err;
  }
  // Fill URNs from the monitor's own record (same scheme the engine uses: parent type chain + name).
  const registered: Map<string, { urn: string }> = monitor.getRegisteredResources?.() ?? new Map();
  const urns = [...registered.keys()];
  for (const r of resources) {
    r.urn = urns.find((u) => u.endsWith(`::${r.name}`) && u.split("::")[2].split("$").pop() === r.type) ?? "";
    r.parent = parents.get(`${r.type}::${r.name}`) ?? r.parent;
    r.dependencies = dependencies.get(`${r.type}::${r.name}`) ?? [];
  }
  const userResources = resources.filter((r) => r.type !== "pulumi:pulumi:Stack");
  return {
    resources: userResources,
    outputs,
    error,
    byType: (type) => userResources.filter((r) => r.type === type),
    one(type, nameIncludes) {
      const found = userResources.filter((r) => r.type === type && (!nameIncludes || r.name.includes(nameIncludes)));
      if (found.length !== 1) throw new Error(`expected one ${type}${nameIncludes ? ` named *${nameIncludes}*` : ""}, found ${found.length}: ${found.map((f) => f.name).join(", ")}`);
      return found[0];
    },
    parentOf: (r) => userResources.find((p) => p.urn !== "" && p.urn === r.parent),
  };
}

/** Every IAM policy document the run built: inline role policies, managed policies, trust policies, bucket and secret policies. */
export interface PolicyDocumentRecord {
  resource: string;
  kind: "identity" | "trust" | "bucket" | "secret";
  /** For identity policies: the service principal(s) the role trusts (e.g. ec2.amazonaws.com). */
  trustedServices: string[];
  document: { Statement: any[] };
}

export function policyDocuments(run: ProgramRun): PolicyDocumentRecord[] {
  const roles = new Map<string, string[]>();
  const out: PolicyDocumentRecord[] = [];
  const parse = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v) as { Statement: any[] };
  for (const r of run.byType("aws:iam/role:Role")) {
    const doc = parse(r.inputs.assumeRolePolicy);
    const services = doc.Statement.flatMap((s: any) => [].concat(s.Principal?.Service ?? []));
    roles.set(`${r.name}-id`, services);
    out.push({ resource: r.name, kind: "trust", trustedServices: services, document: doc });
  }
  for (const r of run.byType("aws:iam/rolePolicy:RolePolicy")) {
    out.push({ resource: r.name, kind: "identity", trustedServices: roles.get(r.inputs.role) ?? [], document: parse(r.inputs.policy) });
  }
  for (const r of run.byType("aws:iam/policy:Policy")) {
    out.push({ resource: r.name, kind: "identity", trustedServices: [], document: parse(r.inputs.policy) });
  }
  for (const r of run.byType("aws:s3/bucketPolicy:BucketPolicy")) {
    out.push({ resource: r.name, kind: "bucket", trustedServices: [], document: parse(r.inputs.policy) });
  }
  for (const r of run.byType("aws:secretsmanager/secretPolicy:SecretPolicy")) {
    out.push({ resource: r.name, kind: "secret", trustedServices: [], document: parse(r.inputs.policy) });
  }
  return out;
}

/** Stack configs the tests and the IAM audit run: each backend alone, all three (with the stack-built image), ec2+ecs, two named fleets. */
export const IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:1.0";
export const COMBINATIONS: Record<string, Record<string, unknown>> = {
  "ecs alone": { backends: ["ecs"], image: IMAGE },
  "agentcore alone": { backends: ["agentcore"], image: IMAGE },
  "ec2 alone": { backends: ["ec2"], image: IMAGE },
  // No `image`: the stack builds agent/ into its own ECR repository; a repo blueprint adds a second model to grant.
  "all three": {
    backends: ["agentcore", "ecs", "ec2"],
    defaultBackend: "ecs",
    repos: { "https://github.com/acme/app": { backend: "ecs", model: "anthropic.claude-3-5-haiku-20241022-v1:0" } },
  },
  // Fargate Spot runs X86_64 only; with the default ARM64 (m7g) fleet, the one image is declared multi-arch.
  "ec2 + ecs": { backends: ["ec2", "ecs"], image: IMAGE, imageMultiArch: true, ecs: { architecture: "X86_64", fargateSpot: true } },
  // Settings away from their defaults, so that the handoff test sees each one arrive; an image per architecture
  // (m7g is ARM64, g5 is x86_64).
  "two named ec2 fleets": {
    backends: ["ec2"],
    images: { arm64: IMAGE, x86_64: `${IMAGE}-amd64` },
    fleets: {
      default: { instanceType: "m7g.xlarge", minSize: 1, maxSize: 6, warmBuffer: 2, maxTasksPerInstance: 50 },
      gpu: { instanceType: "g5.xlarge", maxSize: 2, warmBuffer: 0, spot: true, rootVolumeGiB: 200, readyDeadlineSeconds: 1200, maxInstanceLifetimeSeconds: 7200 },
    },
    defaultFleet: "gpu",
    dispatchTimeoutSeconds: 300,
    taskTimeoutSeconds: 14400,
    heartbeatTimeoutSeconds: 240,
    maxConcurrentPerUser: 3,
    network: { vpcId: "vpc-0123456789abcdef0", privateSubnetIds: ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"] },
  },
};

/**
 * Write a Lambda `code` archive, exactly as the mocks received it, into `dir`: string assets as files, file
 * assets copied, folder archives copied whole at their archive path.
 */
export async function materializeArchive(archive: any, dir: string): Promise<string[]> {
  const assets: Record<string, any> = await archive.assets;
  const written: string[] = [];
  for (const [key, asset] of Object.entries(assets)) {
    const target = path.join(dir, key);
    const text = await asset.text;
    const source = await asset.path;
    if (typeof text === "string") {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, text);
    } else if (typeof source === "string") {
      const from = path.resolve(ROOT, source);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.cpSync(from, target, { recursive: true, dereference: true });
    } else {
      throw new Error(`archive entry ${key} is neither a string asset nor a file/folder (${Object.keys(asset).join(", ")})`);
    }
    written.push(key);
  }
  return written.sort();
}

/** Bytes of `dir` zipped with deflate (every file, paths relative to `dir`), as Lambda receives an archive. */
export function zipBytes(dir: string): number {
  const zip = path.join(os.tmpdir(), `bench-${process.pid}-${Math.random().toString(36).slice(2)}.zip`);
  const py = "import os,sys,zipfile\nz=zipfile.ZipFile(sys.argv[2],'w',zipfile.ZIP_DEFLATED)\nfor r,_,fs in os.walk(sys.argv[1]):\n  for f in fs:\n    p=os.path.join(r,f); z.write(p, os.path.relpath(p, sys.argv[1]))\nz.close()";
  const res = spawnSync("python3", ["-c", py, dir, zip], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`zip failed: ${res.stderr}`);
  const size = fs.statSync(zip).size;
  fs.rmSync(zip);
  return size;
}
