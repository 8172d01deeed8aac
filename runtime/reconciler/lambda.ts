/**
 * The scheduled reconciler Lambda: one pass per invocation (reconciler/reconcile.ts). Its actions are counted as
 * CloudWatch metrics (ReconcilerActions by action, StrandedTasksRepaired in total) for the stack's alarms, and what
 * it observed is sampled for the dashboard (ActiveTasks by status, FleetInstances by fleet and state).
 */
import { loadRuntimeConfig } from "../config";
import { createLogger, LOG_SERVICES, taskLogger } from "../logger";
import type { Runtime } from "../runtime";
import { LambdaDispatcher } from "../orchestrator/dispatch";
import { LambdaOrchestratorExecutions } from "./executions";
import { reconcileOnce, type ReconcileReport } from "./reconcile";

/** Record a pass's actions as metrics: every kind every pass (zeros too), so an alarm sees data, not gaps. */
export function recordReconcileMetrics(rt: Runtime, report: ReconcileReport): void {
  let repaired = 0;
  for (const [action, n] of Object.entries(report.counts)) {
    rt.metrics.count("ReconcilerActions", n, { action });
    repaired += n;
  }
  rt.metrics.count("StrandedTasksRepaired", repaired);
  rt.metrics.count("ReconcilerErrors", report.errors);
  // Gauges sampled once per pass: the dashboard's queue depth (QUEUED) and fleet capacity.
  for (const [status, n] of Object.entries(report.observed.activeByStatus)) rt.metrics.count("ActiveTasks", n, { status });
  for (const [fleet, states] of Object.entries(report.observed.fleetInstances)) {
    for (const [state, n] of Object.entries(states)) rt.metrics.count("FleetInstances", n, { fleet, state });
  }
  rt.metrics.flush();
}

export const handler = async (): Promise<ReconcileReport> => {
  const logger = createLogger(LOG_SERVICES.reconciler);
  const { createRuntime } = await import("../runtime");
  const config = loadRuntimeConfig();
  const rt = createRuntime(config);
  const report = await reconcileOnce(rt, { executions: new LambdaOrchestratorExecutions(config, new LambdaDispatcher(config)) });
  recordReconcileMetrics(rt, report);
  for (const a of report.applied) {
    if (a.outcome === "skipped") continue;
    // A repair is work on one task: its line carries the task id like the rest of that task's lines.
    const log = taskLogger(logger, a.action.taskId);
    (a.outcome === "error" ? log.error : log.warn).call(log, `reconciler ${a.action.kind}: ${a.outcome}`, { ...a.action, detail: a.detail });
  }
  logger.info("reconciler pass", { observed: report.observed, counts: report.counts, errors: report.errors });
  return report;
};
