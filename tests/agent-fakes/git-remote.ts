/** The runner tests' remote: the demo's local stand-in for https://github.com/acme/app, in a fresh folder. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createLocalRemote, type LocalRemote } from "../../cli/demo-repo";

export interface BareRemote extends LocalRemote {
  /** The folder holding `github.com/`. */
  dir: string;
}

export function createBareRemote(owner = "acme", repo = "app"): BareRemote {
  const dir = mkdtempSync(path.join(tmpdir(), "agent-remote-"));
  return { dir, ...createLocalRemote(dir, owner, repo, { "README.md": "# app\n" }) };
}
