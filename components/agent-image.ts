/**
 * The agent image, built by the stack: a stack-owned ECR repository and the image of agent/ (the runner, git and
 * the Claude Agent SDK) built for linux/arm64 and linux/amd64 and pushed there, so a first `pulumi up` needs no
 * image of the operator's own. One image serves every backend (AgentCore and Fargate run arm64; an x86 EC2
 * fleet pulls amd64 from the same manifest list). Setting `image` in the stack config skips all of this.
 *
 * The tag is a hash of the build context, so an unchanged agent/ is not rebuilt into a new tag, and tags can be
 * immutable; backends run the pushed digest.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as dockerBuild from "@pulumi/docker-build";

/** The agent image as the backends need it: what to run, and (for a stack-built image) the repository to grant pulls on. */
export interface AgentImageRef {
  uri: pulumi.Input<string>;
  /** The stack-owned repository's ARN; absent for an operator's own image (its ARN is parsed from the URI). */
  repositoryArn?: pulumi.Input<string>;
}

/** The image reference a backend runs. */
export function imageUri(image: string | AgentImageRef): pulumi.Input<string> {
  return typeof image === "string" ? image : image.uri;
}

/** What an agent principal is granted on Bedrock: the stack's configured models (the default and the repos'). */
export interface AgentModels {
  /** Every model or inference profile the stack configures; agents may invoke these only. */
  readonly allowed: string[];
  /** Given to the agent as ANTHROPIC_MODEL, for tasks whose payload names no model. */
  readonly default: string;
}

export const AGENT_CONTEXT = path.resolve(__dirname, "..", "agent");
export const AGENT_PLATFORMS = ["linux/arm64", "linux/amd64"] as const;
/** What the image is built from (the Dockerfile's COPY sources); node_modules and dist never are (.dockerignore). */
const CONTEXT_ENTRIES = ["Dockerfile", "package.json", "package-lock.json", "scripted-agent.js", "src"];

/** A short, stable hash of the build context's files (names and contents). */
export function contextHash(dir: string = AGENT_CONTEXT): string {
  const hash = createHash("sha256");
  const add = (rel: string) => {
    const full = path.join(dir, rel);
    if (statSync(full).isDirectory()) {
      for (const entry of readdirSync(full).sort()) add(path.join(rel, entry));
    } else {
      hash.update(`${rel}\0`).update(readFileSync(full)).update("\0");
    }
  };
  for (const entry of CONTEXT_ENTRIES) add(entry);
  return hash.digest("hex").slice(0, 16);
}

export interface AgentImageArgs {
  /** Keep this many tagged images in the repository (older ones expire). Default 10. */
  readonly keepImages?: number;
}

export class AgentImage extends pulumi.ComponentResource {
  readonly repository: aws.ecr.Repository;
  readonly image: dockerBuild.Image;
  /** repository@sha256:… — what every backend runs. */
  readonly uri: pulumi.Output<string>;
  readonly ref: AgentImageRef;

  constructor(name: string, args: AgentImageArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:image:AgentImage", name, {}, opts);
    const keep = args.keepImages ?? 10;
    if (!Number.isInteger(keep) || keep < 1 || keep > 1000) {
      throw new pulumi.InputPropertiesError({ message: `AgentImage ${name}: invalid arguments`, errors: [{ propertyPath: "keepImages", reason: `must be a whole number from 1 to 1000, got ${keep}` }] });
    }
    const built = createAgentImage(name, keep, this);
    this.repository = built.repository;
    this.image = built.image;
    this.uri = built.uri;
    this.ref = { uri: this.uri, repositoryArn: this.repository.arn };
    this.registerOutputs({ uri: this.uri, repositoryUrl: this.repository.repositoryUrl });
  }
}

export function createAgentImage(name: string, keepImages: number, parent: pulumi.Resource) {
  const repository = new aws.ecr.Repository(
    `${name}`,
    {
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: "AES256" }],
      forceDelete: true,
    },
    { parent },
  );
  new aws.ecr.LifecyclePolicy(
    `${name}-lifecycle`,
    {
      repository: repository.name,
      policy: JSON.stringify({
        rules: [
          { rulePriority: 1, description: "untagged layers of replaced builds", selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 }, action: { type: "expire" } },
          { rulePriority: 2, description: `keep the ${keepImages} newest images`, selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: keepImages }, action: { type: "expire" } },
        ],
      }),
    },
    { parent },
  );
  const auth = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, { parent });
  const image = new dockerBuild.Image(
    `${name}`,
    {
      context: { location: AGENT_CONTEXT },
      dockerfile: { location: path.join(AGENT_CONTEXT, "Dockerfile") },
      platforms: [...AGENT_PLATFORMS],
      tags: [pulumi.interpolate`${repository.repositoryUrl}:runner-${contextHash()}`],
      push: true,
      // `pulumi preview` stays fast and needs no Docker; `pulumi up` builds (Docker with buildx must be there).
      buildOnPreview: false,
      registries: [{ address: repository.repositoryUrl, username: auth.userName, password: pulumi.secret(auth.password) }],
    },
    { parent },
  );
  const uri = pulumi.interpolate`${repository.repositoryUrl}@${image.digest}`;
  return { repository, image, uri };
}
