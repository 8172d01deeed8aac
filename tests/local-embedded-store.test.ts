import { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import { awsClient } from "../runtime/aws/clients";
import type { RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { IllegalTransitionError } from "../runtime/errors";
import { startEmbeddedStore, type EmbeddedStore } from "../runtime/local/embedded-store";
import { TABLE_SCHEMAS, TASKS_BY_STATUS_INDEX } from "../runtime/tables";
import { DynamoEventLog } from "../runtime/tasks/events";
import { DynamoTaskStore } from "../runtime/tasks/store";

describe("embedded store (in-process dynalite)", () => {
  let store: EmbeddedStore;
  before(async () => {
    store = await startEmbeddedStore({ tablePrefix: "embedded-test" });
  });
  after(async () => {
    await store?.close();
  });

  it("listens on loopback and creates every table the runtime knows", async () => {
    expect(store.endpoint).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(Object.keys(store.tableNames).sort()).to.deep.equal(Object.keys(TABLE_SCHEMAS).sort());
    const client = awsClient(DynamoDBClient, { region: store.region, endpoint: store.endpoint });
    const tasks = await client.send(new DescribeTableCommand({ TableName: store.tableNames.tasks }));
    expect(tasks.Table?.TableStatus).to.equal("ACTIVE");
    expect(tasks.Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName)).to.include(TASKS_BY_STATUS_INDEX);
  });

  it("runs the same task store code as the cloud, conditional writes included", async () => {
    const config: RuntimeConfig = {
      region: store.region,
      endpoints: { dynamodb: store.endpoint },
      tables: store.tableNames,
      payload: { kind: "file", dir: "/tmp" },
      defaultBackend: "local",
      enabledBackends: ["local"],
      limits: DEFAULT_LIMITS,
    };
    const tasks = new DynamoTaskStore(config);
    const now = new Date().toISOString();
    await tasks.create({ task_id: "emb-1", user_id: "u", status: "STARTING", repo_url: "r", prompt: "p", created_at: now, updated_at: now });
    await tasks.transition("emb-1", "RUNNING");
    await tasks.transition("emb-1", "COMPLETED");
    const err = await tasks.transition("emb-1", "RUNNING").catch((e) => e);
    expect(err).to.be.instanceOf(IllegalTransitionError);
    expect(err.actual).to.equal("COMPLETED");
    const events = new DynamoEventLog(config);
    await events.append("emb-1", "info", "a");
    await events.append("emb-1", "info", "b");
    expect((await events.list("emb-1")).items.map((e) => e.message)).to.deep.equal(["a", "b"]);
  });

  it("hands agents the endpoint and static credentials to reach it", () => {
    expect(store.agentEnv.AWS_ENDPOINT_URL_DYNAMODB).to.equal(store.endpoint);
    expect(store.agentEnv.AWS_ACCESS_KEY_ID).to.be.a("string").and.not.equal("");
    expect(store.agentEnv.AWS_SECRET_ACCESS_KEY).to.be.a("string").and.not.equal("");
  });

  it("refuses a port that is taken, naming it", async () => {
    const port = Number(new URL(store.endpoint).port);
    const err = await startEmbeddedStore({ port, tablePrefix: "clash" }).catch((e) => e);
    expect(err).to.be.instanceOf(Error);
    expect(err.message).to.contain(String(port)).and.contain("in use");
  });
});
