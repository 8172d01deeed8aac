/** ecs: the Fargate task size and capacity (backend ecs). */
import { ECS_ARCHITECTURES, FARGATE_SIZES, type EcsArchitecture } from "./aws-tables";
import { bool, int, isObject, oneOf, unknownKeys, type Problems } from "./checks";
import { DEFAULTS } from "./defaults";
import type { EcsSettings } from "./types";

const ECS_KEYS = ["architecture", "cpu", "memory", "fargateSpot", "ephemeralStorageGiB"];

export function validateEcs(p: Problems, raw: unknown, enabled: boolean): EcsSettings {
  if (raw === undefined || raw === null) return { ...DEFAULTS.ecs };
  if (!enabled) p.add("ecs", "is set but backend 'ecs' is not enabled; add ecs to backends or remove this key");
  if (!isObject(raw)) {
    p.add("ecs", `must be an object with any of: ${ECS_KEYS.join(", ")}`);
    return { ...DEFAULTS.ecs };
  }
  unknownKeys(p, "ecs", raw, ECS_KEYS);
  const cpuAllowed = Object.keys(FARGATE_SIZES).map(Number);
  let cpu = DEFAULTS.ecs.cpu;
  if (raw.cpu !== undefined) {
    if (typeof raw.cpu !== "number" || !cpuAllowed.includes(raw.cpu)) p.add("ecs.cpu", `is ${JSON.stringify(raw.cpu)}; allowed: ${cpuAllowed.join(", ")}`);
    else cpu = raw.cpu;
  }
  // Without an explicit memory, keep the default when Fargate allows it with this cpu, else the smallest allowed.
  let memory = FARGATE_SIZES[cpu].includes(DEFAULTS.ecs.memory) ? DEFAULTS.ecs.memory : FARGATE_SIZES[cpu][0];
  if (raw.memory !== undefined) {
    const allowed = FARGATE_SIZES[cpu];
    if (typeof raw.memory !== "number" || !allowed.includes(raw.memory)) {
      p.add("ecs.memory", `is ${JSON.stringify(raw.memory)}; with cpu ${cpu} Fargate allows: ${allowed.join(", ")}`);
    } else memory = raw.memory;
  }
  const architecture = oneOf(p, "ecs.architecture", raw.architecture, Object.keys(ECS_ARCHITECTURES) as EcsArchitecture[], DEFAULTS.ecs.architecture);
  const fargateSpot = bool(p, "ecs.fargateSpot", raw.fargateSpot, DEFAULTS.ecs.fargateSpot);
  // "Linux tasks with the ARM64 architecture don't support the Fargate Spot capacity provider. Fargate Spot only
  // supports Linux tasks with the X86_64 architecture" (ECS Developer Guide, "AWS Fargate capacity providers").
  if (fargateSpot && architecture !== "X86_64") {
    p.add("ecs.fargateSpot", `Fargate Spot runs only X86_64 Linux tasks, and ecs.architecture is ${architecture}; set ecs.architecture: X86_64 or ecs.fargateSpot: false`);
  }
  return {
    architecture,
    cpu,
    memory,
    fargateSpot,
    ephemeralStorageGiB: int(p, "ecs.ephemeralStorageGiB", raw.ephemeralStorageGiB, DEFAULTS.ecs.ephemeralStorageGiB, 21, 200),
  };
}
