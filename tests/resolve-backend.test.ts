import { expect } from "chai";
import { createStrategy } from "../runtime/compute/registry";
import { BackendResolutionError, resolveBackend } from "../runtime/compute/resolve";
import { BACKEND_TYPES } from "../runtime/compute/handle";
import { ec2Settings, runtimeConfig } from "./fixtures";

const config = runtimeConfig("resolve", {
  defaultBackend: "ecs",
  enabledBackends: ["ecs", "ec2", "agentcore", "local"],
  ecs: { cluster: "c", taskDefinition: "td", containerName: "agent", subnets: ["s"], securityGroups: ["g"] },
  ec2: ec2Settings(["default", "gpu"]),
  agentcore: { runtimeArn: "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/r-1" },
  local: { workDir: "/tmp/agent-compute-test" },
});

describe("backend resolution: request, then repo blueprint, then stack default", () => {
  const cases: Array<[string, object, object | undefined, object]> = [
    ["stack default when nothing is said", {}, undefined, { backend: "ecs" }],
    ["the repo's blueprint over the default", {}, { backend: "agentcore" }, { backend: "agentcore" }],
    ["the request over the blueprint", { backend: "local" }, { backend: "agentcore" }, { backend: "local" }],
    ["ec2 gets the default fleet", { backend: "ec2" }, undefined, { backend: "ec2", fleet: "default" }],
    ["ec2 takes the blueprint's fleet", {}, { backend: "ec2", fleet: "gpu" }, { backend: "ec2", fleet: "gpu" }],
    ["the request's fleet wins", { backend: "ec2", fleet: "default" }, { backend: "ec2", fleet: "gpu" }, { backend: "ec2", fleet: "default" }],
  ];
  for (const [name, requested, blueprint, expected] of cases) {
    it(name, () => expect(resolveBackend(requested, blueprint, config)).to.deep.equal(expected));
  }

  it("refuses a backend this stack did not enable, naming the enabled ones", () => {
    expect(() => resolveBackend({ backend: "ec2" }, undefined, { ...config, enabledBackends: ["ecs"] })).to.throw(
      BackendResolutionError,
      /backend 'ec2' is not enabled in this stack; enabled: ecs/,
    );
  });

  it("refuses an unknown fleet, naming the fleets", () => {
    expect(() => resolveBackend({ backend: "ec2", fleet: "tpu" }, undefined, config)).to.throw(/fleet 'tpu' does not exist; fleets: default, gpu/);
  });

  it("refuses a fleet for a backend that has none", () => {
    expect(() => resolveBackend({ backend: "ecs", fleet: "gpu" }, undefined, config)).to.throw(/only to backend ec2/);
  });

  it("has a strategy for every backend, reporting its own type", () => {
    for (const type of BACKEND_TYPES) expect(createStrategy(type, config).type).to.equal(type);
  });
});
