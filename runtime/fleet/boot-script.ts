/**
 * User data of a fleet instance. The instance becomes capacity only when this script tags it
 * agent-compute:boot=ready, which it does as its very last step, after Docker runs, the SSM agent runs, the fleet's
 * agent role is recorded (runtime/fleet/agent-credentials.ts) and the agent image is pulled. Any failure tags it boot=failed instead, and fleet sync never registers such an
 * instance. Region and instance id come from IMDSv2 (token first), so the script is the same in every region.
 */
import { agentRoleFileLines } from "./agent-credentials";
import { AGENT_TASK_DOCUMENT_PARAMETERS, GPU_MARKER, INSTANCE_STATE_DIR } from "./document";
import { BOOT_FAILED, BOOT_READY, BOOT_TAG, FLEET_NAME_PATTERN } from "./tags";

export interface BootScriptOptions {
  /** Named fleet the instance belongs to (for its log lines; the launch template sets the fleet tag). */
  fleet: string;
  /** Agent image to pull, the same reference the document runs. */
  image: string;
  /** The fleet's agent role (models only), which the document's script assumes for each task. */
  agentRoleArn: string;
  /**
   * A GPU fleet (g*, p*): the AMI (AWS's Deep Learning Base OSS NVIDIA Driver GPU AMI) carries the driver and the
   * NVIDIA Container Toolkit; the boot registers the toolkit with Docker, proves a container sees the GPUs, and leaves
   * the marker that makes the document run the agent with `--gpus all`.
   */
  gpu?: boolean;
  /** docker pull attempts before the boot counts as failed (registries throttle; default 5). */
  pullAttempts?: number;
  /** Seconds between pull attempts, multiplied by the attempt number (default 10). */
  pullRetryDelaySeconds?: number;
}

const ECR_REGISTRY = /^(\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?)\//;

export function bootScript(options: BootScriptOptions): string {
  const { fleet, image } = options;
  const attempts = options.pullAttempts ?? 5;
  const delay = options.pullRetryDelaySeconds ?? 10;
  if (!FLEET_NAME_PATTERN.test(fleet)) {
    throw new RangeError(`boot script fleet '${fleet}' must match ${FLEET_NAME_PATTERN.source}`);
  }
  if (!new RegExp(AGENT_TASK_DOCUMENT_PARAMETERS.image.allowedPattern).test(image)) {
    throw new RangeError(`boot script image '${image}' must match ${AGENT_TASK_DOCUMENT_PARAMETERS.image.allowedPattern}`);
  }
  if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`pullAttempts must be a positive integer, got ${attempts}`);
  if (!Number.isInteger(delay) || delay < 0) throw new RangeError(`pullRetryDelaySeconds must be a whole number ≥ 0, got ${delay}`);

  const gpu = options.gpu ?? false;
  const roleFile = agentRoleFileLines(options.agentRoleArn).map((line) => `  ${line}`);
  const ecr = ECR_REGISTRY.exec(image);
  const login = ecr
    ? [
        "  # Private ECR image: log in with the instance role first.",
        `  aws ecr get-login-password --region '${ecr[2]}' | docker login --username AWS --password-stdin '${ecr[1]}'`,
      ]
    : [];

  return [
    "#!/bin/bash",
    `# agent-compute fleet '${fleet}': prepare Docker and the agent image, then mark this instance ready.`,
    "set -uo pipefail",
    `AGENT_IMAGE='${image}'`,
    "IMDS=http://169.254.169.254/latest",
    "TOKEN=\"$(curl -sSf -X PUT \"$IMDS/api/token\" -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600')\" || { echo 'IMDSv2 token unavailable' >&2; exit 1; }",
    "INSTANCE_ID=\"$(curl -sSf -H \"X-aws-ec2-metadata-token: $TOKEN\" \"$IMDS/meta-data/instance-id\")\" || exit 1",
    "REGION=\"$(curl -sSf -H \"X-aws-ec2-metadata-token: $TOKEN\" \"$IMDS/meta-data/placement/region\")\" || exit 1",
    "export AWS_REGION=\"$REGION\" AWS_DEFAULT_REGION=\"$REGION\"",
    "",
    "mark_boot() {",
    `  aws ec2 create-tags --region "$REGION" --resources "$INSTANCE_ID" --tags "Key=${BOOT_TAG},Value=$1"`,
    "}",
    "",
    "prepare() {",
    "  command -v docker >/dev/null 2>&1 || dnf install -y docker",
    "  systemctl enable --now docker",
    "  docker info >/dev/null",
    "  # Commands arrive through the SSM agent: without it the instance could never run a task.",
    "  systemctl enable --now amazon-ssm-agent",
    "  # The agent role the task document assumes for each agent's model credentials.",
    ...roleFile,
    ...login,
    ...(gpu
      ? [
          "  # GPU fleet: the driver must see the GPUs, and Docker must hand them to containers (--gpus).",
          "  nvidia-smi -L",
          "  nvidia-ctk runtime configure --runtime=docker",
          "  systemctl restart docker",
        ]
      : []),
    "  local attempt",
    `  for attempt in $(seq 1 ${attempts}); do`,
    "    if docker pull \"$AGENT_IMAGE\"; then",
    "      docker image inspect \"$AGENT_IMAGE\" >/dev/null",
    "      return",
    "    fi",
    `    echo "docker pull failed (attempt $attempt of ${attempts})" >&2`,
    `    sleep $((attempt * ${delay}))`,
    "  done",
    "  return 1",
    "}",
    "",
    ...(gpu
      ? [
          "# The agent's own image must see the GPUs (the toolkit mounts nvidia-smi into it) before the instance is capacity.",
          "check_gpus() {",
          "  docker run --rm --gpus all --entrypoint nvidia-smi \"$AGENT_IMAGE\" -L",
          `  mkdir -p ${INSTANCE_STATE_DIR}`,
          `  echo all > ${GPU_MARKER}`,
          "}",
          "",
        ]
      : []),
    "# set -e applies inside the subshell only: any failing step ends prepare() with a non-zero status.",
    `( set -e; prepare${gpu ? "; check_gpus" : ""} )`,
    "STATUS=$?",
    "if [ \"$STATUS\" -eq 0 ]; then",
    `  mark_boot ${BOOT_READY}`,
    "else",
    `  echo "boot failed with status $STATUS; marking the instance ${BOOT_FAILED}" >&2`,
    `  mark_boot ${BOOT_FAILED}`,
    "  exit \"$STATUS\"",
    "fi",
    "",
  ].join("\n");
}
