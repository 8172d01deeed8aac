/**
 * The orchestrator Lambda: one durable execution per task (named after the task id by the dispatcher), running
 * the shared workflow with each step checkpointed and each wait a durable wait — the function is not running,
 * and not billed, while it waits. Kept light at import: the runtime (stores, strategies, SDK clients) is
 * created on the first invocation.
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import { CallbackError, createRetryStrategy, withDurableExecution, type DurableContext } from "@aws/durable-execution-sdk-js";
import { loadRuntimeConfig } from "../config";
import { createLogger, LOG_SERVICES, taskLogger } from "../logger";
import type { Runtime } from "../runtime";
import { runWorkflow, StepFailedError, type WorkflowDriver, type WorkflowOptions, type WorkflowResult } from "./workflow";

export interface OrchestratorEvent {
  task_id: string;
}

/**
 * A step that throws (DynamoDB unreachable, a bug) is retried a few times with backoff before the execution
 * fails; the steps are idempotent, so a retry is safe. Expected outcomes (failed start, dead agent) are results,
 * not exceptions, and are never retried here.
 */
const STEP_RETRY = createRetryStrategy({ maxAttempts: 3, initialDelay: { seconds: 5 }, maxDelay: { seconds: 60 } });

/** Durable waits and callback timeouts are whole seconds, at least one. */
const duration = (seconds: number) => ({ seconds: Math.max(1, Math.ceil(seconds)) });

/**
 * Each step logs its result (or its error) and each wait its length, through the context's logger: it is mode-aware,
 * so a replay, which re-reads recorded results instead of running the steps, logs nothing again.
 */
export function durableDriver(ctx: DurableContext): WorkflowDriver {
  return {
    executionArn: ctx.executionContext?.durableExecutionArn,
    step: <T>(name: string, fn: () => Promise<T>) =>
      (
        ctx.step(
          name,
          async (step) => {
            try {
              const result = await fn();
              step.logger.info("step finished", { step: name, result });
              return result;
            } catch (err) {
              step.logger.error("step failed", { step: name, error: err });
              throw err;
            }
          },
          { retryStrategy: STEP_RETRY },
        ) as Promise<T>
      ).then(
        (value) => value,
        (err) => {
          throw new StepFailedError(name, err);
        },
      ),
    wait: (name, seconds) => {
      ctx.logger.info("waiting", { wait: name, seconds: duration(seconds).seconds });
      return ctx.wait(name, duration(seconds)) as Promise<void>;
    },
    // A callback whose timeout is the safety-net poll: wakeOrchestrator completes it early. Timed out, completed
    // or failed by the sender, it means the same thing: poll now.
    armWake: async (name, seconds) => {
      ctx.logger.info("waiting for a wake or the next poll", { wait: name, seconds: duration(seconds).seconds });
      const [promise, callbackId] = await ctx.createCallback(name, { timeout: duration(seconds) });
      return {
        token: callbackId,
        wait: () =>
          promise.then(
            () => undefined,
            (err) => {
              if (!(err instanceof CallbackError)) throw err;
            },
          ),
      };
    },
  };
}

export function createOrchestratorHandler(
  getRuntime: () => Runtime | Promise<Runtime>,
  options: WorkflowOptions = {},
  logger: Logger = createLogger(LOG_SERVICES.orchestrator),
) {
  return withDurableExecution<OrchestratorEvent, WorkflowResult>(async (event, ctx) => {
    const taskId = event?.task_id;
    if (typeof taskId !== "string" || taskId === "") {
      throw new Error(`the orchestrator's input must be {"task_id": "<task id>"}; got ${JSON.stringify(event)}`);
    }
    ctx.configureLogger({ customLogger: taskLogger(logger, taskId) });
    return runWorkflow(durableDriver(ctx), await getRuntime(), taskId, options);
  });
}

let runtime: Promise<Runtime> | undefined;

/** The deployed handler: config from AGENT_COMPUTE_CONFIG, runtime built once per execution environment. */
export const handler = createOrchestratorHandler(
  () =>
    (runtime ??= import("../runtime").then(({ createRuntime }) => createRuntime(loadRuntimeConfig())).catch((err) => {
      runtime = undefined;
      throw err;
    })),
);
