import { expect } from "chai";
import { TASK_STATUSES, TRANSITIONS, allowedPredecessors, canTransition, isTerminal } from "../runtime/tasks/status";

describe("task status transitions", () => {
  it("terminal statuses lead nowhere", () => {
    for (const s of TASK_STATUSES) if (isTerminal(s)) expect(TRANSITIONS[s], s).to.be.empty;
  });

  it("every non-terminal status can be cancelled", () => {
    for (const s of TASK_STATUSES) if (!isTerminal(s)) expect(canTransition(s, "CANCELLED"), s).to.equal(true);
  });

  const refused: Array<[string, string]> = [
    ["SUBMITTED", "RUNNING"],
    ["SUBMITTED", "COMPLETED"],
    ["QUEUED", "RUNNING"],
    ["RUNNING", "SUBMITTED"],
    ["RUNNING", "QUEUED"],
    ["COMPLETED", "RUNNING"],
    ["CANCELLED", "COMPLETED"],
    ["TIMED_OUT", "FAILED"],
  ];
  for (const [from, to] of refused) {
    it(`refuses ${from} → ${to}`, () => {
      expect(canTransition(from as never, to as never)).to.equal(false);
    });
  }

  it("the predecessors of a status are exactly the statuses that may move to it", () => {
    expect(allowedPredecessors("RUNNING")).to.deep.equal(["STARTING"]);
    expect(allowedPredecessors("STARTING"), "RUNNING: re-queued after an infrastructure loss").to.deep.equal(["SUBMITTED", "QUEUED", "RUNNING"]);
    expect(allowedPredecessors("CANCELLED")).to.deep.equal(["SUBMITTED", "QUEUED", "STARTING", "RUNNING"]);
    expect(allowedPredecessors("TIMED_OUT")).to.deep.equal(["STARTING", "RUNNING"]);
  });
});
