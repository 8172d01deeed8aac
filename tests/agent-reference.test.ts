import { randomBytes } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { expect } from "chai";
import {
  AgentSetupError,
  describePrompt,
  planWork,
  readAgentEnvironment,
  runReferenceAgent,
} from "../runtime/agent/reference-agent";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { handleApiRequest } from "../runtime/api/router";
import { awsClient } from "../runtime/aws/clients";
import { prepareAgentChannel } from "../runtime/channel/dispatch";
import type { RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { serveApi, type LocalHttpServer } from "../runtime/local/http-server";
import { createRuntime, type Runtime } from "../runtime/runtime";
import { ensureTables, type TableName } from "../runtime/tables";
import type { TaskStatus } from "../runtime/tasks/status";
import { documentClient } from "../runtime/aws/dynamodb";

const fullEnv = {
  TASK_ID: "t1",
  AGENT_PAYLOAD_URL: "/tmp/p.json",
};

describe("reference agent", () => {
  describe("its environment", () => {
    it("reads the contract's variables, heartbeat every 30 s by default", () => {
      expect(readAgentEnvironment(fullEnv)).to.deep.equal({ taskId: "t1", payloadUrl: "/tmp/p.json", heartbeatSeconds: 30 });
    });
    const bad: [Record<string, string | undefined>, RegExp][] = [
      [{ TASK_ID: undefined }, /TASK_ID/],
      [{ TASK_ID: "", AGENT_PAYLOAD_URL: undefined }, /TASK_ID, AGENT_PAYLOAD_URL/],
      [{ AGENT_HEARTBEAT_SECONDS: "60" }, /AGENT_HEARTBEAT_SECONDS .*45/],
      [{ AGENT_HEARTBEAT_SECONDS: "soon" }, /AGENT_HEARTBEAT_SECONDS/],
      [{ AGENT_HEARTBEAT_SECONDS: "0" }, /AGENT_HEARTBEAT_SECONDS/],
    ];
    for (const [change, why] of bad) {
      it(`refuses ${Object.entries(change).map(([k, v]) => `${k}=${v ?? "(unset)"}`).join(" ")}, naming the variable`, () => {
        expect(() => readAgentEnvironment({ ...fullEnv, ...change })).to.throw(AgentSetupError, why);
      });
    }
  });

  describe("its work plan from payload.context", () => {
    const cases: [Record<string, unknown> | undefined, { workSeconds: number; failWithExitCode?: number } | RegExp][] = [
      [undefined, { workSeconds: 1, failWithExitCode: undefined }],
      [{ work_seconds: 0 }, { workSeconds: 0, failWithExitCode: undefined }],
      [{ work_seconds: 2.5, fail_with_exit_code: 9 }, { workSeconds: 2.5, failWithExitCode: 9 }],
      [{ work_seconds: -1 }, /work_seconds/],
      [{ work_seconds: "5" }, /work_seconds/],
      [{ fail_with_exit_code: 0 }, /fail_with_exit_code/],
      [{ fail_with_exit_code: 256 }, /fail_with_exit_code/],
      [{ fail_with_exit_code: 1.5 }, /fail_with_exit_code/],
    ];
    for (const [context, want] of cases) {
      it(`${want instanceof RegExp ? "refuses" : "plans"} ${JSON.stringify(context)}`, () => {
        if (want instanceof RegExp) expect(() => planWork(context)).to.throw(AgentSetupError, want);
        else expect(planWork(context)).to.deep.equal(want);
      });
    }
  });

  describe("its work product: facts about the prompt, never its execution", () => {
    const cases: [string, { bytes: number; lines: number; words: number }][] = [
      ["", { bytes: 0, lines: 0, words: 0 }],
      ["one line", { bytes: 8, lines: 1, words: 2 }],
      ["a\nb\n", { bytes: 4, lines: 3, words: 2 }],
      ["$(rm -rf /) `id`", { bytes: 16, lines: 1, words: 4 }],
      ["naïve ✓", { bytes: 10, lines: 1, words: 2 }],
    ];
    for (const [prompt, facts] of cases) {
      it(`describes ${JSON.stringify(prompt)}`, () => {
        const d = describePrompt(prompt);
        expect(d).to.include(facts);
        expect(d.sha256).to.match(/^[0-9a-f]{64}$/);
      });
    }
  });

  describe("in-process runs: a presigned S3 payload URL (moto) and the agent channel on loopback", function () {
    this.timeout(30_000);
    const suffix = randomBytes(4).toString("hex");
    const tables = Object.fromEntries(
      (["tasks", "events", "leases", "concurrency", "repos"] as TableName[]).map((k) => [k, `agent-${k}-${suffix}`]),
    ) as Record<TableName, string>;
    const bucket = `agent-payloads-${suffix}`;
    let config: RuntimeConfig;
    let rt: Runtime;
    let http: LocalHttpServer;
    const logs: string[] = [];

    before(async () => {
      await ensureTables(awsClient(DynamoDBClient, { region: "us-east-1" }), tables);
      await awsClient(S3Client, { region: "us-east-1" }).send(new CreateBucketCommand({ Bucket: bucket }));
      http = await serveApi((req) => handleApiRequest(rt, { dispatch: async () => undefined }, req), { host: "127.0.0.1", port: 0, userId: "dev" });
      config = {
        region: "us-east-1",
        tables,
        payload: { kind: "s3", bucket, prefix: "p/" },
        defaultBackend: "local",
        enabledBackends: ["local"],
        agentChannel: { url: http.url, payloadUrlSeconds: 300 },
        limits: DEFAULT_LIMITS,
      };
      rt = createRuntime(config);
    });
    after(() => http?.close());

    /** A task as the start step leaves it: STARTING, payload in S3 with its channel, a presigned URL for the agent. */
    async function task(status: TaskStatus, context: Record<string, unknown>, payloadTaskId?: string) {
      const id = `a-${randomBytes(4).toString("hex")}`;
      const now = new Date().toISOString();
      await rt.tasks.create({ task_id: id, user_id: "u", status: "STARTING", repo_url: "https://github.com/a/b", prompt: "p", created_at: now, updated_at: now });
      const uri = await rt.payloads.put(id, { task_id: payloadTaskId ?? id, repo_url: "https://github.com/a/b", prompt: "hello\nworld", context });
      const url = await prepareAgentChannel(rt, (await rt.tasks.get(id))!, uri);
      if (status === "CANCELLED") await rt.tasks.transition(id, "CANCELLED", { error_message: "cancelled by test" });
      if (status === "SUBMITTED") {
        // A record the platform never started (it cannot be moved back by a transition).
        await documentClient(config).send(
          new UpdateCommand({ TableName: tables.tasks, Key: { task_id: id }, UpdateExpression: "SET #s = :s", ExpressionAttributeNames: { "#s": "status" }, ExpressionAttributeValues: { ":s": "SUBMITTED" } }),
        );
      }
      return { id, url, env: { TASK_ID: id, AGENT_PAYLOAD_URL: url, AGENT_HEARTBEAT_SECONDS: "0.05" } };
    }

    it("reads its payload by the presigned URL and completes through the channel, recording the prompt's digest", async () => {
      const { id, url, env } = await task("STARTING", { work_seconds: 0.1 });
      expect(url).to.match(/^https?:\/\/.*X-Amz-Signature=/);
      expect(await runReferenceAgent(env, { log: (l) => logs.push(l) })).to.equal(0);
      const t = await rt.tasks.get(id);
      expect(t).to.include({ status: "COMPLETED", exit_code: 0, turns: 0 });
      const events = (await rt.events.list(id)).items;
      expect(events.map((e) => e.message)).to.include(`prompt sha256 ${describePrompt("hello\nworld").sha256}`);
      expect(events.filter((e) => e.source === "agent").map((e) => e.type)).to.include.members(["info", "progress"]);
    });

    it("stops without writing, exit 0, when the task is CANCELLED while it works", async () => {
      const { id, env } = await task("STARTING", { work_seconds: 20 });
      const t0 = Date.now();
      const run = runReferenceAgent(env, { log: (l) => logs.push(l) });
      for (let i = 0; i < 100 && (await rt.tasks.get(id))?.status !== "RUNNING"; i++) await new Promise((r) => setTimeout(r, 20));
      await rt.tasks.transition(id, "CANCELLED", { error_message: "cancelled by test" });
      expect(await run).to.equal(0);
      expect(Date.now() - t0).to.be.lessThan(5000);
      expect(await rt.tasks.get(id)).to.include({ status: "CANCELLED", error_message: "cancelled by test" });
    });

    const refusals: [string, TaskStatus, Record<string, unknown>, string | undefined, number, TaskStatus, RegExp | undefined][] = [
      ["a task already CANCELLED: exits 0, writes nothing", "CANCELLED", {}, undefined, 0, "CANCELLED", undefined],
      ["a task never started (SUBMITTED): exits 2, writes nothing", "SUBMITTED", {}, undefined, 2, "SUBMITTED", undefined],
      ["a payload for another task: exits 2, reports nothing (the channel in it is not its task's)", "STARTING", {}, "someone-else", 2, "STARTING", undefined],
      ["a bad context: FAILED, exit 2", "STARTING", { work_seconds: "forever" }, undefined, 2, "FAILED", /work_seconds/],
      ["a requested failure: FAILED with that code", "STARTING", { work_seconds: 0, fail_with_exit_code: 42 }, undefined, 42, "FAILED", /fail_with_exit_code = 42/],
    ];
    for (const [name, status, context, payloadTaskId, code, after, message] of refusals) {
      it(`handles ${name}`, async () => {
        const { id, env } = await task(status, context, payloadTaskId);
        expect(await runReferenceAgent(env, { log: (l) => logs.push(l) })).to.equal(code);
        const t = await rt.tasks.get(id);
        expect(t?.status).to.equal(after);
        if (message) {
          expect(t?.error_message).to.match(message);
          expect(t?.exit_code).to.equal(code);
        }
      });
    }

    it("a payload URL that does not open (expired, altered, gone): exits 2 without reporting, and never logs the URL", async () => {
      const { id, url } = await task("STARTING", {});
      const out: string[] = [];
      // moto does not check signatures, so the URL is made to name an object that is not there.
      const altered = url.replace("/payload.json?", "/gone.json?");
      expect(await runReferenceAgent({ TASK_ID: id, AGENT_PAYLOAD_URL: altered }, { log: (l) => out.push(l) })).to.equal(2);
      expect(out.join("\n")).to.match(/HTTP 40\d/).and.not.contain("X-Amz");
      expect((await rt.tasks.get(id))?.status).to.equal("STARTING");
    });

    it("exits 2 without touching anything when its environment is incomplete", async () => {
      const out: string[] = [];
      expect(await runReferenceAgent({ TASK_ID: "x" }, { log: (l) => out.push(l) })).to.equal(2);
      expect(out.join("\n")).to.contain("AGENT_PAYLOAD_URL");
    });
  });
});
