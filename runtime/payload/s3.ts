import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";
import type { AgentPayload, PayloadStore } from "../ports";
import { checkTaskIdForPath, decodePayload, encodePayload, parseS3Uri, PAYLOAD_MAX_BYTES } from "./limits";

/** Payloads as S3 objects `${prefix}${taskId}/payload.json`, encrypted at rest; the agent gets the s3:// URI. */
export class S3PayloadStore implements PayloadStore {
  readonly maxBytes = PAYLOAD_MAX_BYTES;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(private readonly config: Pick<RuntimeConfig, "region" | "payload">) {
    if (config.payload.kind !== "s3") {
      throw new RangeError(`S3PayloadStore needs payload.kind "s3", got "${config.payload.kind}"`);
    }
    if (!config.payload.bucket) throw new RangeError("payload.bucket is required for S3 payloads");
    this.bucket = config.payload.bucket;
    this.prefix = config.payload.prefix ?? "";
  }

  private get s3(): S3Client {
    return awsClient(S3Client, { region: this.config.region });
  }

  keyFor(taskId: string): string {
    return `${this.prefix}${checkTaskIdForPath(taskId)}/payload.json`;
  }

  async put(taskId: string, payload: AgentPayload): Promise<string> {
    const key = this.keyFor(taskId);
    const body = encodePayload(payload, this.maxBytes);
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: "application/json",
        ServerSideEncryption: "AES256",
      }),
    );
    return `s3://${this.bucket}/${key}`;
  }

  async get(uri: string): Promise<AgentPayload> {
    return readS3Payload(uri, this.config.region);
  }

  async replace(uri: string, payload: AgentPayload): Promise<void> {
    const { bucket, key } = this.own(uri, "replace");
    await this.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: encodePayload(payload, this.maxBytes), ContentType: "application/json", ServerSideEncryption: "AES256" }),
    );
  }

  /**
   * A presigned GET of this one object. It is signed with the caller's (the orchestrator's) credentials, so it
   * lasts at most as long as they do, whatever `expiresInSeconds` says; S3 allows up to 7 days.
   */
  async agentLocator(uri: string, expiresInSeconds: number): Promise<string> {
    const { bucket, key } = this.own(uri, "hand out");
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresInSeconds });
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = this.own(uri, "delete");
    // S3 DeleteObject succeeds for a missing key, which is what "missing = fine" needs.
    await this.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }

  /** Only ever touch what this store wrote: a URI from a task record must not reach other objects. */
  private own(uri: string, what: string): { bucket: string; key: string } {
    const { bucket, key } = parseS3Uri(uri);
    if (bucket !== this.bucket || !key.startsWith(this.prefix) || !key.endsWith("/payload.json")) {
      throw new RangeError(`refusing to ${what} ${uri}: not a payload of s3://${this.bucket}/${this.prefix}`);
    }
    return { bucket, key };
  }
}

/** Read a payload from any s3:// URI (the agent side, which knows no store config). */
export async function readS3Payload(uri: string, region?: string): Promise<AgentPayload> {
  const { bucket, key } = parseS3Uri(uri);
  const out = await awsClient(S3Client, { region }).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!out.Body) throw new Error(`payload at ${uri} has no body`);
  return decodePayload(await out.Body.transformToString("utf8"), uri);
}
