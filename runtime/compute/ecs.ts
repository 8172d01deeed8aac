/**
 * ECS Fargate backend: one RunTask per agent task, polled with DescribeTasks, stopped with StopTask.
 * The agent's input travels by reference (AGENT_PAYLOAD_URL, a presigned URL); the overrides carry only the task
 * id, that URL and the region, so they stay far below ECS's 8,192-byte override limit whatever the prompt is.
 */
import { createHash } from "node:crypto";
import {
  DescribeTasksCommand,
  ECSClient,
  paginateListTasks,
  RunTaskCommand,
  StopTaskCommand,
  type RunTaskCommandInput,
  type Task,
} from "@aws-sdk/client-ecs";
import { awsClient } from "../aws/clients";
import { ConfigError, type EcsConfig, type RuntimeConfig } from "../config";
import type { TaskRecord } from "../tasks/record";
import type { EcsHandle } from "./handle";
import type { ComputeStrategy, SessionStatus, StartRequest } from "./strategy";

/** RunTask clientToken: up to 64 ASCII characters in the range 33–126 (ECS idempotency docs). */
const CLIENT_TOKEN_MAX = 64;
/** startedBy: up to 36 letters, digits, hyphens, forward slashes and underscores. */
const STARTED_BY_MAX = 36;
/** DescribeTasks takes at most 100 tasks per call. */
const DESCRIBE_TASKS_MAX = 100;
/** StopTask reason: up to 255 characters. */
const STOP_REASON_MAX = 255;
/** Combined size limit of a RunTask `overrides` structure. */
export const ECS_OVERRIDES_MAX_BYTES = 8192;

/** The only environment variables the agent container receives (docs/agent-contract.md). */
export const ECS_AGENT_ENV_NAMES = ["TASK_ID", "AGENT_PAYLOAD_URL", "AWS_REGION"] as const;

/**
 * The RunTask client token for a task: the task id itself when ECS accepts it, so a replayed start step
 * gets the task the first attempt started; otherwise a SHA-256 of it, still one token per task.
 */
export function ecsClientToken(taskId: string, attempt = 0): string {
  const token = attempt > 0 ? `${taskId}#${attempt}` : taskId;
  const acceptable = token.length > 0 && token.length <= CLIENT_TOKEN_MAX && /^[\x21-\x7e]+$/.test(token);
  return acceptable ? token : createHash("sha256").update(token).digest("hex");
}

/** A label for ListTasks(startedBy=…): the task id, with characters ECS refuses replaced, cut to 36. */
export function ecsStartedBy(taskId: string): string {
  return taskId.replace(/[^A-Za-z0-9_/-]/g, "-").slice(0, STARTED_BY_MAX);
}

/**
 * Stop codes that mean the task was taken away by the platform, not ended by the agent: whatever the agent
 * container's exit code (usually 143 from the SIGTERM ECS sends), the agent did not fail.
 * - SpotInterruption: Fargate Spot capacity reclaimed.
 * - TerminationNotice: Fargate retired the task (platform maintenance).
 * - InfrastructureHealth: ECS stopped it because the underlying infrastructure was unhealthy.
 * - ServiceSchedulerInitiated: a service scheduler stopped it; our tasks come from RunTask, so this
 *   only happens if something outside us adopted the task — either way not the agent's doing.
 * - TaskFailedToStart: it never got running (image pull, ENI, secrets, ResourceInitializationError).
 * EssentialContainerExited and UserInitiated are not here: the agent's exit code is the real outcome then
 * (for UserInitiated, a StopTask by cancel or an operator, stoppedReason says who).
 */
export const ECS_LOSS_STOP_CODES: readonly string[] = [
  "SpotInterruption",
  "TerminationNotice",
  "InfrastructureHealth",
  "ServiceSchedulerInitiated",
  "TaskFailedToStart",
];

/** lastStatus values before the agent runs (Fargate provisions the ENI, pulls the image, then activates). */
const ECS_STARTING_STATES = ["PROVISIONING", "PENDING", "ACTIVATING"];
/**
 * lastStatus values while ECS runs or winds the task down. DEACTIVATING…DEPROVISIONING still count as
 * RUNNING: the exit code and stop code are only final at STOPPED, and reporting EXITED early would let the
 * orchestrator judge on a half-known outcome.
 */
const ECS_RUNNING_STATES = ["RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"];
/** DELETED follows STOPPED when ECS purges the task record; the outcome fields are the same. */
const ECS_FINISHED_STATES = ["STOPPED", "DELETED"];

