import { expect } from "chai";
import { createLambdaHandler, type HttpApiEventV2 } from "../runtime/api/lambda";
import { apiFixture, GOOD_SUBMIT, type ApiFixture } from "./api-helpers";

const ARN = "arn:aws:sts::111122223333:assumed-role/Developer/alice";

function event(overrides: Partial<HttpApiEventV2> & { method?: string; userArn?: string | null }): HttpApiEventV2 {
  const { method = "GET", userArn = ARN, ...rest } = overrides;
  return {
    rawPath: "/tasks",
    rawQueryString: "",
    headers: {},
    ...rest,
    requestContext: {
      stage: "$default",
      http: { method, path: rest.rawPath ?? "/tasks" },
      ...(userArn ? { authorizer: { iam: { userArn } } } : {}),
      ...rest.requestContext,
    },
  };
}

describe("task API Lambda adapter (HTTP API payload v2, AWS_IAM)", () => {
  let fx: ApiFixture;
  let loads = 0;
  let handler: ReturnType<typeof createLambdaHandler>;
  before(async () => {
    fx = await apiFixture();
    handler = createLambdaHandler(async () => {
      loads++;
      return { runtime: fx.runtime, dispatcher: fx.dispatcher };
    });
  });
  after(async () => fx.cleanup());

  it("refuses a request without an IAM identity with 403, before loading anything or writing", async () => {
    const before = await fx.taskCount();
    const res = await handler(event({ method: "POST", userArn: null, body: JSON.stringify(GOOD_SUBMIT) }));
    expect(res.statusCode).to.equal(403);
    expect(JSON.parse(res.body).error).to.contain("SigV4");
    expect(loads).to.equal(0);
    expect(await fx.taskCount()).to.equal(before);
  });

  it("submits as the IAM caller's stable identity (the role, not the session name it chose), whatever the body says", async () => {
    const res = await handler(event({ method: "POST", body: JSON.stringify(GOOD_SUBMIT), headers: { "idempotency-key": "lambda-1" } }));
    expect(res.statusCode, res.body).to.equal(201);
    const task = JSON.parse(res.body).task;
    expect(ARN).to.match(/assumed-role\/Developer\//);
    expect(task.user_id).to.equal("arn:aws:iam::111122223333:role/Developer");
    expect((await fx.runtime.tasks.get(task.task_id))!.user_id).to.equal("arn:aws:iam::111122223333:role/Developer");
  });

  it("refuses a signed caller that is no IAM user, role session or federated user with 403", async () => {
    const res = await handler(event({ method: "GET", userArn: "arn:aws:iam::111122223333:group/devs" }));
    expect(res.statusCode).to.equal(403);
    expect(JSON.parse(res.body).error).to.contain("not an IAM user");
  });

  it("serves the agent channel without an IAM identity: the token decides (401 without one)", async () => {
    const res = await handler(event({ method: "POST", userArn: null, rawPath: "/agent/v1/tasks/t-1/heartbeat", body: "{}" }));
    expect(res.statusCode).to.equal(401);
    expect(JSON.parse(res.body).error).to.contain("Bearer");
  });

  it("decodes a base64 body and a query string, and loads the runtime once across invocations", async () => {
    const res = await handler(
      event({ method: "POST", body: Buffer.from(JSON.stringify({ ...GOOD_SUBMIT, prompt: "b64" })).toString("base64"), isBase64Encoded: true }),
    );
    expect(res.statusCode, res.body).to.equal(201);
    const list = await handler(event({ rawQueryString: "limit=1&status=SUBMITTED" }));
    expect(list.statusCode, list.body).to.equal(200);
    expect(JSON.parse(list.body).tasks).to.have.length(1);
    expect(JSON.parse(list.body).next_token).to.be.a("string");
    expect(loads).to.equal(1);
  });

  it("strips a named stage from the path", async () => {
    const res = await handler(event({ rawPath: "/prod/tasks", requestContext: { stage: "prod", http: { method: "GET" }, authorizer: { iam: { userArn: ARN } } } }));
    expect(res.statusCode, res.body).to.equal(200);
  });

  it("another IAM principal sees none of the first one's tasks", async () => {
    const res = await handler(event({ userArn: "arn:aws:iam::111122223333:user/mallory" }));
    expect(JSON.parse(res.body).tasks).to.deep.equal([]);
  });

  it("a validation error comes back as 400 JSON naming the field", async () => {
    const res = await handler(event({ method: "POST", body: JSON.stringify({ ...GOOD_SUBMIT, max_turns: 0 }) }));
    expect(res.statusCode).to.equal(400);
    expect(res.headers["content-type"]).to.equal("application/json");
    expect(JSON.parse(res.body).field).to.equal("max_turns");
  });
});
