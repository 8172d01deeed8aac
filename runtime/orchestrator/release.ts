/**
 * Giving back what a task holds once it has ended: its concurrency slot, and whatever its backend keeps beyond the
 * session (the strategy's releaseTask; an EC2 instance lease). Cancel and finalize both call this; each part is
 * idempotent, so running it twice changes nothing.
 */
import type { ComputeStrategy } from "../compute/strategy";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { ConcurrencySlots } from "./slots";
import { chooseBackend } from "./start";

export async function releaseHeld(rt: Runtime, task: TaskRecord): Promise<void> {
  // A start can take capacity and fail before the handle (compute_type) is saved, so a task without one is
  // asked of the backend its start would have chosen; one that cannot be chosen never got to take anything.
  const backend = task.compute_type ?? task.backend ?? (await chooseBackend(rt, task).then((c) => c.backend, () => undefined));
  if (backend) await (rt.strategy(backend) as ComputeStrategy).releaseTask?.(task);
  await new ConcurrencySlots(rt.config).release(task.user_id, task.task_id);
}
