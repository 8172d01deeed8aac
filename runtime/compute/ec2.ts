/**
 * EC2 fleet backend: claim a ready instance of the task's fleet (lease table), send it the stack-owned SSM
 * document with validated ids/URIs only, poll the command invocation, cancel and release on stop.
 * Every path that claimed an instance and does not hand back a handle releases it again.
 */
import {
  CancelCommandCommand,
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
    if (!claim.ok) throw new NoCapacityError(fleet);
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
    // Every page: on a busy instance the command sent before the crash may not be on the first one.
    const pages = paginateListCommands(
      { client: this.ssm },
      { InstanceId: instanceId, Filters: [{ key: "DocumentName", value: this.settings.documentName }] },
    );
    for await (const page of pages) {
      const sent = (page.Commands ?? []).find(
        (c) => c.Parameters?.taskId?.[0] === taskId && c.Status !== "Cancelled" && c.Status !== "Cancelling",
      );
      if (sent?.CommandId) return sent.CommandId;
    }
    return undefined;
  }
}
