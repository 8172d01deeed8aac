/**
 * The stack-owned SSM Command document that runs one agent task on a fleet instance. The Pulumi fleet component
 * creates an aws.ssm.Document from agentTaskDocument(); Ec2Strategy sends it with agentTaskParameters().
 *
 * Only validated ids and URIs ever reach the instance: every parameter has an allowedPattern (SSM rejects a
 * SendCommand whose values do not match, and agentTaskParameters checks the same patterns before sending). No
 * pattern admits a quote, `$`, a backtick, whitespace or a newline, so the values can sit inside single quotes in
 * the script, where SSM substitutes {{ name }} textually. The task's own text (prompt, repo URL, branch) travels
 * only inside the payload object, which the script downloads by its presigned URL to a file and mounts read-only
 * into the container. The container runs on Docker's bridge network: the instance requires IMDSv2 with a hop limit
 * of 1, so the container cannot reach the instance metadata service, and holds none of the instance role's rights.
 * Its model credentials are the fleet's agent role's, assumed for the task and refreshed by the host
 * (./agent-credentials.ts).
 */

import { PAYLOAD_MAX_BYTES } from "../payload/limits";
import { agentCredentialFunctions, agentCredentialSetup } from "./agent-credentials";

export interface DocumentParameterSpec {
  description: string;
  /** Anchored regular expression; the same text is SSM's allowedPattern and our own check. */
  allowedPattern: string;
}

export const AGENT_TASK_DOCUMENT_PARAMETERS = {
  taskId: {
    description: "Task id: 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit.",
    allowedPattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
  },
  payloadUrl: {
    description: "Short-lived presigned HTTPS GET URL of the task's payload object.",
    allowedPattern: "^https://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?/[A-Za-z0-9._~/?&=%+-]{1,6000}$",
  },
  image: {
    description: "Agent container image reference (registry/repository:tag or @digest), as pulled at boot.",
    allowedPattern: "^[a-z0-9][A-Za-z0-9._/:@-]{0,254}$",
  },
  executionTimeout: {
    description: "Seconds the agent may run (100–172800). Required: the 1-hour SSM default never applies.",
    allowedPattern: "^[1-9][0-9]{2,5}$",
  },
} as const satisfies Record<string, DocumentParameterSpec>;

export type AgentTaskParameterName = keyof typeof AGENT_TASK_DOCUMENT_PARAMETERS;
export type AgentTaskParameterValues = Record<AgentTaskParameterName, string>;

/** SSM's limits for aws:runShellScript timeoutSeconds (our lower bound leaves room for the script's own cleanup). */
export const EXECUTION_TIMEOUT_BOUNDS = { min: 100, max: 172_800 } as const;

/** Seconds the script keeps for its cleanup before SSM's executionTimeout would kill it. */
const CLEANUP_SECONDS = 30;

/** Parameters whose values are secrets while they last: an error never shows them. */
const SECRET_PARAMETERS: readonly AgentTaskParameterName[] = ["payloadUrl"];

/** Where the payload file appears inside the agent container. */
export const CONTAINER_PAYLOAD_PATH = "/agent/payload.json";

/** The instance's own state folder; each task gets a work folder inside it. */
export const INSTANCE_STATE_DIR = "/var/lib/agent-compute";

/**
 * Written by a GPU fleet's boot script once a container has seen the GPUs (`docker run --gpus all … nvidia-smi`); the
 * document then starts the agent with `--gpus all`. Absent on other instances, whose Docker has no GPU runtime.
 */
export const GPU_MARKER = `${INSTANCE_STATE_DIR}/gpus`;

/** Label on every agent container the document starts, so a leftover one can be found and removed. */
export const CONTAINER_TASK_LABEL = "agent-compute.task";

export class DocumentParameterError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
    this.name = "DocumentParameterError";
  }
}

/**
 * The SendCommand Parameters for one task, each value checked against its allowedPattern here, before SSM sees it,
 * so a bad value fails with a message naming the parameter instead of an opaque InvalidParameters.
 */
