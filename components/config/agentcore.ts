/** agentcore: the AgentCore Runtime's image, network mode and session lifetimes (backend agentcore). */
import { ECR_IMAGE } from "./aws-tables";
import { AGENTCORE_LIFETIME_BOUNDS } from "./aws-quotas";
import { int, isObject, oneOf, str, unknownKeys, type Problems } from "./checks";
import { DEFAULTS } from "./defaults";
import type { AgentCoreSettings } from "./types";

const AGENTCORE_KEYS = ["image", "networkMode", "idleTimeoutSeconds", "maxLifetimeSeconds"];

/** `image`: the operator's arm64 image (AgentCore runs ARM64 only), named in messages by `imageKey` (image or images.arm64). */
export function validateAgentCore(p: Problems, raw: unknown, enabled: boolean, image: string | undefined, imageKey = "image"): AgentCoreSettings {
  const settings = raw ?? {};
  if (raw !== undefined && raw !== null && !enabled) p.add("agentcore", "is set but backend 'agentcore' is not enabled");
  if (!isObject(settings)) {
    p.add("agentcore", `must be an object with any of: ${AGENTCORE_KEYS.join(", ")}`);
    return { image, ...DEFAULTS.agentcore };
  }
  unknownKeys(p, "agentcore", settings, AGENTCORE_KEYS);
  const own = str(p, "agentcore.image", settings.image);
  // Neither set: the stack-built image, which is in the stack's own ECR repository.
  const runtimeImage = own ?? image;
  if (enabled && runtimeImage && !ECR_IMAGE.test(runtimeImage)) {
    p.add(own ? "agentcore.image" : imageKey, `AgentCore runs only images from Amazon ECR (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>), got '${runtimeImage}'; set agentcore.image to an ECR copy`);
  }
  const { min, max } = AGENTCORE_LIFETIME_BOUNDS;
  const idle = int(p, "agentcore.idleTimeoutSeconds", settings.idleTimeoutSeconds, DEFAULTS.agentcore.idleTimeoutSeconds, min, max);
  const life = int(p, "agentcore.maxLifetimeSeconds", settings.maxLifetimeSeconds, DEFAULTS.agentcore.maxLifetimeSeconds, min, max);
  if (idle > life) p.add("agentcore.idleTimeoutSeconds", `(${idle}) exceeds agentcore.maxLifetimeSeconds (${life})`);
  return {
    image: runtimeImage,
    networkMode: oneOf(p, "agentcore.networkMode", settings.networkMode, ["VPC", "PUBLIC"] as const, DEFAULTS.agentcore.networkMode),
    idleTimeoutSeconds: idle,
    maxLifetimeSeconds: life,
  };
}
