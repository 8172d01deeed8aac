import { expect } from "chai";
import { decideLiveness, type LivenessInput, type LivenessThresholds } from "../runtime/liveness";
import { BACKEND_TYPES } from "../runtime/compute/handle";

const T: LivenessThresholds = {
  taskTimeoutSeconds: 3600,
  heartbeatTimeoutSeconds: 120,
  startupGraceSeconds: 600,
  maxPollErrors: 3,
  maxFinishedPolls: 2,
};

function input(over: Partial<LivenessInput>): LivenessInput {
  return {
    backend: "ecs",
    taskStatus: "RUNNING",
    heartbeatAgeSeconds: 10,
    sinceStartSeconds: 100,
    elapsedSeconds: 200,
    compute: { state: "RUNNING" },
    consecutivePollErrors: 0,
    consecutiveFinishedPolls: 0,
    ...over,
  };
}

describe("liveness: one decision for every backend", () => {
  const cases: Array<[string, Partial<LivenessInput>, string, RegExp?]> = [
    ["a healthy running agent continues", {}, "continue"],
    ["a terminal status written by the agent ends the wait", { taskStatus: "COMPLETED" }, "done"],
    ["a cancelled task ends the wait", { taskStatus: "CANCELLED", compute: { state: "RUNNING" } }, "done"],
    ["the absolute timeout wins over a healthy agent", { elapsedSeconds: 3600 }, "timeout", /3600s timeout/],
    ["timeout is checked before a lost compute", { elapsedSeconds: 4000, compute: { state: "LOST" } }, "timeout"],
    ["lost compute fails at once with the backend's reason", { compute: { state: "LOST", reason: "SpotInterruption" } }, "fail", /lost.*SpotInterruption/],
    ["a non-zero exit before a terminal write is a crash", { compute: { state: "EXITED", exitCode: 137 } }, "fail", /exited with code 137/],
    ["exit 0 without a terminal status is given a grace poll", { compute: { state: "EXITED", exitCode: 0 }, consecutiveFinishedPolls: 1 }, "continue"],
    ["exit 0 without a terminal status fails after N polls", { compute: { state: "EXITED", exitCode: 0 }, consecutiveFinishedPolls: 2 }, "fail", /no terminal status after 2 polls/],
    ["an unknown exit code also waits for the terminal write", { compute: { state: "EXITED" }, consecutiveFinishedPolls: 1 }, "continue"],
    ["poll errors below the limit continue", { compute: undefined, consecutivePollErrors: 2 }, "continue"],
    ["N consecutive poll errors fail", { compute: undefined, consecutivePollErrors: 3, lastPollError: "AccessDenied" }, "fail", /3 consecutive polls: AccessDenied/],
    ["a stale heartbeat fails a running task", { heartbeatAgeSeconds: 121 }, "fail", /no heartbeat for 121s/],
    ["a running task that never beat is judged from its start", { heartbeatAgeSeconds: undefined, sinceStartSeconds: 500 }, "fail", /no heartbeat/],
    ["an unobservable compute relies on heartbeats: fresh", { compute: { state: "UNOBSERVABLE" } }, "continue"],
    ["an unobservable compute relies on heartbeats: stale", { compute: { state: "UNOBSERVABLE" }, heartbeatAgeSeconds: 500 }, "fail", /no heartbeat/],
    ["a starting task within its grace continues", { taskStatus: "STARTING", heartbeatAgeSeconds: undefined, sinceStartSeconds: 599, compute: { state: "PENDING" } }, "continue"],
    ["a starting task whose heartbeat went stale fails (not at the task timeout)", { taskStatus: "STARTING", heartbeatAgeSeconds: 1800, sinceStartSeconds: 2400, elapsedSeconds: 2500, compute: { state: "PENDING" } }, "fail", /no heartbeat for 1800s/],
    ["a starting task with a fresh heartbeat continues past the grace", { taskStatus: "STARTING", heartbeatAgeSeconds: 30, sinceStartSeconds: 900, compute: { state: "PENDING" } }, "continue"],
    ["a starting task past its grace fails", { taskStatus: "STARTING", heartbeatAgeSeconds: undefined, sinceStartSeconds: 601, compute: { state: "PENDING" } }, "fail", /did not report RUNNING within 600s/],
  ];
  for (const [name, over, action, reason] of cases) {
    it(name, () => {
      const d = decideLiveness(input(over), T);
      expect(d.action).to.equal(action);
      if (reason) expect((d as { reason: string }).reason).to.match(reason);
    });
  }

  it("every failure message names the real backend, never another one", () => {
    const names: Record<string, RegExp> = {
      agentcore: /AgentCore session/,
      ecs: /ECS task/,
      ec2: /EC2 instance/,
      local: /local agent process/,
    };
    for (const backend of BACKEND_TYPES) {
      for (const over of [
        { compute: { state: "LOST" as const } },
        { compute: { state: "EXITED" as const, exitCode: 2 } },
        { compute: undefined, consecutivePollErrors: 9 },
        { heartbeatAgeSeconds: 999 },
      ]) {
        const d = decideLiveness(input({ backend, ...over }), T) as { reason: string };
        expect(d.reason, backend).to.match(names[backend]);
        for (const [other, re] of Object.entries(names)) if (other !== backend) expect(d.reason).not.to.match(re);
        if (backend !== "ecs") expect(d.reason).not.to.match(/ECS/);
      }
    }
  });
});
