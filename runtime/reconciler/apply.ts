/**
 * Carries out the reconciler's plan. Every action is a conditional write (a status transition from the status
 * observed, a slot or lease released only while this task holds it), so a plan made from a stale view, or a
 * second reconciler, does nothing; every action that changed something leaves an event on its task. One action
 * failing does not stop the others: it is reported, and the next pass tries again.
 */
import { IllegalTransitionError } from "../errors";
import { LeaseTable } from "../fleet/lease";
import { finalizeTask } from "../orchestrator/finalize";
import { wakeNextQueued } from "../orchestrator/admission";
import { ConcurrencySlots } from "../orchestrator/slots";
import { fleetWakeHooks, wakeOrchestrator } from "../orchestrator/wake";
import type { Runtime } from "../runtime";
import type { OrchestratorExecutions } from "./executions";
import type { ObservedTask, RepairAction, RepairKind } from "./plan";

export interface AppliedAction {
  action: RepairAction;
  /** done: it changed something; skipped: the world had moved on (the condition failed); error: it threw. */
  outcome: "done" | "skipped" | "error";
  detail?: string;
}

export async function applyRepairs(
  rt: Runtime,
  actions: readonly RepairAction[],
  executions: OrchestratorExecutions | undefined,
  tasks: ReadonlyMap<string, ObservedTask>,
): Promise<AppliedAction[]> {
  const out: AppliedAction[] = [];
  for (const action of actions) {
    try {
      const changed = await applyOne(rt, action, executions, tasks);
      out.push({ action, outcome: changed ? "done" : "skipped" });
    } catch (err) {
      out.push({ action, outcome: "error", detail: (err as Error).message ?? String(err) });
    }
  }
  return out;
}

async function applyOne(
  rt: Runtime,
  action: RepairAction,
  executions: OrchestratorExecutions | undefined,
  tasks: ReadonlyMap<string, ObservedTask>,
): Promise<boolean> {
  switch (action.kind) {
    case "redrive": {
      if ((await executions?.redrive(action.taskId)) === "started") {
        await rt.events.append(action.taskId, "info", `reconciler: ${action.reason}; started its orchestrator`);
        return true;
      }
      // It had an orchestrator that ended before recording itself: fail the task like any other stranded one.
      return fail(rt, { ...action, kind: "fail", from: "SUBMITTED", to: "FAILED", reason: `the task's orchestrator ended before it started the task (reconciler)` });
    }
    case "fail": {
      const arn = tasks.get(action.taskId)?.execution_arn;
      const how = arn && executions && action.reason.includes("orchestrator") ? await executions.describe(arn).catch(() => undefined) : undefined;
      return fail(rt, how ? { ...action, reason: `${action.reason}: ${how}` } : action);
    }
    case "finalize": {
      await finalizeTask(rt, action.taskId, { stopRunningCompute: true });
      await rt.events.append(action.taskId, "info", `reconciler: ${action.reason}; finalized it`);
      return true;
    }
    case "release-slot": {
      if (!(await new ConcurrencySlots(rt.config).releaseHeld(action.userId, action.taskId))) return false;
      await wakeNextQueued(rt, action.userId);
      await rt.events.append(action.taskId, "info", `reconciler: released the concurrency slot of user ${action.userId}: ${action.reason}`);
      return true;
    }
    case "release-lease": {
      // The lease table itself, like the observation that found this lease: the repair is of one lease item, whichever
      // task the strategy would now say holds it. A waiter the instance is handed over to is woken.
      if (!(await new LeaseTable(rt.config, rt.now, fleetWakeHooks(rt)).releaseInstance(action.instanceId, action.taskId)).released) return false;
      await rt.events.append(action.taskId, "info", `reconciler: released EC2 instance ${action.instanceId}: ${action.reason}`);
      return true;
    }
    default: {
      const unhandled: never = action;
      throw new Error(`unknown repair ${JSON.stringify(unhandled)}`);
    }
  }
}

/** Fail a stranded task (conditional on the status it was seen in), then give back everything it holds. */
async function fail(rt: Runtime, action: Extract<RepairAction, { kind: "fail" }>): Promise<boolean> {
  try {
    await rt.tasks.transition(action.taskId, action.to, { error_message: action.reason }, [action.from]);
  } catch (err) {
    if (err instanceof IllegalTransitionError) return false;
    throw err;
  }
  await rt.events.append(action.taskId, "status", action.reason, { status: action.to });
  // An orchestrator still running (a deadline case) finalizes too; both are idempotent.
  await wakeOrchestrator(rt, action.taskId);
  await finalizeTask(rt, action.taskId, { stopRunningCompute: true });
  return true;
}

export function countByKind(applied: readonly AppliedAction[]): Record<RepairKind, number> {
  const counts: Record<RepairKind, number> = { redrive: 0, fail: 0, finalize: 0, "release-slot": 0, "release-lease": 0 };
  for (const a of applied) if (a.outcome === "done") counts[a.action.kind]++;
  return counts;
}
