/** The orchestrator's small pure decisions, as tables. */
import { expect } from "chai";
import type { SessionStatus } from "../runtime/compute/strategy";
import { isFirstInLine } from "../runtime/orchestrator/admission";
import { nextCounters, type PollCounters } from "../runtime/orchestrator/await";
import { pollIntervalFor } from "../runtime/orchestrator/load";
import { sessionIdOf } from "../runtime/orchestrator/start";
import type { TaskStatus } from "../runtime/tasks/status";

describe("orchestrator decisions", () => {
  describe("isFirstInLine (FIFO admission)", () => {
    const t = (id: string, at: string) => ({ task_id: id, created_at: `2030-01-01T00:00:0${at}.000Z` });
    const cases: [string, ReturnType<typeof t>, ReturnType<typeof t> | undefined, boolean][] = [
      ["nobody queued", t("a", "5"), undefined, true],
      ["it is the oldest queued task", t("a", "5"), t("a", "5"), true],
      ["a younger task while an older one waits", t("b", "6"), t("a", "5"), false],
      ["an older task whose orchestrator came late", t("a", "4"), t("b", "5"), true],
      ["same instant: the smaller id goes first", t("a", "5"), t("b", "5"), true],
      ["same instant: the larger id waits", t("c", "5"), t("b", "5"), false],
    ];
    for (const [name, task, oldest, expected] of cases) {
      it(`${name} → ${expected ? "may claim a slot" : "waits"}`, () => {
        expect(isFirstInLine(task, oldest)).to.equal(expected);
      });
    }
  });

  describe("nextCounters (poll streaks)", () => {
    const zero: PollCounters = { pollErrors: 0, finishedPolls: 0 };
    const cases: [string, PollCounters, SessionStatus | undefined, TaskStatus, PollCounters][] = [
      ["a failed poll extends the error streak", { pollErrors: 2, finishedPolls: 0 }, undefined, "RUNNING", { pollErrors: 3, finishedPolls: 0 }],
      ["a good poll ends the error streak", { pollErrors: 2, finishedPolls: 0 }, { state: "RUNNING" }, "RUNNING", zero],
      ["finished compute, task not terminal: counts", { pollErrors: 0, finishedPolls: 1 }, { state: "EXITED", exitCode: 0 }, "RUNNING", { pollErrors: 0, finishedPolls: 2 }],
      ["finished compute, task terminal: does not count", { pollErrors: 0, finishedPolls: 1 }, { state: "EXITED", exitCode: 0 }, "COMPLETED", zero],
      ["compute running again resets the finished streak", { pollErrors: 0, finishedPolls: 2 }, { state: "RUNNING" }, "RUNNING", zero],
      ["a failed poll breaks the finished streak", { pollErrors: 0, finishedPolls: 2 }, undefined, "RUNNING", { pollErrors: 1, finishedPolls: 0 }],
    ];
    for (const [name, prev, compute, status, expected] of cases) {
      it(name, () => expect(nextCounters(prev, compute, status)).to.deep.equal(expected));
    }
  });

  describe("pollIntervalFor", () => {
    const cases: [number, number | undefined, number][] = [
      [30, undefined, 30],
      [30, 60, 60],
      [30, 1, 5],
      [30, 3600, 300],
      [2, undefined, 5],
    ];
    for (const [stack, blueprint, expected] of cases) {
      it(`stack ${stack}s, blueprint ${blueprint ?? "unset"} → ${expected}s`, () => {
        expect(pollIntervalFor({ pollIntervalSeconds: stack }, blueprint)).to.equal(expected);
      });
    }
  });

  it("sessionIdOf names each backend's session by its own id", () => {
    expect(sessionIdOf({ type: "ecs", cluster: "c", taskArn: "arn:task/1" })).to.equal("arn:task/1");
    expect(sessionIdOf({ type: "agentcore", runtimeArn: "r", sessionId: "s".repeat(33) })).to.equal("s".repeat(33));
    expect(sessionIdOf({ type: "ec2", fleet: "f", instanceId: "i-1", commandId: "cmd-1", documentName: "d" })).to.equal("cmd-1");
    expect(sessionIdOf({ type: "local", pid: 7, runDir: "/r" })).to.equal("pid:7");
  });
});
