/**
 * The driver interface: how the runner asks a coding agent to work on a checked-out repository. A driver gets the
 * prompt as data (never in an argv or a shell string) and reports how the run ended; the runner does everything
 * around it (clone, commit, push, pull request, reporting).
 */

export interface DriverRequest {
  prompt: string;
  /** The checked-out repository; the agent works here. */
  cwd: string;
  /** A folder outside the repository for the agent's own files (e.g. its result file). */
  scratchDir: string;
  model?: string;
  maxTurns?: number;
  maxBudgetUsd?: number;
  /** Aborted when the task is cancelled: the driver stops the agent's whole process tree and returns. */
  signal: AbortSignal;
  /** A line of progress for people watching the task (bounded and coalesced by the caller). */
  progress(message: string, data?: Record<string, unknown>): void;
  /** A line for the runner's own log. */
  log(line: string): void;
}

export type DriverOutcomeKind = "done" | "failed" | "budget_exceeded" | "turns_exceeded" | "cancelled";

export interface DriverOutcome {
  kind: DriverOutcomeKind;
  /** What went wrong, for the failure kinds. */
  detail?: string;
  costUsd?: number;
  turns?: number;
  /** The agent's own account of what it did. */
  summary?: string;
}

export interface Driver {
  readonly name: string;
  run(request: DriverRequest): Promise<DriverOutcome>;
}

export const DRIVER_NAMES = ["claude", "command"] as const;
export type DriverName = (typeof DRIVER_NAMES)[number];

/** The runner enforces max_budget_usd on what an agent reports, whether or not the agent enforced it itself. */
export function enforceBudget(outcome: DriverOutcome, maxBudgetUsd: number | undefined): DriverOutcome {
  if (outcome.kind !== "done" || maxBudgetUsd === undefined || outcome.costUsd === undefined || outcome.costUsd <= maxBudgetUsd) return outcome;
  return { ...outcome, kind: "budget_exceeded", detail: `the agent reported $${outcome.costUsd.toFixed(4)}, over max_budget_usd $${maxBudgetUsd}` };
}
