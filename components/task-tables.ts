/**
 * The DynamoDB tables (tasks, events, leases, concurrency, repos), built from runtime/tables.ts so keys and
 * indexes cannot drift from the code that reads them; on-demand, encrypted, point-in-time recovery, TTL.
 * Repo blueprints from the stack config are written as items of the repos table.
 */
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { TABLE_SCHEMAS, type TableName } from "../runtime/tables";
import { normalizeRepoUrl } from "../runtime/repos/blueprints";
import type { RepoSettings } from "./config/types";

export interface TaskTablesArgs {
  readonly repos?: readonly RepoSettings[];
}

export const TABLE_KEYS = Object.keys(TABLE_SCHEMAS) as TableName[];

export class TaskTables extends pulumi.ComponentResource {
  readonly tables: Record<TableName, aws.dynamodb.Table>;
  readonly names: Record<TableName, pulumi.Output<string>>;
  readonly arns: Record<TableName, pulumi.Output<string>>;

  constructor(name: string, args: TaskTablesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:storage:TaskTables", name, {}, opts);
    this.tables = createTables(name, this);
    createRepoItems(name, this.tables.repos, args.repos ?? [], this);
    this.names = mapTables(this.tables, (t) => t.name);
    this.arns = mapTables(this.tables, (t) => t.arn);
    this.registerOutputs({ names: this.names, arns: this.arns });
  }
}

function mapTables<T>(tables: Record<TableName, aws.dynamodb.Table>, f: (t: aws.dynamodb.Table) => T): Record<TableName, T> {
  return Object.fromEntries(TABLE_KEYS.map((k) => [k, f(tables[k])])) as Record<TableName, T>;
}

export function createTables(name: string, parent: pulumi.Resource): Record<TableName, aws.dynamodb.Table> {
  const out = {} as Record<TableName, aws.dynamodb.Table>;
  for (const key of TABLE_KEYS) {
    const schema = TABLE_SCHEMAS[key];
    out[key] = new aws.dynamodb.Table(
      `${name}-${key}`,
      {
        billingMode: "PAY_PER_REQUEST",
        hashKey: schema.hashKey,
        rangeKey: schema.rangeKey,
        attributes: Object.entries(schema.attributes).map(([n, type]) => ({ name: n, type })),
        // keySchemas, not the GSI's hashKey/rangeKey, which @pulumi/aws 7 deprecates.
        globalSecondaryIndexes: schema.indexes.map((ix) => ({
          name: ix.name,
          keySchemas: [
            { attributeName: ix.hashKey, keyType: "HASH" },
            ...(ix.rangeKey ? [{ attributeName: ix.rangeKey, keyType: "RANGE" }] : []),
          ],
          projectionType: ix.include ? "INCLUDE" : "ALL",
          nonKeyAttributes: ix.include,
        })),
        pointInTimeRecovery: { enabled: true },
        serverSideEncryption: { enabled: true },
        ttl: schema.ttlAttribute ? { attributeName: schema.ttlAttribute, enabled: true } : undefined,
      },
      { parent },
    );
  }
  return out;
}

/** A repo blueprint as the runtime reads it (runtime/repos/blueprints.ts RepoBlueprint), in DynamoDB JSON. */
export function repoItem(repo: RepoSettings): string {
  const item: Record<string, { S: string } | { N: string }> = { repo_url: { S: normalizeRepoUrl(repo.repoUrl) } };
  if (repo.backend) item.backend = { S: repo.backend };
  if (repo.fleet) item.fleet = { S: repo.fleet };
  if (repo.model) item.model = { S: repo.model };
  if (repo.maxTurns !== undefined) item.max_turns = { N: String(repo.maxTurns) };
  if (repo.maxBudgetUsd !== undefined) item.max_budget_usd = { N: String(repo.maxBudgetUsd) };
  if (repo.pollIntervalSeconds !== undefined) item.poll_interval_seconds = { N: String(repo.pollIntervalSeconds) };
  if (repo.startupGraceSeconds !== undefined) item.startup_grace_seconds = { N: String(repo.startupGraceSeconds) };
  return JSON.stringify(item);
}

function createRepoItems(name: string, table: aws.dynamodb.Table, repos: readonly RepoSettings[], parent: pulumi.Resource): void {
  for (const repo of repos) {
    // Named by a hash of the normalised URL: stable across reorderings of the repos map.
    const id = crypto.createHash("sha256").update(normalizeRepoUrl(repo.repoUrl)).digest("hex").slice(0, 12);
    new aws.dynamodb.TableItem(
      `${name}-repo-${id}`,
      { tableName: table.name, hashKey: table.hashKey, item: repoItem(repo) },
      { parent },
    );
  }
}
