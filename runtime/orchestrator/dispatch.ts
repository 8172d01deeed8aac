/**
 * Hands a submitted task to its orchestrator. On AWS: one durable execution of the orchestrator function per
 * task, named after the task id, so dispatching the same task twice (a retried submit, a reconciler) finds the
 * execution that exists instead of starting a second one.
 */
import { DurableExecutionAlreadyStartedException, InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { awsClient } from "../aws/clients";
import { ConfigError, type RuntimeConfig } from "../config";
import type { OrchestratorEvent } from "./durable-handler";

export interface Dispatcher {
  dispatch(taskId: string): Promise<void>;
}

export class LambdaDispatcher implements Dispatcher {
  constructor(private readonly config: Pick<RuntimeConfig, "region" | "orchestrator">) {}

  async dispatch(taskId: string): Promise<void> {
    const functionArn = this.config.orchestrator?.functionArn;
    if (!functionArn) {
      throw new ConfigError("orchestrator.functionArn is not set in the runtime config; the API cannot start orchestrations without it");
    }
    const event: OrchestratorEvent = { task_id: taskId };
    try {
      await awsClient(LambdaClient, { region: this.config.region }).send(
        new InvokeCommand({
          FunctionName: functionArn,
          InvocationType: "Event",
          DurableExecutionName: taskId,
          Payload: new TextEncoder().encode(JSON.stringify(event)),
        }),
      );
    } catch (err) {
      // Same name and same payload: Lambda returns the existing execution. This error (same name, other payload)
      // still means an execution for this task exists, which is all dispatch promises.
      if (err instanceof DurableExecutionAlreadyStartedException) return;
      throw err;
    }
  }
}
