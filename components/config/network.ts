/** network: an existing VPC with private subnets, or a VPC the stack creates. */
import { int, isObject, oneOf, unknownKeys, type Problems } from "./checks";
import { DEFAULTS } from "./defaults";
import type { NetworkSettings } from "./types";

const NETWORK_KEYS = ["vpcId", "privateSubnetIds", "cidrBlock", "availabilityZones", "natGateways"];

export function validateNetwork(p: Problems, raw: unknown): NetworkSettings {
  const fallback: NetworkSettings = { mode: "create", ...DEFAULTS.network };
  if (raw === undefined || raw === null) return fallback;
  if (!isObject(raw)) {
    p.add("network", `must be an object with either vpcId + privateSubnetIds, or cidrBlock/availabilityZones/natGateways`);
    return fallback;
  }
  unknownKeys(p, "network", raw, NETWORK_KEYS);
  const vpcId = raw.vpcId;
  const subnets = raw.privateSubnetIds;
  if (vpcId !== undefined || subnets !== undefined) {
    for (const key of ["cidrBlock", "availabilityZones", "natGateways"]) {
      if (raw[key] !== undefined) p.add(`network.${key}`, "applies only when the stack creates its VPC; remove it or remove network.vpcId");
    }
    if (vpcId === undefined) {
      p.add("network.vpcId", "is required when network.privateSubnetIds is given (the VPC those subnets belong to)");
    } else if (typeof vpcId !== "string" || !/^vpc-[0-9a-f]{8,17}$/.test(vpcId)) {
      p.add("network.vpcId", `must be a VPC id like vpc-0abc12345, got ${JSON.stringify(vpcId)}`);
    }
    if (subnets === undefined) {
      p.add("network.privateSubnetIds", "is required with network.vpcId: the private subnets tasks and instances run in");
    } else if (!Array.isArray(subnets) || subnets.length === 0) {
      p.add("network.privateSubnetIds", "must be a non-empty list of subnet ids (subnet-…)");
    } else {
      subnets.forEach((s, i) => {
        if (typeof s !== "string" || !/^subnet-[0-9a-f]{8,17}$/.test(s)) {
          p.add(`network.privateSubnetIds[${i}]`, `must be a subnet id like subnet-0abc12345, got ${JSON.stringify(s)}`);
        }
      });
    }
    if (p.has("network")) return fallback;
    return { mode: "existing", vpcId: vpcId as string, privateSubnetIds: subnets as string[] };
  }
  const cidrBlock = raw.cidrBlock ?? DEFAULTS.network.cidrBlock;
  if (typeof cidrBlock !== "string" || !/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/.test(cidrBlock)) {
    p.add("network.cidrBlock", `must be an IPv4 CIDR from /16 to /24, got ${JSON.stringify(cidrBlock)}`);
  }
  return {
    mode: "create",
    cidrBlock: cidrBlock as string,
    availabilityZones: int(p, "network.availabilityZones", raw.availabilityZones, DEFAULTS.network.availabilityZones, 2, 6),
    natGateways: oneOf(p, "network.natGateways", raw.natGateways, ["Single", "OnePerAz"] as const, DEFAULTS.network.natGateways),
  };
}
