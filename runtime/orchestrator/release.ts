/**
 * Giving back what a finished task's backend holds beyond its session (the strategy's releaseTask: an EC2
 * instance lease). Finalize calls it once the compute is stopped or has exited; cancel does not, because a start
 * without a saved handle may be using the lease at that moment. Idempotent.
 */
import type { ComputeStrategy } from "../compute/strategy";
import type { Runtime } from "../runtime";
import type { TaskRecord } from "../tasks/record";
import { chooseBackend } from "./start";

export async function releaseBackendHold(rt: Runtime, task: TaskRecord): Promise<void> {
  // A start can take capacity and fail before the handle (compute_type) is saved, so a task without one is
  // asked of the backend its start would have chosen; one that cannot be chosen never got to take anything.
  const backend = task.compute_type ?? task.backend ?? (await chooseBackend(rt, task).then((c) => c.backend, () => undefined));
  if (backend) await (rt.strategy(backend) as ComputeStrategy).releaseTask?.(task);
}
