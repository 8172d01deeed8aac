/**
 * A fake GitHub REST API that records pull requests: list open pulls by head, create, update. It checks the
 * bearer token and answers with html_url the way GitHub does, so the runner's pr_url can be asserted.
 */
import { createServer } from "node:http";
import { listenLocal } from "./listen";

export interface FakePull {
  number: number;
  title: string;
  body: string;
  head: string;
  base: string;
  html_url: string;
  state: "open";
}

export interface FakeGitHub {
  url: string;
  pulls: FakePull[];
  calls: { method: string; path: string; authorization?: string }[];
  /** Answer pull creation with this HTTP status instead (e.g. 422). */
  failCreateWith?: number;
  close(): Promise<void>;
}

export async function startFakeGitHub(token: string): Promise<FakeGitHub> {
  const state: FakeGitHub = { url: "", pulls: [], calls: [], close: async () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      state.calls.push({ method: req.method ?? "", path: `${url.pathname}${url.search}`, authorization: req.headers.authorization });
      const reply = (code: number, body: unknown) => res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
      if (req.headers.authorization !== `Bearer ${token}`) return reply(401, { message: "Bad credentials" });
      const m = /^\/repos\/([^/]+)\/([^/]+)\/pulls(?:\/(\d+))?$/.exec(url.pathname);
      if (!m) return reply(404, { message: "Not Found" });
      const [, owner, repo, num] = m;
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
      if (req.method === "GET" && !num) {
        const head = url.searchParams.get("head") ?? "";
        return reply(200, state.pulls.filter((p) => `${owner}:${p.head}` === head));
      }
      if (req.method === "POST" && !num) {
        if (state.failCreateWith) return reply(state.failCreateWith, { message: "Validation Failed", errors: [{ message: "A pull request already exists" }] });
        const n = state.pulls.length + 1;
        const pull: FakePull = { number: n, title: body.title, body: body.body, head: body.head, base: body.base, html_url: `https://github.com/${owner}/${repo}/pull/${n}`, state: "open" };
        state.pulls.push(pull);
        return reply(201, pull);
      }
      if (req.method === "PATCH" && num) {
        const pull = state.pulls.find((p) => p.number === Number(num));
        if (!pull) return reply(404, { message: "Not Found" });
        Object.assign(pull, { title: body.title ?? pull.title, body: body.body ?? pull.body });
        return reply(200, pull);
      }
      return reply(405, { message: "Method Not Allowed" });
    });
  });
  const listening = await listenLocal(server);
  state.url = listening.url;
  state.close = listening.close;
  return state;
}
