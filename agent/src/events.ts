/**
 * Task events from the runner, bounded: each message at most the channel's 2,000 characters and data at most 8 KiB,
 * at most `perMinute` events (a token bucket, so a burst is allowed) well under the server's own rate, progress
 * lines coalesced so a chatty agent costs a few events a minute, and every text scrubbed of secrets. Events are
 * best effort: a refused or failed event never fails the task.
 */
import { CHANNEL_LIMITS, ChannelError, type AgentChannel, type EventType } from "./channel";
import type { Scrubber } from "./scrub";

export interface EventReporterOptions {
  /** Steady rate. Default 30 a minute (the server allows 60). */
  perMinute?: number;
  /** Burst. Default 40. */
  burst?: number;
  /** Shortest interval between two progress events. Default 5000 ms. */
  progressEveryMs?: number;
  now?: () => number;
  log?: (line: string) => void;
}

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** data as sent: scrubbed, and dropped to a note when its JSON is over the limit. */
export function boundData(data: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (data === undefined) return undefined;
  const json = JSON.stringify(data);
  if (Buffer.byteLength(json) <= CHANNEL_LIMITS.eventDataBytes) return data;
  return { truncated: true, bytes: Buffer.byteLength(json) };
}

export class EventReporter {
  private tokens: number;
  private last: number;
  private readonly perMinute: number;
  private readonly burst: number;
  private readonly progressEveryMs: number;
  private readonly now: () => number;
  private lastProgressAt = -Infinity;
  private pendingProgress?: { message: string; data?: Record<string, unknown> };
  private pausedUntil = 0;
  private inflight = new Set<Promise<void>>();
  dropped = 0;
  sent = 0;

  constructor(
    private readonly channel: AgentChannel,
    private readonly scrubber: Scrubber,
    options: EventReporterOptions = {},
  ) {
    this.perMinute = options.perMinute ?? 30;
    this.burst = options.burst ?? 40;
    this.progressEveryMs = options.progressEveryMs ?? 5000;
    this.now = options.now ?? Date.now;
    this.tokens = this.burst;
    this.last = this.now();
    this.log = options.log ?? (() => undefined);
  }
  private readonly log: (line: string) => void;

  private take(): boolean {
    const t = this.now();
    if (t < this.pausedUntil) return false;
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 60_000) * this.perMinute);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  info(message: string, data?: Record<string, unknown>): void {
    this.send("info", message, data);
  }

  error(message: string, data?: Record<string, unknown>): void {
    this.send("error", message, data);
  }

  /** Progress is coalesced: the latest line is sent at most every progressEveryMs; the rest are counted. */
  progress(message: string, data?: Record<string, unknown>): void {
    const t = this.now();
    if (t - this.lastProgressAt < this.progressEveryMs) {
      if (this.pendingProgress) this.dropped++;
      this.pendingProgress = { message, data };
      return;
    }
    this.lastProgressAt = t;
    this.pendingProgress = undefined;
    this.send("progress", message, data);
  }

  /** Send the held progress line (if any) now; used at phase ends so the last line is not lost. */
  flushProgress(): void {
    const p = this.pendingProgress;
    if (!p) return;
    this.pendingProgress = undefined;
    this.lastProgressAt = this.now();
    this.send("progress", p.message, p.data);
  }

  private send(type: EventType, message: string, data?: Record<string, unknown>): void {
    if (!this.take()) {
      this.dropped++;
      return;
    }
    const text = clip(this.scrubber.scrub(message), CHANNEL_LIMITS.eventMessageChars);
    const bounded = boundData(data === undefined ? undefined : this.scrubber.scrubValue(data));
    const p = this.channel.event(type, text, bounded).then(
      () => {
        this.sent++;
      },
      (err) => {
        this.dropped++;
        if (err instanceof ChannelError && err.httpStatus === 429) this.pausedUntil = this.now() + (err.retryAfterSeconds ?? 10) * 1000;
        else this.log(`event not delivered: ${this.scrubber.scrub((err as Error).message)}`);
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Wait for events already sent (before the terminal result, so they are not reordered after it). */
  async drain(): Promise<void> {
    await Promise.all([...this.inflight]);
  }
}
