/**
 * Shared set-up for the task API tests: a runtime whose tables live in the test run's moto
 * server (fresh names per call) and whose payloads are files in a fresh temp folder, plus a recording
 * dispatcher. Not a test file itself (no .test.ts suffix).
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import type { TaskDispatcher } from "../runtime/api/router";
import { awsClient } from "../runtime/aws/clients";
import type { RuntimeConfig } from "../runtime/config";
import { createRuntime, type Runtime } from "../runtime/runtime";
import { createTables, ec2Settings, runtimeConfig } from "./fixtures";

export interface ApiFixture {
  runtime: Runtime;
  config: RuntimeConfig;
  payloadDir: string;
  dispatched: string[];
  dispatcher: TaskDispatcher & { fail?: Error };
  /** Items in the tasks table. */
  taskCount(): Promise<number>;
  /** Items in the events table. */
  eventCount(): Promise<number>;
  /** Payload files on disk. */
  payloadFiles(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function apiFixture(blueprints: Record<string, { backend?: "local" | "ec2"; fleet?: string; model?: string; max_turns?: number }> = {}): Promise<ApiFixture> {
  const payloadDir = await fs.mkdtemp(path.join(os.tmpdir(), "api-payloads-"));
  const config = runtimeConfig("api", {
    payload: { kind: "file", dir: payloadDir },
    enabledBackends: ["local", "ec2"],
    ec2: ec2Settings(["default", "gpu"]),
    local: { workDir: payloadDir },
  });
  const tables = config.tables;
  const ddb = awsClient(DynamoDBClient, { region: config.region });
  await createTables(config);
  const dispatched: string[] = [];
  const dispatcher: ApiFixture["dispatcher"] = {
    async dispatch(taskId) {
      if (dispatcher.fail) throw dispatcher.fail;
      dispatched.push(taskId);
    },
  };
  // The real runtime over moto: stores, blueprints and all. The API never starts compute itself.
  const runtime = createRuntime(config);
  for (const [repo_url, bp] of Object.entries(blueprints)) await runtime.repos.put({ repo_url, ...bp });
  return {
    runtime,
    config,
    payloadDir,
    dispatched,
    dispatcher,
    async taskCount() {
      const out = await ddb.send(new ScanCommand({ TableName: tables.tasks, Select: "COUNT" }));
      return out.Count ?? 0;
    },
    async eventCount() {
      const out = await ddb.send(new ScanCommand({ TableName: tables.events, Select: "COUNT" }));
      return out.Count ?? 0;
    },
    async payloadFiles() {
      const found: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const e of await fs.readdir(dir, { withFileTypes: true })) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) await walk(p);
          else found.push(p);
        }
      };
      await walk(payloadDir);
      return found;
    },
    async cleanup() {
      await fs.rm(payloadDir, { recursive: true, force: true });
    },
  };
}

export const GOOD_SUBMIT = { repo_url: "https://github.com/acme/app", prompt: "Fix the flaky test in ci.yml" };
