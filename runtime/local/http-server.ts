/**
 * The local platform's HTTP front: a plain node:http server on loopback that turns each request into an
 * ApiRequest for the same handleApiRequest the Lambda adapter calls. The caller is whoever runs the platform.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ApiRequest, ApiResponse } from "../api/http";

/** A 1 MiB prompt JSON-escaped plus its context fits; larger bodies are refused before they are buffered. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface LocalHttpServer {
  url: string;
  close(): Promise<void>;
}

export async function serveApi(
  handle: (request: ApiRequest) => Promise<ApiResponse>,
  options: { host: string; port: number; userId: string; log?: (line: string) => void },
): Promise<LocalHttpServer> {
  let port = options.port;
  const server: Server = createServer((req, res) => {
    const reply = (r: ApiResponse) => {
      res.writeHead(r.statusCode, r.headers);
      res.end(r.body);
    };
    const refusal = foreignRequestRefusal(req.headers, options.host, port);
    if (refusal) {
      req.resume();
      reply({ statusCode: 403, headers: { "content-type": "application/json" }, body: JSON.stringify({ error: refusal, field: "headers" }) });
      return;
    }
    readBody(req)
      .then((body) => {
        const url = new URL(req.url ?? "/", "http://local");
        const query: Record<string, string> = {};
        for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v;
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
        return handle({ method: req.method ?? "GET", path: url.pathname, query, headers, body, userId: options.userId });
      })
      .then(reply, (err: Error & { statusCode?: number }) => {
        if (err.statusCode !== 413) options.log?.(`local API error: ${err.stack ?? err.message}`);
        reply({
          statusCode: err.statusCode ?? 500,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ error: err.statusCode ? err.message : `internal error: ${err.message}`, ...(err.statusCode === 413 ? { field: "body" } : {}) }),
        });
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`cannot serve the local API on ${options.host}:${options.port}: the port is in use; pass --port 0 for any free port`) : err),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Loopback alone does not keep other callers out: any web page the user opens can send a POST to 127.0.0.1, and
 * DNS rebinding can point a foreign host name at it. The CLI sends neither an Origin header nor another Host, so
 * a request that does is refused before it is read.
 */
export function foreignRequestRefusal(
  headers: Record<string, string | string[] | undefined>,
  host: string,
  port: number,
): string | undefined {
  if (headers.origin !== undefined) return "the local API does not accept browser (Origin) requests";
  const allowed = new Set([`${host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]);
  if (typeof headers.host !== "string" || !allowed.has(headers.host.toLowerCase())) {
    return `the local API answers only to Host ${host}:${port}; got ${JSON.stringify(headers.host ?? "")}`;
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      // Keep draining so the client gets the 413 answer, but stop buffering.
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) reject(Object.assign(new Error(`request body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`), { statusCode: 413 }));
      else resolve(Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", reject);
  });
}
