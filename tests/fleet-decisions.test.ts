/** The fleet's pure decisions, as tables: SSM status mapping, desired capacity, the reconcile plan, scale-in, release. */
import { expect } from "chai";
import type { ComputeState } from "../runtime/compute/strategy";
import { mapCommandStatus } from "../runtime/fleet/command-status";
import { releaseTarget, type Lease } from "../runtime/fleet/lease";
import { planFleet, type FleetObservation } from "../runtime/fleet/plan";
import { planReconcile } from "../runtime/fleet/reconcile";
import { desiredCapacity, type CapacityInput } from "../runtime/fleet/scaling";
import type { TaskStatus } from "../runtime/tasks/status";

describe("SSM command status → compute state", () => {
  const cases: [status: string, details: string | undefined, responseCode: number | undefined, state: ComputeState, exitCode?: number][] = [
    ["Pending", "Pending", -1, "PENDING"],
    ["Delayed", "Delayed", -1, "PENDING"],
    ["InProgress", "InProgress", -1, "RUNNING"],
    ["Cancelling", "Cancelling", -1, "RUNNING"],
    ["Success", "Success", 0, "EXITED", 0],
    ["Failed", "Failed", 3, "EXITED", 3],
    ["Failed", "Failed", -1, "EXITED", undefined],
    ["Cancelled", "Canceled", -1, "LOST"],
    ["TimedOut", "Delivery Timed Out", -1, "LOST"],
    ["TimedOut", "Execution Timed Out", 124, "EXITED", 124],
    ["TimedOut", "Execution Timed Out", -1, "EXITED", undefined],
    ["TimedOut", undefined, -1, "LOST"],
    ["Failed", "Undeliverable", -1, "LOST"],
    ["Cancelled", "Undeliverable", -1, "LOST"],
    ["Failed", "Terminated", -1, "LOST"],
    ["Failed", "Invalid Platform", -1, "LOST"],
    ["Failed", "Access Denied", -1, "LOST"],
    ["SomethingNew", undefined, undefined, "RUNNING"],
  ];
  for (const [status, details, code, state, exitCode] of cases) {
    it(`${status}${details ? `/${details}` : ""} (ResponseCode ${code}) is ${state}${exitCode !== undefined ? ` with exit code ${exitCode}` : ""}`, () => {
      const mapped = mapCommandStatus(status, details, code);
      expect(mapped.state).to.equal(state);
      expect(mapped.exitCode).to.equal(exitCode);
      expect(mapped.raw).to.contain(status);
      if (state === "LOST") expect(mapped.reason, "a loss says why").to.be.a("string").and.not.equal("");
    });
  }

  it("a failed command's reason names its exit code, never another backend", () => {
    const mapped = mapCommandStatus("Failed", "Failed", 2);
    expect(mapped.reason).to.contain("exit code 2");
    expect(mapped.reason).to.not.match(/ECS|Fargate|AgentCore/);
  });

  it("exit code 69 says the host could not get the agent's model credentials", () => {
    expect(mapCommandStatus("Failed", "Failed", 69).reason).to.match(/exit code 69: the instance could not assume the fleet's agent role/);
    expect(mapCommandStatus("Failed", "Failed", 4).reason).to.not.contain("agent role");
  });
});

describe("fleet desired capacity", () => {
  const base: CapacityInput = { queued: 0, busy: 0, ready: 0, warmBuffer: 0, min: 0, max: 10 };
  const cases: [name: string, input: Partial<CapacityInput>, desired: number][] = [
    ["an idle fleet shrinks to its minimum", { min: 1, ready: 4 }, 1],
    ["an idle fleet keeps its warm buffer", { warmBuffer: 2, ready: 5 }, 2],
    ["each queued task gets an instance", { queued: 3 }, 3],
    ["queued tasks plus the warm buffer", { queued: 3, warmBuffer: 2 }, 5],
    ["busy instances are kept", { busy: 4 }, 4],
    ["busy + queued + buffer", { busy: 4, queued: 2, warmBuffer: 1, ready: 1 }, 7],
    ["never above max", { busy: 8, queued: 5, warmBuffer: 2 }, 10],
    ["never below min", { min: 3, busy: 1 }, 3],
    ["idle ready instances beyond the buffer are given back", { busy: 2, ready: 6, warmBuffer: 1 }, 3],
    ["a fleet with max 0 stays empty", { max: 0, queued: 4 }, 0],
  ];
  for (const [name, input, desired] of cases) {
    it(`${name} → ${desired}`, () => expect(desiredCapacity({ ...base, ...input })).to.equal(desired));
  }
  it("refuses min above max and negative counts, naming the field", () => {
    expect(() => desiredCapacity({ ...base, min: 5, max: 2 })).to.throw(/min \(5\) is above max \(2\)/);
    expect(() => desiredCapacity({ ...base, queued: -1 })).to.throw(/queued must be a whole number/);
  });
});

describe("lease reconcile plan", () => {
  const lease = (instanceId: string, taskId?: string): Lease => ({
    instanceId,
    fleet: "default",
    state: taskId ? "BUSY" : "READY",
    registeredAt: "2025-01-01T00:00:00Z",
    taskCount: taskId ? 1 : 0,
    ...(taskId ? { taskId } : {}),
  });
  const statuses = (entries: [string, TaskStatus | undefined][]) => new Map(entries);

  const cases: [name: string, leases: Lease[], tasks: [string, TaskStatus | undefined][], running: string[] | undefined, expected: unknown[]][] = [
    ["a running task keeps its instance", [lease("i-00000001", "t1")], [["t1", "RUNNING"]], undefined, []],
    [
      "a finished task's instance is released",
      [lease("i-00000001", "t1")],
      [["t1", "COMPLETED"]],
      undefined,
      [{ kind: "release", instanceId: "i-00000001", fleet: "default", taskId: "t1", why: "task-terminal", status: "COMPLETED" }],
    ],
    [
      "a cancelled task's instance is released",
      [lease("i-00000001", "t1")],
      [["t1", "CANCELLED"]],
      undefined,
      [{ kind: "release", instanceId: "i-00000001", fleet: "default", taskId: "t1", why: "task-terminal", status: "CANCELLED" }],
    ],
    [
      "a missing task's instance is released",
      [lease("i-00000001", "t1")],
      [["t1", undefined]],
      undefined,
      [{ kind: "release", instanceId: "i-00000001", fleet: "default", taskId: "t1", why: "task-missing" }],
    ],
    ["a task that was not read is left alone", [lease("i-00000001", "t1")], [], undefined, []],
    ["ready leases are never released", [lease("i-00000001")], [], undefined, []],
    [
      "an instance that is gone is dropped and its running task reported lost",
      [lease("i-00000001", "t1"), lease("i-00000002")],
      [["t1", "RUNNING"]],
      ["i-00000003"],
      [
        { kind: "drop-instance", instanceId: "i-00000001", fleet: "default", lostTaskId: "t1" },
        { kind: "drop-instance", instanceId: "i-00000002", fleet: "default" },
      ],
    ],
    [
      "a gone instance whose task already finished is dropped without a loss",
      [lease("i-00000001", "t1")],
      [["t1", "COMPLETED"]],
      [],
      [{ kind: "drop-instance", instanceId: "i-00000001", fleet: "default" }],
    ],
  ];
  for (const [name, leases, tasks, running, expected] of cases) {
    it(name, () => {
      expect(planReconcile({ leases, tasks: statuses(tasks), runningInstanceIds: running ? new Set(running) : undefined })).to.deep.equal(expected);
    });
  }
});

describe("fleet scale-in waits for the idle grace", () => {
  const now = "2026-11-30T10:00:00.000Z";
  const ago = (seconds: number) => new Date(Date.parse(now) - seconds * 1000).toISOString();
  /** Ready instances registered an hour ago, each idle for the given seconds (undefined: idle since registration). */
  const observe = (idle: (number | undefined)[]): FleetObservation => {
    const ids = idle.map((_, i) => `i-0000000${i + 1}`);
    return {
      fleet: "default",
      now,
      group: { desired: ids.length, min: 0, max: 10, members: ids.map((instanceId) => ({ instanceId, lifecycleState: "InService", health: "Healthy" })) },
      instances: ids.map((instanceId) => ({ instanceId, state: "running", launchedAt: ago(3700), boot: "ready" })),
      leases: ids.map((instanceId, i) => ({
        instanceId,
        fleet: "default",
        state: "READY",
        registeredAt: ago(3600 - i),
        ...(idle[i] !== undefined ? { idleSince: ago(idle[i]!) } : {}),
      })),
      queued: 0,
    };
  };
  const drained = (o: FleetObservation, settings: Parameters<typeof planFleet>[1]) =>
    planFleet(o, settings).filter((a) => a.kind === "drain").map((a) => (a as { instanceId: string }).instanceId);

  const cases: [name: string, idle: (number | undefined)[], settings: Parameters<typeof planFleet>[1], expected: string[]][] = [
    ["an instance freed a moment ago stays (default grace 120 s)", [30], {}, []],
    ["an instance idle past the grace is drained", [121], {}, ["i-00000001"]],
    ["an instance never used is idle since its registration", [undefined], {}, ["i-00000001"]],
    ["only the instances past the grace go, the oldest registered first", [200, 10, 500], {}, ["i-00000001", "i-00000003"]],
    ["the warm buffer is the instance freed last, when it is within the grace", [200, 10, 500], { warmBuffer: 1 }, ["i-00000001", "i-00000003"]],
    ["the warm buffer keeps one of those past the grace", [200, 500], { warmBuffer: 1 }, ["i-00000001"]],
    ["a grace of 0 drains every idle instance at once", [0, 5], { scaleInIdleSeconds: 0 }, ["i-00000001", "i-00000002"]],
    ["a longer grace keeps them all", [200, 500], { scaleInIdleSeconds: 600 }, []],
  ];
  for (const [name, idle, settings, expected] of cases) {
    it(name, () => expect(drained(observe(idle), settings)).to.deep.equal(expected));
  }
});

describe("where a released instance goes", () => {
  const now = new Date("2026-11-30T10:00:00.000Z");
  const lease = (over: Partial<Lease>): Lease => ({ instanceId: "i-00000001", fleet: "default", state: "BUSY", registeredAt: "2026-11-30T09:00:00.000Z", taskCount: 3, taskId: "t", ...over });
  const cases: [name: string, lease: Lease, limits: { maxInstanceLifetimeSeconds?: number; maxTasksPerInstance?: number }, expected: unknown][] = [
    ["a busy instance is offered to the oldest waiter, else READY", lease({}), {}, { offer: true, to: "READY" }],
    ["a draining instance takes no new task", lease({ state: "DRAINING" }), {}, { offer: false, to: "DRAINING" }],
    ["an instance past its lifetime retires", lease({}), { maxInstanceLifetimeSeconds: 3600 }, { offer: false, to: "DRAINING", retire: "lifetime" }],
    ["an instance at its task count retires", lease({}), { maxTasksPerInstance: 3 }, { offer: false, to: "DRAINING", retire: "task-count" }],
    ["an instance below its task count is offered", lease({}), { maxTasksPerInstance: 4 }, { offer: true, to: "READY" }],
  ];
  for (const [name, l, limits, expected] of cases) {
    it(name, () => expect(releaseTarget(l, limits, now)).to.deep.equal(expected));
  }
});
