import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { RuntimeConfig } from "../config";
import type { AgentPayload, PayloadStore } from "../ports";
import { checkTaskIdForPath, decodePayload, encodePayload, PAYLOAD_MAX_BYTES } from "./limits";

/**
 * Payloads as files `${dir}/${taskId}/payload.json` (mode 0600, folder 0700): the local backend's store. The URI
 * is the absolute path, which the agent is handed as AGENT_PAYLOAD_URL (agentLocator).
 */
export class FilePayloadStore implements PayloadStore {
  readonly maxBytes = PAYLOAD_MAX_BYTES;
  private readonly dir: string;

  constructor(config: Pick<RuntimeConfig, "payload">) {
    if (config.payload.kind !== "file") {
      throw new RangeError(`FilePayloadStore needs payload.kind "file", got "${config.payload.kind}"`);
    }
    if (!config.payload.dir) throw new RangeError("payload.dir is required for file payloads");
    this.dir = path.resolve(config.payload.dir);
  }

  pathFor(taskId: string): string {
    return path.join(this.dir, checkTaskIdForPath(taskId), "payload.json");
  }

  async put(taskId: string, payload: AgentPayload): Promise<string> {
    const target = this.pathFor(taskId);
    await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    await this.write(target, payload);
    return target;
  }

  async get(uri: string): Promise<AgentPayload> {
    return readFilePayload(uri);
  }

  async replace(uri: string, payload: AgentPayload): Promise<void> {
    await this.write(this.own(uri, "replace"), payload);
  }

  /** The agent on this machine reads the file itself (mode 0600: only this OS user can). */
  async agentLocator(uri: string): Promise<string> {
    return this.own(uri, "hand out");
  }

  async delete(uri: string): Promise<void> {
    const file = this.own(uri, "delete");
    await fs.rm(file, { force: true });
    // Remove the task's folder if nothing else lives there; keep it otherwise (a local run's log, say).
    await fs.rmdir(path.dirname(file)).catch(() => undefined);
  }

  /** Write then rename, so an agent never reads a half-written payload. */
  private async write(target: string, payload: AgentPayload): Promise<void> {
    const body = encodePayload(payload, this.maxBytes);
    const tmp = `${target}.${randomBytes(4).toString("hex")}.tmp`;
    await fs.writeFile(tmp, body, { mode: 0o600, flag: "wx" });
    await fs.rename(tmp, target);
  }

  private own(uri: string, what: string): string {
    const file = filePathOf(uri);
    if (path.dirname(path.dirname(file)) !== this.dir || path.basename(file) !== "payload.json") {
      throw new RangeError(`refusing to ${what} ${uri}: not a payload under ${this.dir}`);
    }
    return file;
  }
}

/** An absolute path or a file:// URL, as a path. */
export function filePathOf(uri: string): string {
  const p = uri.startsWith("file://") ? fileURLToPath(uri) : uri;
  if (!path.isAbsolute(p)) throw new RangeError(`payload location '${uri}' must be an absolute path or a file:// URL`);
  return path.normalize(p);
}

export async function readFilePayload(uri: string): Promise<AgentPayload> {
  const file = filePathOf(uri);
  return decodePayload(await fs.readFile(file, "utf8"), file);
}
