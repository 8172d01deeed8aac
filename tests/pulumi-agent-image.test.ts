/**
 * The agent image and the agents' Bedrock grants, through the Pulumi program under mocks. Without `image` the
 * stack builds agent/ for arm64 and amd64 into its own ECR repository and every backend runs that digest; with
 * `image` nothing is built. Agent principals may invoke exactly the configured models; no other principal may.
 */
import { expect } from "chai";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { AGENT_CONTEXT, contextHash } from "../components/agent-image";
import { bedrockModelResources } from "../components/iam";
import { bootScript } from "../runtime/fleet/boot-script";
import { ACCOUNT, COMBINATIONS, IMAGE, REGION, runProgramCached, type ProgramRun } from "./pulumi-mocks";

const DIGEST = `sha256:${"d".repeat(64)}`;

async function run(label: string): Promise<ProgramRun> {
  const r = await runProgramCached(COMBINATIONS[label]);
  if (r.error) throw r.error;
  return r;
}

function statementsOf(r: ProgramRun, nameIncludes: string): any[] {
  return r
    .byType("aws:iam/rolePolicy:RolePolicy")
    .filter((p) => p.name.includes(nameIncludes))
    .flatMap((p) => JSON.parse(p.inputs.policy).Statement);
}

describe("the agent image the stack builds", function () {
  this.timeout(300_000);

  it("without `image`: a stack-owned ECR repository and a multi-arch build of agent/ pushed to it, tagged by content", async () => {
    const r = await run("all three");
    const repo = r.one("aws:ecr/repository:Repository");
    expect(repo.inputs).to.deep.include({ imageTagMutability: "IMMUTABLE", imageScanningConfiguration: { scanOnPush: true } });
    expect(r.parentOf(repo)?.type).to.equal("agent-compute:image:AgentImage");
    expect(r.byType("aws:ecr/lifecyclePolicy:LifecyclePolicy")).to.have.length(1);
    const image = r.one("docker-build:index:Image");
    expect(image.inputs.platforms).to.have.members(["linux/arm64", "linux/amd64"]);
    expect(image.inputs.push).to.equal(true);
    expect(image.inputs.context.location).to.equal(AGENT_CONTEXT);
    expect(image.inputs.dockerfile.location).to.equal(path.join(AGENT_CONTEXT, "Dockerfile"));
    const repoUrl = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${repo.name}`;
    expect(image.inputs.tags).to.deep.equal([`${repoUrl}:runner-${contextHash()}`]);
    // Secret-wrapped: the registry password is an ECR token.
    expect(image.inputs.registries.value[0]).to.include({ address: repoUrl, username: "AWS" });
    expect(image.inputs.buildOnPreview).to.equal(false);
  });

  it("every backend runs the pushed digest, and each pulling role may pull from that repository only", async () => {
    const r = await run("all three");
    const repo = r.one("aws:ecr/repository:Repository");
    const uri = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${repo.name}@${DIGEST}`;
    expect(JSON.parse(r.one("aws:ecs/taskDefinition:TaskDefinition").inputs.containerDefinitions)[0].image).to.equal(uri);
    expect(r.one("aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime").inputs.agentRuntimeArtifact.containerConfiguration.containerUri).to.equal(uri);
    const lt = r.one("aws:ec2/launchTemplate:LaunchTemplate");
    expect(Buffer.from(lt.inputs.userData, "base64").toString()).to.equal(bootScript({ fleet: "default", image: uri, agentRoleArn: `arn:aws:iam::${ACCOUNT}:role/agent-compute-test-fleet-default-agent-role` }));
    const pulls = r
      .byType("aws:iam/rolePolicy:RolePolicy")
      .flatMap((p) => JSON.parse(p.inputs.policy).Statement)
      .filter((s: any) => [].concat(s.Action).includes("ecr:BatchGetImage" as never));
    expect(pulls.length).to.equal(3); // ECS execution role, AgentCore role, fleet instance role
    for (const s of pulls) expect(s.Resource).to.deep.equal([`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/${repo.name}`]);
    expect(r.outputs.agentImages).to.deep.equal({ arm64: uri });
  });

  it("with `image`: nothing is built and the backends run that image", async () => {
    const r = await run("ecs alone");
    expect(r.byType("aws:ecr/repository:Repository")).to.deep.equal([]);
    expect(r.byType("docker-build:index:Image")).to.deep.equal([]);
    expect(JSON.parse(r.one("aws:ecs/taskDefinition:TaskDefinition").inputs.containerDefinitions)[0].image).to.equal(IMAGE);
  });
});

