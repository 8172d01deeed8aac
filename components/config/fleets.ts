/** fleets and defaultFleet: the named EC2 fleets (backend ec2). */
import { ROOT_VOLUME_GIB_BOUNDS } from "../../runtime/limits";
import { defaultAmiParameter, describeInstanceType, isAmdGpuType } from "./aws-tables";
import { bool, int, isObject, optionalNumber, str, unknownKeys, type Problems } from "./checks";
import { DEFAULT_FLEET } from "./defaults";
import { FLEET_NAME_MAX_LENGTH, FLEET_NAME_PATTERN } from "./resource-names";
import type { FleetSettings, RawConfig } from "./types";

const FLEET_KEYS = [
  "instanceType",
  "minSize",
  "maxSize",
  "warmBuffer",
  "rootVolumeGiB",
  "spot",
  "spotInstanceTypes",
  "amiParameter",
  "readyDeadlineSeconds",
  "scaleInIdleSeconds",
  "maxInstanceLifetimeSeconds",
  "maxTasksPerInstance",
];

export function validateFleet(p: Problems, name: string, raw: unknown): FleetSettings | undefined {
  const path = `fleets.${name}`;
  if (!FLEET_NAME_PATTERN.test(name)) {
    p.add(path, `fleet names are 1–${FLEET_NAME_MAX_LENGTH} lowercase letters, digits or '-', starting with a letter (the fleet's IAM role name must fit 64 characters)`);
  }
  const settings = raw ?? {};
  if (!isObject(settings)) {
    p.add(path, `must be an object with any of: ${FLEET_KEYS.join(", ")}`);
    return undefined;
  }
  unknownKeys(p, path, settings, FLEET_KEYS);
  const instanceType = str(p, `${path}.instanceType`, settings.instanceType) ?? DEFAULT_FLEET.instanceType;
  const described = describeInstanceType(instanceType);
  if (!described) p.add(`${path}.instanceType`, `'${instanceType}' is not an EC2 instance type (e.g. m7g.xlarge, g5.xlarge)`);
  // The GPU path is NVIDIA's: the NVIDIA-driver AMI and `docker run --gpus all`.
  else if (isAmdGpuType(instanceType)) p.add(`${path}.instanceType`, `'${instanceType}' has AMD GPUs; GPU fleets run NVIDIA types (g4dn, g5, g6, g6e, gr6, p4d, p5, g5g)`);
  const minSize = int(p, `${path}.minSize`, settings.minSize, DEFAULT_FLEET.minSize, 0, 1000);
  const maxSize = int(p, `${path}.maxSize`, settings.maxSize, Math.max(DEFAULT_FLEET.maxSize, minSize), 1, 1000);
  if (minSize > maxSize) p.add(`${path}.maxSize`, `(${maxSize}) is below minSize (${minSize})`);
  const warmBuffer = int(p, `${path}.warmBuffer`, settings.warmBuffer, Math.min(DEFAULT_FLEET.warmBuffer, maxSize), 0, 1000);
  if (warmBuffer > maxSize) p.add(`${path}.warmBuffer`, `(${warmBuffer}) is above maxSize (${maxSize})`);
  const rootVolumeGiB = int(p, `${path}.rootVolumeGiB`, settings.rootVolumeGiB, DEFAULT_FLEET.rootVolumeGiB, ROOT_VOLUME_GIB_BOUNDS.min, ROOT_VOLUME_GIB_BOUNDS.max);
  const spot = bool(p, `${path}.spot`, settings.spot, DEFAULT_FLEET.spot);
  const architecture = described?.architecture ?? "arm64";
  const spotInstanceTypes: string[] = [];
  if (settings.spotInstanceTypes !== undefined) {
    if (!spot) p.add(`${path}.spotInstanceTypes`, "applies only to a Spot fleet (spot: true)");
    if (!Array.isArray(settings.spotInstanceTypes)) {
      p.add(`${path}.spotInstanceTypes`, "must be a list of instance types, e.g. [\"m7g.2xlarge\", \"m6g.xlarge\"]");
    } else {
      settings.spotInstanceTypes.forEach((t, i) => {
        const d = typeof t === "string" ? describeInstanceType(t) : undefined;
        if (!d) p.add(`${path}.spotInstanceTypes[${i}]`, `${JSON.stringify(t)} is not an EC2 instance type`);
        else if (d.architecture !== architecture) p.add(`${path}.spotInstanceTypes[${i}]`, `'${t}' is ${d.architecture}; the fleet's instanceType ${instanceType} is ${architecture}`);
        else if (t !== instanceType && !spotInstanceTypes.includes(t as string)) spotInstanceTypes.push(t as string);
      });
    }
  }
  const readyDeadlineSeconds = int(p, `${path}.readyDeadlineSeconds`, settings.readyDeadlineSeconds, DEFAULT_FLEET.readyDeadlineSeconds, 60, 7200);
  const scaleInIdleSeconds = int(p, `${path}.scaleInIdleSeconds`, settings.scaleInIdleSeconds, DEFAULT_FLEET.scaleInIdleSeconds, 0, 86400);
  const maxInstanceLifetimeSeconds = int(p, `${path}.maxInstanceLifetimeSeconds`, settings.maxInstanceLifetimeSeconds, DEFAULT_FLEET.maxInstanceLifetimeSeconds, 3600, 365 * 24 * 3600);
  const maxTasksPerInstance = optionalNumber(p, `${path}.maxTasksPerInstance`, settings.maxTasksPerInstance, 1, 1_000_000, true);
  const gpu = described?.gpu ?? false;
  let amiParameter = defaultAmiParameter(architecture, gpu);
  if (settings.amiParameter !== undefined) {
    const v = str(p, `${path}.amiParameter`, settings.amiParameter);
    if (v !== undefined && !v.startsWith("/")) p.add(`${path}.amiParameter`, `must be an SSM parameter path starting with '/', got '${v}'`);
    else if (v !== undefined) amiParameter = v;
  }
  return {
    instanceType,
    architecture,
    gpu,
    minSize,
    maxSize,
    warmBuffer,
    rootVolumeGiB,
    spot,
    spotInstanceTypes,
    amiParameter,
    readyDeadlineSeconds,
    scaleInIdleSeconds,
    maxInstanceLifetimeSeconds,
    ...(maxTasksPerInstance !== undefined ? { maxTasksPerInstance } : {}),
  };
}

