/**
 * Fleet elasticity: how many instances a fleet wants is a pure function of plain numbers (plan.ts applies it:
 * scale-out by raising the desired capacity, scale-in by draining chosen idle instances).
 */

export interface CapacityInput {
  /** Tasks of this fleet waiting for an instance. */
  queued: number;
  /** Instances running a task. */
  busy: number;
  /** Idle instances that finished booting. They serve queued tasks first; the total wanted does not depend on them. */
  ready: number;
  /** Idle instances to keep beyond demand so the next task starts at once. */
  warmBuffer: number;
  min: number;
  max: number;
}

export function desiredCapacity(input: CapacityInput): number {
  for (const key of ["queued", "busy", "ready", "warmBuffer", "min", "max"] as const) {
    const v = input[key];
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`desiredCapacity: ${key} must be a whole number ≥ 0, got ${v}`);
  }
  if (input.min > input.max) throw new RangeError(`desiredCapacity: min (${input.min}) is above max (${input.max})`);
  // One instance per running task, one per waiting task, plus the warm buffer, within the group's bounds.
  const wanted = input.busy + input.queued + input.warmBuffer;
  return Math.min(input.max, Math.max(input.min, wanted));
}
