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

/** An EventBridge schedule expression as the fleet manager accepts it. */
export const SCHEDULE = /^(rate\(\d+ (minute|minutes|hour|hours)\)|cron\(.+\))$/;
