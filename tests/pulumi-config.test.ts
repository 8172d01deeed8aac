import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { readRawConfig, validateStackConfig } from "../components/config";
import { DEFAULT_FLEET, DEFAULTS } from "../components/config/defaults";
import type { RawConfig } from "../components/config/types";
import { IMAGE, ROOT, runProgram } from "./pulumi-mocks";

function problems(raw: RawConfig): string[] {
  try {
    validateStackConfig(raw);
  } catch (err) {
    expect(pulumi.InputPropertiesError.isInstance(err), String(err)).to.equal(true);
    return (err as pulumi.InputPropertiesError).errors.map((e) => `${e.propertyPath}: ${e.reason}`);
  }
  return [];
}

/** [case, config, property paths that must be named, a word the reason must contain] */
const BAD: [string, RawConfig, string, string][] = [
  ["unknown backend", { image: IMAGE, backends: ["ecs", "lambda"] }, "backends[1]", "agentcore, ecs, ec2"],
  ["local is not a stack backend", { image: IMAGE, backends: ["local"] }, "backends[0]", "allowed"],
  ["default backend not enabled", { image: IMAGE, backends: ["ecs"], defaultBackend: "ec2" }, "defaultBackend", "enabled backends: ecs"],
  ["model with spaces", { backends: ["ecs"], model: "my model" }, "model", "Bedrock model id"],
  ["fleet min above max", { image: IMAGE, backends: ["ec2"], fleets: { gpu: { minSize: 4, maxSize: 2 } } }, "fleets.gpu.maxSize", "below minSize (4)"],
  ["warm buffer above max", { image: IMAGE, backends: ["ec2"], fleets: { default: { maxSize: 2, warmBuffer: 3 } } }, "fleets.default.warmBuffer", "above maxSize"],
  ["bad instance type", { image: IMAGE, backends: ["ec2"], fleets: { default: { instanceType: "huge" } } }, "fleets.default.instanceType", "m7g.xlarge"],
  ["tiny root volume", { image: IMAGE, backends: ["ec2"], fleets: { default: { rootVolumeGiB: 8 } } }, "fleets.default.rootVolumeGiB", "between 30"],
  ["unknown fleet setting", { image: IMAGE, backends: ["ec2"], fleets: { default: { instnceType: "m7g.large" } } }, "fleets.default.instnceType", "allowed: instanceType"],
  ["bad Fargate memory for cpu", { image: IMAGE, ecs: { cpu: 1024, memory: 512 } }, "ecs.memory", "2048"],
  ["bad Fargate cpu", { image: IMAGE, ecs: { cpu: 3000 } }, "ecs.cpu", "256, 512"],
  ["subnets without a VPC", { image: IMAGE, network: { privateSubnetIds: ["subnet-0123456789abcdef0"] } }, "network.vpcId", "required"],
  ["VPC without subnets", { image: IMAGE, network: { vpcId: "vpc-0123456789abcdef0" } }, "network.privateSubnetIds", "required"],
  ["repo on a disabled backend", { image: IMAGE, repos: { "https://github.com/o/r": { backend: "ec2" } } }, 'repos["https://github.com/o/r"].backend', "enabled backends"],
  ["repo on an unknown fleet", { image: IMAGE, backends: ["ec2"], repos: { "https://github.com/o/r": { fleet: "huge" } } }, 'repos["https://github.com/o/r"].fleet', "allowed: default"],
  ["poll interval out of range", { image: IMAGE, pollIntervalSeconds: 1 }, "pollIntervalSeconds", "between 5 and 300"],
  ["AgentCore image not in ECR", { image: "docker.io/org/agent:1", backends: ["agentcore"] }, "image", "ECR"],
  ["misspelt top-level key", { image: IMAGE, backend: ["ecs"] }, "backend", "allowed: backends"],
  ["fleets while ec2 is disabled", { image: IMAGE, fleets: { default: {} } }, "fleets", "not enabled"],
  ["a queue cap of zero", { image: IMAGE, maxQueuedPerUser: 0 }, "maxQueuedPerUser", "between 1"],
  ["identity: a user map key that is no principal", { image: IMAGE, identity: { users: { alice: "alice" } } }, "identity.users", "is not a principal"],
  ["identity: one session of a role whose session names are not trusted", { image: IMAGE, identity: { users: { "arn:aws:sts::123456789012:assumed-role/Dev/alice": "alice" } } }, "identity.users", "sessionRoles"],
  // Deploy fidelity: limits AWS would enforce at `pulumi up` or at the first task, refused at preview.
  ["Fargate Spot with an ARM64 task (the default)", { image: IMAGE, ecs: { fargateSpot: true } }, "ecs.fargateSpot", "X86_64"],
  ["Fargate Spot with an explicit ARM64 task", { image: IMAGE, ecs: { architecture: "ARM64", fargateSpot: true } }, "ecs.fargateSpot", "ecs.architecture: X86_64 or ecs.fargateSpot: false"],
  ["an unknown ECS architecture", { image: IMAGE, ecs: { architecture: "AMD64" } }, "ecs.architecture", "allowed: ARM64, X86_64"],
  ["one image for an ARM64 and an x86_64 fleet", { image: IMAGE, backends: ["ec2"], fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } } }, "image", "imageMultiArch: true"],
  ["one image for ARM64 ECS and an x86_64 fleet", { image: IMAGE, backends: ["ecs", "ec2"], fleets: { gpu: { instanceType: "g5.xlarge" } } }, "image", "x86_64 (fleets.gpu (g5.xlarge))"],
  ["an x86_64 ECS task beside AgentCore with one image", { image: IMAGE, backends: ["agentcore", "ecs"], ecs: { architecture: "X86_64" } }, "image", "arm64 (agentcore)"],
  ["images without the x86_64 image a g5 fleet needs", { images: { arm64: IMAGE }, backends: ["ec2"], fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } } }, "images.x86_64", "is required: fleets.gpu (g5.xlarge)"],
  ["an image for an architecture nothing runs", { images: { arm64: IMAGE, x86_64: IMAGE } }, "images.x86_64", "no enabled backend runs x86_64"],
  ["image and images both", { image: IMAGE, images: { arm64: IMAGE } }, "images", "not both"],
  ["imageMultiArch without image", { imageMultiArch: true }, "imageMultiArch", "applies only to image"],
  ["an AMD GPU fleet", { image: IMAGE, backends: ["ec2"], fleets: { default: { instanceType: "g4ad.xlarge" } } }, "fleets.default.instanceType", "AMD GPUs"],
  ["a fleet name longer than its IAM role name allows", { image: IMAGE, backends: ["ec2"], fleets: { "a-very-long-fleet": {} } }, "fleets.a-very-long-fleet", "1–9"],
  ["with ec2, a task timeout above SSM's 172,800 s", { image: IMAGE, backends: ["ec2"], taskTimeoutSeconds: 172_801 }, "taskTimeoutSeconds", "at most 172800"],
  ["with agentcore, a task timeout above maxLifetimeSeconds", { image: IMAGE, backends: ["agentcore"], taskTimeoutSeconds: 7200, agentcore: { maxLifetimeSeconds: 3600 } }, "taskTimeoutSeconds", "exceeds agentcore.maxLifetimeSeconds (3600)"],
  ["an AgentCore lifetime above 8 hours", { image: IMAGE, backends: ["agentcore"], agentcore: { maxLifetimeSeconds: 28_801 } }, "agentcore.maxLifetimeSeconds", "between 60 and 28800"],
  ["rate(1 minutes)", { image: IMAGE, reconcilerSchedule: "rate(1 minutes)" }, "reconcilerSchedule", "rate(1 minute)"],
  ["rate(0 minutes)", { image: IMAGE, reconcilerSchedule: "rate(0 minutes)" }, "reconcilerSchedule", "at least 1"],
  ["rate(5 minute)", { image: IMAGE, backends: ["ec2"], fleetManagerSchedule: "rate(5 minute)" }, "fleetManagerSchedule", "rate(5 minutes)"],
  ["rate(2 weeks)", { image: IMAGE, reconcilerSchedule: "rate(2 weeks)" }, "reconcilerSchedule", "minute, minutes, hour, hours, day, days"],
  ["a five-field cron", { image: IMAGE, reconcilerSchedule: "cron(0 12 * * ?)" }, "reconcilerSchedule", "six fields"],
  ["a cron with both day fields set", { image: IMAGE, reconcilerSchedule: "cron(0 12 * * MON *)" }, "reconcilerSchedule", "'?' in exactly one"],
  ["identity: a map too big for the Lambda environment", { image: IMAGE, identity: { users: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`arn:aws:iam::123456789012:user/engineer-number-${i}`, `engineer-${i}`])) } }, "identity", "at most 2048"],
];

