import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { expect } from "chai";
import { fetchPayload } from "../runtime/agent/channel-client";
import { awsClient } from "../runtime/aws/clients";
import type { RuntimeConfig } from "../runtime/config";
import { DEFAULT_LIMITS } from "../runtime/limits";
import { PayloadTooLargeError } from "../runtime/errors";
import {
  createPayloadStore,
  FilePayloadStore,
  PAYLOAD_MAX_BYTES,
  S3PayloadStore,
} from "../runtime/payload";
import type { AgentPayload, PayloadStore } from "../runtime/ports";

const MiB = 1024 * 1024;

function config(payload: RuntimeConfig["payload"]): RuntimeConfig {
  return {
    region: "us-east-1",
    tables: { tasks: "t", events: "e", leases: "l", concurrency: "c", repos: "r" },
    payload,
    defaultBackend: "local",
    enabledBackends: ["local"],
    limits: DEFAULT_LIMITS,
  };
}

/** A prompt of exactly `bytes` UTF-8 bytes, with characters JSON must escape. */
function prompt(bytes: number): string {
  const head = `line one 'single' "double" $(touch /tmp/nope) \`tick\`\nnaïve ✓\n`;
  return head + "x".repeat(bytes - Buffer.byteLength(head));
}

function payload(taskId: string, promptBytes: number): AgentPayload {
  return { task_id: taskId, repo_url: "https://github.com/acme/app", prompt: prompt(promptBytes), context: { work_seconds: 0 } };
}

interface Case {
  name: string;
  make: () => Promise<{ store: PayloadStore; stored: () => Promise<string[]> }>;
}

const bucket = `payloads-${randomBytes(4).toString("hex")}`;
let tmpRoot: string;

const cases: Case[] = [
  {
    name: "S3PayloadStore (moto)",
    make: async () => {
      const s3 = awsClient(S3Client, { region: "us-east-1" });
      const store = new S3PayloadStore(config({ kind: "s3", bucket, prefix: "payloads/" }));
      const stored = async () =>
        ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
      return { store, stored };
    },
  },
  {
    name: "FilePayloadStore",
    make: async () => {
      const dir = path.join(tmpRoot, "payloads");
      const store = new FilePayloadStore(config({ kind: "file", dir }));
      const stored = async () => {
        const out: string[] = [];
        for (const d of await fs.readdir(dir).catch(() => [] as string[])) {
          for (const f of await fs.readdir(path.join(dir, d))) out.push(`${d}/${f}`);
        }
        return out;
      };
      return { store, stored };
    },
  },
];

describe("payload stores", () => {
  before(async () => {
    tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), "payload-test-"));
    await awsClient(S3Client, { region: "us-east-1" }).send(new CreateBucketCommand({ Bucket: bucket }));
  });
  after(async () => {
    await fs.rm(tmpRoot, { recursive: true, force: true });
  });

  it("the limit is 2 MiB", () => {
    expect(PAYLOAD_MAX_BYTES).to.equal(2 * MiB);
  });

  for (const c of cases) {
    describe(c.name, () => {
      it("round-trips a payload whose prompt is exactly 1 MiB, byte for byte", async () => {
        const { store } = await c.make();
        const id = `task-${randomBytes(4).toString("hex")}`;
        const p = payload(id, MiB);
        expect(Buffer.byteLength(p.prompt)).to.equal(MiB);
        const uri = await store.put(id, p);
        expect(uri).to.contain(id);
        const back = await store.get(uri);
        expect(back).to.deep.equal(p);
        // What the agent does: read it through the locator it is handed (a presigned GET, or the file path).
        expect(await fetchPayload(await store.agentLocator(uri, 60))).to.deep.equal(p);
      });

      it("refuses an oversize payload with an error naming the limit, and writes nothing", async () => {
        const { store, stored } = await c.make();
        const id = `big-${randomBytes(4).toString("hex")}`;
        const err = await store.put(id, payload(id, 2 * MiB)).catch((e) => e);
        expect(err).to.be.instanceOf(PayloadTooLargeError);
        expect(err.limitBytes).to.equal(PAYLOAD_MAX_BYTES);
        expect(err.message).to.contain(`${PAYLOAD_MAX_BYTES} bytes`).and.contain("2 MiB");
        expect((await stored()).filter((k) => k.includes(id))).to.deep.equal([]);
      });

      it("delete removes the payload, and deleting a missing one is fine", async () => {
        const { store, stored } = await c.make();
        const id = `del-${randomBytes(4).toString("hex")}`;
        const uri = await store.put(id, payload(id, 100));
        expect((await stored()).some((k) => k.includes(id))).to.equal(true);
        await store.delete(uri);
        expect((await stored()).some((k) => k.includes(id))).to.equal(false);
        await store.delete(uri);
        const err = await store.get(uri).catch((e) => e);
        expect(err).to.be.instanceOf(Error);
      });

      it("refuses task ids that could escape the payload folder", async () => {
        const { store } = await c.make();
        for (const bad of ["../etc", "a/b", "", ".hidden", "x..y"]) {
          const err = await store.put(bad, payload(bad, 100)).catch((e) => e);
          expect(err, bad).to.be.instanceOf(RangeError);
        }
      });
    });
  }

  it("S3 payloads are written with server-side encryption under the prefix", async () => {
    const store = new S3PayloadStore(config({ kind: "s3", bucket, prefix: "payloads/" }));
    const id = `enc-${randomBytes(4).toString("hex")}`;
    const uri = await store.put(id, payload(id, 100));
    expect(uri).to.equal(`s3://${bucket}/payloads/${id}/payload.json`);
    const head = await awsClient(S3Client, { region: "us-east-1" }).send(
      new HeadObjectCommand({ Bucket: bucket, Key: `payloads/${id}/payload.json` }),
    );
    expect(head.ServerSideEncryption).to.equal("AES256");
  });

  it("S3 delete refuses a URI outside its bucket and prefix", async () => {
    const store = new S3PayloadStore(config({ kind: "s3", bucket, prefix: "payloads/" }));
    for (const uri of [`s3://other/payloads/x/payload.json`, `s3://${bucket}/secrets/x/payload.json`]) {
      const err = await store.delete(uri).catch((e) => e);
      expect(err, uri).to.be.instanceOf(RangeError);
    }
  });

  it("payload files are readable by their owner only, in an owner-only folder", async () => {
    const store = new FilePayloadStore(config({ kind: "file", dir: path.join(tmpRoot, "modes") }));
    const file = await store.put("mode-task", payload("mode-task", 100));
    expect((await fs.stat(file)).mode & 0o777).to.equal(0o600);
    expect((await fs.stat(path.dirname(file))).mode & 0o777).to.equal(0o700);
  });

  it("createPayloadStore picks the store from payload.kind", () => {
    expect(createPayloadStore(config({ kind: "s3", bucket: "b" }))).to.be.instanceOf(S3PayloadStore);
    expect(createPayloadStore(config({ kind: "file", dir: "/tmp/p" }))).to.be.instanceOf(FilePayloadStore);
  });

  it("reading a file that is not a payload names what is missing", async () => {
    const file = path.join(tmpRoot, "bad.json");
    await fs.writeFile(file, JSON.stringify({ task_id: "x", prompt: "y" }));
    const err = await fetchPayload(file).catch((e) => e);
    expect(err.message).to.contain("repo_url").and.contain(file);
  });
});
