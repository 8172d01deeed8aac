/** `agent-compute local`: serve the local platform until Ctrl-C (or SIGTERM), then shut it down cleanly. */
import { startLocalPlatform } from "../runtime/local/platform";
import { LOCAL_STATE_DIR } from "./client";

export async function serveLocal(options: { port: number; out: (text: string) => void }): Promise<void> {
  const platform = await startLocalPlatform({
    port: options.port,
    stateDir: LOCAL_STATE_DIR,
    writeStateFile: true,
    log: (line) => options.out(`${line}\n`),
  });
  options.out(
    [
      `agent-compute local platform serving ${platform.url} (user ${platform.userId})`,
      `  task store: embedded DynamoDB at ${platform.store.endpoint} (in memory: tasks are gone when this stops)`,
      `  backend: local agent processes; payloads and runs under ${LOCAL_STATE_DIR}/`,
      `  from another terminal: agent-compute submit https://github.com/OWNER/REPO "what to do" --watch`,
      `  Ctrl-C to stop`,
      "",
    ].join("\n"),
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      options.out(`\n${signal}: shutting down (running tasks are cancelled)…\n`);
      resolve();
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
  await platform.close();
  options.out("stopped\n");
}
