import { randomBytes } from "node:crypto";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { expect } from "chai";
import {
  AgentSetupError,
  describePrompt,
  planWork,
  readAgentEnvironment,
  runReferenceAgent,
} from "../runtime/agent/reference-agent";
import { awsClient } from "../runtime/aws/clients";
import { S3PayloadStore } from "../runtime/payload";
import type { TaskStatus } from "../runtime/tasks/status";
import { DynamoEventLog } from "../runtime/tasks/events";
import { DynamoTaskStore } from "../runtime/tasks/store";
import { createTables, runtimeConfig, suffix } from "./fixtures";

const fullEnv = {
  TASK_ID: "t1",
  TASK_TABLE_NAME: "tasks",
  TASK_EVENTS_TABLE_NAME: "events",
  AWS_REGION: "eu-west-1",
  AGENT_PAYLOAD_URI: "/tmp/p.json",
};

describe("reference agent", () => {
  describe("its environment", () => {
    it("reads the contract's variables, heartbeat every 30 s by default", () => {
      expect(readAgentEnvironment(fullEnv)).to.deep.equal({
        taskId: "t1",
        taskTable: "tasks",
        eventsTable: "events",
        region: "eu-west-1",
        payloadUri: "/tmp/p.json",
        heartbeatSeconds: 30,
      });
    });
    const bad: [Record<string, string | undefined>, RegExp][] = [
      [{ TASK_ID: undefined }, /TASK_ID/],
      [{ TASK_TABLE_NAME: "", AWS_REGION: undefined }, /TASK_TABLE_NAME, AWS_REGION/],
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

  describe("in-process runs against moto (S3 payload, DynamoDB records)", function () {
    this.timeout(30_000);
    const bucket = `agent-payloads-${suffix()}`;
    const config = runtimeConfig("agent", { payload: { kind: "s3", bucket, prefix: "p/" } });
    const tables = config.tables;
    const tasks = new DynamoTaskStore(config);
    const payloads = new S3PayloadStore(config);
    const logs: string[] = [];

    before(async () => {
      await createTables(config);
      await awsClient(S3Client, { region: "us-east-1" }).send(new CreateBucketCommand({ Bucket: bucket }));
    });

    async function task(status: TaskStatus, context: Record<string, unknown>, payloadTaskId?: string) {
      const id = `a-${randomBytes(4).toString("hex")}`;
      const now = new Date().toISOString();
      await tasks.create({ task_id: id, user_id: "u", status, repo_url: "https://github.com/a/b", prompt: "p", created_at: now, updated_at: now });
      const uri = await payloads.put(id, { task_id: payloadTaskId ?? id, repo_url: "https://github.com/a/b", prompt: "hello\nworld", context });
      const env = { TASK_ID: id, TASK_TABLE_NAME: tables.tasks, TASK_EVENTS_TABLE_NAME: tables.events, AWS_REGION: "us-east-1", AGENT_PAYLOAD_URI: uri, AGENT_HEARTBEAT_SECONDS: "0.05" };
      return { id, env };
    }

    it("reads an s3:// payload and completes, recording the prompt's digest", async () => {
      const { id, env } = await task("STARTING", { work_seconds: 0.1 });
      expect(await runReferenceAgent(env, { log: (l) => logs.push(l) })).to.equal(0);
      const t = await tasks.get(id);
      expect(t).to.include({ status: "COMPLETED", exit_code: 0 });
      const events = (await new DynamoEventLog(config).list(id)).items;
      expect(events.map((e) => e.message)).to.include(`prompt sha256 ${describePrompt("hello\nworld").sha256}`);
    });

    it("stops without writing, exit 0, when the task is CANCELLED while it works", async () => {
      const { id, env } = await task("STARTING", { work_seconds: 20 });
      const t0 = Date.now();
      const run = runReferenceAgent(env, { log: (l) => logs.push(l) });
      for (let i = 0; i < 100 && (await tasks.get(id))?.status !== "RUNNING"; i++) await new Promise((r) => setTimeout(r, 20));
      await tasks.transition(id, "CANCELLED", { error_message: "cancelled by test" });
      expect(await run).to.equal(0);
      expect(Date.now() - t0).to.be.lessThan(5000);
      expect(await tasks.get(id)).to.include({ status: "CANCELLED", error_message: "cancelled by test" });
    });

    const refusals: [string, TaskStatus, Record<string, unknown>, string | undefined, number, TaskStatus, RegExp | undefined][] = [
      ["a task already CANCELLED: exits 0, writes nothing", "CANCELLED", {}, undefined, 0, "CANCELLED", undefined],
      ["a task never started (SUBMITTED): exits 2, writes nothing", "SUBMITTED", {}, undefined, 2, "SUBMITTED", undefined],
      ["a payload for another task: FAILED, exit 2", "STARTING", {}, "someone-else", 2, "FAILED", /someone-else/],
      ["a bad context: FAILED, exit 2", "STARTING", { work_seconds: "forever" }, undefined, 2, "FAILED", /work_seconds/],
      ["a requested failure: FAILED with that code", "STARTING", { work_seconds: 0, fail_with_exit_code: 42 }, undefined, 42, "FAILED", /fail_with_exit_code = 42/],
    ];
    for (const [name, status, context, payloadTaskId, code, after, message] of refusals) {
      it(`handles ${name}`, async () => {
        const { id, env } = await task(status, context, payloadTaskId);
        expect(await runReferenceAgent(env, { log: (l) => logs.push(l) })).to.equal(code);
        const t = await tasks.get(id);
        expect(t?.status).to.equal(after);
        if (message) {
          expect(t?.error_message).to.match(message);
          expect(t?.exit_code).to.equal(code);
        }
      });
    }

    it("exits 2 without touching anything when its environment is incomplete", async () => {
      const out: string[] = [];
      expect(await runReferenceAgent({ TASK_ID: "x" }, { log: (l) => out.push(l) })).to.equal(2);
      expect(out.join("\n")).to.contain("TASK_TABLE_NAME");
    });
  });
});
