import { expect } from "chai";
import { bootScript } from "../runtime/fleet/boot-script";
import { ACCOUNT, COMBINATIONS, IMAGE, runProgram, runProgramCached, type ProgramRun, type RecordedResource } from "./pulumi-mocks";

const T = {
  network: "agent-compute:network:Network",
  tables: "agent-compute:storage:TaskTables",
  bucket: "agent-compute:storage:PayloadBucket",
  ecs: "agent-compute:ecs:EcsAgentCluster",
  agentcore: "agent-compute:agentcore:AgentCoreRuntime",
  fleet: "agent-compute:ec2:Ec2AgentFleet",
  document: "agent-compute:ec2:CommandDocument",
  fleetManager: "agent-compute:ec2:FleetManager",
  orchestrator: "agent-compute:orchestrator:TaskOrchestrator",
  api: "agent-compute:api:TaskApi",
};

/** Per backend: the component and the resources that must be its children. */
const BACKEND_PARTS: Record<"ecs" | "agentcore" | "ec2", [string, string[]][]> = {
  ecs: [[T.ecs, ["aws:ecs/cluster:Cluster", "aws:ecs/taskDefinition:TaskDefinition", "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "aws:ec2/securityGroup:SecurityGroup", "aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role"]]],
  agentcore: [[T.agentcore, ["aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime", "aws:iam/role:Role", "aws:ec2/securityGroup:SecurityGroup"]]],
  ec2: [
    [T.fleet, ["aws:ec2/launchTemplate:LaunchTemplate", "aws:autoscaling/group:Group", "aws:ec2/securityGroup:SecurityGroup", "aws:iam/instanceProfile:InstanceProfile", "aws:iam/role:Role"]],
    [T.document, ["aws:ssm/document:Document"]],
    [T.fleetManager, ["aws:lambda/function:Function", "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget"]],
  ],
};
const SHARED: [string, string[]][] = [
  [T.tables, ["aws:dynamodb/table:Table"]],
  [T.bucket, ["aws:s3/bucket:Bucket", "aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]],
  [T.orchestrator, ["aws:lambda/function:Function", "aws:lambda/alias:Alias", "aws:iam/rolePolicy:RolePolicy"]],
  // The Api resource itself is made before the orchestrator (its endpoint is the agents' channel URL).
  ["agent-compute:api:ApiEndpoint", ["aws:apigatewayv2/api:Api"]],
  [T.api, ["aws:lambda/function:Function", "aws:apigatewayv2/route:Route", "aws:apigatewayv2/stage:Stage"]],
];

const runs = new Map<string, ProgramRun>();
async function run(label: string): Promise<ProgramRun> {
  let r = runs.get(label);
  if (!r) {
    r = await runProgramCached(COMBINATIONS[label]);
    if (r.error) throw r.error;
    runs.set(label, r);
  }
  return r;
}

function childrenOf(r: ProgramRun, component: RecordedResource): RecordedResource[] {
  return r.resources.filter((x) => x.parent === component.urn);
}

describe("the Pulumi program per backend combination", function () {
  this.timeout(180_000);

  for (const label of Object.keys(COMBINATIONS)) {
    const backends = COMBINATIONS[label].backends as ("ecs" | "agentcore" | "ec2")[];
    it(`${label}: builds the shared parts and the ${backends.join(" + ")} parts under their components, nothing of the others`, async () => {
      const r = await run(label);
      const expected = [...SHARED, ...backends.flatMap((b) => BACKEND_PARTS[b])];
      for (const [componentType, childTypes] of expected) {
        const components = r.byType(componentType);
        expect(components, componentType).to.have.length.greaterThan(0);
        for (const c of components) {
          const kids = childrenOf(r, c).map((k) => k.type);
          for (const t of childTypes) expect(kids, `${c.name} children`).to.include(t);
        }
      }
      for (const b of (["ecs", "agentcore", "ec2"] as const).filter((x) => !backends.includes(x))) {
        for (const [componentType, childTypes] of BACKEND_PARTS[b]) {
          expect(r.byType(componentType), `${componentType} for disabled ${b}`).to.have.length(0);
          if (b !== "ec2") for (const t of childTypes.filter((t) => !t.startsWith("aws:iam") && !t.includes("securityGroup") && !t.includes("logGroup"))) {
            expect(r.byType(t), `${t} for disabled ${b}`).to.have.length(0);
          }
        }
      }
      if (!backends.includes("ec2")) {
        expect(r.byType("aws:ec2/launchTemplate:LaunchTemplate")).to.have.length(0);
        expect(r.byType("aws:ssm/document:Document")).to.have.length(0);
      }
      // Every resource hangs under one of our components: nothing is created at the stack root.
      for (const x of r.resources) {
        expect(x.parent, `${x.type} ${x.name} has no parent`).to.not.equal("");
        if (x.type.startsWith("aws:")) expect(x.parent, `${x.type} ${x.name} parent`).to.match(/agent-compute:[a-z0-9]+:[A-Za-z0-9]+::/);
      }
      expect(r.byType("aws:dynamodb/table:Table")).to.have.length(6);
    });
  }

  it("two named EC2 fleets: one fleet component each, with its own tag, sizes and an ASG in the given subnets", async () => {
    const r = await run("two named ec2 fleets");
    expect(r.byType(T.fleet).map((f) => f.name).sort()).to.deep.equal(["agent-compute-test-fleet-default", "agent-compute-test-fleet-gpu"]);
    const gpuAsg = r.one("aws:autoscaling/group:Group", "fleet-gpu");
    expect(gpuAsg.inputs.maxSize).to.equal(2);
    expect(gpuAsg.inputs.vpcZoneIdentifiers).to.deep.equal(["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]);
    expect(gpuAsg.inputs.tags).to.deep.include({ key: "agent-compute:fleet", value: "gpu", propagateAtLaunch: true });
    expect(gpuAsg.inputs.mixedInstancesPolicy.instancesDistribution).to.include({ onDemandPercentageAboveBaseCapacity: 0, spotAllocationStrategy: "capacity-optimized" });
    expect(gpuAsg.inputs.protectFromScaleIn, "only the fleet manager removes instances").to.equal(true);
    expect(gpuAsg.inputs.initialLifecycleHooks).to.deep.equal([
      { name: "agent-compute-terminating", lifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING", heartbeatTimeout: 300, defaultResult: "CONTINUE" },
    ]);
    const gpuLt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "fleet-gpu");
    expect(gpuLt.inputs.instanceType).to.equal("g5.xlarge");
    expect(gpuLt.inputs.imageId).to.match(/^resolve:ssm:\/aws\/service\/deeplearning\/ami\/x86_64\//);
    const defLt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "fleet-default");
    expect(defLt.inputs.imageId).to.equal("resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64");
    expect(r.byType("awsx:ec2:Vpc"), "an existing VPC is used, none created").to.have.length(0);
    expect(r.byType("aws:ssm/document:Document")).to.have.length(1);
  });

  it("hands every Lambda its runtime config with only the enabled backends' settings", async () => {
    for (const label of ["ecs alone", "all three"]) {
      const r = await run(label);
      for (const fn of r.byType("aws:lambda/function:Function")) {
        const cfg = JSON.parse(fn.inputs.environment.variables.AGENT_COMPUTE_CONFIG);
        expect(cfg.enabledBackends).to.deep.equal(COMBINATIONS[label].backends);
        expect(Object.keys(cfg.tables).sort()).to.deep.equal(["concurrency", "events", "leases", "repos", "tasks", "waiters"]);
        expect(cfg.payload).to.deep.include({ kind: "s3", prefix: "payloads/" });
        expect(Boolean(cfg.ec2)).to.equal(label === "all three");
        expect(Boolean(cfg.agentcore)).to.equal(label === "all three");
        expect(cfg.ecs.subnets).to.deep.equal(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]);
      }
    }
    const api = (await run("ecs alone")).one("aws:lambda/function:Function", "-api");
    expect(JSON.parse(api.inputs.environment.variables.AGENT_COMPUTE_CONFIG).orchestrator.functionArn).to.match(/:function:.*orchestrator.*:live$/);
  });

  it("deploys the orchestrator as a durable, published, arm64 Node 22 function behind an alias", async () => {
    const r = await run("ecs alone");
    const fn = r.one("aws:lambda/function:Function", "orchestrator");
    expect(fn.inputs.durableConfig.executionTimeout).to.equal(28800 + 3600);
    expect(fn.inputs.publish).to.equal(true);
    expect(fn.inputs.architectures).to.deep.equal(["arm64"]);
    expect(fn.inputs.runtime).to.equal("nodejs22.x");
    expect(r.one("aws:lambda/alias:Alias").inputs).to.include({ name: "live", functionVersion: "1" });
  });

  it("schedules the reconciler with the orchestrator's alias in its config and rights on its durable executions", async () => {
    const r = await run("ecs alone");
    const fn = r.one("aws:lambda/function:Function", "-reconciler");
    expect(JSON.parse(fn.inputs.environment.variables.AGENT_COMPUTE_CONFIG).orchestrator.functionArn).to.match(/:function:.*orchestrator.*:live$/);
    const rule = r.byType("aws:cloudwatch/eventRule:EventRule").find((x) => x.name.includes("reconciler"))!;
    expect(rule.inputs.scheduleExpression).to.equal("rate(5 minutes)");
    const policy = JSON.parse(r.byType("aws:iam/rolePolicy:RolePolicy").find((x) => x.name.includes("reconciler"))!.inputs.policy);
    const stmt = (sid: string) => policy.Statement.find((x: { Sid: string }) => x.Sid === sid);
    expect(stmt("ListOrchestratorExecutions").Action).to.deep.equal(["lambda:ListDurableExecutionsByFunction"]);
    expect(stmt("OrchestratorExecutions").Action).to.deep.equal(["lambda:GetDurableExecution", "lambda:SendDurableExecutionCallbackSuccess"]);
    for (const res of stmt("OrchestratorExecutions").Resource) expect(res).to.match(/:function:[^:]*orchestrator[^:]*:\*$/);
  });

  it("creates the alarms (failed durable executions, stranded tasks repaired, each Lambda's errors) and one dashboard", async () => {
    const r = await run("all three");
    const alarms = r.byType("aws:cloudwatch/metricAlarm:MetricAlarm");
    const names = alarms.map((a) => a.name.replace(/^.*-monitoring-/, "")).sort();
    expect(names).to.deep.equal(["api-errors", "durable-failed", "fleet-manager-errors", "orchestrator-errors", "reconciler-errors", "stranded-repaired"]);
    const failed = alarms.find((a) => a.name.endsWith("durable-failed"))!;
    expect(failed.inputs.metricQueries.map((q: { metric?: { metricName: string } }) => q.metric?.metricName).filter(Boolean)).to.deep.equal([
      "DurableExecutionFailed",
      "DurableExecutionTimedOut",
    ]);
    const dashboards = r.byType("aws:cloudwatch/dashboard:Dashboard");
    expect(dashboards).to.have.length(1);
    const body = dashboards[0].inputs.dashboardBody as string;
    for (const metric of ["TasksFinished", "TasksStarted", "ActiveTasks", "FleetInstances", "ReconcilerActions"]) expect(body).to.contain(metric);
  });

  it("writes repo blueprints from config as items of the repos table", async () => {
    const r = await runProgram({
      image: IMAGE,
      imageMultiArch: true,
      backends: ["ecs", "ec2"],
      fleets: { default: {}, gpu: { instanceType: "g5.xlarge" } },
      repos: { "https://github.com/Org/Repo": { backend: "ec2", fleet: "gpu", maxTurns: 50 }, "https://github.com/org/other": { model: "m1" } },
    });
    if (r.error) throw r.error;
    const items = r.byType("aws:dynamodb/tableItem:TableItem").map((i) => JSON.parse(i.inputs.item));
    expect(items).to.have.length(2);
    const gpu = items.find((i) => i.fleet);
    expect(gpu).to.deep.include({ backend: { S: "ec2" }, fleet: { S: "gpu" }, max_turns: { N: "50" } });
    expect(gpu.repo_url.S).to.be.a("string").and.include("github.com");
  });
});

describe("security settings of the built resources", function () {
  this.timeout(180_000);

  it("launch templates require IMDSv2 with hop limit 1, encrypt EBS, have no key pair and no public IP", async () => {
    const r = await run("two named ec2 fleets");
    for (const lt of r.byType("aws:ec2/launchTemplate:LaunchTemplate")) {
      expect(lt.inputs.metadataOptions).to.include({ httpTokens: "required", httpPutResponseHopLimit: 1 });
      expect(lt.inputs.blockDeviceMappings.every((b: any) => b.ebs.encrypted === "true")).to.equal(true);
      expect(lt.inputs.keyName).to.equal(undefined);
      expect(lt.inputs.networkInterfaces.every((n: any) => n.associatePublicIpAddress === "false")).to.equal(true);
      // The fleet's own boot script (runtime/fleet/boot-script.ts: records the fleet's agent role, pulls the image,
      // then tags the instance ready).
      const fleet = /fleet-([a-z0-9-]+)-lt$/.exec(lt.name)?.[1] as string;
      const gpu = fleet === "gpu";
      const agentRoleArn = `arn:aws:iam::${ACCOUNT}:role/agent-compute-test-fleet-${fleet}-agent-role`;
      expect(Buffer.from(lt.inputs.userData, "base64").toString()).to.equal(bootScript({ fleet, image: gpu ? `${IMAGE}-amd64` : IMAGE, agentRoleArn, gpu }));
    }
  });

  it("each fleet runs the image of its architecture, and a GPU fleet boots with GPU access for the agent's container", async () => {
    const r = await run("two named ec2 fleets");
    const script = (fleet: string) => Buffer.from(r.one("aws:ec2/launchTemplate:LaunchTemplate", `fleet-${fleet}-lt`).inputs.userData, "base64").toString();
    // g5 is x86_64 with NVIDIA GPUs: the x86_64 image, the NVIDIA toolkit registered with Docker, a container that sees the GPUs.
    expect(script("gpu")).to.contain(`AGENT_IMAGE='${IMAGE}-amd64'`).and.to.contain("docker run --rm --gpus all").and.to.contain("nvidia-ctk runtime configure");
    expect(script("default")).to.contain(`AGENT_IMAGE='${IMAGE}'`).and.not.to.contain("--gpus");
    const config = JSON.parse(r.one("aws:lambda/function:Function", "orchestrator").inputs.environment.variables.AGENT_COMPUTE_CONFIG);
    // The default fleet's (gpu, x86_64) image is ec2.image; the other architecture's fleet names its own.
    expect(config.ec2.defaultFleet).to.equal("gpu");
    expect(config.ec2.image).to.equal(`${IMAGE}-amd64`);
    expect(config.ec2.fleets.default.image).to.equal(IMAGE);
    expect(config.ec2.fleets.gpu).to.not.have.property("image");
  });

  it("the AgentCore runtime waits for its role's policy, not only the role (the service checks the role's rights at create)", async () => {
    const r = await run("all three");
    const runtime = r.one("aws:bedrock/agentcoreAgentRuntime:AgentcoreAgentRuntime");
    const policy = r.one("aws:iam/rolePolicy:RolePolicy", "agentcore-policy");
    expect(policy.urn).to.not.equal("");
    expect(runtime.dependencies).to.include(policy.urn);
  });

  it("ECS runs the configured architecture: X86_64 with Fargate Spot as the default capacity", async () => {
    const r = await run("ec2 + ecs");
    expect(r.one("aws:ecs/taskDefinition:TaskDefinition").inputs.runtimePlatform).to.deep.equal({ cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX" });
    expect(r.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders").inputs.defaultCapacityProviderStrategies).to.deep.equal([{ capacityProvider: "FARGATE_SPOT", weight: 1 }]);
  });

  it("the payload bucket is encrypted, TLS-only, public access blocked and expiring", async () => {
    const r = await run("ecs alone");
    expect(r.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs).to.include({
      blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true,
    });
    expect(r.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm).to.equal("AES256");
    const rule = r.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs.rules[0];
    expect(rule.expiration.days).to.equal(7);
    const policy = JSON.parse(r.one("aws:s3/bucketPolicy:BucketPolicy").inputs.policy);
    expect(policy.Statement).to.deep.include.members([
      { Sid: "DenyInsecureTransport", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: policy.Statement[0].Resource, Condition: { Bool: { "aws:SecureTransport": "false" } } },
    ]);
  });

  it("every security group has no ingress and allows egress on TCP 443 only", async () => {
    const r = await run("all three");
    const groups = r.byType("aws:ec2/securityGroup:SecurityGroup");
    expect(groups.length).to.be.greaterThanOrEqual(3);
    for (const sg of groups) {
      expect(sg.inputs.ingress ?? []).to.deep.equal([]);
      expect(sg.inputs.egress.map((e: any) => [e.protocol, e.fromPort, e.toPort])).to.deep.equal([["tcp", 443, 443]]);
    }
  });

  it("tables have point-in-time recovery, encryption and TTL where the schema has one", async () => {
    const r = await run("ecs alone");
    for (const t of r.byType("aws:dynamodb/table:Table")) {
      expect(t.inputs.pointInTimeRecovery.enabled).to.equal(true);
      expect(t.inputs.serverSideEncryption.enabled).to.equal(true);
    }
    expect(r.one("aws:dynamodb/table:Table", "tables-tasks").inputs.ttl).to.deep.equal({ attributeName: "ttl", enabled: true });
    const indexes = r.one("aws:dynamodb/table:Table", "tables-tasks").inputs.globalSecondaryIndexes;
    expect(indexes.map((g: any) => g.name)).to.have.members(["by-user", "by-status", "by-user-waiting"]);
    // The per-user queue index holds keys and status only: reading a user's queue reads small items.
    expect(indexes.find((g: any) => g.name === "by-user-waiting")).to.deep.include({
      keySchemas: [
        { attributeName: "user_id", keyType: "HASH" },
        { attributeName: "waiting_since", keyType: "RANGE" },
      ],
      projectionType: "INCLUDE",
      nonKeyAttributes: ["status", "created_at"],
    });
  });

  it("no GSI uses the fields @pulumi/aws deprecates (hashKey/rangeKey): every index states its keys in keySchemas", async () => {
    const r = await run("all three");
    const indexes = r.byType("aws:dynamodb/table:Table").flatMap((t) => (t.inputs.globalSecondaryIndexes ?? []).map((g: any) => ({ table: t.name, ...g })));
    expect(indexes.length).to.be.greaterThan(3);
    for (const g of indexes) {
      expect(g, `${g.table} ${g.name}`).to.not.have.any.keys("hashKey", "rangeKey");
      expect(g.keySchemas.filter((k: any) => k.keyType === "HASH"), `${g.table} ${g.name}`).to.have.length(1);
    }
  });

  it("ECS tasks are Fargate ARM64 in private subnets; the created VPC puts only NAT in public subnets", async () => {
    const r = await run("ecs alone");
    const td = r.one("aws:ecs/taskDefinition:TaskDefinition");
    expect(td.inputs.runtimePlatform).to.deep.equal({ cpuArchitecture: "ARM64", operatingSystemFamily: "LINUX" });
    expect(td.inputs.requiresCompatibilities).to.deep.equal(["FARGATE"]);
    const env = JSON.parse(td.inputs.containerDefinitions)[0].environment.map((e: any) => e.name);
    // No table names: the agent knows the platform only through the channel URL inside its payload.
    expect(env).to.deep.equal(["AWS_REGION", "ANTHROPIC_MODEL"]);
    expect(r.one("aws:ecs/cluster:Cluster").inputs.settings).to.deep.include({ name: "containerInsights", value: "enabled" });
    const vpc = r.one("awsx:ec2:Vpc");
    expect(vpc.inputs.subnetSpecs.map((s: any) => s.type)).to.deep.equal(["Private", "Public"]);
  });

  it("the API accepts only SigV4-signed (AWS_IAM) requests over HTTPS, except the agent channel, whose token the Lambda checks", async () => {
    const r = await run("ecs alone");
    const auth = Object.fromEntries(r.byType("aws:apigatewayv2/route:Route").map((route) => [route.inputs.routeKey, route.inputs.authorizationType]));
    expect(auth).to.deep.equal({ "ANY /{proxy+}": "AWS_IAM", "ANY /agent/v1/{proxy+}": "NONE" });
    expect(r.one("aws:apigatewayv2/api:Api").inputs.protocolType).to.equal("HTTP");
    // The orchestrator hands agents the API's own endpoint as their channel.
    const orchestratorConfig = r.byType("aws:lambda/function:Function").map((f) => f.inputs.environment?.variables?.AGENT_COMPUTE_CONFIG).filter(Boolean).map((c) => JSON.parse(c));
    expect(orchestratorConfig.length).to.be.greaterThan(0);
    for (const c of orchestratorConfig.filter((c) => !c.orchestrator)) expect(c.agentChannel?.url).to.match(/^https:\/\//);
    expect(String((await run("ecs alone")).outputs.apiUrl)).to.match(/^https:\/\//);
  });
});
