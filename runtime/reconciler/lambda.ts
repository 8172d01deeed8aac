/**
 * The scheduled reconciler Lambda: one pass per invocation (reconciler/reconcile.ts). Its actions are counted as
 * CloudWatch metrics (ReconcilerActions by action, StrandedTasksRepaired in total) for the stack's alarms.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { loadRuntimeConfig } from "../config";
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
  rt.metrics.flush();
}

export const handler = async (): Promise<ReconcileReport> => {
  const logger = new Logger({ serviceName: "agent-compute-reconciler" });
  const { createRuntime } = await import("../runtime");
  const config = loadRuntimeConfig();
  const rt = createRuntime(config);
  const report = await reconcileOnce(rt, { executions: new LambdaOrchestratorExecutions(config, new LambdaDispatcher(config)) });
  recordReconcileMetrics(rt, report);
  for (const a of report.applied) {
    if (a.outcome === "skipped") continue;
    (a.outcome === "error" ? logger.error : logger.warn).call(logger, `reconciler ${a.action.kind}: ${a.outcome}`, { ...a.action, detail: a.detail });
  }
  logger.info("reconciler pass", { observed: report.observed, counts: report.counts, errors: report.errors });
  return report;
};
