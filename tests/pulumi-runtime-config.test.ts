/**
 * The typed handoff from the stack to the runtime: under mocks, for every backend combination, each Lambda's
 * AGENT_COMPUTE_CONFIG is read back through the runtime's own loader (loadRuntimeConfig), and every stack setting
 * the runtime uses must be there with the stack's value and the names of the resources the program built: each
 * fleet's group (whose min and max bound the fleet manager), warm buffer and replacement settings, the SSM
 * document, the timeouts, the limits, the tables, the bucket, the ECS and AgentCore resources.
 */
import { expect } from "chai";
import { readRawConfig, validateStackConfig } from "../components/config";
import type { Architecture, StackConfig } from "../components/config/types";
import { CONFIG_ENV, loadRuntimeConfig, type RuntimeConfig } from "../runtime/config";
import { TERMINATION_HOOK_NAME } from "../runtime/fleet/tags";
import { DEFAULT_DELIVERY_TIMEOUT_SECONDS, DEFAULT_LIMITS, FLEET_DEFAULTS } from "../runtime/limits";
import { ACCOUNT, COMBINATIONS, IMAGE, pulumiConfigValues, REGION, runProgramCached, type ProgramRun, type RecordedResource } from "./pulumi-mocks";

/** The mocks name a resource by its `name` input, else its Pulumi name (tests/pulumi-mocks.ts, mockState). */
const physicalName = (r: RecordedResource): string => r.inputs.name ?? r.name;

/** What every Lambda's config must say, from the stack config and the resources this run built. */
function expectedConfig(run: ProgramRun, stack: StackConfig): Omit<RuntimeConfig, "orchestrator" | "credentials" | "agentChannel"> {
  const tables = Object.fromEntries(
    run.byType("aws:dynamodb/table:Table").map((t) => [t.name.slice(t.name.lastIndexOf("-") + 1), physicalName(t)]),
  ) as unknown as RuntimeConfig["tables"];
  const expected: Omit<RuntimeConfig, "orchestrator" | "credentials" | "agentChannel"> = {
    region: REGION,
    tables,
    payload: { kind: "s3", bucket: run.one("aws:s3/bucket:Bucket").name, prefix: "payloads/" },
    defaultBackend: stack.defaultBackend,
    enabledBackends: stack.backends,
    identity: stack.identity,
    limits: { ...DEFAULT_LIMITS, ...stack.limits },
  };
  if (stack.backends.includes("ecs")) {
    const sg = run.one("aws:ec2/securityGroup:SecurityGroup", "-ecs-tasks");
    // The mocks give every resource the id `<name>-id`.
    expected.ecs = {
      cluster: physicalName(run.one("aws:ecs/cluster:Cluster")),
      taskDefinition: run.one("aws:ecs/taskDefinition:TaskDefinition").inputs.family,
      containerName: "agent",
      subnets: ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
      securityGroups: [`${sg.name}-id`],
      fargateSpot: stack.ecs.fargateSpot,
    };
  }
  if (stack.backends.includes("agentcore")) {
    const runtime = run.one("aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime");
    expected.agentcore = { runtimeArn: `arn:aws:bedrock-agentcore:${REGION}:${ACCOUNT}:runtime/${runtime.inputs.agentRuntimeName}-abc123` };
  }
  if (stack.backends.includes("ec2")) {
    // The operator's image of an architecture, else the one the stack built, by digest (the mocks' digest is all d's).
    const imageOf = (a: Architecture) =>
      stack.images[a] ?? `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${physicalName(run.one("aws:ecr/repository:Repository"))}@sha256:${"d".repeat(64)}`;
    const defaultArchitecture = stack.fleets[stack.defaultFleet!].architecture;
    expected.ec2 = {
      documentName: physicalName(run.one("aws:ssm/document:Document")),
      fleets: Object.fromEntries(
        Object.entries(stack.fleets).map(([fleet, s]) => [
          fleet,
          {
            autoScalingGroupName: physicalName(run.one("aws:autoscaling/group:Group", `-fleet-${fleet}-`)),
            // A fleet of another image than the default fleet's names its own.
            ...(stack.images[s.architecture] !== stack.images[defaultArchitecture] ? { image: imageOf(s.architecture) } : {}),
            warmBuffer: s.warmBuffer,
            readyDeadlineSeconds: s.readyDeadlineSeconds,
            scaleInIdleSeconds: s.scaleInIdleSeconds,
            maxInstanceLifetimeSeconds: s.maxInstanceLifetimeSeconds,
            ...(s.maxTasksPerInstance !== undefined ? { maxTasksPerInstance: s.maxTasksPerInstance } : {}),
            terminationHookName: TERMINATION_HOOK_NAME,
          },
        ]),
      ),
      defaultFleet: stack.defaultFleet!,
      deliveryTimeoutSeconds: stack.dispatchTimeoutSeconds,
      executionTimeoutSeconds: stack.limits.taskTimeoutSeconds,
      image: imageOf(defaultArchitecture),
    };
  }
  return expected;
}

