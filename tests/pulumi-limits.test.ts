/**
 * AWS limits the program must fit whatever config it accepts, checked under Pulumi mocks with the largest config the
 * stack config allows: every physical name within its service's length and characters, every Lambda environment
 * within 4 KB (and under the estimate the stack config refuses with), user data within 16 KB, the SSM document within
 * 64 KB, the API Lambda under the HTTP API's 30 s, the orchestrator's durable config within Lambda's ranges.
 */
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { agentTaskDocument, AGENT_TASK_DOCUMENT_PARAMETERS } from "../runtime/fleet/document";
import { bootScript } from "../runtime/fleet/boot-script";
import { CommandDocument, documentSizeErrors } from "../components/command-document";
import { userDataErrors } from "../components/ec2-agent-fleet";
import { environmentBytes } from "../components/handler-function";
import { API_TIMEOUT_SECONDS, apiTimeoutErrors } from "../components/task-api";
import { orchestratorDurableConfig } from "../components/task-orchestrator";
import { HTTP_API_INTEGRATION_TIMEOUT_SECONDS, LAMBDA_ENVIRONMENT_MAX_BYTES, SSM_DOCUMENT_MAX_BYTES, USER_DATA_MAX_BYTES } from "../components/config/aws-quotas";
import { BUILT_IMAGE_REFERENCE_MAX_BYTES, environmentBytesEstimate } from "../components/config/deploy-limits";
import { validateStackConfig } from "../components/config";
import { AUTONAME_SUFFIX_LENGTH, FLEET_NAME_MAX_LENGTH, NAME_LIMITS, STACK_PREFIX_MAX_LENGTH, UNNAMED_TYPES, physicalNameLength } from "../components/config/resource-names";
import { COMBINATIONS, IMAGE, PROJECT, STACK, runProgram, runProgramCached, type ProgramRun } from "./pulumi-mocks";

/** The longest stack name the config allows for this project, and fleets with the longest names (one per architecture). */
const LONGEST_STACK = "s".repeat(STACK_PREFIX_MAX_LENGTH - PROJECT.length - 1);
const fleetName = (i: number) => `f${i}`.padEnd(FLEET_NAME_MAX_LENGTH, "x");
/** An image reference of about the longest length the SSM document's pattern admits (255). */
const longImage = (tag: string) => `${IMAGE.split(":")[0]}-${"r".repeat(180)}:${tag}`;
const LARGEST: Record<string, unknown> = {
  backends: ["agentcore", "ecs", "ec2"],
  fleets: { [fleetName(0)]: { instanceType: "m7g.xlarge" }, [fleetName(1)]: { instanceType: "g5.xlarge" } },
  // An image per architecture: the x86_64 fleet then names its own image in the runtime config.
  images: { arm64: longImage("arm64"), x86_64: longImage("amd64") },
  identity: { users: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`arn:aws:iam::123456789012:user/engineer-number-${i}`, `engineer-${i}`])) },
};

/** A Lambda's environment bytes as deployed: the mocks' names plus the suffix Pulumi's auto-naming adds to each. */
function deployedEnvironmentBytes(run: ProgramRun, variables: Record<string, string>): number {
  const json = JSON.stringify(variables);
  const autonamed = run.resources.filter((r) => r.custom && NAME_LIMITS[r.type] && physicalNameLength(r.type, r.name, r.inputs)?.name.endsWith("-xxxxxxxx"));
  let suffixes = 0;
  for (const r of autonamed) suffixes += json.split(new RegExp(`${r.name}(?![a-z0-9-])`)).length - 1;
  return environmentBytes(variables) + suffixes * AUTONAME_SUFFIX_LENGTH;
}

