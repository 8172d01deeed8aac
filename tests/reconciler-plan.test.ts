import { expect } from "chai";
import { planRepairs, type Observation, type ObservedTask, type ReconcileThresholds } from "../runtime/reconciler/plan";

const NOW = new Date("2030-01-01T12:00:00.000Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

const T: ReconcileThresholds = {
  taskTimeoutSeconds: 8 * 3600,
  heartbeatTimeoutSeconds: 180,
  startupGraceSeconds: 600,
  dispatchGraceSeconds: 120,
  finalizeGraceSeconds: 480,
};

function task(over: Partial<ObservedTask>): ObservedTask {
  return { task_id: "t1", user_id: "alice", status: "RUNNING", created_at: ago(3600), updated_at: ago(600), execution_arn: "arn:x", ...over };
}

function world(over: Partial<Observation>): Observation {
  return { now: NOW, active: [], unreleased: [], runningOrchestrators: new Set(), slots: [], leases: [], others: new Map(), ...over };
}

describe("reconciler plan: what a crash left behind, and what is repaired", () => {
  const cases: [string, Partial<Observation>, string[]][] = [
    ["a running task whose orchestrator runs is left alone", { active: [task({})], runningOrchestrators: new Set(["t1"]) }, []],
    ["a running task whose orchestrator stopped is failed", { active: [task({})] }, ["fail t1 RUNNING→FAILED | orchestrator stopped running"]],
    ["a task written moments ago is left to its dispatch", { active: [task({ updated_at: ago(30) })] }, []],
    ["without knowing the orchestrators, nothing is judged by them", { active: [task({})], runningOrchestrators: undefined }, []],
    ["a submitted task never handed to an orchestrator is re-driven", { active: [task({ status: "SUBMITTED", execution_arn: undefined })] }, ["redrive t1"]],
    ["a submitted task whose orchestrator ended is failed", { active: [task({ status: "SUBMITTED" })] }, ["fail t1 SUBMITTED→FAILED | orchestrator stopped running"]],
    [
      "a QUEUED task past the task timeout is failed even with a running orchestrator",
      { active: [task({ status: "QUEUED", created_at: ago(8 * 3600 + 5) })], runningOrchestrators: new Set(["t1"]) },
      ["fail t1 QUEUED→FAILED | in the queue"],
    ],
    [
      "a STARTING task past the task timeout times out",
      { active: [task({ status: "STARTING", created_at: ago(8 * 3600) })], runningOrchestrators: new Set(["t1"]) },
      ["fail t1 STARTING→TIMED_OUT | still starting"],
    ],
    [
      "a STARTING task past the task timeout while EC2 had no capacity for its fleet fails with EC2's reason",
      { active: [task({ status: "STARTING", created_at: ago(8 * 3600), fleet: "gpu", capacity_error: "We currently do not have sufficient g5.xlarge capacity (InsufficientInstanceCapacity)" })], runningOrchestrators: new Set(["t1"]) },
      ["fail t1 STARTING→FAILED | EC2 could not provide an instance for fleet 'gpu' within the task's 28800s timeout (waited 28800s): We currently do not have sufficient g5.xlarge capacity (InsufficientInstanceCapacity) (reconciler)"],
    ],
    [
      "a STARTING task whose heartbeat is 5 hours old is failed now, not at the 8-hour timeout",
      { active: [task({ status: "STARTING", started_at: ago(6 * 3600), agent_heartbeat_at: ago(5 * 3600), created_at: ago(6 * 3600) })], runningOrchestrators: new Set(["t1"]) },
      ["fail t1 STARTING→FAILED | no heartbeat for 18000s"],
    ],
    [
      "a STARTING task still pulling its image (no heartbeat yet) is left to its orchestrator",
      { active: [task({ status: "STARTING", started_at: ago(900), created_at: ago(900) })], runningOrchestrators: new Set(["t1"]) },
      [],
    ],
    ["a finished task never released is finalized after the grace", { unreleased: [task({ status: "COMPLETED", finished_at: ago(600) })] }, ["finalize t1"]],
    ["a finished task within the grace is its orchestrator's to finalize", { unreleased: [task({ status: "FAILED", finished_at: ago(60) })] }, []],
    [
      "a slot held by a missing task is released",
      { slots: [{ userId: "alice", taskId: "gone" }], others: new Map([["gone", undefined]]) },
      ["release-slot alice/gone | does not exist"],
    ],
    [
      "a slot held by a released finished task is released",
      { slots: [{ userId: "alice", taskId: "t9" }], others: new Map([["t9", task({ task_id: "t9", status: "CANCELLED", released_at: ago(300) })]]) },
      ["release-slot alice/t9 | ended CANCELLED"],
    ],
    [
      "a slot of an unreleased finished task is left to its finalize (which releases it)",
      { unreleased: [task({ status: "COMPLETED", finished_at: ago(600) })], slots: [{ userId: "alice", taskId: "t1" }] },
      ["finalize t1"],
    ],
    ["a slot of an active task is kept", { active: [task({})], runningOrchestrators: new Set(["t1"]), slots: [{ userId: "alice", taskId: "t1" }] }, []],
    [
      "a BUSY lease of a missing task is released",
      { leases: [{ instanceId: "i-1", taskId: "gone" }], others: new Map([["gone", undefined]]) },
      ["release-lease i-1/gone | does not exist"],
    ],
    [
      "a BUSY lease of a released finished task is released",
      { leases: [{ instanceId: "i-1", taskId: "t9" }], others: new Map([["t9", task({ task_id: "t9", status: "FAILED", released_at: ago(300) })]]) },
      ["release-lease i-1/t9 | ended FAILED"],
    ],
    ["a lease whose task was not read is left alone", { leases: [{ instanceId: "i-1", taskId: "unread" }] }, []],
  ];

  for (const [name, over, expected] of cases) {
    it(name, () => {
      const actions = planRepairs(world(over), T);
      const described = actions.map((a) => {
        switch (a.kind) {
          case "fail":
            return `fail ${a.taskId} ${a.from}→${a.to} ${a.reason}`;
          case "release-slot":
            return `release-slot ${a.userId}/${a.taskId} ${a.reason}`;
          case "release-lease":
            return `release-lease ${a.instanceId}/${a.taskId} ${a.reason}`;
          default:
            return `${a.kind} ${a.taskId}`;
        }
      });
      expect(described.length, JSON.stringify(described)).to.equal(expected.length);
      // "<what> | <words of the reason>": the action exactly, the reason by its telling words.
      expected.forEach((spec, i) => {
        const [what, words] = spec.split(" | ");
        expect(described[i].startsWith(`${what}${words ? " " : ""}`), described[i]).to.equal(true);
        if (words) expect(described[i]).to.include(words);
      });
    });
  }
});