/**
 * Raw ECS task state → SessionStatus. Pure; `task` undefined means DescribeTasks did not find it
 * (failure reason MISSING: never started, or stopped long enough ago that ECS forgot it).
 */
export function mapEcsTask(task: Task | undefined, containerName: string, missingReason = "MISSING"): SessionStatus {
  if (!task) {
    return { state: "LOST", raw: missingReason, reason: `ECS no longer knows the task (DescribeTasks: ${missingReason})` };
  }
  const raw = task.lastStatus ?? "";
  if (ECS_STARTING_STATES.includes(raw)) return { state: "PENDING", raw };
  if (ECS_RUNNING_STATES.includes(raw)) return { state: "RUNNING", raw };
  if (!ECS_FINISHED_STATES.includes(raw)) {
    // A status this code does not know (a future ECS addition): say so rather than guess; liveness falls
    // back on heartbeats and the task timeout.
    return { state: "UNOBSERVABLE", raw, reason: `unrecognised ECS lastStatus '${raw}'` };
  }

  const container = task.containers?.find((c) => c.name === containerName);
  const exitCode = container?.exitCode ?? undefined;
  const reason = stopDescription(task, container?.reason, containerName, container !== undefined);
  const stopCode = task.stopCode ?? "";

  if (ECS_LOSS_STOP_CODES.includes(stopCode)) {
    return { state: "LOST", raw, reason, ...(exitCode !== undefined ? { exitCode } : {}) };
  }
  // No exit code: the agent container never ran (e.g. CannotPullContainerError) or ECS could not collect
  // it. There is no agent outcome to report, only the loss of the compute.
  if (exitCode === undefined) return { state: "LOST", raw, reason };
  return { state: "EXITED", raw, exitCode, ...(reason ? { reason } : {}) };
}

function stopDescription(task: Task, containerReason: string | undefined, containerName: string, found: boolean): string {
  const parts: string[] = [];
  if (task.stopCode) parts.push(task.stopCode);
  if (task.stoppedReason) parts.push(task.stoppedReason);
  if (containerReason) parts.push(`container ${containerName}: ${containerReason}`);
  if (!found) parts.push(`the task has no container named '${containerName}'`);
  return parts.join(": ");
}

/** Is this StopTask error the sign that there is nothing left to stop? */
function isAlreadyGone(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  // ECS answers StopTask for an unknown (or long-purged) task with InvalidParameterException "The referenced
  // task was not found."; a deleted cluster has no running tasks either. A task that is already STOPPED is
  // not an error at all: StopTask returns it as it is.
  if (e?.name === "ClusterNotFoundException") return true;
  return e?.name === "InvalidParameterException" && /not found/i.test(e.message ?? "");
}

export class EcsStrategy implements ComputeStrategy<"ecs"> {
  readonly type = "ecs" as const;
  /** The clientToken carries the attempt, so a re-queued task gets a new Fargate task. */
  readonly startsNewAttempts = true;

  constructor(private readonly config: RuntimeConfig) {}

  private client(): ECSClient {
    return awsClient(ECSClient, { region: this.config.region });
  }

  private settings(): EcsConfig {
    const ecs = this.config.ecs;
    if (!ecs) throw new ConfigError("the ECS backend needs the 'ecs' settings (cluster, taskDefinition, containerName, subnets, securityGroups)");
    return ecs;
  }

