/**
 * What one reconciler pass costs with 1,000 tasks in the table: every AWS call counted by command (DynamoDB in moto,
 * the orchestrator listing faked). Printed for the record; asserted only in what must hold: the pass reads through
 * the indexes (a handful of calls) and does not touch tasks one by one.
 */
import { expect } from "chai";
import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { documentClient } from "../runtime/aws/dynamodb";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import type { OrchestratorExecutions } from "../runtime/reconciler/executions";
import { reconcileOnce } from "../runtime/reconciler/reconcile";
import { TASKS_BY_STATUS_INDEX, TASKS_BY_USER_WAITING_INDEX } from "../runtime/tables";
import type { TaskRecord } from "../runtime/tasks/record";
import type { TaskStatus } from "../runtime/tasks/status";
import { createTables, harness, testConfig } from "./orchestrator-fixtures";

describe("reconciler cost per pass with 1,000 tasks", function () {
  this.timeout(300_000);
  const config = testConfig();
  before(() => createTables(config));

  it("reads the table through its indexes: calls do not grow with the number of finished tasks", async () => {
    const h = harness(config, "ecs", async () => ({ state: "RUNNING" }));
    const now = h.clock.now();
    const at = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
    const tasks: TaskRecord[] = [];
    const statuses: TaskStatus[] = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];
    for (let i = 0; i < 1000; i++) {
      const running = i < 100;
      tasks.push({
        task_id: `cost-${String(i).padStart(4, "0")}`,
        user_id: `user-${i % 50}`,
        status: running ? "RUNNING" : statuses[i % 4],
        repo_url: "https://github.com/acme/app",
        prompt: "p",
        created_at: at(7200 + i),
        updated_at: at(60),
        ...(running ? { agent_heartbeat_at: at(10), started_at: at(7000) } : { finished_at: at(3600), released_at: at(3500) }),
      });
    }
    const db = documentClient(config);
    for (let i = 0; i < tasks.length; i += 25) {
      await db.send(new BatchWriteCommand({ RequestItems: { [config.tables.tasks]: tasks.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }));
    }
    for (const t of tasks.slice(0, 100)) await new ConcurrencySlots(config).claim(t.user_id, t.task_id, 10);
    // Ten stranded: finished, never released, one holding a slot.
    for (const t of tasks.slice(100, 110)) {
      await db.send(new BatchWriteCommand({ RequestItems: { [config.tables.tasks]: [{ PutRequest: { Item: { ...t, released_at: undefined } } }] } }));
    }
    await new ConcurrencySlots(config).claim(tasks[100].user_id, tasks[100].task_id, 10);

    let listCalls = 0;
    const executions: OrchestratorExecutions = {
      running: async () => (listCalls++, new Set(tasks.slice(0, 100).map((t) => t.task_id))),
      redrive: async () => "exists",
      describe: async () => undefined,
    };
    const calls: Record<string, number> = {};
    const name = "count-reconciler-calls";
    db.middlewareStack.add(
      (next, context) => async (args) => {
        const table = Object.entries(config.tables).find(([, n]) => n === (args.input as { TableName?: string }).TableName)?.[0] ?? "batch";
        const index = (args.input as { IndexName?: string }).IndexName;
        const key = `${(context.commandName ?? "?").replace(/Command$/, "")} ${table}${index ? `/${index}` : ""}`;
        calls[key] = (calls[key] ?? 0) + 1;
        return next(args);
      },
      { step: "initialize", name },
    );
    let report;
    try {
      report = await reconcileOnce(h.rt, { executions });
    } finally {
      db.middlewareStack.remove(name);
    }
    const total = Object.values(calls).reduce((a, b) => a + b, 0) + listCalls;
    console.log(`      one pass, 1,000 tasks (100 running, 890 finished and released, 10 stranded): ${total} calls ${JSON.stringify({ ...calls, ListDurableExecutionsByFunction: listCalls })}; repairs ${JSON.stringify(report.counts)}`);
    expect(report.counts.finalize).to.equal(10);
    expect(report.observed.active).to.equal(100);
    // Observation: one query per status (4 active, 4 finished; one page each here) and the slot scan, whatever the
    // number of finished tasks; per-task calls only for the ten repaired.
    expect(calls[`Query tasks/${TASKS_BY_STATUS_INDEX}`], JSON.stringify(calls)).to.equal(8);
    expect(calls["Scan concurrency"]).to.equal(1);
    // A released slot wakes its user's oldest queued task: one read of that user's own queue per repaired task.
    expect(calls[`Query tasks/${TASKS_BY_USER_WAITING_INDEX}`] ?? 0, "queue reads only for the repaired tasks").to.be.at.most(10);
    expect(calls["GetItem tasks"] ?? 0, "task reads only for the repaired tasks").to.be.at.most(10 * 2);
  });
});
