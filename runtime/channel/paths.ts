/** The agent channel's place in the API's path space (kept apart so routers can test a path without loading it). */
export const CHANNEL_PREFIX = "/agent/v1";

export function isChannelPath(path: string): boolean {
  return path === CHANNEL_PREFIX || path.startsWith(`${CHANNEL_PREFIX}/`);
}
