/**
 * Starting and stopping one moto server (moto's WSGI app, one request at a time) on a free loopback port. Used by
 * the mocha run (tests/setup/moto.ts) and by the benchmarks that exercise AWS behaviour over the wire.
 */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";

export interface MotoServer {
  url: string;
  stop(): void;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/moto-api/data.json`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`moto server did not answer at ${url} within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

export async function startMotoServer(): Promise<MotoServer> {
  const python = process.env.PYTHON ?? "python3";
  const probe = spawnSync(python, ["-c", "import moto.server"], { encoding: "utf8" });
  if (probe.status !== 0) {
    throw new Error(
      `this needs the moto AWS emulator, but '${python} -m moto.server' is not available.\n` +
        `Install it with: pip install 'moto[server]'\n${probe.stderr ?? ""}`,
    );
  }
  const port = await freePort();
  // moto's own server (python -m moto.server) is threaded and applies a DynamoDB conditional write without a lock,
  // so two racing requests can both pass one condition: an emulator defect (DynamoDB checks and writes each item
  // atomically) that makes our race tests flaky under load. Requests are therefore handled one at a time, on
  // threads (HTTP keep-alive stays).
  const server = [
    "import threading",
    "from werkzeug.serving import run_simple",
    "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app",
    "app = DomainDispatcherApplication(create_backend_app)",
    "lock = threading.Lock()",
    "def one_at_a_time(environ, start_response):",
    "    with lock:",
    "        return list(app(environ, start_response))",
    `run_simple("127.0.0.1", ${port}, one_at_a_time, threaded=True)`,
  ].join("\n");
  const moto = spawn(python, ["-c", server], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  moto.stderr?.on("data", (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, 45_000);
  } catch (err) {
    moto.kill("SIGTERM");
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  return { url, stop: () => moto.kill("SIGTERM") };
}

/** The environment that points every AWS SDK client of this process at `url`. */
export function motoEnvironment(url: string): Record<string, string> {
  return {
    MOTO_URL: url,
    AWS_ENDPOINT_URL: url,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_REGION: "us-east-1",
    AWS_S3_FORCE_PATH_STYLE: "true",
  };
}
