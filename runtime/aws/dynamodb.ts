/**
 * The one way the runtime talks to DynamoDB: a document client per region and endpoint (built on the shared
 * client of ./clients, so retries are the SDK's adaptive mode), and the two refusals our conditional writes
 * expect, recognised by name as well as by class (an emulator's error may come from another SDK copy).
 */
import { ConditionalCheckFailedException, DynamoDBClient, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { RuntimeConfig } from "../config";
import { awsClient } from "./clients";

const docClients = new WeakMap<DynamoDBClient, DynamoDBDocumentClient>();

/** The document client for this config's region and DynamoDB endpoint; undefined attributes are left out of writes. */
export function documentClient(config: Pick<RuntimeConfig, "region" | "endpoints">): DynamoDBDocumentClient {
  const base = awsClient(DynamoDBClient, { region: config.region, endpoint: config.endpoints?.dynamodb });
  let doc = docClients.get(base);
  if (!doc) {
    doc = DynamoDBDocumentClient.from(base, { marshallOptions: { removeUndefinedValues: true } });
    docClients.set(base, doc);
  }
  return doc;
}

/** A single conditional write was refused because its condition did not hold. */
export function isConditionalCheckFailed(err: unknown): err is ConditionalCheckFailedException {
  return err instanceof ConditionalCheckFailedException || (err as { name?: string })?.name === "ConditionalCheckFailedException";
}

/**
 * Why a TransactWriteItems was cancelled, item by item, under the names the caller gave its items (in the order
 * they were written): e.g. { taskMarker: "ConditionalCheckFailed", instance: "None" }. Undefined when `err` is not
 * a cancelled transaction. An item DynamoDB reports nothing for reads "None", as DynamoDB itself reports it.
 */
export function transactionCancellation<N extends string>(
  err: unknown,
  itemNames: readonly N[],
): Record<N, string> | undefined {
  if (!(err instanceof TransactionCanceledException) && (err as { name?: string })?.name !== "TransactionCanceledException") {
    return undefined;
  }
  const reasons = (err as TransactionCanceledException).CancellationReasons ?? [];
  return Object.fromEntries(itemNames.map((name, i) => [name, reasons[i]?.Code ?? "None"])) as Record<N, string>;
}
