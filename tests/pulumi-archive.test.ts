import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { CreateClusterCommand, DescribeTasksCommand, ECSClient, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateSecurityGroupCommand, DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { createTableInput, TABLE_SCHEMAS, type TableName } from "../runtime/tables";
import { awsClient } from "../runtime/aws/clients";
import { buildHandlerCode } from "../components/lambda-code";
import { ORCHESTRATOR_HANDLER } from "../components/task-orchestrator";
import { COMBINATIONS, materializeArchive, ROOT, runProgramCached, zipBytes } from "./pulumi-mocks";

const FORBIDDEN = ["@pulumi", "esbuild", "typescript", "ts-node", "mocha", "chai", "aws-sdk-client-mock", "@aws/durable-execution-sdk-js-testing", "dynalite", "commander"];

describe("the orchestrator's Lambda archive", function () {
  this.timeout(180_000);
  let dir: string;
  let entries: string[];

  before(async () => {
    const run = await runProgramCached(COMBINATIONS["ecs alone"]);
    if (run.error) throw run.error;
    const fn = run.one("aws:lambda/function:Function", "orchestrator");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestrator-archive-"));
    entries = await materializeArchive(fn.inputs.code, dir);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("holds the serialized entry and one self-contained bundle, no node_modules, and no @pulumi/*, dev-dependency, test or bench code", () => {
    expect(entries).to.include("__index.js");
    const code = entries.filter((e) => e.startsWith("dist/lambda/"));
    expect(code).to.have.length(1);
    expect(fs.readdirSync(path.join(dir, code[0]))).to.deep.equal(["index.js"]);
    expect(entries.filter((e) => e.startsWith("node_modules"))).to.deep.equal([]);
    // What went into the bundle, from the build's own record (esbuild metafile).
    const built = buildHandlerCode(path.basename(code[0]).replace(/-[0-9a-f]{16}$/, ""), ORCHESTRATOR_HANDLER);
    expect(built.entry).to.equal(`./${code[0]}/index.js`);
    expect(built.packages).to.include.members(["@aws/durable-execution-sdk-js", "@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb", "@aws-sdk/client-ecs"]);
    const dev = Object.keys((JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies);
    for (const bad of [...FORBIDDEN, ...dev]) expect(built.packages.filter((p) => p === bad || p.startsWith(`${bad}/`)), bad).to.deep.equal([]);
    expect(built.sources.filter((s) => !s.startsWith("runtime/"))).to.deep.equal([]);
    expect(built.sources.filter((s) => /\.test\.|^tests\/|^bench\//.test(s))).to.deep.equal([]);
    const text = fs.readFileSync(path.join(dir, code[0], "index.js"), "utf8");
    expect(text).not.to.match(/require\(["']@pulumi\//);
  });

  it("is under 5 MiB zipped", () => {
    expect(zipBytes(dir)).to.be.below(5 * 1024 * 1024);
  });

  it("runs its handler in a separate Node process, from the archive alone, through one durable execution that loads a task and starts an ECS task in moto", async () => {
    // Nothing outside the archive can satisfy a require from it: it sits in the temp folder, no NODE_PATH.
    for (let d = dir; ; d = path.dirname(d)) {
      expect(fs.existsSync(path.join(d, "node_modules")), `${d}/node_modules`).to.equal(false);
      if (path.dirname(d) === d) break;
    }
    const suffix = Math.random().toString(36).slice(2, 8);
    const names = Object.fromEntries((Object.keys(TABLE_SCHEMAS) as TableName[]).map((k) => [k, `archive-${k}-${suffix}`])) as Record<TableName, string>;
    const ddb = awsClient(DynamoDBClient);
    for (const k of Object.keys(names) as TableName[]) await ddb.send(new CreateTableCommand(createTableInput(names[k], TABLE_SCHEMAS[k])));
    const bucket = `archive-payloads-${suffix}`;
    await awsClient(S3Client).send(new CreateBucketCommand({ Bucket: bucket }));
    const ecs = awsClient(ECSClient);
    // moto's Fargate RunTask needs a real subnet (the default VPC's) and security group.
    const ec2 = awsClient(EC2Client);
    const vpcId = (await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: "is-default", Values: ["true"] }] }))).Vpcs?.[0]?.VpcId;
    const subnet = (await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId as string] }] }))).Subnets?.[0]?.SubnetId as string;
    const sg = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: `archive-${suffix}`, Description: "archive test", VpcId: vpcId }))).GroupId as string;
    const cluster = `archive-${suffix}`;
    await ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    await ecs.send(new RegisterTaskDefinitionCommand({
      family: `agent-${suffix}`, requiresCompatibilities: ["FARGATE"], networkMode: "awsvpc", cpu: "256", memory: "512",
      containerDefinitions: [{ name: "agent", image: "agent:1", memory: 512, essential: true }],
    }));
    const taskId = `task-${suffix}`;
    const now = new Date().toISOString();
    await ddb.send(new PutItemCommand({
      TableName: names.tasks,
      Item: {
        task_id: { S: taskId }, user_id: { S: "arn:aws:iam::123456789012:user/alice" }, status: { S: "SUBMITTED" },
        repo_url: { S: "https://github.com/org/repo" }, prompt: { S: "fix it" }, created_at: { S: now }, updated_at: { S: now },
      },
    }));
    const config = {
      region: "us-east-1", tables: names, payload: { kind: "s3", bucket, prefix: "payloads/" },
      defaultBackend: "ecs", enabledBackends: ["ecs"],
      ecs: { cluster, taskDefinition: `agent-${suffix}`, containerName: "agent", subnets: [subnet], securityGroups: [sg] },
      agentChannel: { url: "https://api.example.test" },
      limits: { pollIntervalSeconds: 30 },
    };
    // The durable-execution test runner plays the Lambda service (checkpoints, skipped waits); it comes from the
    // project, the handler and everything it runs from the archive. Once the ECS task has started (its handle is
    // on the record), the task is cancelled as the API would (the status, then the wake), so the execution ends: the
    // poll it wakes sees it, finalize stops the ECS task.
    const script = `
      const path = require("path");
      const { LocalDurableTestRunner } = require(${JSON.stringify(require.resolve("@aws/durable-execution-sdk-js-testing"))});
      const { DynamoDBClient, GetItemCommand, UpdateItemCommand } = require(${JSON.stringify(require.resolve("@aws-sdk/client-dynamodb"))});
      const { handler } = require(path.join(process.cwd(), "__index.js"));
      if (typeof handler !== "function") throw new Error("__index.js exports no handler function");
      const ddb = new DynamoDBClient({});
      const Key = { task_id: { S: ${JSON.stringify(taskId)} } };
      const TableName = ${JSON.stringify(names.tasks)};
      // One read at a time (the next 50 ms after the last answer): a fixed interval piles reads up on a slow,
      // loaded emulator until the handler's own requests starve.
      let watch;
      const check = async () => {
        const { Item } = await ddb.send(new GetItemCommand({ TableName, Key }));
        if (!Item || !Item.compute_metadata) { watch = setTimeout(check, 50); return; }
        await ddb.send(new UpdateItemCommand({ TableName, Key, UpdateExpression: "SET #s = :c",
          ExpressionAttributeNames: { "#s": "status" }, ExpressionAttributeValues: { ":c": { S: "CANCELLED" } } }));
        // And wakes the orchestrator from its wait before the first poll, through the runner's callback API.
        const wake = Item.wake_callback_id && Item.wake_callback_id.S;
        if (wake) await LocalDurableTestRunner.createDurableApi().sendCallbackSuccess({ CallbackId: wake, Result: "{}" });
      };
      watch = setTimeout(check, 50);
      (async () => {
        await LocalDurableTestRunner.setupTestEnvironment({ skipTime: true });
        const runner = new LocalDurableTestRunner({ handlerFunction: handler });
        const execution = await runner.run({ payload: { task_id: ${JSON.stringify(taskId)} } });
        clearTimeout(watch);
        await LocalDurableTestRunner.teardownTestEnvironment();
        const loaded = Object.keys(require.cache).filter((f) => !f.startsWith(process.cwd()) && !f.includes("node_modules"));
        const status = execution.getStatus();
        console.log(JSON.stringify({ status, result: status === "SUCCEEDED" ? execution.getResult() : undefined, error: status === "SUCCEEDED" ? undefined : execution.getError(), loaded }));
        process.exit(0);
      })().catch((e) => { console.error(e); process.exit(1); });
    `;
    const env: NodeJS.ProcessEnv = { ...process.env, AGENT_COMPUTE_CONFIG: JSON.stringify(config) };
    delete env.NODE_OPTIONS;
    delete env.NODE_PATH;
    delete env.TS_NODE_PROJECT;
    const child = spawnSync(process.execPath, ["-e", script], { cwd: dir, env, encoding: "utf8", timeout: 90_000 });
    expect(child.status, child.stderr + child.stdout).to.equal(0);
    const out = JSON.parse(child.stdout.trim().split("\n").pop() as string);
    expect(out.status, JSON.stringify(out.error)).to.equal("SUCCEEDED");
    expect(out.result, JSON.stringify(out.result)).to.deep.include({ status: "CANCELLED" });
    expect(out.loaded, "modules loaded from outside the archive and the harness").to.deep.equal([]);
    const record = (await ddb.send(new GetItemCommand({ TableName: names.tasks, Key: { task_id: { S: taskId } } }))).Item ?? {};
    expect(record.compute_type?.S).to.equal("ecs");
    const taskArn = record.compute_metadata?.M?.taskArn?.S ?? "";
    expect(taskArn, JSON.stringify(record)).to.match(/^arn:aws:ecs:/);
    const described = await ecs.send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }));
    expect(described.tasks?.[0]?.lastStatus).to.equal("STOPPED");
  });
});

