/**
 * Structured logs for every Lambda, through Powertools Logger: one JSON line per entry, which CloudWatch Logs
 * Insights can filter by field. Work on one task logs through a child logger carrying `task_id`, so every line of
 * that work names its task.
 */
import { Logger } from "@aws-lambda-powertools/logger";

export const LOG_SERVICES = {
  orchestrator: "agent-compute-orchestrator",
  api: "agent-compute-api",
  fleet: "agent-compute-fleet",
  reconciler: "agent-compute-reconciler",
} as const;

export type LogService = (typeof LOG_SERVICES)[keyof typeof LOG_SERVICES];

export function createLogger(service: LogService): Logger {
  return new Logger({ serviceName: service });
}

/** A logger for one task's work: every line it writes carries the task id. */
export function taskLogger(parent: Logger, taskId: string): Logger {
  return parent.createChild({ persistentKeys: { task_id: taskId } });
}
