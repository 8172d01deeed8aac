/**
 * EC2 fleet backend: claim a ready instance of the task's fleet (lease table), send it the stack-owned SSM
 * document with validated ids/URIs only, poll the command invocation, cancel and release on stop.
 * Every path that claimed an instance and does not hand back a handle releases it again.
 */
import {
  CancelCommandCommand,
  type Command,
  type CommandFilter,
  GetCommandInvocationCommand,
  paginateListCommands,
  SendCommandCommand,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { awsClient } from "../aws/clients";
import { ConfigError, type Ec2Config, type RuntimeConfig } from "../config";
import { NoCapacityError } from "../errors";
import { mapCommandStatus } from "../fleet/command-status";
import { agentTaskParameters } from "../fleet/document";
import { LeaseTable } from "../fleet/lease";
import { DELIVERY_TIMEOUT_BOUNDS } from "../limits";
import type { TaskRecord } from "../tasks/record";
import type { Ec2Handle } from "./handle";
import type { ComputeStrategy, SessionStatus, StartRequest } from "./strategy";

/** SendCommand Comment: at most 100 characters. */
const COMMENT_MAX = 100;


/** Command statuses (ListCommands) of a command that may still run on its instance. */
const UNFINISHED_COMMAND_STATUSES = new Set(["Pending", "InProgress", "Delayed"]);

/** The start is marked before SendCommand by this process's clock; SSM stamps the command by its own. */
const SENT_COMMAND_CLOCK_SKEW_MS = 5 * 60_000;

/** CancelCommand errors that mean there is nothing left to cancel. */
const NOTHING_TO_CANCEL = new Set(["InvalidCommandId", "InvalidInstanceId"]);

function errorName(err: unknown): string {
  return (err as { name?: string })?.name ?? "";
}

export class Ec2Strategy implements ComputeStrategy<"ec2"> {
  readonly type = "ec2" as const;
  /** A re-queued task's old lease is gone (released or dropped): its claim queues it afresh. */
  readonly startsNewAttempts = true;

  constructor(
    private readonly config: RuntimeConfig,
    private readonly leases = new LeaseTable(config),
  ) {}

  private get settings(): Ec2Config {
    if (!this.config.ec2) throw new ConfigError("backend 'ec2' needs the 'ec2' settings (documentName, fleets, …) in the runtime config");
    return this.config.ec2;
  }

  private get ssm(): SSMClient {
    return awsClient(SSMClient, { region: this.config.region });
  }

  async startSession({ task, payloadUrl }: StartRequest): Promise<Ec2Handle> {
    const settings = this.settings;
    const fleet = task.fleet ?? settings.defaultFleet;
    if (!settings.fleets[fleet]) {
      throw new ConfigError(`EC2 fleet '${fleet}' does not exist in this stack; fleets: ${Object.keys(settings.fleets).join(", ") || "(none)"}`);
    }
    // Checked before claiming, so that a value SSM would refuse never costs an instance.
    const delivery = settings.deliveryTimeoutSeconds;
    if (!Number.isInteger(delivery) || delivery < DELIVERY_TIMEOUT_BOUNDS.min || delivery > DELIVERY_TIMEOUT_BOUNDS.max) {
      throw new ConfigError(
        `ec2.deliveryTimeoutSeconds is ${String(delivery)}; it must be an integer between ${DELIVERY_TIMEOUT_BOUNDS.min} and ${DELIVERY_TIMEOUT_BOUNDS.max} seconds (SendCommand TimeoutSeconds; unset, SSM would use its 1-hour default)`,
      );
    }
    const parameters = agentTaskParameters({
      taskId: task.task_id,
      payloadUrl,
      // Each fleet runs the image of its instances' architecture (an ARM64 image fails on x86_64, and back).
      image: settings.fleets[fleet].image ?? settings.image,
      executionTimeout: String(settings.executionTimeoutSeconds),
    });

    const claim = await this.leases.claimInstance(fleet, task.task_id, task.created_at);
    if (!claim.ok) throw new NoCapacityError(fleet, claim.capacityError);
    const { lease } = claim;
    const handle = (commandId: string): Ec2Handle => ({
      type: "ec2",
      fleet: lease.fleet,
      instanceId: lease.instanceId,
      commandId,
      documentName: settings.documentName,
    });
    if (lease.commandId) return handle(lease.commandId);

    let commandId: string | undefined;
    try {
      // A replayed start whose first run crashed between SendCommand and recording it: find that command.
      if (claim.resumed) commandId = await this.findSentCommand(lease.instanceId, task.task_id);
      if (!commandId) {
        const out = await this.ssm.send(
          new SendCommandCommand({
            DocumentName: settings.documentName,
            InstanceIds: [lease.instanceId],
            Parameters: parameters,
            TimeoutSeconds: settings.deliveryTimeoutSeconds,
            Comment: `agent-compute task ${task.task_id}`.slice(0, COMMENT_MAX),
          }),
        );
        commandId = out.Command?.CommandId;
        if (!commandId) throw new Error(`SSM SendCommand for task ${task.task_id} on ${lease.instanceId} returned no CommandId`);
      }
      await this.leases.recordCommand(lease.instanceId, task.task_id, commandId);
      return handle(commandId);
    } catch (err) {
      // No instance is left claimed by a start that failed: stop what may have been sent, then release.
      if (commandId) await this.cancel(commandId, lease.instanceId).catch(() => undefined);
      try {
        await this.leases.releaseInstance(lease.instanceId, task.task_id);
      } catch (releaseErr) {
        throw new Error(
          `starting task ${task.task_id} on ${lease.instanceId} failed (${(err as Error).message}) and releasing its lease failed too (${(releaseErr as Error).message}); the fleet reconciler will release it`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * SSM commands of our document sent for this task that have not finished: looked up on the instance its lease
   * names (recorded on the lease or not), or, when the lease is already gone, among the commands sent since the
   * task's start was marked.
   */
  async findUnrecordedSessions(task: TaskRecord): Promise<Ec2Handle[]> {
    const lease = await this.leases.leaseOfTask(task.task_id);
    const since = Date.parse(task.start_sent_at ?? task.created_at) - SENT_COMMAND_CLOCK_SKEW_MS;
    const commands = await this.sentCommands(task.task_id, lease ? { instanceId: lease.instanceId } : { after: new Date(since) });
    return commands
      .filter((c) => c.CommandId && c.InstanceIds?.length && UNFINISHED_COMMAND_STATUSES.has(c.Status ?? ""))
      .map((c) => ({
        type: "ec2",
        fleet: lease?.fleet ?? task.fleet ?? this.settings.defaultFleet,
        instanceId: c.InstanceIds![0],
        commandId: c.CommandId!,
        documentName: this.settings.documentName,
      }));
  }

  async pollSession(handle: Ec2Handle): Promise<SessionStatus> {
    let status: SessionStatus;
    try {
      const out = await this.ssm.send(new GetCommandInvocationCommand({ CommandId: handle.commandId, InstanceId: handle.instanceId }));
      status = mapCommandStatus(out.Status, out.StatusDetails, out.ResponseCode);
    } catch (err) {
      // SSM creates the invocation a moment after SendCommand returns: its absence right then is not a failure.
      if (errorName(err) !== "InvocationDoesNotExist") throw err;
      status = { state: "PENDING", reason: "the command invocation is not visible yet", raw: "InvocationDoesNotExist" };
    }
    if (status.state === "PENDING" || status.state === "RUNNING") {
      // SSM can take a long time to notice a terminated instance; the fleet sync drops the lease of an instance
      // that stopped running, and that is reported here at once.
      const lease = await this.leases.get(handle.instanceId);
      if (lease?.commandId === handle.commandId && lease.state === "DRAINING" && lease.drainReason === "terminating") {
        return {
          state: "LOST",
          reason: `instance ${handle.instanceId} is being terminated by its Auto Scaling group (Spot interruption, rebalancing or health replacement)`,
          raw: status.raw,
        };
      }
      if (!lease || lease.commandId !== handle.commandId) {
        return {
          state: "LOST",
          reason: lease
            ? `instance ${handle.instanceId} is no longer leased to command ${handle.commandId}`
            : `instance ${handle.instanceId} is no longer running in fleet '${handle.fleet}'`,
          raw: status.raw,
        };
      }
    }
    return status;
  }

  /** Cancel the command and release the instance, whatever state either is in. */
  async stopSession(handle: Ec2Handle, _reason: string): Promise<void> {
    let cancelError: unknown;
    try {
      await this.cancel(handle.commandId, handle.instanceId);
    } catch (err) {
      cancelError = err;
    }
    // Released even if the cancel failed: the document removes any leftover agent container before it starts the
    // next task on this instance, so a stale run cannot outlive the next claim.
    const lease = await this.leases.get(handle.instanceId);
    if (lease?.taskId && lease.commandId === handle.commandId) {
      await this.leases.releaseInstance(handle.instanceId, lease.taskId);
    }
    if (cancelError) throw cancelError;
  }

  /** Release the instance the task holds, whichever it is; nothing if it holds none. */
  async releaseTask(task: TaskRecord): Promise<void> {
    await this.leases.releaseTask(task.task_id);
  }

  private async cancel(commandId: string, instanceId: string): Promise<void> {
    try {
      await this.ssm.send(new CancelCommandCommand({ CommandId: commandId, InstanceIds: [instanceId] }));
    } catch (err) {
      if (!NOTHING_TO_CANCEL.has(errorName(err))) throw err;
    }
  }

  private async findSentCommand(instanceId: string, taskId: string): Promise<string | undefined> {
    const sent = (await this.sentCommands(taskId, { instanceId })).find((c) => c.Status !== "Cancelled" && c.Status !== "Cancelling");
    return sent?.CommandId;
  }

  /**
   * Our document's commands sent for a task: on one instance, or (when the task's lease is gone) fleet-wide since
   * `after`. Every page: on a busy instance the command sent before a crash may not be on the first one.
   */
  private async sentCommands(taskId: string, scope: { instanceId: string } | { after: Date }): Promise<Command[]> {
    const filters: CommandFilter[] = [{ key: "DocumentName", value: this.settings.documentName }];
    if ("after" in scope) filters.push({ key: "InvokedAfter", value: scope.after.toISOString() });
    const pages = paginateListCommands({ client: this.ssm }, { ...("instanceId" in scope ? { InstanceId: scope.instanceId } : {}), Filters: filters });
    const out: Command[] = [];
    for await (const page of pages) out.push(...(page.Commands ?? []).filter((c) => c.Parameters?.taskId?.[0] === taskId));
    return out;
  }
}
