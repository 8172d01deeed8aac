import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { createTableInput, TABLE_SCHEMAS, type TableName } from "../runtime/tables";
import { awsClient } from "../runtime/aws/clients";
import { COMBINATIONS, materializeArchive, runProgramCached } from "./pulumi-mocks";

const FORBIDDEN = ["@pulumi", "typescript", "ts-node", "mocha", "chai", "aws-sdk-client-mock", "@aws/durable-execution-sdk-js-testing", "dynalite", "commander"];

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

  it("holds the serialized entry, the transpiled handler graph and runtime packages, and nothing else", () => {
    expect(entries).to.include("__index.js");
    const code = entries.filter((e) => e.startsWith("dist/lambda/"));
    expect(code).to.have.length(1);
    expect(fs.existsSync(path.join(dir, code[0], "runtime/orchestrator/durable-handler.js"))).to.equal(true);
    const packages = entries.filter((e) => e.startsWith("node_modules/")).map((e) => e.slice("node_modules/".length));
    expect(packages).to.include.members(["@aws/durable-execution-sdk-js", "@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb"]);
    for (const bad of FORBIDDEN) expect(packages.filter((p) => p === bad || p.startsWith(`${bad}/`)), bad).to.deep.equal([]);
    const files = spawnSync("find", [dir, "-name", "*.test.*", "-o", "-path", "*/bench/*", "-o", "-path", "*/tests/*", "-o", "-name", "*.ts", "-not", "-name", "*.d.ts"], { encoding: "utf8" }).stdout;
    expect(files.split("\n").filter((f) => f && !f.includes("/node_modules/"))).to.deep.equal([]);
  });

  it("loads its handler in a separate Node process and loads a real task from DynamoDB (moto) with only the archive's code", async () => {
    const suffix = Math.random().toString(36).slice(2, 8);
    const names = Object.fromEntries((Object.keys(TABLE_SCHEMAS) as TableName[]).map((k) => [k, `archive-${k}-${suffix}`])) as Record<TableName, string>;
    const ddb = awsClient(DynamoDBClient);
    for (const k of Object.keys(names) as TableName[]) await ddb.send(new CreateTableCommand(createTableInput(names[k], TABLE_SCHEMAS[k])));
    const taskId = `task-${suffix}`;
    await ddb.send(new PutItemCommand({
      TableName: names.tasks,
      Item: {
        task_id: { S: taskId }, user_id: { S: "arn:aws:iam::123456789012:user/alice" }, status: { S: "SUBMITTED" },
        repo_url: { S: "https://github.com/org/repo" }, prompt: { S: "fix it" }, created_at: { S: new Date().toISOString() },
        updated_at: { S: new Date().toISOString() },
      },
    }));
    const config = {
      region: "us-east-1", tables: names, payload: { kind: "s3", bucket: `payloads-${suffix}`, prefix: "payloads/" },
      defaultBackend: "ecs", enabledBackends: ["ecs"],
      ecs: { cluster: "c", taskDefinition: "td", containerName: "agent", subnets: ["subnet-1"], securityGroups: ["sg-1"] },
      limits: { pollIntervalSeconds: 30 },
    };
    const codeDir = entries.find((e) => e.startsWith("dist/lambda/")) as string;
    const script = `
      const path = require("path");
      const root = process.cwd();
      const idx = require(path.join(root, "__index.js"));
      if (typeof idx.handler !== "function") throw new Error("__index.js exports no handler function");
      const base = path.join(root, ${JSON.stringify(codeDir)}, "runtime");
      for (const p of ["@aws-sdk/client-dynamodb", "@aws/durable-execution-sdk-js"]) {
        const at = require.resolve(p, { paths: [base] });
        if (!at.startsWith(root)) throw new Error(p + " resolved outside the archive: " + at);
      }
      const { createRuntime } = require(path.join(base, "runtime.js"));
      const { loadRuntimeConfig } = require(path.join(base, "config.js"));
      const { loadTask } = require(path.join(base, "orchestrator/load.js"));
      loadTask(createRuntime(loadRuntimeConfig()), ${JSON.stringify(taskId)}).then(
        (t) => console.log(JSON.stringify(t)),
        (e) => { console.error(e); process.exit(1); });
    `;
    const env: NodeJS.ProcessEnv = { ...process.env, AGENT_COMPUTE_CONFIG: JSON.stringify(config) };
    delete env.NODE_OPTIONS;
    delete env.NODE_PATH;
    delete env.TS_NODE_PROJECT;
    const child = spawnSync(process.execPath, ["-e", script], { cwd: dir, env, encoding: "utf8", timeout: 60_000 });
    expect(child.status, child.stderr).to.equal(0);
    const loaded = JSON.parse(child.stdout.trim().split("\n").pop() as string);
    expect(loaded).to.deep.include({ taskId, status: "SUBMITTED", userId: "arn:aws:iam::123456789012:user/alice", pollIntervalSeconds: 30 });
  });
});
