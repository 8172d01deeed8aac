/**
 * Payload by reference: where a task's input lives (S3 or a local file). Agents read it through the locator a
 * store hands out (a presigned URL or the file path), never with the store itself.
 */
import type { RuntimeConfig } from "../config";
import type { PayloadStore } from "../ports";
import { FilePayloadStore } from "./file";
import { S3PayloadStore } from "./s3";

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