export function validateFleets(p: Problems, raw: RawConfig, ec2Enabled: boolean): { fleets: Record<string, FleetSettings>; defaultFleet?: string } {
  const fleets: Record<string, FleetSettings> = {};
  if (!ec2Enabled) {
    if (raw.fleets !== undefined) p.add("fleets", "is set but backend 'ec2' is not enabled; add ec2 to backends or remove fleets");
    if (raw.defaultFleet !== undefined) p.add("defaultFleet", "is set but backend 'ec2' is not enabled");
    return { fleets };
  }
  const given = raw.fleets ?? { default: {} };
  if (!isObject(given) || Object.keys(given).length === 0) {
    p.add("fleets", "must map one or more fleet names to settings, e.g. {\"default\": {\"instanceType\": \"m7g.xlarge\"}}");
    return { fleets };
  }
  for (const [name, settings] of Object.entries(given)) {
    const f = validateFleet(p, name, settings);
    if (f) fleets[name] = f;
  }
  const names = Object.keys(given);
  let defaultFleet = names.includes("default") ? "default" : names[0];
  if (raw.defaultFleet !== undefined) {
    if (typeof raw.defaultFleet !== "string" || !names.includes(raw.defaultFleet)) {
      p.add("defaultFleet", `is ${JSON.stringify(raw.defaultFleet)}; allowed: ${names.join(", ")}`);
    } else {
      defaultFleet = raw.defaultFleet;
    }
  }
  return { fleets, defaultFleet };
}
