/** Payload by reference: where a task's input lives (S3 or a local file) and how an agent reads it back. */
import type { RuntimeConfig } from "../config";
import type { AgentPayload, PayloadStore } from "../ports";
import { FilePayloadStore, readFilePayload } from "./file";
import { readS3Payload, S3PayloadStore } from "./s3";

export { FilePayloadStore, filePathOf } from "./file";
export { checkTaskIdForPath, decodePayload, encodePayload, parseS3Uri, PAYLOAD_MAX_BYTES } from "./limits";
export { readS3Payload, S3PayloadStore } from "./s3";

export function createPayloadStore(config: RuntimeConfig): PayloadStore {
  const kind = config.payload.kind;
  switch (kind) {
    case "s3":
      return new S3PayloadStore(config);
    case "file":
      return new FilePayloadStore(config);
    default: {
      const unknownKind: never = kind;
      throw new RangeError(`payload.kind '${String(unknownKind)}' is not supported; use "s3" or "file"`);
    }
  }
}

/** Read the payload an agent was handed as AGENT_PAYLOAD_URI: s3://bucket/key, an absolute path, or file://. */
export function readPayload(uri: string, region?: string): Promise<AgentPayload> {
  return uri.startsWith("s3://") ? readS3Payload(uri, region) : readFilePayload(uri);
}
