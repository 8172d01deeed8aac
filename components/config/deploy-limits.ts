/**
 * Checks across sections that stand for an AWS limit a deployed stack would otherwise hit at `pulumi up` or at its
 * first task: the SSM executionTimeout cap on taskTimeoutSeconds, the images the SSM document can carry, and the
 * 4 KB Lambda environment that carries the runtime config.
 */
import type { IdentityConfig } from "../../runtime/config";
import { AGENT_TASK_DOCUMENT_PARAMETERS, EXECUTION_TIMEOUT_BOUNDS } from "../../runtime/fleet/document";
import { LAMBDA_ENVIRONMENT_MAX_BYTES } from "./aws-quotas";
import type { Problems } from "./checks";
import type { Architecture, CloudBackend, FleetSettings } from "./types";

/**
 * Upper bounds of what each Lambda's environment (the runtime config as JSON, escaped as a JSON string) spends on:
 * everything but fleets, images and identity, with the longest names the config allows; one fleet's entry without
 * its image; the stack-built image's reference (<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<64 hex>).
 * tests/pulumi-limits.test.ts measures real environments and holds them under this estimate.
 */
export const ENVIRONMENT_BASE_BYTES = 2000;
export const ENVIRONMENT_FLEET_BYTES = 300;
export const BUILT_IMAGE_REFERENCE_MAX_BYTES = 200;

export interface EnvironmentInputs {
  backends: CloudBackend[];
  fleets: Record<string, FleetSettings>;
  defaultFleet?: string;
  images: Partial<Record<Architecture, string>>;
  identity: IdentityConfig;
}

/** The most bytes a Lambda environment of this stack can take (see the constants above). */
export function environmentBytesEstimate(c: EnvironmentInputs): number {
  const imageBytes = (a: Architecture) => (c.images[a] !== undefined ? c.images[a]!.length + 12 : BUILT_IMAGE_REFERENCE_MAX_BYTES);
  let bytes = ENVIRONMENT_BASE_BYTES + Buffer.byteLength(JSON.stringify(JSON.stringify(c.identity)), "utf8");
  if (c.backends.includes("ec2")) {
    const defaultArch = c.fleets[c.defaultFleet ?? ""]?.architecture ?? "arm64";
    bytes += imageBytes(defaultArch);
    for (const f of Object.values(c.fleets)) {
      bytes += ENVIRONMENT_FLEET_BYTES;
      // A fleet names its own image only when it differs from the default fleet's (index.ts).
      if (c.images[f.architecture] !== c.images[defaultArch]) bytes += imageBytes(f.architecture);
    }
  }
  return bytes;
}

export function checkLambdaEnvironment(p: Problems, c: EnvironmentInputs): void {
  const bytes = environmentBytesEstimate(c);
  if (bytes <= LAMBDA_ENVIRONMENT_MAX_BYTES) return;
  const fleets = Object.keys(c.fleets).length;
  p.add(
    fleets > 1 ? "fleets" : "identity",
    `the runtime config every Lambda carries in its environment could reach ${bytes} bytes (${fleets} fleet${fleets === 1 ? "" : "s"}, identity ${JSON.stringify(c.identity).length} bytes); Lambda allows ${LAMBDA_ENVIRONMENT_MAX_BYTES}: use fewer fleets, shorter image references or a smaller identity map`,
  );
}

export interface DeployLimitInputs {
  backends: CloudBackend[];
  fleets: Record<string, FleetSettings>;
  images: Partial<Record<Architecture, string>>;
  /** The config key an architecture's image came from (image or images.<arch>), for messages. */
  imageKey: (architecture: Architecture) => string;
  taskTimeoutSeconds: number;
}

export function checkDeployLimits(p: Problems, c: DeployLimitInputs): void {
  if (!c.backends.includes("ec2")) return;
  // The EC2 start sends taskTimeoutSeconds as the document's executionTimeout, which aws:runShellScript caps at
  // 172,800 s (SSM User Guide, "aws:runShellScript" timeoutSeconds); above it every EC2 start would fail.
  if (c.taskTimeoutSeconds > EXECUTION_TIMEOUT_BOUNDS.max) {
    p.add("taskTimeoutSeconds", `(${c.taskTimeoutSeconds}) exceeds ${EXECUTION_TIMEOUT_BOUNDS.max}, the longest an SSM command may run, and backend ec2 is enabled; at most ${EXECUTION_TIMEOUT_BOUNDS.max} (48 hours)`);
  }
  const pattern = new RegExp(AGENT_TASK_DOCUMENT_PARAMETERS.image.allowedPattern);
  for (const [name, fleet] of Object.entries(c.fleets)) {
    const image = c.images[fleet.architecture];
    if (image !== undefined && !pattern.test(image)) {
      p.add(c.imageKey(fleet.architecture), `'${image}' cannot be sent to EC2 instances (fleets.${name}): the SSM document accepts only ${AGENT_TASK_DOCUMENT_PARAMETERS.image.allowedPattern}`);
    }
  }
}
