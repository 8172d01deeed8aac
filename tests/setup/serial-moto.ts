import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

/**
 * A second moto server that handles one request at a time, for contention tests and benchmarks.
 *
 * moto's threaded server applies DynamoDB conditional writes without a lock, so two requests racing on one item
 * can both pass their condition — an emulator defect (real DynamoDB checks and writes each item atomically) that
 * would make a race test measure moto instead of our claim. The race therefore runs against a second moto whose
 * server handles one request at a time: concurrent claims still interleave (each may read a stale view and must
 * survive losing its conditional writes), but each write is atomic, as in DynamoDB.
 */
/**
 * moto reads one EC2 resource's tags by scanning every tag of every resource (describe_tags with a resource-id
 * filter), so describing N tagged instances costs N × (all tags): ~10 s for 1,000 instances. This server reads a
 * resource's own tags from the same store directly — the same tags in the same shape, in constant time — so that
 * fleets of a thousand instances measure our code rather than the emulator.
 */
const FAST_EC2_TAGS = [
  "from moto.ec2.models.core import TaggedEC2Resource",
  "from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix",
  "def _own_tags(self):",
  "    if not self.id:",
  "        return []",
  "    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), '')",
  "    return [{'resource_id': self.id, 'key': k, 'value': v, 'resource_type': kind} for k, v in self.ec2_backend.tags.get(self.id, {}).items()]",
  "TaggedEC2Resource.get_tags = _own_tags",
];

export async function startSerialMoto(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const code = [
    "from werkzeug.serving import run_simple",
    "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app",
    ...FAST_EC2_TAGS,
    `run_simple("127.0.0.1", ${port}, DomainDispatcherApplication(create_backend_app), threaded=False)`,
  ].join("\n");
  const proc = spawn(process.env.PYTHON ?? "python3", ["-c", code], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 45_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/moto-api/data.json`)).ok) return { url, proc };
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`serial moto server did not answer at ${url}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