export function agentTaskParameters(values: AgentTaskParameterValues): Record<AgentTaskParameterName, string[]> {
  const out = {} as Record<AgentTaskParameterName, string[]>;
  for (const name of Object.keys(AGENT_TASK_DOCUMENT_PARAMETERS) as AgentTaskParameterName[]) {
    const spec = AGENT_TASK_DOCUMENT_PARAMETERS[name];
    const value = values[name];
    if (typeof value !== "string" || !new RegExp(spec.allowedPattern).test(value)) {
      const shown =
        typeof value !== "string"
          ? String(value)
          : SECRET_PARAMETERS.includes(name)
            ? `a value of ${value.length} characters (not shown: it is a secret)`
            : JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
      throw new DocumentParameterError(name, `SSM document parameter ${name} is ${shown}; it must match ${spec.allowedPattern} (${spec.description})`);
    }
    out[name] = [value];
  }
  const timeout = Number(values.executionTimeout);
  if (timeout < EXECUTION_TIMEOUT_BOUNDS.min || timeout > EXECUTION_TIMEOUT_BOUNDS.max) {
    throw new DocumentParameterError(
      "executionTimeout",
      `SSM document parameter executionTimeout is ${timeout}; it must be between ${EXECUTION_TIMEOUT_BOUNDS.min} and ${EXECUTION_TIMEOUT_BOUNDS.max} seconds`,
    );
  }
  return out;
}

/** Model ids the document may name: the API's own pattern (no quote, `$`, backtick or whitespace). */
export const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

export interface AgentTaskDocumentOptions {
  /** The stack's model, given to the agent as ANTHROPIC_MODEL for tasks that name none (as on ECS and AgentCore). */
  model: string;
}