describe("stack config validation", () => {
  for (const [name, raw, key, reason] of BAD) {
    it(`rejects ${name}, naming ${key}`, () => {
      const found = problems(raw);
      const hit = found.find((p) => p.startsWith(`${key}: `));
      expect(hit, `problems: ${found.join(" | ")}`).to.be.a("string");
      expect(hit).to.include(reason);
    });
  }

  it("accepts every schedule EventBridge accepts: rate with a singular unit for 1 and plural above, day(s), six-field cron", () => {
    for (const schedule of ["rate(1 minute)", "rate(2 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)", "rate(7 days)", "cron(0/5 * * * ? *)", "cron(0 12 ? * MON-FRI *)"]) {
      expect(problems({ image: IMAGE, reconcilerSchedule: schedule }), schedule).to.deep.equal([]);
    }
  });

  it("accepts Fargate Spot on X86_64, an image per architecture, and one image declared multi-arch", () => {
    expect(validateStackConfig({ image: IMAGE, ecs: { architecture: "X86_64", fargateSpot: true } }).ecs).to.include({ architecture: "X86_64", fargateSpot: true });
    const perArch = validateStackConfig({ images: { arm64: IMAGE, x86_64: `${IMAGE}-amd64` }, backends: ["ec2"], fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } } });
    expect(perArch.images).to.deep.equal({ arm64: IMAGE, x86_64: `${IMAGE}-amd64` });
    const multi = validateStackConfig({ image: IMAGE, imageMultiArch: true, backends: ["ec2"], fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } } });
    expect(multi.images).to.deep.equal({ arm64: IMAGE, x86_64: IMAGE });
    expect(validateStackConfig({ backends: ["ec2"], fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } } }).images, "no image: the stack builds both").to.deep.equal({});
    expect(validateStackConfig({ image: IMAGE, backends: ["ec2"], taskTimeoutSeconds: 172_800 }).limits.taskTimeoutSeconds).to.equal(172_800);
  });

  it("names every bad key at once", () => {
    const found = problems({ backends: ["ecs", "gpu"], ecs: { cpu: 3000 }, pollIntervalSeconds: 0, model: "no such model" });
    expect(found.map((p) => p.split(":")[0])).to.include.members(["backends[1]", "model", "ecs.cpu", "pollIntervalSeconds"]);
  });

  it("fills every default for a minimal stack", () => {
    const c = validateStackConfig({ image: IMAGE });
    expect(c.backends).to.deep.equal(["ecs"]);
    expect(c.defaultBackend).to.equal("ecs");
    expect(c.ecs).to.deep.equal({ architecture: "ARM64", cpu: 2048, memory: 4096, fargateSpot: false, ephemeralStorageGiB: 30 });
    expect(c.limits.maxConcurrentPerUser).to.equal(10);
    expect(c.limits.taskTimeoutSeconds).to.equal(28800);
    expect(c.limits.pollIntervalSeconds).to.equal(30);
    expect(c.network.mode).to.equal("create");
    expect(c.fleets).to.deep.equal({});
  });

  it("gives ARM64 fleets the AL2023 arm64 AMI and GPU fleets the NVIDIA base AMI of their architecture", () => {
    const c = validateStackConfig({ image: IMAGE, imageMultiArch: true, backends: ["ec2"], fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } } });
    expect(c.fleets.default).to.include({ instanceType: "m7g.xlarge", architecture: "arm64", gpu: false });
    expect(c.fleets.default.amiParameter).to.equal("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64");
    expect(c.fleets.gpu).to.include({ architecture: "x86_64", gpu: true });
    expect(c.fleets.gpu.amiParameter).to.include("x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023");
    expect(c.defaultFleet).to.equal("default");
  });

  it("accepts Pulumi.dev.yaml, read the way the program reads stack config", () => {
    const yaml = require("js-yaml") as { load(s: string): any };
    const dev = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config as Record<string, unknown>;
    const asStrings = Object.fromEntries(Object.entries(dev).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
    const c = validateStackConfig(readRawConfig(asStrings));
    expect(c.backends).to.deep.equal(["ecs", "ec2"]);
    expect(Object.keys(c.fleets)).to.deep.equal(["default", "gpu"]);
    expect(c.repos).to.have.length(2);
    // Its ECS runs ARM64 without Fargate Spot (Spot is X86_64 only), and its one image serves the m7g and g5 fleets as a multi-arch image.
    expect(c.ecs).to.include({ architecture: "ARM64", fargateSpot: false });
    expect(c.images).to.deep.equal({ arm64: c.image, x86_64: c.image });
  });

  it("treats the Pulumi.yaml defaults as valid (and their empty strings as unset)", () => {
    const yaml = require("js-yaml") as { load(s: string): any };
    const project = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config as Record<string, { default?: unknown }>;
    const defaults: Record<string, string> = { "agent-compute:image": IMAGE };
    for (const [k, v] of Object.entries(project)) {
      if (v.default !== undefined) defaults[`agent-compute:${k}`] = typeof v.default === "string" ? v.default : JSON.stringify(v.default);
    }
    expect(() => validateStackConfig(readRawConfig(defaults))).not.to.throw();
  });
});

