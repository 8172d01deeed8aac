/**
 * Git's smart HTTP protocol on 127.0.0.1 (`git http-backend` as CGI) in front of the bare repositories under a
 * folder, demanding HTTP Basic auth with one token — so a test sees the runner's credential helper really hand
 * the token to git, and sees what git does without it.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { listenLocal } from "./listen";

export interface GitHttpServer {
  url: string;
  /** Users that authenticated, one per request. */
  authenticated: string[];
  refused: number;
  close(): Promise<void>;
}

export async function startGitHttpServer(projectRoot: string, username: string, token: string): Promise<GitHttpServer> {
  const state: GitHttpServer = { url: "", authenticated: [], refused: 0, close: async () => undefined };
  const expected = `Basic ${Buffer.from(`${username}:${token}`).toString("base64")}`;
  const server = createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      state.refused++;
      res.writeHead(401, { "www-authenticate": 'Basic realm="git"' }).end();
      return;
    }
    state.authenticated.push(username);
    const url = new URL(req.url ?? "/", "http://x");
    const cgi = spawn("git", ["http-backend"], {
      env: {
        PATH: process.env.PATH ?? "",
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ""),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        HTTP_CONTENT_ENCODING: String(req.headers["content-encoding"] ?? ""),
        GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
        REMOTE_USER: username,
        REMOTE_ADDR: "127.0.0.1",
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === "status") status = Number(v.split(" ")[0]);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on("end", () => res.end());
    cgi.stderr.resume();
  });
  const listening = await listenLocal(server);
  state.url = listening.url;
  state.close = listening.close;
  return state;
}
