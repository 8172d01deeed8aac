/**
 * Fixtures every test may share: table names unique to a suite, the tables themselves in the run's moto server,
 * the EC2 settings of a runtime config (fleets), a runtime config around them, and the log lines a Powertools
 * logger writes. Not a test file itself (no .test.ts suffix).
 */
import { randomBytes } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { awsClient } from "../runtime/aws/clients";
import type { Ec2Config, Ec2FleetConfig, RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { ensureTables, TABLE_SCHEMAS, type TableName } from "../runtime/tables";

export function suffix(): string {
  return randomBytes(4).toString("hex");
}

/** A name for each table, `<prefix>-<table>-<random>`, so suites never share one. */
export function uniqueTables(prefix: string): Record<TableName, string> {
  const s = suffix();
  return Object.fromEntries((Object.keys(TABLE_SCHEMAS) as TableName[]).map((t) => [t, `${prefix}-${t}-${s}`])) as Record<TableName, string>;
}

/** Create the config's tables (all of them, or only `only`) in moto and wait until they are active. */
export async function createTables(config: Pick<RuntimeConfig, "region" | "tables">, only?: readonly TableName[]): Promise<void> {
  const names = only ? Object.fromEntries(only.map((t) => [t, config.tables[t]])) : config.tables;
  await ensureTables(awsClient(DynamoDBClient, { region: config.region }), names as Record<TableName, string>);
}

/** EC2 settings with the given fleets (the first is the default) and a test's own document name. */
export function ec2Settings(fleets: string[] | Record<string, Ec2FleetConfig>, overrides: Partial<Ec2Config> = {}): Ec2Config {
  const byName = Array.isArray(fleets) ? Object.fromEntries(fleets.map((f) => [f, {}])) : fleets;
  return {
    documentName: `agent-compute-task-${suffix()}`,
    fleets: byName,
    defaultFleet: Object.keys(byName)[0],
    deliveryTimeoutSeconds: 120,
    executionTimeoutSeconds: 3600,
    image: "public.ecr.aws/example/agent:1",
    ...overrides,
  };
}

/**
 * A runtime config over unique tables: only the local backend unless the overrides say otherwise, payloads as files
 * under /tmp, default limits.
 */
export function runtimeConfig(prefix: string, overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  return {
    region: "us-east-1",
    tables: uniqueTables(prefix),
    payload: { kind: "file", dir: "/tmp" },
    defaultBackend: "local",
    enabledBackends: ["local"],
    ...overrides,
    limits: { ...DEFAULT_LIMITS, ...overrides.limits },
  };
}

/** A runtime config whose only backend is EC2, with the given fleets. */
export function ec2RuntimeConfig(prefix: string, fleets: string[] | Record<string, Ec2FleetConfig>, ec2: Partial<Ec2Config> = {}): RuntimeConfig {
  return runtimeConfig(prefix, {
    payload: { kind: "s3", bucket: `${prefix}-payloads-${suffix()}` },
    defaultBackend: "ec2",
    enabledBackends: ["ec2"],
    ec2: ec2Settings(fleets, ec2),
  });
}

/**
 * Run `fn` and return it with the JSON lines Powertools loggers of `service` wrote meanwhile (INFO and below go to
 * stdout, WARN and ERROR to stderr; other output passes through). The logger must have been created with an
 * explicit level: the test run silences the rest.
 */
export async function captureLogs<T>(service: string, fn: () => Promise<T>): Promise<{ result: T; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const streams = [process.stdout, process.stderr];
  const writes = streams.map((stream) => stream.write);
  streams.forEach((stream, i) => {
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = String(chunk);
      if (!text.includes(`"service":"${service}"`)) return (writes[i] as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      lines.push(JSON.parse(text));
      return true;
    }) as typeof stream.write;
  });
  try {
    return { result: await fn(), lines };
  } finally {
    streams.forEach((stream, i) => (stream.write = writes[i]));
  }
}