describe("handler bundles within one process", () => {
  it("are built once, and again only when a file the bundle read has changed", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "bundle-cache-"));
    try {
      fs.writeFileSync(path.join(root, "package.json"), JSON.stringify({ name: "fixture", dependencies: {} }));
      fs.mkdirSync(path.join(root, "runtime"));
      fs.writeFileSync(path.join(root, "runtime", "greeting.ts"), 'export const greeting = "first";\n');
      fs.writeFileSync(path.join(root, "runtime", "handler.ts"), 'import { greeting } from "./greeting";\nexport const handler = () => greeting;\n');
      const cwd = process.cwd();
      process.chdir(root);
      try {
        const first = buildHandlerCode("fixture", "runtime/handler.ts", { root });
        expect(buildHandlerCode("fixture", "runtime/handler.ts", { root })).to.equal(first);
        // Same size, new content: the stamp must not rely on size alone.
        fs.writeFileSync(path.join(root, "runtime", "greeting.ts"), 'export const greeting = "again";\n');
        fs.utimesSync(path.join(root, "runtime", "greeting.ts"), new Date(), new Date(Date.now() + 5_000));
        const second = buildHandlerCode("fixture", "runtime/handler.ts", { root });
        expect(second).not.to.equal(first);
        expect(second.dir).not.to.equal(first.dir);
        expect(fs.readFileSync(path.join(root, second.dir, "index.js"), "utf8")).to.contain("again");
      } finally {
        process.chdir(cwd);
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
