/**
 * Counts what a task costs the control plane, at the SDK: every AWS request by service and operation, and the
 * DynamoDB read/write units each call consumed as the embedded DynamoDB (dynalite) computes them from item sizes
 * (ReturnConsumedCapacity is added to every call). Compute-side services (ECS, SSM, EC2, Auto Scaling, AgentCore,
 * S3, Lambda) are answered by aws-sdk-client-mock and counted from its call log.
 */
import { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import { BedrockAgentCoreClient } from "@aws-sdk/client-bedrock-agentcore";
import { DynamoDBClient, TransactionCanceledException, type ConsumedCapacity } from "@aws-sdk/client-dynamodb";
import { DeleteCommand, DynamoDBDocumentClient, PutCommand, UpdateCommand, type TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { ECSClient } from "@aws-sdk/client-ecs";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client } from "@aws-sdk/client-s3";
import { SSMClient } from "@aws-sdk/client-ssm";
import { mockClient, type AwsStub } from "aws-sdk-client-mock";

export interface Tally {
  /** "service:Operation" → requests. */
  requests: Record<string, number>;
  readUnits: number;
  writeUnits: number;
}

export function emptyTally(): Tally {
  return { requests: {}, readUnits: 0, writeUnits: 0 };
}

const READS = /^(GetItem|Query|Scan|BatchGetItem|TransactGetItems)/;

function units(capacity: ConsumedCapacity | ConsumedCapacity[] | undefined): number {
  const list = Array.isArray(capacity) ? capacity : capacity ? [capacity] : [];
  return list.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
}

/** The low-level DynamoDB operation a marshalled input is for (the document client hides the command name). */
function operationOf(commandName: string | undefined, input: Record<string, unknown>): string {
  const name = (commandName ?? "").replace(/Command$/, "");
  const known: Record<string, string> = { Get: "GetItem", Put: "PutItem", Update: "UpdateItem", Delete: "DeleteItem", TransactWrite: "TransactWriteItems", TransactGet: "TransactGetItems", BatchGet: "BatchGetItem", BatchWrite: "BatchWriteItem" };
  if (known[name]) return known[name];
  if (name) return name;
  return input.TransactItems ? "TransactWriteItems" : "Unknown";
}

/**
 * Instrument the DynamoDB client the runtime uses (the cached one for this region and endpoint). dynalite has no
 * TransactWriteItems: the meter runs a transaction's items one by one against it (the bench is single-threaded,
 * so nothing interleaves) and bills them twice, as DynamoDB prices transactional writes.
 */
export function meterDynamo(client: DynamoDBClient, endpoint: string, region: string, tally: () => Tally): void {
  // The meter sits before the document client's marshalling, so a transaction's items are still plain values.
  const raw = DynamoDBDocumentClient.from(new DynamoDBClient({ region, endpoint }));
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      const op = operationOf(context.commandName, input);
      const t = tally();
      t.requests[`dynamodb:${op}`] = (t.requests[`dynamodb:${op}`] ?? 0) + 1;
      if (op === "TransactWriteItems") {
        const items = input.TransactItems as NonNullable<TransactWriteCommandInput["TransactItems"]>;
        let consumed = 0;
        for (const [i, item] of items.entries()) {
          const write = item.Put
            ? new PutCommand({ ...item.Put, ReturnConsumedCapacity: "TOTAL" })
            : item.Update
              ? new UpdateCommand({ ...item.Update, ReturnConsumedCapacity: "TOTAL" })
              : item.Delete
                ? new DeleteCommand({ ...item.Delete, ReturnConsumedCapacity: "TOTAL" })
                : undefined;
          if (!write) throw new Error("the bench's transaction meter handles Put, Update and Delete items only");
          try {
            consumed += units((await raw.send(write as never) as { ConsumedCapacity?: ConsumedCapacity }).ConsumedCapacity);
          } catch (err) {
            if ((err as { name?: string }).name !== "ConditionalCheckFailedException") throw err;
            if (i > 0) throw new Error("the bench's transaction meter cannot roll back a transaction whose later item failed");
            throw new TransactionCanceledException({
              message: "Transaction cancelled (bench meter)",
              $metadata: {},
              CancellationReasons: items.map((_, j) => ({ Code: j === i ? "ConditionalCheckFailed" : "None" })),
            });
          }
        }
        t.writeUnits += 2 * consumed;
        return { output: { $metadata: {} } as never, response: {} };
      }
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = "TOTAL";
      const result = await next(args);
      const consumed = units((result.output as { ConsumedCapacity?: ConsumedCapacity }).ConsumedCapacity);
      if (READS.test(op)) t.readUnits += consumed;
      else t.writeUnits += consumed;
      return result;
    },
    { step: "serialize", priority: "high", name: "benchCostMeter" },
  );
}

export interface ServiceMocks {
  ecs: AwsStub<any, any, any>;
  ssm: AwsStub<any, any, any>;
  ec2: AwsStub<any, any, any>;
  autoscaling: AwsStub<any, any, any>;
  agentcore: AwsStub<any, any, any>;
  s3: AwsStub<any, any, any>;
  lambda: AwsStub<any, any, any>;
}

export function mockServices(): ServiceMocks {
  return {
    ecs: mockClient(ECSClient),
    ssm: mockClient(SSMClient),
    ec2: mockClient(EC2Client),
    autoscaling: mockClient(AutoScalingClient),
    agentcore: mockClient(BedrockAgentCoreClient),
    s3: mockClient(S3Client),
    lambda: mockClient(LambdaClient),
  };
}

/** Requests each mocked service received since its history was last reset, as "service:Operation". */
export function mockedRequests(mocks: ServiceMocks): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [service, stub] of Object.entries(mocks)) {
    for (const call of stub.calls()) {
      const op = (call.args[0] as { constructor: { name: string } }).constructor.name.replace(/Command$/, "");
      out[`${service}:${op}`] = (out[`${service}:${op}`] ?? 0) + 1;
    }
  }
  return out;
}

export function resetHistories(mocks: ServiceMocks): void {
  for (const stub of Object.values(mocks)) stub.resetHistory();
}

export function restoreMocks(mocks: ServiceMocks): void {
  for (const stub of Object.values(mocks)) stub.restore();
}