  /** The exact RunTask input for a task (public so a caller can inspect or log the request without sending it). */
  runTaskInput({ task, payloadUrl }: StartRequest): RunTaskCommandInput {
    const ecs = this.settings();
    const environment: Record<(typeof ECS_AGENT_ENV_NAMES)[number], string> = {
      TASK_ID: task.task_id,
      AGENT_PAYLOAD_URL: payloadUrl,
      AWS_REGION: this.config.region,
    };
    const overrides = {
      containerOverrides: [
        {
          name: ecs.containerName,
          environment: Object.entries(environment).map(([name, value]) => ({ name, value })),
        },
      ],
    };
    const overrideBytes = Buffer.byteLength(JSON.stringify(overrides));
    if (overrideBytes > ECS_OVERRIDES_MAX_BYTES) {
      // Only a pathological payload URL can get here; the payload itself never does. The URL is a secret: its length only.
      throw new Error(
        `ECS overrides for task ${task.task_id} would be ${overrideBytes} bytes; ECS allows ${ECS_OVERRIDES_MAX_BYTES} (the payload URL is ${payloadUrl.length} chars)`,
      );
    }
    return {
      cluster: ecs.cluster,
      taskDefinition: ecs.taskDefinition,
      count: 1,
      clientToken: ecsClientToken(task.task_id, task.attempt ?? 0),
      startedBy: ecsStartedBy(task.task_id),
      // launchType and capacityProviderStrategy are mutually exclusive in RunTask.
      ...(ecs.fargateSpot
        ? { capacityProviderStrategy: [{ capacityProvider: "FARGATE_SPOT", weight: 1 }] }
        : { launchType: "FARGATE" as const }),
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ecs.subnets,
          securityGroups: ecs.securityGroups,
          assignPublicIp: "DISABLED",
        },
      },
      overrides,
    };
  }

  async startSession(request: StartRequest): Promise<EcsHandle> {
    const input = this.runTaskInput(request);
    const out = await this.client().send(new RunTaskCommand(input));
    const started = out.tasks?.[0];
    if (!started?.taskArn) {
      const why = (out.failures ?? []).map((f) => [f.reason, f.detail, f.arn].filter(Boolean).join(" ")).join("; ");
      throw new Error(
        `ECS RunTask started no task for task ${request.task.task_id} on cluster ${input.cluster} (task definition ${input.taskDefinition}): ${why || "no task and no failure reason returned"}`,
      );
    }
    return { type: "ecs", cluster: input.cluster!, taskArn: started.taskArn };
  }

  /**
   * Fargate tasks RunTask started for this task that still run, by the startedBy label every start sets
   * (ListTasks lists tasks whose desired status is RUNNING unless told otherwise, and startedBy must be its only
   * filter). Each is confirmed by DescribeTasks: still meant to run, and — since the label is cut to 36
   * characters — given this task's TASK_ID.
   */
  async findUnrecordedSessions(task: TaskRecord): Promise<EcsHandle[]> {
    const { cluster } = this.settings();
    const client = this.client();
    const arns: string[] = [];
    try {
      for await (const page of paginateListTasks({ client }, { cluster, startedBy: ecsStartedBy(task.task_id) })) arns.push(...(page.taskArns ?? []));
    } catch (err) {
      // No cluster, no task of it can run.
      if ((err as { name?: string })?.name === "ClusterNotFoundException") return [];
      throw err;
    }
    const found: EcsHandle[] = [];
    for (let i = 0; i < arns.length; i += DESCRIBE_TASKS_MAX) {
      const out = await client.send(new DescribeTasksCommand({ cluster, tasks: arns.slice(i, i + DESCRIBE_TASKS_MAX) }));
      for (const t of out.tasks ?? []) {
        const env = t.overrides?.containerOverrides?.flatMap((c) => c.environment ?? []) ?? [];
        const ours = env.some((e) => e.name === "TASK_ID" && e.value === task.task_id);
        if (t.taskArn && ours && t.desiredStatus !== "STOPPED") found.push({ type: "ecs", cluster, taskArn: t.taskArn });
      }
    }
    return found;
  }

  async pollSession(handle: EcsHandle): Promise<SessionStatus> {
    const out = await this.client().send(new DescribeTasksCommand({ cluster: handle.cluster, tasks: [handle.taskArn] }));
    const task = out.tasks?.find((t) => t.taskArn === handle.taskArn) ?? (out.tasks?.length === 1 ? out.tasks[0] : undefined);
    if (task) return mapEcsTask(task, this.settings().containerName);
    const failure = out.failures?.find((f) => !f.arn || f.arn === handle.taskArn);
    if (failure && failure.reason !== "MISSING") {
      // Not "the task is gone" but a request problem: a poll error, which liveness counts.
      throw new Error(`ECS DescribeTasks for ${handle.taskArn} on cluster ${handle.cluster} failed: ${failure.reason}${failure.detail ? ` (${failure.detail})` : ""}`);
    }
    return mapEcsTask(undefined, this.settings().containerName, failure?.reason ?? "MISSING");
  }

  async stopSession(handle: EcsHandle, reason: string): Promise<void> {
    try {
      await this.client().send(
        new StopTaskCommand({ cluster: handle.cluster, task: handle.taskArn, reason: reason.slice(0, STOP_REASON_MAX) }),
      );
    } catch (err) {
      if (!isAlreadyGone(err)) throw err;
    }
  }
}
