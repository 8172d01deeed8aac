/**
 * The agent runner: one task, start to end. Read the payload → report RUNNING → fetch the repository credentials
 * through the channel → clone and branch → run the coding agent (a driver) → commit → push → open or update the pull
 * request → report the result. Heartbeats run throughout; a heartbeat answered with a terminal status (a cancel, a
 * timeout) stops the agent's process tree and ends the run without writing anything. Every failure ends FAILED
 * with its own reason and exit code (outcome.ts); a run that changed nothing ends COMPLETED without a pull request.
 *
 * Secrets: the channel token and repository tokens stay in this process's memory; git gets the repository token
 * from a short-lived private file (git.ts); the agent sees neither; every line the runner emits is scrubbed.
 */
import { mkdirSync, rmSync } from "node:fs";
import * as path from "node:path";
import { AgentChannel, ChannelError, TERMINAL, isTransient, type GitCredentials, type TaskResult } from "./channel";
import type { Driver, DriverOutcome } from "./drivers/driver";
import { enforceBudget } from "./drivers/driver";
import { EventReporter, clip, type EventReporterOptions } from "./events";
import { Git, GitError } from "./git";
import { GitHubClient, repoRefOf } from "./github";
import { EXIT, RunFailure } from "./outcome";
import { PayloadError, fetchPayloadText, parsePayload, type RunnerPayload } from "./payload";
import { Scrubber } from "./scrub";

export interface RunnerSettings {
  /** Folder the repository is cloned into (as `<workDir>/repo`); scratch files go beside it. */
  workDir: string;
  driver: Driver;
  heartbeatMs: number;
  /** Open pull requests (default true). Off: push the branch only. */
  pullRequests: boolean;
  githubApiUrl?: string;
  identity: { name: string; email: string };
  events?: EventReporterOptions;
}

export interface RunnerDeps {
  env: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
  log?: (line: string) => void;
  /** Aborted when the platform stops the runner (SIGTERM): the agent is stopped and nothing is written. */
  stop?: AbortSignal;
}

export interface RunInput {
  taskId: string;
  payloadUrl: string;
}

/** Branch the work goes to: the task's `branch`, else agent/<task-id>. */
export function workBranchOf(payload: RunnerPayload): string {
  return payload.branch ?? `agent/${payload.task_id}`;
}

export function firstLine(text: string, max: number): string {
  const line = text.split("\n").map((l) => l.trim()).find(Boolean) ?? "";
  return clip(line, max);
}

