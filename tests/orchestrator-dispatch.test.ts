/** LambdaDispatcher: one durable execution per task, named after it. */
import { DurableExecutionAlreadyStartedException, InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { expect } from "chai";
import { ConfigError } from "../runtime/config";
import { LambdaDispatcher } from "../runtime/orchestrator/dispatch";

describe("LambdaDispatcher", () => {
  // Installed in before(), not at load time: a mock made while mocha loads files would be live in every other file.
  let lambda: AwsClientStub<LambdaClient>;
  before(() => {
    lambda = mockClient(LambdaClient);
  });
  const functionArn = "arn:aws:lambda:us-east-1:123456789012:function:orchestrator:live";
  afterEach(() => lambda.reset());
  after(() => lambda.restore());

  it("invokes the orchestrator asynchronously with the task id as the durable execution name", async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    await new LambdaDispatcher({ region: "us-east-1", orchestrator: { functionArn } }).dispatch("t-123");
    const calls = lambda.commandCalls(InvokeCommand);
    expect(calls).to.have.length(1);
    const input = calls[0].args[0].input;
    expect(input.FunctionName).to.equal(functionArn);
    expect(input.InvocationType).to.equal("Event");
    expect(input.DurableExecutionName).to.equal("t-123");
    expect(JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array))).to.deep.equal({ task_id: "t-123" });
  });

  it("treats an execution that already exists for the task as dispatched", async () => {
    lambda.on(InvokeCommand).rejects(new DurableExecutionAlreadyStartedException({ message: "exists", $metadata: {} }));
    await new LambdaDispatcher({ region: "us-east-1", orchestrator: { functionArn } }).dispatch("t-123");
    expect(lambda.commandCalls(InvokeCommand)).to.have.length(1);
  });

  it("passes other errors on", async () => {
    lambda.on(InvokeCommand).rejects(Object.assign(new Error("denied"), { name: "AccessDeniedException" }));
    const err = await new LambdaDispatcher({ region: "us-east-1", orchestrator: { functionArn } }).dispatch("t-1").catch((e) => e);
    expect(err.name).to.equal("AccessDeniedException");
  });

  it("without orchestrator.functionArn it refuses, naming the setting", async () => {
    const err = await new LambdaDispatcher({ region: "us-east-1" }).dispatch("t-1").catch((e) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.message).to.include("orchestrator.functionArn");
    expect(lambda.commandCalls(InvokeCommand)).to.have.length(0);
  });
});