describe("runtime config handoff: every stack setting reaches each Lambda, read back by the runtime's own loader", function () {
  this.timeout(600_000);

  for (const [label, stackValues] of Object.entries(COMBINATIONS)) {
    it(`${label}`, async () => {
      const run = await runProgramCached(stackValues);
      if (run.error) throw run.error;
      const stack = validateStackConfig(readRawConfig(pulumiConfigValues(stackValues)));
      const expected = expectedConfig(run, stack);
      const functions = run.byType("aws:lambda/function:Function");
      // Orchestrator, API, reconciler, and the fleet manager with ec2.
      expect(functions).to.have.length(stack.backends.includes("ec2") ? 4 : 3);
      for (const fn of functions) {
        const loaded = loadRuntimeConfig({ [CONFIG_ENV]: fn.inputs.environment.variables[CONFIG_ENV] });
        const { orchestrator, credentials, agentChannel, ...rest } = loaded;
        expect(rest, fn.name).to.deep.equal(expected);
        expect(agentChannel?.url, fn.name).to.equal("https://api123.execute-api.us-east-1.amazonaws.com");
        // Only the Lambdas that start or re-drive orchestrations are told the orchestrator; only the API reads credentials.
        const starts = /-(api|reconciler)$/.test(fn.name);
        expect(orchestrator?.functionArn, fn.name).to.satisfy((arn?: string) => (starts ? /:function:.*orchestrator.*:live$/.test(arn ?? "") : arn === undefined));
        expect(credentials, fn.name).to.deep.equal(fn.name.endsWith("-api") ? { kind: "secrets-manager", prefix: "agent-compute-test/git" } : undefined);
      }
      // The fleet manager bounds each group's desired capacity by the group's own min and max: the stack's.
      for (const [fleet, s] of Object.entries(stack.backends.includes("ec2") ? stack.fleets : {})) {
        const group = run.one("aws:autoscaling/group:Group", `-fleet-${fleet}-`);
        expect({ minSize: group.inputs.minSize, maxSize: group.inputs.maxSize }, fleet).to.deep.equal({ minSize: s.minSize, maxSize: s.maxSize });
      }
    });
  }

  it("the combinations cover settings away from their defaults (else arriving could not be told from defaulting)", () => {
    const stack = validateStackConfig(readRawConfig(pulumiConfigValues(COMBINATIONS["two named ec2 fleets"])));
    // An image per architecture: the x86_64 default fleet's is ec2.image, the ARM64 fleet names its own.
    expect(stack.images).to.deep.equal({ arm64: IMAGE, x86_64: `${IMAGE}-amd64` });
    expect(stack.fleets.default.warmBuffer).to.not.equal(1);
    expect(stack.fleets.default.minSize).to.not.equal(0);
    expect(stack.fleets.default.maxTasksPerInstance).to.not.equal(undefined);
    expect(stack.fleets.gpu.readyDeadlineSeconds).to.not.equal(FLEET_DEFAULTS.readyDeadlineSeconds);
    expect(stack.fleets.gpu.maxInstanceLifetimeSeconds).to.not.equal(FLEET_DEFAULTS.maxInstanceLifetimeSeconds);
    expect(stack.defaultFleet).to.equal("gpu");
    expect(stack.dispatchTimeoutSeconds).to.not.equal(DEFAULT_DELIVERY_TIMEOUT_SECONDS);
    expect(stack.limits.taskTimeoutSeconds).to.not.equal(DEFAULT_LIMITS.taskTimeoutSeconds);
    expect(stack.limits.heartbeatTimeoutSeconds).to.not.equal(DEFAULT_LIMITS.heartbeatTimeoutSeconds);
  });
});
