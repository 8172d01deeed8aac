/**
 * `agent-compute demo` (npm start): the project's main job on a laptop. Starts the local platform, submits one
 * task for the reference agent through the task API, follows it to its end printing the lifecycle, and shuts
 * everything down. No AWS account: the only "AWS" involved is the embedded DynamoDB.
 */
import { startLocalPlatform } from "../runtime/local/platform";
import { ApiClient, LOCAL_STATE_DIR } from "./client";
import { watchTask, type TaskView } from "./watch";

export const DEMO_REPO = "https://github.com/agent-compute/demo-repo";

export async function runDemo(options: { workSeconds: number; out: (text: string) => void; tty: boolean }): Promise<TaskView> {
  const { out } = options;
  out("agent-compute demo: starting the local platform (embedded DynamoDB, task API, orchestrator, local backend)\n");
  const platform = await startLocalPlatform({ stateDir: LOCAL_STATE_DIR, log: (line) => out(`  [platform] ${line}\n`) });
  try {
    out(`  task API ${platform.url}, task store ${platform.store.endpoint}, user ${platform.userId}\n`);
    const api = new ApiClient({ url: platform.url });
    const { task } = await api.request<{ task: TaskView }>("POST", "/tasks", {
      body: {
        repo_url: DEMO_REPO,
        prompt: "Demo: pretend to work on the repository, heartbeat, and report success.",
        backend: "local",
        max_turns: 5,
        context: { work_seconds: options.workSeconds },
      },
    });
    out(`submitted task ${task.task_id} (reference agent, ~${options.workSeconds}s of work)\n`);
    const final = await watchTask(api, task.task_id, { intervalMs: 500, write: out, tty: options.tty, timeoutMs: 120_000 });
    out(final.status === "COMPLETED" ? "demo COMPLETED\n" : `demo did not complete: ${final.status}\n`);
    return final;
  } finally {
    out("shutting down the local platform\n");
    await platform.close();
  }
}
