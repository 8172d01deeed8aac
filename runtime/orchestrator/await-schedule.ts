/**
 * When the orchestrator polls a started task. Polls are the safety net: the agent's terminal report and a cancel
 * wake the orchestrator at once (orchestrator/wake.ts). So the wait between polls starts at the poll interval
 * (a start that fails is seen quickly), doubles, and stops growing at a ceiling; the ceiling is at least
 * taskTimeout / MAX_SAFETY_POLLS, so a task makes at most about MAX_SAFETY_POLLS polls at the ceiling however long
 * its timeout. Each poll is two durable operations (the wake callback and the poll step), which bounds a task's
 * durable history. Re-checks of a task waiting in its user's queue or for EC2 capacity follow the same schedule.
 */
import type { LimitsConfig } from "../config";

/** Polls at the ceiling that cover a whole task timeout. */
export const MAX_SAFETY_POLLS = 100;

/**
 * Durable operations of a task besides its re-checks: load, admit, the start's wake (which also serves as the wait
 * before the first poll), start, finalize.
 */
export const FIXED_OPERATIONS = 5;

/** The longest wait between two polls. */
export function pollCeilingSeconds(limits: Pick<LimitsConfig, "maxPollIntervalSeconds" | "taskTimeoutSeconds">, baseSeconds: number): number {
  return Math.max(baseSeconds, limits.maxPollIntervalSeconds, Math.ceil(limits.taskTimeoutSeconds / MAX_SAFETY_POLLS));
}

/** Seconds to wait after poll `n` (0-based): base, 2·base, 4·base, … up to the ceiling. */
export function pollDelaySeconds(n: number, baseSeconds: number, ceilingSeconds: number): number {
  return Math.min(ceilingSeconds, baseSeconds * 2 ** Math.min(n, 30));
}

/** The most polls a task can make before its timeout ends it: the doubling ramp, then the ceiling. */
export function maxPolls(timeoutSeconds: number, baseSeconds: number, ceilingSeconds: number): number {
  let elapsed = baseSeconds; // the wait before the first poll
  let polls = 0;
  while (elapsed < timeoutSeconds) {
    elapsed += pollDelaySeconds(polls, baseSeconds, ceilingSeconds);
    polls++;
  }
  return polls + 1; // the poll that sees the timeout
}

/** Re-finalizations of a task whose compute outlives it: waits of base, 2·base, … cover the grace, then one stops it. */
export function graceRounds(graceSeconds: number, baseSeconds: number): number {
  return Math.ceil(Math.log2(Math.max(1, graceSeconds / baseSeconds) + 1)) + 1;
}

/** Safety-net waits before the back-off reaches the ceiling. */
export function rampLength(baseSeconds: number, ceilingSeconds: number): number {
  return Math.max(0, Math.ceil(Math.log2(ceilingSeconds / baseSeconds)));
}

/**
 * The bound on one task's durable operations (one attempt): the fixed ones, two per safety-net re-check — in the
 * queue, waiting for EC2 capacity, and between polls — and two per grace round of a compute that outlives its task
 * (orchestrator/workflow.ts). All three kinds of re-check back off from the poll interval to the ceiling, and
 * together they cannot outlast the task timeout, which each phase enforces from submission: so at most the
 * timeout's worth of re-checks at the ceiling plus a ramp and a closing re-check per phase. A task that waited
 * for capacity also arms one wake of a poll interval before its first poll (two operations).
 */
export function durableOperationBound(
  limits: Pick<LimitsConfig, "maxPollIntervalSeconds" | "taskTimeoutSeconds" | "computeStopGraceSeconds">,
  baseSeconds: number,
): number {
  const ceiling = pollCeilingSeconds(limits, baseSeconds);
  const rechecks = maxPolls(limits.taskTimeoutSeconds, baseSeconds, ceiling) + 2 * (rampLength(baseSeconds, ceiling) + 1);
  return FIXED_OPERATIONS + 2 * rechecks + 2 + 2 * graceRounds(limits.computeStopGraceSeconds, baseSeconds);
}
