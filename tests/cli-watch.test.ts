import { expect } from "chai";
import type { ApiClient } from "../cli/client";
import { formatDuration, formatStatusLine, watchTask, type EventView, type TaskView } from "../cli/watch";

const T0 = "2026-01-15T12:00:00.000Z";
const at = (s: number) => new Date(Date.parse(T0) + s * 1000);

describe("CLI watch display", () => {
  const durations: [number, string][] = [
    [0, "0s"],
    [59.9, "59s"],
    [75, "1m15s"],
    [3725, "1h02m05s"],
    [-3, "0s"],
  ];
  for (const [s, text] of durations) it(`formats ${s}s as ${text}`, () => expect(formatDuration(s)).to.equal(text));

  const lines: [string, Partial<TaskView>, number, RegExp][] = [
    ["a new task", { status: "SUBMITTED" }, 2, /^SUBMITTED\s+elapsed 2s\s+\(local\)$/],
    ["a starting task without heartbeat", { status: "STARTING" }, 5, /^STARTING\s+elapsed 5s\s+no heartbeat yet/],
    ["a running task", { status: "RUNNING", agent_heartbeat_at: at(60).toISOString() }, 63, /^RUNNING\s+elapsed 1m03s\s+heartbeat 3s ago/],
    ["a finished task (elapsed stops at finish)", { status: "COMPLETED", finished_at: at(90).toISOString(), agent_heartbeat_at: at(80).toISOString() }, 500, /^COMPLETED\s+elapsed 1m30s\s+\(local\)$/],
  ];
  for (const [name, fields, now, re] of lines) {
    it(`status line for ${name}`, () => {
      expect(formatStatusLine({ task_id: "t", created_at: T0, backend: "local", status: "", ...fields } as TaskView, at(now))).to.match(re);
    });
  }

  it("follows a task to its end, printing each event once and each status change, and returns the final task", async () => {
    const states: Partial<TaskView>[] = [
      { status: "SUBMITTED" },
      { status: "RUNNING", agent_heartbeat_at: at(2).toISOString() },
      { status: "RUNNING", agent_heartbeat_at: at(3).toISOString() },
      { status: "COMPLETED", finished_at: at(4).toISOString(), exit_code: 0 },
    ];
    const events: EventView[] = [
      { event_id: "1", type: "status", status: "SUBMITTED", message: "task submitted", at: T0 },
      { event_id: "2", type: "status", status: "RUNNING", message: "agent running", at: at(2).toISOString() },
      { event_id: "3", type: "status", status: "COMPLETED", message: "agent done", at: at(4).toISOString() },
    ];
    let poll = -1;
    const fake = {
      async request(_m: string, path: string) {
        if (path.endsWith("/events")) return { events: events.slice(0, Math.min(poll + 1, 3)) };
        poll++;
        return { task: { task_id: "t1", created_at: T0, backend: "local", ...states[poll] } };
      },
    } as unknown as ApiClient;
    let out = "";
    const sleeps: number[] = [];
    const final = await watchTask(fake, "t1", { write: (t) => (out += t), now: () => at(poll + 1), sleep: async (ms) => void sleeps.push(ms), intervalMs: 250 });
    expect(final.status).to.equal("COMPLETED");
    expect(sleeps).to.deep.equal([250, 250, 250]);
    for (const e of events) expect(out.split(e.message).length - 1, e.message).to.equal(1);
    expect(out).to.match(/SUBMITTED[\s\S]*RUNNING[\s\S]*heartbeat[\s\S]*COMPLETED/);
    expect(out.trim().split("\n").pop()).to.equal("task t1 COMPLETED; exit code 0");
  });
});