describe("Pulumi.yaml declares the code's defaults", () => {
  const yaml = require("js-yaml") as { load(s: string): any };
  const text = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
  const declared = yaml.load(text).config as Record<string, { default?: unknown }>;
  const code = DEFAULTS as Record<string, unknown>;
  const structured = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);

  it("every default Pulumi.yaml declares is the code's (an empty string: unset, derived by the code)", () => {
    const compared: string[] = [];
    for (const [key, spec] of Object.entries(declared)) {
      if (spec.default === undefined) continue;
      if (spec.default === "") {
        expect(code[key], `${key}: Pulumi.yaml leaves it unset but the code has a default`).to.equal(undefined);
        continue;
      }
      expect(spec.default, `Pulumi.yaml's default of ${key}`).to.deep.equal(code[key]);
      compared.push(key);
    }
    expect(compared).to.include.members(["backends", "maxConcurrentPerUser", "taskTimeoutSeconds", "dispatchTimeoutSeconds", "logRetentionDays"]);
  });

  it("every default of a plain key in the code is declared in Pulumi.yaml", () => {
    for (const [key, value] of Object.entries(code)) {
      if (structured(value)) continue;
      expect(declared[key]?.default, `Pulumi.yaml's default of ${key}`).to.deep.equal(value);
    }
  });

  it("the defaults of the structured keys written in Pulumi.yaml's header are the code's", () => {
    const header = text.slice(0, text.indexOf("\nconfig:")).split("\n").filter((l) => l.startsWith("#"));
    const sections: Record<string, string> = {};
    let current: string | undefined;
    for (const line of header) {
      const m = /^#\s+(\w+):\s/.exec(line);
      if (m && ["network", "fleets", "repos", "ecs", "agentcore"].includes(m[1])) current = m[1];
      if (current) sections[current] = `${sections[current] ?? ""} ${line.slice(1)}`;
    }
    const objects: Record<string, object> = {
      network: DEFAULTS.network,
      fleets: DEFAULT_FLEET,
      ecs: DEFAULTS.ecs,
      agentcore: DEFAULTS.agentcore,
    };
    let pairs = 0;
    for (const [section, object] of Object.entries(objects)) {
      expect(sections[section], `Pulumi.yaml's header describes ${section}`).to.be.a("string");
      for (const [, name, value] of sections[section].matchAll(/(\w+) ("[^"]*"|\d[\d.]*|true|false)(?=[,}\s])/g)) {
        expect(object, `${section}.${name} in Pulumi.yaml's header`).to.have.property(name);
        expect(JSON.parse(value), `${section}.${name} in Pulumi.yaml's header`).to.deep.equal((object as Record<string, unknown>)[name]);
        pairs++;
      }
    }
    expect(pairs, "name/value pairs read from the header").to.be.at.least(12);
  });
});

