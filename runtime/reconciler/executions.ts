/**
 * Where task orchestrators run, for the reconciler: which tasks have one running now, and starting one for a task
 * that never got one. In AWS: the durable executions of the orchestrator function, named after their task
 * (orchestrator/dispatch.ts). On the local platform: the local dispatcher's runs.
 */
import type { Dispatcher } from "../orchestrator/dispatch";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";

export interface OrchestratorExecutions {
  /** Task ids whose orchestrator is running now. */
  running(): Promise<ReadonlySet<string>>;
  /**
   * Start the orchestrator of a task that never had one. "exists" when the task already had one (it ended): a
   * second start under the same name would return that ended execution, so the caller fails the task instead.
   */
  redrive(taskId: string): Promise<"started" | "exists">;
  /** How an orchestrator execution ended, for the failure's reason (GetDurableExecution); undefined if unknown. */
  describe(executionArn: string): Promise<string | undefined>;
}

/** ListDurableExecutionsByFunction takes at most 1,000 items per page. */
const LIST_PAGE = 1000;

/** The unqualified function ARN of a qualified one (the API's alias ARN): executions of every version are listed. */
export function unqualifiedFunctionArn(arn: string): string {
  return arn.split(":").slice(0, 7).join(":");
}

export class LambdaOrchestratorExecutions implements OrchestratorExecutions {
  constructor(
    private readonly config: Pick<RuntimeConfig, "region" | "orchestrator">,
    private readonly dispatcher: Dispatcher,
  ) {}

  private async client() {
    const lambda = await import("@aws-sdk/client-lambda");
    return { lambda, client: awsClient(lambda.LambdaClient, { region: this.config.region }) };
  }

  private functionArn(): string {
    const arn = this.config.orchestrator?.functionArn;
    if (!arn) throw new Error("orchestrator.functionArn is not set in the runtime config; the reconciler cannot list orchestrations without it");
    return unqualifiedFunctionArn(arn);
  }

  async running(): Promise<ReadonlySet<string>> {
    const { lambda, client } = await this.client();
    const names = new Set<string>();
    const pages = lambda.paginateListDurableExecutionsByFunction(
      { client, pageSize: LIST_PAGE },
      { FunctionName: this.functionArn(), Statuses: ["RUNNING"] },
    );
    for await (const page of pages) for (const e of page.DurableExecutions ?? []) if (e.DurableExecutionName) names.add(e.DurableExecutionName);
    return names;
  }

  async redrive(taskId: string): Promise<"started" | "exists"> {
    const { lambda, client } = await this.client();
    const found = await client.send(
      new lambda.ListDurableExecutionsByFunctionCommand({ FunctionName: this.functionArn(), DurableExecutionName: taskId, MaxItems: 1 }),
    );
    if (found.DurableExecutions?.some((e) => e.DurableExecutionName === taskId)) return "exists";
    await this.dispatcher.dispatch(taskId);
    return "started";
  }

  async describe(executionArn: string): Promise<string | undefined> {
    const { lambda, client } = await this.client();
    const out = await client.send(new lambda.GetDurableExecutionCommand({ DurableExecutionArn: executionArn }));
    const error = out.Error ? `: ${[out.Error.ErrorType, out.Error.ErrorMessage].filter(Boolean).join(" ")}` : "";
    return `execution ${out.Status ?? "in an unknown state"}${error}`;
  }
}

/** The local platform: its dispatcher runs every orchestration in this process. */
export class LocalOrchestratorExecutions implements OrchestratorExecutions {
  constructor(private readonly dispatcher: Dispatcher & { active(): string[] }) {}

  async running(): Promise<ReadonlySet<string>> {
    return new Set(this.dispatcher.active());
  }

  async redrive(taskId: string): Promise<"started" | "exists"> {
    await this.dispatcher.dispatch(taskId);
    return "started";
  }

  async describe(): Promise<string | undefined> {
    return undefined;
  }
}
