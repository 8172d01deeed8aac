/**
 * image, images and imageMultiArch: which agent image each CPU architecture runs. ECS (by ecs.architecture, ARM64 by
 * default), AgentCore (always ARM64) and each EC2 fleet (by its instance type: m7g is ARM64, g5 is x86_64) run an
 * architecture; an image built for the other one fails at the first task ("exec format error"). So a stack whose
 * backends run both architectures either names an image per architecture or states that its one image is a
 * multi-arch manifest list. Neither set: the stack builds agent/ for linux/arm64 and linux/amd64 itself.
 */
import { ECS_ARCHITECTURES } from "./aws-tables";
import { bool, isObject, str, unknownKeys, type Problems } from "./checks";
import { DEFAULTS } from "./defaults";
import type { Architecture, CloudBackend, EcsSettings, FleetSettings } from "./types";

export const ARCHITECTURES: readonly Architecture[] = ["arm64", "x86_64"];

/** Who runs which architecture, for messages an operator can act on. */
export interface ArchitectureUse {
  architecture: Architecture;
  by: string;
}

export function architectureUses(backends: CloudBackend[], ecs: EcsSettings, fleets: Record<string, FleetSettings>): ArchitectureUse[] {
  const uses: ArchitectureUse[] = [];
  if (backends.includes("ecs")) uses.push({ architecture: ECS_ARCHITECTURES[ecs.architecture], by: `ecs (ecs.architecture ${ecs.architecture})` });
  // AgentCore Runtime runs ARM64 containers only.
  if (backends.includes("agentcore")) uses.push({ architecture: "arm64", by: "agentcore" });
  for (const [name, f] of Object.entries(fleets)) uses.push({ architecture: f.architecture, by: `fleets.${name} (${f.instanceType})` });
  return uses;
}

export interface ImageSettings {
  /** The operator's one image for every backend; undefined when `images` or the stack-built image is used. */
  image?: string;
  /** The operator's image per architecture in use; an architecture missing here runs the stack-built image. */
  images: Partial<Record<Architecture, string>>;
}

export function validateImages(p: Problems, raw: { image?: unknown; images?: unknown; imageMultiArch?: unknown }, uses: ArchitectureUse[]): ImageSettings {
  const image = str(p, "image", raw.image);
  const multiArch = bool(p, "imageMultiArch", raw.imageMultiArch, DEFAULTS.imageMultiArch);
  const inUse = ARCHITECTURES.filter((a) => uses.some((u) => u.architecture === a));
  const who = (a: Architecture) => uses.filter((u) => u.architecture === a).map((u) => u.by).join(", ");
  // Pulumi.yaml declares imageMultiArch with a default of false, so only a true value can be misplaced.
  if (multiArch && image === undefined) {
    p.add("imageMultiArch", "applies only to image (it states that image is a multi-arch manifest list); remove it");
  }
  if (raw.images !== undefined) {
    if (image !== undefined) p.add("images", "set either image (one image for every backend) or images (one per architecture), not both");
    if (!isObject(raw.images)) {
      p.add("images", `must map architectures to images, e.g. {"arm64": "<repo>:<tag>-arm64", "x86_64": "<repo>:<tag>-amd64"}`);
      return { images: {} };
    }
    unknownKeys(p, "images", raw.images, ARCHITECTURES);
    const images: Partial<Record<Architecture, string>> = {};
    for (const a of ARCHITECTURES) {
      const v = str(p, `images.${a}`, raw.images[a]);
      if (v !== undefined && !inUse.includes(a)) p.add(`images.${a}`, `is set but no enabled backend runs ${a}; in use: ${inUse.map((x) => `${x} (${who(x)})`).join("; ") || "none"}`);
      else if (v !== undefined) images[a] = v;
    }
    for (const a of inUse) {
      if (raw.images[a] === undefined) p.add(`images.${a}`, `is required: ${who(a)} run ${a}`);
    }
    return { images };
  }
  if (image === undefined) return { images: {} };
  if (inUse.length > 1 && !multiArch) {
    p.add(
      "image",
      `'${image}' would serve arm64 (${who("arm64")}) and x86_64 (${who("x86_64")}); set imageMultiArch: true if it is a multi-arch ` +
        "manifest list (linux/arm64 and linux/amd64), or give images: {arm64: ..., x86_64: ...} instead",
    );
  }
  return { image, images: Object.fromEntries(ARCHITECTURES.map((a) => [a, image])) };
}
