#!/usr/bin/env node
/**
 * A scripted stand-in for a coding agent, for the demo and the tests: no model, no network. It reads its prompt
 * from stdin (as any `command` agent does) and follows the lines it recognises; every other line is ignored, so a
 * plain-English prompt makes it append a note to AGENT_NOTES.md.
 *
 *   write <path>: <text>     append <text> and a newline to <path> (inside the repository; folders are created)
 *   sleep <seconds>          wait (cancel tests stop it here)
 *   spawn-sleeper            start a grandchild process that sleeps (cancel must stop it too)
 *   cost <usd>               report this cost in AGENT_RESULT_FILE
 *   outcome <word>           report budget_exceeded or turns_exceeded in AGENT_RESULT_FILE
 *   say <text>               print a line of progress
 *   exit <code>              exit with this code (after the lines above it)
 *
 * It never runs the prompt: each line is matched against these words and taken as data.
 */
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { spawn } = require("node:child_process");

function readStdin() {
  return new Promise((resolve) => {
    const chunks = [];
    process.stdin.on("data", (c) => chunks.push(c));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function insideRepo(rel) {
  const target = path.resolve(process.cwd(), rel);
  if (target !== process.cwd() && !target.startsWith(process.cwd() + path.sep)) throw new Error(`refusing to write outside the repository: ${rel}`);
  if (target.split(path.sep).includes(".git")) throw new Error(`refusing to write into .git: ${rel}`);
  return target;
}

async function main() {
  const prompt = await readStdin();
  const result = { turns: 0 };
  const pids = [process.pid];
  const scratch = process.env.AGENT_RESULT_FILE ? path.dirname(process.env.AGENT_RESULT_FILE) : undefined;
  const save = () => process.env.AGENT_RESULT_FILE && fs.writeFileSync(process.env.AGENT_RESULT_FILE, JSON.stringify(result));
  let acted = false;
  for (const raw of prompt.split("\n")) {
    const line = raw.trim();
    let m;
    if ((m = /^write ([^:]+): ?(.*)$/.exec(line))) {
      const file = insideRepo(m[1].trim());
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.appendFileSync(file, `${m[2]}\n`);
      console.log(`edited ${m[1].trim()}`);
      result.turns++;
      acted = true;
    } else if ((m = /^sleep (\d+(?:\.\d+)?)$/.exec(line))) {
      console.log(`thinking for ${m[1]}s`);
      await new Promise((r) => setTimeout(r, Number(m[1]) * 1000));
    } else if (line === "spawn-sleeper") {
      const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
      pids.push(child.pid);
      if (scratch) fs.writeFileSync(path.join(scratch, "pids.json"), JSON.stringify(pids));
      console.log(`started helper process ${child.pid}`);
    } else if ((m = /^cost (\d+(?:\.\d+)?)$/.exec(line))) {
      result.cost_usd = Number(m[1]);
    } else if ((m = /^outcome (budget_exceeded|turns_exceeded)$/.exec(line))) {
      result.outcome = m[1];
    } else if ((m = /^say (.*)$/.exec(line))) {
      console.log(m[1]);
    } else if ((m = /^exit (\d+)$/.exec(line))) {
      save();
      console.error(`scripted agent exiting with ${m[1]} as asked`);
      process.exit(Number(m[1]));
    }
  }
  if (!acted && !/^\s*(sleep|exit|say|cost|outcome|spawn-sleeper|write)\b/m.test(prompt)) {
    fs.appendFileSync(path.join(process.cwd(), "AGENT_NOTES.md"), `- ${prompt.split("\n")[0].slice(0, 200)}\n`);
    console.log("appended a note to AGENT_NOTES.md");
    result.turns++;
  }
  result.summary = `scripted agent: ${result.turns} edit(s)`;
  save();
}

main().catch((err) => {
  console.error(`scripted agent: ${err.message}`);
  process.exit(1);
});
