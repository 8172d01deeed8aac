import * as path from "node:path";
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { validateStackConfig } from "../components/config";
import { IMAGE, runProgram } from "./pulumi-mocks";

const FIXTURE = path.join(__dirname, "pulumi-fixture-component.ts");
const tableArns = Object.fromEntries(["tasks", "events", "leases", "concurrency", "repos"].map((t) => [t, `arn:aws:dynamodb:us-east-1:123456789012:table/${t}`]));
const shared = { vpcId: "vpc-0123456789abcdef0", tableArns, payloadBucketArn: "arn:aws:s3:::payloads", region: "us-east-1", accountId: "123456789012", models: { default: "global.anthropic.claude-sonnet-4-5-20250929-v1:0", allowed: ["global.anthropic.claude-sonnet-4-5-20250929-v1:0"] } };
const fleetSettings = validateStackConfig({ image: IMAGE, backends: ["ec2"] }).fleets.default;
const fleetArgs = (settings: object) => ({
  ...shared, fleet: "default", image: IMAGE, subnetIds: ["subnet-0123456789abcdef0"], userData: "#!/bin/bash\n", settings: { ...fleetSettings, ...settings },
});
const ecsArgs = (settings: object) => ({
  ...shared, image: IMAGE, subnetIds: ["subnet-0123456789abcdef0"], logRetentionDays: 7, tableNames: { tasks: "tasks", events: "events" },
  settings: { cpu: 2048, memory: 4096, fargateSpot: false, ephemeralStorageGiB: 30, ...settings },
});

/** [component, type token, good args, bad args, property path named, words of the reason] */
const CASES: [string, string, object, object, string, string][] = [
  ["Ec2AgentFleet", "agent-compute:ec2:Ec2AgentFleet", fleetArgs({}), fleetArgs({ minSize: 3, maxSize: 2 }), "settings.maxSize", "≥ minSize (3)"],
  ["Ec2AgentFleet", "agent-compute:ec2:Ec2AgentFleet", fleetArgs({}), fleetArgs({ warmBuffer: 9 }), "settings.warmBuffer", "0 to maxSize (4)"],
  ["EcsAgentCluster", "agent-compute:ecs:EcsAgentCluster", ecsArgs({}), ecsArgs({ cpu: 1024, memory: 512 }), "settings.memory", "2048, 3072"],
  ["EcsAgentCluster", "agent-compute:ecs:EcsAgentCluster", ecsArgs({}), ecsArgs({ cpu: 3000 }), "settings.cpu", "256, 512, 1024"],
];

describe("components on their own", function () {
  this.timeout(60_000);
  const seen = new Set<string>();
  for (const [component, token, good, bad, key, reason] of CASES) {
    if (!seen.has(component)) it(`${component} with good arguments: every child is parented to the component`, async () => {
      const run = await runProgram({ "fixture:component": component, "fixture:args": good }, FIXTURE);
      if (run.error) throw run.error;
      const self = run.one(token);
      const children = run.resources.filter((r) => r !== self);
      expect(children.length).to.be.greaterThan(3);
      for (const c of children) expect(c.parent, `${c.type} ${c.name}`).to.equal(self.urn);
    });
    seen.add(component);

    it(`${component} refuses bad arguments (${key}) before creating any child`, async () => {
      const run = await runProgram({ "fixture:component": component, "fixture:args": bad }, FIXTURE);
      expect(pulumi.InputPropertiesError.isInstance(run.error), String(run.error)).to.equal(true);
      const hit = (run.error as pulumi.InputPropertiesError).errors.find((e) => e.propertyPath === key);
      expect(hit?.reason, JSON.stringify((run.error as pulumi.InputPropertiesError).errors)).to.include(reason);
      expect(run.resources.map((r) => r.type)).to.deep.equal([token]);
    });
  }
});