describe("Bedrock grants", function () {
  this.timeout(300_000);
  const DEFAULT = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
  const HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0";

  it("model ids, inference profiles and ARNs become exactly the resources invoking them needs", async () => {
    const resources = await (pulumi.output(bedrockModelResources([DEFAULT, HAIKU, "eu.anthropic.claude-opus-4-1-20250805-v1:0", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", HAIKU], "us-east-1", "123456789012")) as any).promise();
    expect(resources).to.deep.equal([
      `arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}`,
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc",
      "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-opus-4-1-20250805-v1:0",
      "arn:aws:bedrock:*::foundation-model/anthropic.claude-opus-4-1-20250805-v1:0",
      `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${DEFAULT}`,
      "arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
      "arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
    ]);
  });

  it("each agent principal may invoke the stack's default model and the repos' models, streaming or not, and nothing else", async () => {
    const r = await run("all three");
    const expected = [
      `arn:aws:bedrock:${REGION}::foundation-model/${HAIKU}`,
      `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/${DEFAULT}`,
      "arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
      "arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
    ];
    const bedrock = r
      .byType("aws:iam/rolePolicy:RolePolicy")
      .map((p) => ({ name: p.name, statements: JSON.parse(p.inputs.policy).Statement.filter((s: any) => [].concat(s.Action).some((a: string) => a.startsWith("bedrock:"))) }))
      .filter((p) => p.statements.length);
    // The EC2 fleet's agent role, not its instance role: the agent container cannot reach the instance role
    // (IMDSv2, hop limit 1), and the SSM agent and scripts that hold it call no model.
    expect(bedrock.map((p) => p.name).sort()).to.deep.equal([
      "agent-compute-test-agentcore-policy",
      "agent-compute-test-ecs-task-policy",
      "agent-compute-test-fleet-default-agent-policy",
    ]);
    for (const p of bedrock) {
      expect(p.statements, p.name).to.have.length(1);
      expect(p.statements[0].Action).to.deep.equal(["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]);
      expect(p.statements[0].Resource).to.have.members(expected);
    }
  });

  it("agents are told the stack's default model (ANTHROPIC_MODEL) for tasks that name none", async () => {
    const r = await run("all three");
    const env = JSON.parse(r.one("aws:ecs/taskDefinition:TaskDefinition").inputs.containerDefinitions)[0].environment;
    expect(env).to.deep.include({ name: "ANTHROPIC_MODEL", value: DEFAULT });
    expect(r.one("aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime").inputs.environmentVariables.ANTHROPIC_MODEL).to.equal(DEFAULT);
    expect(JSON.parse(r.one("aws:ssm/document:Document").inputs.content).mainSteps[0].inputs.runCommand).to.include(`ANTHROPIC_MODEL='${DEFAULT}'`);
  });
});

describe("repository credential secrets", function () {
  this.timeout(300_000);

  it("only the task API (the agent channel) may read them: its grant is the prefix, no other role has any Secrets Manager action", async () => {
    const r = await run("all three");
    const prefix = "agent-compute-test/git";
    const policies = r.byType("aws:iam/rolePolicy:RolePolicy").map((p) => ({ name: p.name, statements: JSON.parse(p.inputs.policy).Statement as any[] }));
    const readers = policies.filter((p) => p.statements.some((s) => [].concat(s.Action).some((a: string) => a.startsWith("secretsmanager:"))));
    expect(readers.map((p) => p.name)).to.deep.equal(["agent-compute-test-api-policy"]);
    expect(readers[0].statements.find((s) => s.Sid === "RepoCredentialSecrets")).to.deep.equal({
      Sid: "RepoCredentialSecrets",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue"],
      Resource: [`arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${prefix}/*`],
    });
    expect(r.byType("aws:secretsmanager/secret:Secret").map((s) => s.inputs.name)).to.have.members([`${prefix}/github-app`, `${prefix}/default`]);
    const denies = r.byType("aws:secretsmanager/secretPolicy:SecretPolicy").map((p) => JSON.parse(p.inputs.policy).Statement[0]);
    expect(denies).to.have.length(2);
    for (const d of denies) {
      expect(d).to.deep.include({ Effect: "Deny", Action: "secretsmanager:GetSecretValue" });
      expect(d.Condition.StringNotEquals["aws:PrincipalArn"]).to.deep.equal([`arn:aws:iam::${ACCOUNT}:role/agent-compute-test-api-role`]);
    }
    const apiConfig = JSON.parse(r.one("aws:lambda/function:Function", "api").inputs.environment.variables.AGENT_COMPUTE_CONFIG);
    expect(apiConfig.credentials).to.deep.equal({ kind: "secrets-manager", prefix });
  });
});