describe("AWS limits of the largest stack the config allows", function () {
  this.timeout(300_000);
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(LARGEST, undefined, LONGEST_STACK);
    if (run.error) throw run.error;
  });

  it("every resource with a physical name is within its service's length and characters (and every type is classified)", () => {
    const unclassified = [...new Set(run.resources.filter((r) => r.custom && !NAME_LIMITS[r.type] && !UNNAMED_TYPES.includes(r.type)).map((r) => r.type))];
    expect(unclassified, "resource types missing from NAME_LIMITS / UNNAMED_TYPES").to.deep.equal([]);
    const checked = run.resources.filter((r) => r.custom && NAME_LIMITS[r.type]);
    expect(checked.length).to.be.greaterThan(40);
    for (const r of checked) {
      const limit = NAME_LIMITS[r.type];
      const { name, length } = physicalNameLength(r.type, r.name, r.inputs)!;
      expect(length, `${r.type} ${name} (${limit.source})`).to.be.at.most(limit.maxLength);
      expect(name.replace(/-xxxxxxxx$/, "-0123abc"), `${r.type} ${name} (${limit.source})`).to.match(limit.pattern);
    }
  });

  it("a stack name one character longer is refused at preview, naming the limit, before any resource", async () => {
    const r = await runProgram(LARGEST, undefined, `${LONGEST_STACK}s`);
    expect(pulumi.InputPropertiesError.isInstance(r.error), String(r.error)).to.equal(true);
    const e = (r.error as pulumi.InputPropertiesError).errors.find((x) => x.propertyPath === "stack");
    expect(e?.reason).to.include(`at most ${STACK_PREFIX_MAX_LENGTH}`);
    expect(r.resources).to.deep.equal([]);
    expect(() => validateStackConfig({}, { project: PROJECT, stack: "Dev_1" })).to.throw(/lowercase letters, digits and '-'/);
  });

  it("every Lambda environment fits 4 KB and the estimate the config checks at preview is an upper bound of it", () => {
    const config = validateStackConfig(LARGEST);
    const estimate = environmentBytesEstimate(config);
    const lambdas = run.byType("aws:lambda/function:Function");
    expect(lambdas).to.have.length(4);
    for (const f of lambdas) {
      const bytes = deployedEnvironmentBytes(run, f.inputs.environment.variables);
      console.log(`      ${f.name}: ${bytes} bytes (estimate ${estimate}, limit ${LAMBDA_ENVIRONMENT_MAX_BYTES})`);
      expect(bytes, f.name).to.be.at.most(estimate);
      expect(bytes, f.name).to.be.at.most(LAMBDA_ENVIRONMENT_MAX_BYTES);
    }
  });

  it("the stack-built image's reference, with the longest stack name, fits the estimate's allowance for it", async () => {
    const r = await runProgramCached(COMBINATIONS["all three"]);
    if (r.error) throw r.error;
    const uri = String((r.outputs.agentImages as Record<string, string>).arm64);
    // The longest stack name, Pulumi's suffix on the repository, and the longest region name (ap-southeast-4).
    const longest = uri.length + (LONGEST_STACK.length - STACK.length) + AUTONAME_SUFFIX_LENGTH + ("ap-southeast-4".length - "us-east-1".length);
    // Its key and quotes, escaped inside the JSON string, take 20 bytes more.
    expect(longest + 20).to.be.at.most(BUILT_IMAGE_REFERENCE_MAX_BYTES);
  });

  it("a config whose environment could pass 4 KB is refused at preview, naming fleets", () => {
    const fleets = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [fleetName(i), {}]));
    let error: unknown;
    try {
      validateStackConfig({ image: IMAGE, backends: ["ec2"], fleets });
    } catch (e) {
      error = e;
    }
    const found = (error as pulumi.InputPropertiesError).errors.find((e) => e.propertyPath === "fleets");
    expect(found?.reason).to.include(`Lambda allows ${LAMBDA_ENVIRONMENT_MAX_BYTES}`);
  });

  it("each fleet's user data is within EC2's 16 KB, and an oversized one is refused", () => {
    for (const lt of run.byType("aws:ec2/launchTemplate:LaunchTemplate")) {
      const bytes = Buffer.from(lt.inputs.userData, "base64").length;
      expect(bytes, lt.name).to.be.at.most(USER_DATA_MAX_BYTES);
    }
    // The largest boot script the config allows: the longest fleet name and image reference, a GPU fleet.
    const longest = bootScript({ fleet: fleetName(0), image: `a${"b".repeat(254)}`, agentRoleArn: `arn:aws:iam::123456789012:role/${"r".repeat(64)}`, gpu: true });
    console.log(`      largest boot script: ${Buffer.byteLength(longest)} bytes of ${USER_DATA_MAX_BYTES}`);
    expect(Buffer.byteLength(longest)).to.be.at.most(USER_DATA_MAX_BYTES);
    expect(userDataErrors("x".repeat(USER_DATA_MAX_BYTES + 1)).map((e) => e.propertyPath)).to.deep.equal(["userData"]);
    expect(userDataErrors("x".repeat(USER_DATA_MAX_BYTES))).to.deep.equal([]);
  });

  it("the SSM document with its largest parameter values is within 64 KB, and a larger one is refused", () => {
    const doc = run.one("aws:ssm/document:Document");
    const bytes = Buffer.byteLength(doc.inputs.content, "utf8");
    console.log(`      SSM document: ${bytes} bytes (+ parameters) of ${SSM_DOCUMENT_MAX_BYTES}`);
    const document = agentTaskDocument({ model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0" });
    expect(documentSizeErrors(document, AGENT_TASK_DOCUMENT_PARAMETERS)).to.deep.equal([]);
    const bloated = { ...document, description: "x".repeat(SSM_DOCUMENT_MAX_BYTES) };
    expect(documentSizeErrors(bloated, AGENT_TASK_DOCUMENT_PARAMETERS).map((e) => e.propertyPath)).to.deep.equal(["content"]);
    let error: unknown;
    try {
      new CommandDocument("too-big", { content: bloated });
    } catch (e) {
      error = e;
    }
    expect((error as pulumi.InputPropertiesError).errors[0].reason).to.include("at most 64 KB");
  });

  it("the API Lambda times out below the HTTP API's 30 s integration timeout; 30 or more is refused", () => {
    const api = run.byType("aws:lambda/function:Function").find((f) => f.name.endsWith("-api"))!;
    expect(api.inputs.timeout).to.equal(API_TIMEOUT_SECONDS);
    expect(api.inputs.timeout).to.be.lessThan(HTTP_API_INTEGRATION_TIMEOUT_SECONDS);
    expect(apiTimeoutErrors(HTTP_API_INTEGRATION_TIMEOUT_SECONDS).map((e) => e.propertyPath)).to.deep.equal(["timeoutSeconds"]);
    expect(apiTimeoutErrors(29)).to.deep.equal([]);
  });

  it("the orchestrator's durable config is within Lambda's ranges for every task timeout the config allows", () => {
    const orchestrator = run.byType("aws:lambda/function:Function").find((f) => f.name.endsWith("-orchestrator"))!;
    expect(orchestrator.inputs.durableConfig).to.deep.equal({ executionTimeout: 28800 + 3600, retentionPeriod: 14 });
    expect(orchestratorDurableConfig(7 * 24 * 3600).executionTimeout).to.equal(7 * 24 * 3600 + 3600);
    expect(() => orchestratorDurableConfig(31_622_400)).to.throw(pulumi.InputPropertiesError);
    expect(() => orchestratorDurableConfig(3600, 91)).to.throw(pulumi.InputPropertiesError);
    expect(() => orchestratorDurableConfig(3600, 0)).to.throw(pulumi.InputPropertiesError);
  });
});