describe("a bad stack config in the program", function () {
  this.timeout(120_000);
  /** [case, stack config, key that must be named, what the reason must offer instead (allowed values or rule)] */
  const cases: [string, Record<string, unknown>, string, string][] = [
    ["unknown backend", { image: IMAGE, backends: ["ecs", "batch"] }, "backends[1]", "allowed: agentcore, ecs, ec2"],
    ["default backend not enabled", { image: IMAGE, backends: ["ec2"], defaultBackend: "ecs" }, "defaultBackend", "enabled backends: ec2"],
    ["min above max", { image: IMAGE, backends: ["ec2"], fleets: { default: { minSize: 5, maxSize: 1 } } }, "fleets.default.maxSize", "below minSize (5)"],
    ["a bad Fargate size", { image: IMAGE, ecs: { cpu: 1024, memory: 16384 } }, "ecs.memory", "Fargate allows: 2048, 3072"],
    ["a bad root volume size", { image: IMAGE, backends: ["ec2"], fleets: { default: { rootVolumeGiB: 8 } } }, "fleets.default.rootVolumeGiB", "between 30 and 16384"],
    ["a model that is no model id", { image: IMAGE, model: "claude sonnet" }, "model", "Bedrock model id"],
    ["subnets without a VPC", { image: IMAGE, network: { privateSubnetIds: ["subnet-0123456789abcdef0"] } }, "network.vpcId", "required when network.privateSubnetIds"],
    ["Fargate Spot with ARM64", { image: IMAGE, ecs: { fargateSpot: true } }, "ecs.fargateSpot", "ecs.architecture: X86_64 or ecs.fargateSpot: false"],
    ["one image for ARM64 and x86_64 fleets", { image: IMAGE, backends: ["ec2"], fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } } }, "image", "imageMultiArch: true"],
    ["a task timeout above the SSM executionTimeout", { image: IMAGE, backends: ["ec2"], taskTimeoutSeconds: 259_200 }, "taskTimeoutSeconds", "at most 172800"],
    ["rate(1 minutes)", { image: IMAGE, backends: ["ec2"], fleetManagerSchedule: "rate(1 minutes)" }, "fleetManagerSchedule", "rate(1 minute)"],
  ];
  for (const [name, config, key, reason] of cases) {
    it(`fails on ${name} naming ${key}, before any resource is registered`, async () => {
      const run = await runProgram(config);
      expect(pulumi.InputPropertiesError.isInstance(run.error), String(run.error)).to.equal(true);
      const errors = (run.error as pulumi.InputPropertiesError).errors;
      expect(errors.map((e) => e.propertyPath)).to.include(key);
      expect(errors.find((e) => e.propertyPath === key)?.reason).to.include(reason);
      expect(run.resources.map((r) => `${r.type} ${r.name}`)).to.deep.equal([]);
    });
  }

  it("the harness sees a resource registered before a program error (so the check above can fail)", async () => {
    const run = await runProgram({ image: IMAGE }, path.join(__dirname, "pulumi-fixture-early-error.ts"));
    expect(String(run.error)).to.include("fails after registering one resource");
    expect(run.resources.map((r) => `${r.type} ${r.name}`)).to.deep.equal(["aws:s3/bucket:Bucket registered-before-the-error"]);
  });
});
