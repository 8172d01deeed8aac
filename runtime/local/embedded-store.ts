/**
 * The local platform's task store: dynalite (a DynamoDB-compatible server) started in-process on 127.0.0.1, with
 * every table created from runtime/tables.ts, so the local backend runs the very same store code as the cloud.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { awsClient } from "../aws/clients";
import { ensureTables, TABLE_SCHEMAS, type TableName } from "../tables";

// dynalite ships no type declarations; this is the part of its API used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite = require("dynalite") as (options: {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;

/**
 * dynalite checks no signature, but the SDK refuses to send an unsigned request: any static credentials do.
 * They are not secrets and open nothing but this loopback server.
 */
export const EMBEDDED_STORE_CREDENTIALS = {
  accessKeyId: "agent-compute-local",
  secretAccessKey: "agent-compute-local",
} as const;

export interface EmbeddedStoreOptions {
  /** Port to listen on; a free one when omitted. */
  port?: number;
  /** Folder for a persistent LevelDB; in memory when omitted (everything is lost on close). */
  path?: string;
  /** Table names are `${tablePrefix}-tasks` and so on. Default "agent-compute". */
  tablePrefix?: string;
  region?: string;
  /**
   * Put EMBEDDED_STORE_CREDENTIALS into this process's environment when it has no AWS_ACCESS_KEY_ID, so this
   * process's DynamoDB client can sign. Default true. Real credentials, when present, are left alone.
   */
  setProcessCredentials?: boolean;
}

export interface EmbeddedStore {
  /** http://127.0.0.1:<port> — RuntimeConfig.endpoints.dynamodb. */
  endpoint: string;
  tableNames: Record<TableName, string>;
  region: string;
  /**
   * Environment an agent process needs to reach this store with the ordinary SDK credential and endpoint
   * variables: LocalConfig.env.
   */
  agentEnv: Record<string, string>;
  close(): Promise<void>;
}

export function embeddedTableNames(prefix = "agent-compute"): Record<TableName, string> {
  const names = {} as Record<TableName, string>;
  for (const key of Object.keys(TABLE_SCHEMAS) as TableName[]) names[key] = `${prefix}-${key}`;
  return names;
}

export async function startEmbeddedStore(options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
  const region = options.region ?? "us-east-1";
  if ((options.setProcessCredentials ?? true) && !process.env.AWS_ACCESS_KEY_ID) {
    process.env.AWS_ACCESS_KEY_ID = EMBEDDED_STORE_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = EMBEDDED_STORE_CREDENTIALS.secretAccessKey;
  }
  const server = dynalite({ path: options.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new Error(`embedded DynamoDB cannot listen on 127.0.0.1:${options.port}: the port is in use; pick another or omit it`)
          : err,
      ),
    );
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((err?: Error) => (err ? reject(err) : resolve()));
      // SDK clients keep sockets alive; without this, close waits for them to idle out.
      server.closeAllConnections();
    });

  const tableNames = embeddedTableNames(options.tablePrefix);
  try {
    await ensureTables(awsClient(DynamoDBClient, { region, endpoint }), tableNames);
  } catch (err) {
    await close().catch(() => undefined);
    throw new Error(`embedded DynamoDB at ${endpoint} started but its tables could not be created: ${(err as Error).message}`);
  }
  return {
    endpoint,
    tableNames,
    region,
    agentEnv: {
      AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      AWS_ACCESS_KEY_ID: EMBEDDED_STORE_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: EMBEDDED_STORE_CREDENTIALS.secretAccessKey,
    },
    close,
  };
}
