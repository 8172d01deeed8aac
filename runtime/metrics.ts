/**
 * CloudWatch metrics for every Lambda and the local platform, through Powertools Metrics (embedded metric format:
 * a log line CloudWatch turns into metrics, so recording one costs no API call). One namespace for the stack.
 * Callers record counts with dimensions and flush at the end of an invocation; outside Lambda (tests, the local
 * platform) nothing is printed unless POWERTOOLS_METRICS_DISABLED is explicitly "false".
 */
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";

export const METRICS_NAMESPACE = "AgentCompute";

export type MetricDimensions = Record<string, string>;

export interface MetricsSink {
  /** Count `value` of `name` (unit Count) under these dimensions. */
  count(name: string, value?: number, dimensions?: MetricDimensions): void;
  /** Write what was recorded (one EMF line per dimension set). */
  flush(): void;
}

/** A Powertools-backed sink. Each dimension set is its own EMF document, so dimensions never mix. */
export function createMetrics(service: string): MetricsSink {
  const enabled = Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME) || process.env.POWERTOOLS_METRICS_DISABLED === "false";
  const pending = new Map<string, { dimensions: MetricDimensions; values: Map<string, number> }>();
  return {
    count(name, value = 1, dimensions = {}) {
      const key = JSON.stringify(Object.entries(dimensions).sort());
      const entry = pending.get(key) ?? { dimensions, values: new Map<string, number>() };
      entry.values.set(name, (entry.values.get(name) ?? 0) + value);
      pending.set(key, entry);
    },
    flush() {
      if (enabled) {
        for (const { dimensions, values } of pending.values()) {
          const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service });
          for (const [k, v] of Object.entries(dimensions)) metrics.addDimension(k, v);
          for (const [name, v] of values) metrics.addMetric(name, MetricUnit.Count, v);
          metrics.publishStoredMetrics();
        }
      }
      pending.clear();
    },
  };
}
