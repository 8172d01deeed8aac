/** Facts about AWS the config is checked against, each in one place: Fargate sizes, instance type names, AMIs, ECR image names, EventBridge schedules. */
import type { Architecture } from "./types";

/** Fargate's valid task sizes: CPU units → allowed memory (MiB). */
export const FARGATE_SIZES: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** <family><generation><attributes>.<size>, e.g. m7g.xlarge, c7gn.2xlarge, g5.xlarge. */
const INSTANCE_TYPE = /^([a-z]+)(\d+)([a-z-]*)\.([a-z0-9]+)$/;

/** Architecture and GPU-ness of an EC2 instance type, or undefined when the name is not an instance type. */
export function describeInstanceType(instanceType: string): { architecture: Architecture; gpu: boolean } | undefined {
  const m = INSTANCE_TYPE.exec(instanceType);
  if (!m) return undefined;
  const [, family, , attributes] = m;
  const architecture: Architecture = attributes.includes("g") || family === "a" ? "arm64" : "x86_64";
  const gpu = family === "g" || family === "p" || family === "gr";
  return { architecture, gpu };
}

/** The SSM public parameter of the default AMI: AL2023, or the AL2023 NVIDIA-driver base image for GPU types. */
export function defaultAmiParameter(architecture: Architecture, gpu: boolean): string {
  return gpu
    ? `/aws/service/deeplearning/ami/${architecture}/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id`
    : `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${architecture}`;
}

/** An image in Amazon ECR (the only registry AgentCore pulls from), by tag or digest. */
export const ECR_IMAGE = /^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/[a-z0-9._\/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/;

/** ECS task CPU architectures (RuntimePlatform.cpuArchitecture), and the image architecture each one runs. */
export const ECS_ARCHITECTURES = { ARM64: "arm64", X86_64: "x86_64" } as const satisfies Record<string, Architecture>;
export type EcsArchitecture = keyof typeof ECS_ARCHITECTURES;

/**
 * AMD GPU instance types (g4ad: Radeon Pro V520). `docker run --gpus` and the NVIDIA driver AMI drive NVIDIA GPUs only.
 */
const AMD_GPU_TYPE = /^g4ad\./;
export function isAmdGpuType(instanceType: string): boolean {
  return AMD_GPU_TYPE.test(instanceType);
}

/**
 * Why an EventBridge rule would refuse this schedule expression, or undefined if it accepts it (EventBridge User
 * Guide, "Rate expressions reference" and "Cron expressions reference"):
 * - rate(value unit): value a positive whole number; unit minute|hour|day when value is 1, minutes|hours|days otherwise.
 * - cron(fields): six fields (minutes hours day-of-month month day-of-week year); one of day-of-month and day-of-week
 *   must be '?' (both may not be specified).
 */
export function scheduleExpressionProblem(expression: string): string | undefined {
  const rate = /^rate\((\d+) ([a-z]+)\)$/.exec(expression);
  if (rate) {
    const value = Number(rate[1]);
    const unit = rate[2];
    if (!["minute", "minutes", "hour", "hours", "day", "days"].includes(unit)) return `rate unit '${unit}' is not one of minute, minutes, hour, hours, day, days`;
    if (value < 1 || rate[1].startsWith("0")) return `rate value must be a whole number of at least 1 without leading zeros, got '${rate[1]}'`;
    const plural = unit.endsWith("s");
    if (value === 1 && plural) return `rate(1 ${unit}) is refused: a value of 1 takes the singular unit, rate(1 ${unit.slice(0, -1)})`;
    if (value > 1 && !plural) return `rate(${value} ${unit}) is refused: a value above 1 takes the plural unit, rate(${value} ${unit}s)`;
    return undefined;
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron) {
    const fields = cron[1].trim().split(/\s+/);
    if (fields.length !== 6) return `cron(...) needs six fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`;
    const names = ["minutes", "hours", "day-of-month", "month", "day-of-week", "year"];
    const allowed = [/^[0-9,\-*/]+$/, /^[0-9,\-*/]+$/, /^[0-9,\-*?/LW]+$/, /^[0-9A-Za-z,\-*/]+$/, /^[0-9A-Za-z,\-*?/L#]+$/, /^[0-9,\-*/]+$/];
    for (let i = 0; i < 6; i++) {
      if (!allowed[i].test(fields[i])) return `cron ${names[i]} field '${fields[i]}' has characters that field does not allow`;
    }
    if ((fields[2] === "?") === (fields[4] === "?")) return "cron(...) needs '?' in exactly one of day-of-month and day-of-week";
    return undefined;
  }
  return "must be rate(value unit) or cron(six fields)";
}
