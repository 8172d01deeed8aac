import { expect } from "chai";
import { CONFIG_ENV, ConfigError, loadRuntimeConfig, type RuntimeConfig } from "../runtime/config";
import { clampPollInterval, DEFAULT_LIMITS } from "../runtime/limits";

const base: RuntimeConfig = {
  region: "eu-west-1",
  tables: { tasks: "t", events: "e", leases: "l", concurrency: "c", repos: "r" },
  payload: { kind: "s3", bucket: "b" },
  defaultBackend: "ecs",
  enabledBackends: ["ecs"],
  ecs: { cluster: "c", taskDefinition: "td", containerName: "agent", subnets: ["s"], securityGroups: ["g"] },
  limits: DEFAULT_LIMITS,
};

describe("runtime config", () => {
  it("clamps the poll interval to 5–300 s", () => {
    expect([1, 5, 30, 300, 301, Number.NaN].map(clampPollInterval)).to.deep.equal([5, 5, 30, 300, 300, 30]);
  });

  it("loads a valid config from the environment and fills default limits", () => {
    const cfg = loadRuntimeConfig({ [CONFIG_ENV]: JSON.stringify({ ...base, limits: { maxConcurrentPerUser: 3 } }) });
    expect(cfg.limits.maxConcurrentPerUser).to.equal(3);
    expect(cfg.limits.taskTimeoutSeconds).to.equal(8 * 3600);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ["missing variable", undefined, /AGENT_COMPUTE_CONFIG is not set/],
    ["invalid JSON", "{", /not valid JSON/],
    ["default backend not enabled", { ...base, defaultBackend: "ec2" }, /defaultBackend 'ec2' is not among enabledBackends \(ecs\)/],
    ["unknown backend", { ...base, enabledBackends: ["ecs", "lambda"] }, /'lambda'; allowed: agentcore, ecs, ec2, local/],
    ["enabled backend without settings", { ...base, enabledBackends: ["ecs", "ec2"] }, /backend 'ec2' is enabled but its 'ec2' settings are missing/],
    ["missing table", { ...base, tables: { ...base.tables, leases: "" } }, /tables.leases is required/],
  ];
  for (const [name, value, message] of bad) {
    it(`refuses ${name}, naming the key`, () => {
      const env = value === undefined ? {} : { [CONFIG_ENV]: typeof value === "string" ? value : JSON.stringify(value) };
      expect(() => loadRuntimeConfig(env)).to.throw(ConfigError, message);
    });
  }
});
