/**
 * The stack's alarms and its one dashboard (docs/operations.md says what each alarm means and what to do):
 * - failed durable executions: the orchestrator's DurableExecutionFailed + DurableExecutionTimedOut (AWS/Lambda);
 * - stranded tasks repaired: the reconciler's StrandedTasksRepaired (a crash left something behind);
 * - errors of each Lambda (AWS/Lambda Errors).
 * The runtime's own metrics are EMF in the AgentCompute namespace, with Powertools' service dimension.
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { METRICS_NAMESPACE } from "../runtime/metrics";

/** The service dimension every runtime metric carries (runtime/runtime.ts creates the sink). */
export const METRICS_SERVICE = "agent-compute";

export interface MonitoringArgs {
  readonly region: pulumi.Input<string>;
  /** Name of the orchestrator function (durable execution metrics). */
  readonly orchestratorFunctionName: pulumi.Input<string>;
  /** Every Lambda of the stack, by a short label, for its errors alarm. */
  readonly functions: Record<string, pulumi.Input<string>>;
  /** SNS topics (or other alarm actions) to notify; none: the alarms are visible in the console only. */
  readonly alarmActions?: pulumi.Input<string>[];
}

export class Monitoring extends pulumi.ComponentResource {
  readonly alarms: aws.cloudwatch.MetricAlarm[];
  readonly dashboard: aws.cloudwatch.Dashboard;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:monitoring:Monitoring", name, {}, opts);
    const built = createMonitoring(name, args, this);
    this.alarms = built.alarms;
    this.dashboard = built.dashboard;
    this.registerOutputs({ dashboardName: this.dashboard.dashboardName });
  }
}

export function createMonitoring(name: string, args: MonitoringArgs, parent: pulumi.Resource) {
  const actions = args.alarmActions ?? [];
  const common = { alarmActions: actions, okActions: actions, treatMissingData: "notBreaching", comparisonOperator: "GreaterThanOrEqualToThreshold", threshold: 1, evaluationPeriods: 1 };
  const alarms: aws.cloudwatch.MetricAlarm[] = [];

  alarms.push(
    new aws.cloudwatch.MetricAlarm(
      `${name}-durable-failed`,
      {
        ...common,
        alarmDescription: "An orchestrator durable execution failed or timed out: its task is left to the reconciler. See docs/operations.md.",
        metricQueries: [
          { id: "failed", metric: { namespace: "AWS/Lambda", metricName: "DurableExecutionFailed", stat: "Sum", period: 300, dimensions: { FunctionName: args.orchestratorFunctionName } } },
          { id: "timedout", metric: { namespace: "AWS/Lambda", metricName: "DurableExecutionTimedOut", stat: "Sum", period: 300, dimensions: { FunctionName: args.orchestratorFunctionName } } },
          { id: "total", expression: "FILL(failed, 0) + FILL(timedout, 0)", label: "failed or timed-out executions", returnData: true },
        ],
      },
      { parent },
    ),
  );
  alarms.push(
    new aws.cloudwatch.MetricAlarm(
      `${name}-stranded-repaired`,
      {
        ...common,
        alarmDescription: "The reconciler repaired stranded tasks, slots, leases or compute: something crashed. See docs/operations.md.",
        namespace: METRICS_NAMESPACE,
        metricName: "StrandedTasksRepaired",
        dimensions: { service: METRICS_SERVICE },
        statistic: "Sum",
        period: 900,
      },
      { parent },
    ),
  );
  for (const [label, functionName] of Object.entries(args.functions)) {
    alarms.push(
      new aws.cloudwatch.MetricAlarm(
        `${name}-${label}-errors`,
        {
          ...common,
          alarmDescription: `The ${label} Lambda reported errors. See docs/operations.md.`,
          namespace: "AWS/Lambda",
          metricName: "Errors",
          dimensions: { FunctionName: functionName },
          statistic: "Sum",
          period: 300,
        },
        { parent },
      ),
    );
  }

  const search = (schema: string, metric: string, stat: string, label: string) => ({
    expression: `SEARCH('{${METRICS_NAMESPACE},${schema}} MetricName="${metric}"', '${stat}', 300)`,
    label,
  });
  const widget = (title: string, x: number, y: number, metrics: unknown[], region: pulumi.Input<string>) => ({
    type: "metric",
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, region, view: "timeSeries", stacked: false, metrics },
  });
  const dashboard = new aws.cloudwatch.Dashboard(
    `${name}-dashboard`,
    {
      dashboardName: name,
      dashboardBody: pulumi.jsonStringify({
        widgets: [
          widget("Tasks finished by backend and status", 0, 0, [[search("backend,service,status", "TasksFinished", "Sum", "finished")]], args.region),
          widget("Tasks started by backend", 12, 0, [[search("backend,service", "TasksStarted", "Sum", "started")]], args.region),
          widget("Active tasks by status (QUEUED = queue depth)", 0, 6, [[search("service,status", "ActiveTasks", "Maximum", "active")]], args.region),
          widget("EC2 fleet capacity (instances by state)", 12, 6, [[search("fleet,service,state", "FleetInstances", "Maximum", "instances")]], args.region),
          widget("Reconciler actions", 0, 12, [[search("action,service", "ReconcilerActions", "Sum", "actions")]], args.region),
          widget(
            "Orchestrator durable executions",
            12,
            12,
            [
              ["AWS/Lambda", "DurableExecutionFailed", "FunctionName", args.orchestratorFunctionName, { stat: "Sum" }],
              ["AWS/Lambda", "DurableExecutionTimedOut", "FunctionName", args.orchestratorFunctionName, { stat: "Sum" }],
              ["AWS/Lambda", "ApproximateRunningDurableExecutions", "FunctionName", args.orchestratorFunctionName, { stat: "Maximum" }],
            ],
            args.region,
          ),
        ],
      }),
    },
    { parent },
  );
  return { alarms, dashboard };
}
