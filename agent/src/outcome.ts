/**
 * Every way a run ends, with its exit code and the reason the task record carries. One table, so each failure
 * path has its own code and wording (tests assert them).
 */

export const EXIT = {
  OK: 0,
  ERROR: 1,
  SETUP: 2,
  CLONE: 3,
  AGENT: 4,
  BUDGET: 5,
  TURNS: 6,
  PUSH: 7,
  PULL_REQUEST: 8,
  CREDENTIALS: 9,
  /** Stopped by the platform (SIGTERM), as a shell reports it. */
  STOPPED: 143,
} as const;

export type FailureKind = "setup" | "credentials" | "clone" | "agent" | "budget" | "turns" | "push" | "pull_request" | "internal";

const TABLE: Record<FailureKind, { code: number; reason: string }> = {
  setup: { code: EXIT.SETUP, reason: "setup failed" },
  credentials: { code: EXIT.CREDENTIALS, reason: "repository credentials unavailable" },
  clone: { code: EXIT.CLONE, reason: "clone failed" },
  agent: { code: EXIT.AGENT, reason: "agent failed" },
  budget: { code: EXIT.BUDGET, reason: "budget exceeded" },
  turns: { code: EXIT.TURNS, reason: "turn limit reached" },
  push: { code: EXIT.PUSH, reason: "push rejected" },
  pull_request: { code: EXIT.PULL_REQUEST, reason: "pull request failed" },
  internal: { code: EXIT.ERROR, reason: "runner error" },
};

export class RunFailure extends Error {
  readonly code: number;
  constructor(
    readonly kind: FailureKind,
    detail: string,
    readonly facts: { costUsd?: number; turns?: number } = {},
  ) {
    super(`${TABLE[kind].reason}: ${detail}`);
    this.name = "RunFailure";
    this.code = TABLE[kind].code;
  }
}