/** The shell script of the document, one line per array entry (aws:runShellScript runCommand). */
export function agentTaskScript(options: AgentTaskDocumentOptions): string[] {
  if (!MODEL_ID_PATTERN.test(options.model)) throw new RangeError(`document model '${options.model}' must match ${MODEL_ID_PATTERN.source}`);
  return [
    "#!/bin/bash",
    "set -euo pipefail",
    // SSM substitutes the parameters textually; allowedPattern admits no quote, so single quotes hold them safely.
    "TASK_ID='{{ taskId }}'",
    "PAYLOAD_URL='{{ payloadUrl }}'",
    "AGENT_IMAGE='{{ image }}'",
    "EXECUTION_TIMEOUT='{{ executionTimeout }}'",
    `ANTHROPIC_MODEL='${options.model}'`,
    // The SSM agent's shell has no AWS_REGION; the instance's region comes from IMDSv2 (token required). The agent
    // gets the region (for its model calls), never the instance's credentials.
    "IMDS=http://169.254.169.254/latest",
    "IMDS_TOKEN=\"$(curl -sSf -X PUT \"$IMDS/api/token\" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')\"",
    "AWS_REGION=\"$(curl -sSf -H \"X-aws-ec2-metadata-token: $IMDS_TOKEN\" \"$IMDS/meta-data/placement/region\")\"",
    "AWS_DEFAULT_REGION=\"$AWS_REGION\"",
    "unset IMDS_TOKEN",
    "export AWS_REGION AWS_DEFAULT_REGION TASK_ID ANTHROPIC_MODEL",
    // One task per instance: a container an interrupted earlier run left behind is removed first.
    `docker ps -aq --filter label=${CONTAINER_TASK_LABEL} | xargs -r docker rm -f >/dev/null`,
    `mkdir -p ${INSTANCE_STATE_DIR}`,
    `WORK_DIR="$(mktemp -d ${INSTANCE_STATE_DIR}/task.XXXXXX)"`,
    "CONTAINER=\"agent-$TASK_ID\"",
    // A GPU fleet's boot proved GPU access and left the marker: the agent gets every GPU of its instance.
    "GPU_FLAGS=()",
    `if [ -f ${GPU_MARKER} ]; then GPU_FLAGS=(--gpus all); fi`,
    "REFRESHER=''",
    // shellcheck cannot see that the EXIT trap calls cleanup.
    "# shellcheck disable=SC2317",
    "cleanup() {",
    "  if [ -n \"$REFRESHER\" ]; then kill \"$REFRESHER\" 2>/dev/null || true; wait \"$REFRESHER\" 2>/dev/null || true; fi",
    "  docker rm -f \"$CONTAINER\" >/dev/null 2>&1 || true",
    "  rm -rf \"$WORK_DIR\"",
    "}",
    "trap cleanup EXIT",
    "trap 'exit 143' TERM INT",
    // The payload (prompt, repo, context, the task's token; up to 2 MiB) goes to a file and is never read into the
    // shell. curl never prints the URL; the file is capped at the payload limit.
    `curl -sSf --retry 3 --max-filesize ${PAYLOAD_MAX_BYTES} -o "$WORK_DIR/payload.json" "$PAYLOAD_URL"`,
    "unset PAYLOAD_URL",
    "chmod 0755 \"$WORK_DIR\"",
    "chmod 0644 \"$WORK_DIR/payload.json\"",
    ...agentCredentialFunctions(),
    ...agentCredentialSetup(),
    // Bridge network (Docker's default), not host: IMDSv2's hop limit of 1 keeps the instance role out of reach.
    `docker run -d --name "$CONTAINER" --label "${CONTAINER_TASK_LABEL}=$TASK_ID" --network bridge "\${GPU_FLAGS[@]}" \\`,
    `  -v "$WORK_DIR/payload.json:${CONTAINER_PAYLOAD_PATH}:ro" \\`,
    `  -e AGENT_PAYLOAD_URL=${CONTAINER_PAYLOAD_PATH} -e TASK_ID -e AWS_REGION -e AWS_DEFAULT_REGION -e ANTHROPIC_MODEL "\${AWS_ARGS[@]}" \\`,
    "  \"$AGENT_IMAGE\" >/dev/null",
    // docker wait prints the container's exit code; it is bounded below executionTimeout so the cleanup still runs.
    "set +e",
    `EXIT_CODE="$(timeout "$((EXECUTION_TIMEOUT - ${CLEANUP_SECONDS}))" docker wait "$CONTAINER")"`,
    "WAIT_STATUS=$?",
    "set -e",
    "if [ \"$WAIT_STATUS\" -ne 0 ] || [ -z \"$EXIT_CODE\" ]; then",
    "  echo \"agent container did not finish within $EXECUTION_TIMEOUT seconds; stopping it\" >&2",
    "  docker stop -t 20 \"$CONTAINER\" >/dev/null 2>&1 || true",
    "  exit 124",
    "fi",
    "exit \"$EXIT_CODE\"",
  ];
}

/** The full document content (schemaVersion 2.2), ready for aws.ssm.Document `content` (as JSON). */
export function agentTaskDocument(options: AgentTaskDocumentOptions): Record<string, unknown> {
  const parameters = Object.fromEntries(
    Object.entries(AGENT_TASK_DOCUMENT_PARAMETERS).map(([name, spec]) => [
      name,
      // No defaults: a caller that omits a parameter (above all executionTimeout) is refused by SSM.
      { type: "String", description: spec.description, allowedPattern: spec.allowedPattern },
    ]),
  );
  return {
    schemaVersion: "2.2",
    description: "agent-compute: run one agent task in a container on this instance (payload mounted read-only, bridge network).",
    parameters,
    mainSteps: [
      {
        action: "aws:runShellScript",
        name: "runAgentTask",
        precondition: { StringEquals: ["platformType", "Linux"] },
        inputs: {
          timeoutSeconds: "{{ executionTimeout }}",
          runCommand: agentTaskScript(options),
        },
      },
    ],
  };
}
