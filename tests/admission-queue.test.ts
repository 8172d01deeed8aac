/**
 * Fair admission: a user's queue is an index of that user's waiting tasks alone, so admission and the queue cap
 * read one user's queue whatever the others have queued; past maxQueuedPerUser a submit is refused with 429.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { expect } from "chai";
import { handleApiRequest } from "../runtime/api/router";
import { awsClient } from "../runtime/aws/clients";
import { createRuntime, type Runtime } from "../runtime/runtime";
import { apiFixture, GOOD_SUBMIT, type ApiFixture } from "./api-helpers";
import { createTables, createTask, FakeClock, testConfig } from "./orchestrator-fixtures";

describe("fair admission: the per-user queue index", function () {
  this.timeout(60_000);
  let rt: Runtime;
  let clock: FakeClock;

  before(async () => {
    const config = testConfig();
    await createTables(config);
    clock = new FakeClock();
    rt = createRuntime(config, { now: clock.now });
  });

  it("a task is in its user's queue while SUBMITTED or QUEUED, and leaves it as it starts or ends", async () => {
    const t = await createTask(rt, { user_id: "ann" });
    expect((await rt.tasks.get(t.task_id)) as unknown).to.include({ waiting_since: t.created_at });
    expect(await rt.tasks.countWaiting("ann", 100)).to.equal(1);
    await rt.tasks.transition(t.task_id, "QUEUED");
    expect(await rt.tasks.countWaiting("ann", 100)).to.equal(1);
    expect((await rt.tasks.oldestQueued("ann"))?.task_id).to.equal(t.task_id);
    await rt.tasks.transition(t.task_id, "STARTING");
    expect((await rt.tasks.get(t.task_id)) as unknown).to.not.have.property("waiting_since");
    expect(await rt.tasks.countWaiting("ann", 100)).to.equal(0);
    expect(await rt.tasks.oldestQueued("ann")).to.equal(undefined);
    const cancelled = await createTask(rt, { user_id: "ann" });
    await rt.tasks.transition(cancelled.task_id, "CANCELLED");
    expect(await rt.tasks.countWaiting("ann", 100)).to.equal(0);
  });

  it("oldestQueued is the user's own oldest QUEUED task: not another user's, not one still SUBMITTED", async () => {
    const other = await createTask(rt, { user_id: "bo" });
    await rt.tasks.transition(other.task_id, "QUEUED");
    clock.advance(1);
    await createTask(rt, { user_id: "cy" }); // SUBMITTED, oldest of cy's
    clock.advance(1);
    const older = await createTask(rt, { user_id: "cy" });
    clock.advance(1);
    const younger = await createTask(rt, { user_id: "cy" });
    await rt.tasks.transition(younger.task_id, "QUEUED");
    await rt.tasks.transition(older.task_id, "QUEUED");
    expect((await rt.tasks.oldestQueued("cy"))?.task_id).to.equal(older.task_id);
    expect(await rt.tasks.countWaiting("cy", 100)).to.equal(3);
    expect(await rt.tasks.countWaiting("cy", 2), "counts no further than asked").to.equal(2);
  });

  it("reading a light user's queue touches none of a heavy user's 120 queued tasks", async () => {
    for (let i = 0; i < 120; i++) {
      const t = await createTask(rt, { user_id: "heavy" });
      await rt.tasks.transition(t.task_id, "QUEUED");
    }
    clock.advance(1);
    const light = await createTask(rt, { user_id: "light" });
    await rt.tasks.transition(light.task_id, "QUEUED");
    const scanned: number[] = [];
    const client = awsClient(DynamoDBClient, { region: rt.config.region });
    client.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        const o = (out.output ?? {}) as { ScannedCount?: number };
        if (o.ScannedCount !== undefined) scanned.push(o.ScannedCount);
        return out;
      },
      { step: "initialize", name: "countScanned" },
    );
    try {
      expect((await rt.tasks.oldestQueued("light"))?.task_id).to.equal(light.task_id);
      expect(await rt.tasks.countWaiting("light", 100)).to.equal(1);
    } finally {
      client.middlewareStack.remove("countScanned");
    }
    expect(scanned, "one query each, one item read each").to.deep.equal([1, 1]);
  });
});

describe("fair admission: the per-user queue cap over the API", function () {
  this.timeout(60_000);
  let fx: ApiFixture;
  before(async () => {
    fx = await apiFixture();
  });
  after(async () => fx.cleanup());

  it("past maxQueuedPerUser a submit gets 429 naming the limit, and nothing is written; other users are unaffected", async () => {
    const rt = createRuntime({ ...fx.config, limits: { ...fx.config.limits, maxQueuedPerUser: 3 } });
    const submit = (userId: string) => handleApiRequest(rt, fx.dispatcher, { method: "POST", path: "/tasks", body: JSON.stringify(GOOD_SUBMIT), userId });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await submit("dana");
      expect(res.statusCode, res.body).to.equal(201);
      ids.push(JSON.parse(res.body).task.task_id);
    }
    const [tasks, events, payloads] = [await fx.taskCount(), await fx.eventCount(), (await fx.payloadFiles()).length];
    const refused = await submit("dana");
    expect(refused.statusCode).to.equal(429);
    const body = JSON.parse(refused.body);
    expect(body).to.include({ limit: "maxQueuedPerUser", max: 3 });
    expect(body.error).to.contain("maxQueuedPerUser = 3");
    expect([await fx.taskCount(), await fx.eventCount(), (await fx.payloadFiles()).length]).to.deep.equal([tasks, events, payloads]);
    expect((await submit("eli")).statusCode, "another user").to.equal(201);
    // One of dana's tasks starts: there is room again.
    await rt.tasks.transition(ids[0], "STARTING");
    expect((await submit("dana")).statusCode).to.equal(201);
  });
});
