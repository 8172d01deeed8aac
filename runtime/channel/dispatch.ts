/**
 * The dispatch side of the channel: before any compute starts, the task gets its capability token (the payload
 * holds the token, the record its SHA-256) and the agent gets a short-lived locator of its payload. Nothing else
 * about the platform reaches the agent: no table names, no credentials.
 */
import { ConfigError, DEFAULT_PAYLOAD_URL_SECONDS } from "../config";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { newAgentToken, tokenMatches } from "./token";

/**
 * Give the task its token and return what the agent is handed as AGENT_PAYLOAD_URL. Safe to repeat (a replayed
 * start step): a payload whose token already matches the record is handed out again as it is. The payload is
 * written before the record's hash, so a crash between the two leaves a mismatch that the next attempt replaces.
 */
export async function prepareAgentChannel(rt: Runtime, task: TaskRecord, payloadUri: string): Promise<string> {
  const channel = rt.config.agentChannel;
  if (!channel?.url) throw new ConfigError("agentChannel.url is not configured: the agent would have nowhere to report");
  const url = channel.url.replace(/\/+$/, "");
  const payload = await rt.payloads.get(payloadUri);
  const ready = payload.channel?.url === url && tokenMatches(payload.channel.token, task.agent_token_sha256);
  if (!ready) {
    const { token, sha256 } = newAgentToken();
    await rt.payloads.replace(payloadUri, { ...payload, channel: { url, token } });
    await rt.tasks.update(task.task_id, { agent_token_sha256: sha256 }, ["STARTING"]);
  }
  return rt.payloads.agentLocator(payloadUri, channel.payloadUrlSeconds ?? DEFAULT_PAYLOAD_URL_SECONDS);
}