export function commitMessage(payload: RunnerPayload, agentSummary: string | undefined): string {
  const subject = firstLine(payload.prompt, 72) || "agent changes";
  const body = [`Task ${payload.task_id}${payload.issue_number ? ` (issue #${payload.issue_number})` : ""}, made by agent-compute.`];
  if (agentSummary) body.push("", clip(agentSummary.trim(), 2000));
  return `${subject}\n\n${body.join("\n")}\n`;
}

export function pullRequestText(payload: RunnerPayload, diffStat: string, outcome: DriverOutcome): { title: string; body: string } {
  const title = clip(`${payload.issue_number ? `#${payload.issue_number}: ` : ""}${firstLine(payload.prompt, 200) || "agent changes"}`, 256);
  const quoted = clip(payload.prompt.trim(), 3000).split("\n").map((l) => `> ${l}`).join("\n");
  const lines = [
    `## What the task asked`,
    "",
    quoted,
    "",
    `## What changed`,
    "",
    "```",
    clip(diffStat, 6000),
    "```",
  ];
  if (outcome.summary) lines.push("", "## The agent's summary", "", clip(outcome.summary.trim(), 4000));
  const facts = [`task \`${payload.task_id}\``];
  if (outcome.turns !== undefined) facts.push(`${outcome.turns} turns`);
  if (outcome.costUsd !== undefined) facts.push(`$${outcome.costUsd.toFixed(4)}`);
  lines.push("", `---`, `Opened by agent-compute (${facts.join(", ")}).`);
  if (payload.issue_number) lines.push("", `Closes #${payload.issue_number}`);
  return { title, body: lines.join("\n") };
}

/** Thrown when the task ended under the runner (cancelled, timed out): stop, write nothing. */
class TaskEnded extends Error {
  constructor(readonly status: string) {
    super(`task is ${status}`);
  }
}

/** Run one task; returns the exit code. Never throws. */
export async function runTask(input: RunInput, settings: RunnerSettings, deps: RunnerDeps): Promise<number> {
  const scrubber = new Scrubber();
  const rawLog = deps.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const log = (line: string) => rawLog(`[runner] ${scrubber.scrub(line)}`);

  let payload: RunnerPayload;
  try {
    payload = parsePayload(await fetchPayloadText(input.payloadUrl, deps.fetch), input.taskId);
  } catch (err) {
    // Without a payload there is no channel to report through: the exit code is the only signal.
    log(`cannot use the payload: ${err instanceof PayloadError ? err.message : (err as Error).message}`);
    return EXIT.SETUP;
  }
  scrubber.add(payload.channel.token);
  const channel = new AgentChannel({ url: payload.channel.url, token: payload.channel.token, taskId: input.taskId, fetch: deps.fetch });

  try {
    await channel.running();
  } catch (err) {
    if (err instanceof ChannelError && err.taskEnded) {
      log(`task is already ${err.taskStatus}; nothing to do`);
      return EXIT.OK;
    }
    if (err instanceof ChannelError && err.taskStatus && err.taskStatus !== "RUNNING") {
      log(`task is ${err.taskStatus}, not STARTING: the platform did not start this runner`);
      return EXIT.SETUP;
    }
    if (!(err instanceof ChannelError && err.taskStatus === "RUNNING")) {
      log(`cannot report RUNNING: ${(err as Error).message}`);
      return EXIT.ERROR;
    }
  }

  const events = new EventReporter(channel, scrubber, { ...settings.events, log });
  const ended = new AbortController();
  let endedStatus: string | undefined;
  const endWith = (status: string) => {
    if (ended.signal.aborted) return;
    endedStatus = status;
    ended.abort();
  };
  const onStop = () => endWith("STOPPED");
  deps.stop?.addEventListener("abort", onStop, { once: true });
  if (deps.stop?.aborted) onStop();
  const beat = setInterval(() => {
    channel.heartbeat().then(
      (r) => {
        if (TERMINAL.includes(r.status)) endWith(r.status);
      },
      (err) => {
        if (err instanceof ChannelError && err.taskEnded) endWith(err.taskStatus!);
        // A 401 after the task ended means the same: the token died with the task.
        else if (err instanceof ChannelError && err.httpStatus === 401) endWith("ENDED");
        else log(`heartbeat failed (the next may pass): ${(err as Error).message}`);
      },
    );
  }, settings.heartbeatMs);

  const repoDir = path.join(settings.workDir, "repo");
  const scratchDir = path.join(settings.workDir, "scratch");
  let git: Git | undefined;
  const checkEnded = () => {
    if (ended.signal.aborted) throw new TaskEnded(endedStatus ?? "ENDED");
  };

  try {
    rmSync(repoDir, { recursive: true, force: true });
    rmSync(scratchDir, { recursive: true, force: true });
    mkdirSync(scratchDir, { recursive: true, mode: 0o700 });
    git = new Git(repoDir, deps.env, settings.identity);
    const branch = workBranchOf(payload);

    const creds = await fetchCredentials(channel, scrubber);
    events.info(`cloning ${payload.repo_url}`, { repo_url: payload.repo_url, credentials: creds ? "provided" : "none" });
    let base: string;
    let start: string;
    try {
      base = await git.clone(payload.repo_url, creds);
      start = await git.checkoutWorkBranch(branch, base);
    } catch (err) {
      throw new RunFailure("clone", err instanceof GitError ? err.message.replace(/^(clone|checkout): /, "") : (err as Error).message);
    }
    checkEnded();
    events.info(`working on branch ${branch} (from ${base}) with the ${settings.driver.name} agent`, { branch, base, driver: settings.driver.name });

    const outcome = enforceBudget(
      await settings.driver.run({
        prompt: payload.prompt,
        cwd: repoDir,
        scratchDir,
        model: payload.model,
        maxTurns: payload.max_turns,
        maxBudgetUsd: payload.max_budget_usd,
        signal: ended.signal,
        progress: (message, data) => events.progress(message, data),
        log,
      }),
      payload.max_budget_usd,
    );
    events.flushProgress();
    checkEnded();
    const facts = { costUsd: outcome.costUsd, turns: outcome.turns };
    switch (outcome.kind) {
      case "cancelled":
        throw new TaskEnded(endedStatus ?? "ENDED");
      case "failed":
        throw new RunFailure("agent", outcome.detail ?? "the agent failed", facts);
      case "budget_exceeded":
        throw new RunFailure("budget", outcome.detail ?? `max_budget_usd ${payload.max_budget_usd}`, facts);
      case "turns_exceeded":
        throw new RunFailure("turns", outcome.detail ?? `max_turns ${payload.max_turns}`, facts);
      case "done":
        break;
    }

    git.restoreConfig();
    try {
      await git.commitAll(commitMessage(payload, outcome.summary));
    } catch (err) {
      throw new RunFailure("internal", `could not commit the agent's changes: ${(err as Error).message}`, facts);
    }
    const head = await git.head();
    if (head === start) {
      const summary = "No changes: the agent finished without changing the repository, so nothing was pushed and no pull request was opened.";
      events.info(summary);
      return await finish(channel, events, log, { status: "COMPLETED", exit_code: EXIT.OK, summary: withAgentSummary(summary, outcome), ...resultFacts(outcome) }, scrubber);
    }
    const diffStat = await git.diffStat(start);
    events.info(`committed: ${diffStat.split("\n").pop()?.trim() ?? ""}`, { commit: head });
    checkEnded();

    const pushCreds = (await fetchCredentials(channel, scrubber)) ?? creds;
    try {
      await git.push(payload.repo_url, branch, pushCreds);
    } catch (err) {
      throw new RunFailure("push", err instanceof GitError ? err.message.replace(/^push: /, "") : (err as Error).message, facts);
    }
    events.info(`pushed ${branch}`, { branch, commit: head });

    let prUrl: string | undefined;
    let prNote = "";
    if (!settings.pullRequests) {
      prNote = "pull requests are off for this runner";
    } else if (!pushCreds) {
      prNote = "no repository credentials, so no pull request";
    } else {
      try {
        const text = pullRequestText(payload, diffStat, outcome);
        const pr = await new GitHubClient(settings.githubApiUrl, pushCreds.token, deps.fetch).openOrUpdate(repoRefOf(payload.repo_url), {
          head: branch,
          base,
          ...text,
        });
        prUrl = pr.url;
        events.info(`${pr.updated ? "updated" : "opened"} pull request ${pr.url}`, { pr_url: pr.url, number: pr.number });
      } catch (err) {
        throw new RunFailure("pull_request", `branch ${branch} was pushed, but ${(err as Error).message}`, facts);
      }
    }
    const summary = [`Pushed ${branch} (${head.slice(0, 12)}) from ${base}.`, prNote && `${prNote[0].toUpperCase()}${prNote.slice(1)}.`, diffStat].filter(Boolean).join("\n");
    return await finish(
      channel,
      events,
      log,
      { status: "COMPLETED", exit_code: EXIT.OK, ...(prUrl ? { pr_url: prUrl } : {}), summary: withAgentSummary(summary, outcome), ...resultFacts(outcome) },
      scrubber,
    );
  } catch (err) {
    if (err instanceof TaskEnded || ended.signal.aborted) {
      const status = err instanceof TaskEnded ? err.status : (endedStatus ?? "ENDED");
      log(status === "STOPPED" ? "stopped by the platform; exiting without a result" : `task is ${status}; the agent was stopped, nothing written`);
      return status === "STOPPED" ? EXIT.STOPPED : EXIT.OK;
    }
    const failure = err instanceof RunFailure ? err : new RunFailure("internal", (err as Error).message);
    events.error(failure.message);
    return await finish(
      channel,
      events,
      log,
      {
        status: "FAILED",
        exit_code: failure.code,
        error_message: failure.message,
        ...(failure.facts.costUsd !== undefined ? { cost_usd: failure.facts.costUsd } : {}),
        ...(failure.facts.turns !== undefined ? { turns: failure.facts.turns } : {}),
      },
      scrubber,
    );
  } finally {
    clearInterval(beat);
    deps.stop?.removeEventListener("abort", onStop);
    git?.dispose();
  }
}

function resultFacts(outcome: DriverOutcome): Pick<TaskResult, "cost_usd" | "turns"> {
  return {
    ...(outcome.costUsd !== undefined ? { cost_usd: outcome.costUsd } : {}),
    ...(outcome.turns !== undefined ? { turns: outcome.turns } : {}),
  };
}

function withAgentSummary(summary: string, outcome: DriverOutcome): string {
  return outcome.summary ? `${summary}\n\nAgent: ${outcome.summary.trim()}` : summary;
}

/** Credentials through the channel: none configured is a valid answer; a transient error is tried once more. */
async function fetchCredentials(channel: AgentChannel, scrubber: Scrubber): Promise<GitCredentials | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      const creds = await channel.credentials();
      scrubber.add(creds?.token);
      return creds;
    } catch (err) {
      if (err instanceof ChannelError && err.taskEnded) throw new TaskEnded(err.taskStatus!);
      if (attempt >= 3 || !isTransient(err)) throw new RunFailure("credentials", (err as Error).message);
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

/** The terminal result, bounded and scrubbed; retried on transient errors. A 409 means the task ended otherwise. */
async function finish(channel: AgentChannel, events: EventReporter, log: (line: string) => void, result: TaskResult, scrubber: Scrubber): Promise<number> {
  await events.drain();
  const bounded: TaskResult = scrubber.scrubValue({
    ...result,
    ...(result.error_message ? { error_message: clip(result.error_message, 2000) } : {}),
    ...(result.summary ? { summary: clip(result.summary, 4000) } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    try {
      await channel.result(bounded);
      log(`task ${bounded.status}${bounded.error_message ? `: ${bounded.error_message}` : ""}`);
      return bounded.exit_code;
    } catch (err) {
      if (err instanceof ChannelError && err.taskStatus) {
        // Our own earlier result (a retry whose answer was lost) keeps its code; any other status won a race: exit 0.
        log(`task is already ${err.taskStatus}; result not written`);
        return err.taskStatus === bounded.status ? bounded.exit_code : EXIT.OK;
      }
      if (attempt >= 4 || !isTransient(err)) {
        log(`cannot report the result: ${(err as Error).message}`);
        return bounded.exit_code === EXIT.OK ? EXIT.ERROR : bounded.exit_code;
      }
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}
