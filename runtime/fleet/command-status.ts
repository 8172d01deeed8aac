/**
 * SSM command invocation status → the raw compute state the orchestrator interprets. Pure, so every status and
 * detail SSM can report is pinned by a table of tests.
 * Status: Pending | InProgress | Delayed | Success | Cancelled | TimedOut | Failed | Cancelling.
 * StatusDetails adds why: Delivery Timed Out, Execution Timed Out, Undeliverable, Terminated, Invalid Platform,
 * Access Denied, Canceled, …; ResponseCode is the script's exit code, which the document makes the agent's.
 */
import type { SessionStatus } from "../compute/strategy";
import { AGENT_CREDENTIALS_EXIT_CODE } from "./agent-credentials";

/** Details meaning the agent never ran, or its instance went away: an infrastructure loss, not the agent's failure. */
const LOST_DETAILS: Readonly<Record<string, string>> = {
  undeliverable: "the command could not be delivered: the instance is stopped or terminated, or its SSM agent is unreachable",
  deliverytimedout: "the command was not delivered to the instance within the delivery timeout",
  terminated: "the command was terminated by SSM before it finished",
  invalidplatform: "the instance's platform cannot run the agent document (it needs Linux)",
  accessdenied: "the SSM agent on the instance was denied access running the document",
};

function normalise(text: string | undefined): string {
  return (text ?? "").toLowerCase().replace(/[^a-z]/g, "");
}

/** An exit code SSM reports only once the script ran; -1 (or absent) means there is none. */
function exitCodeOf(responseCode: number | undefined): number | undefined {
  return responseCode !== undefined && Number.isInteger(responseCode) && responseCode >= 0 ? responseCode : undefined;
}

export function mapCommandStatus(
  status: string | undefined,
  statusDetails: string | undefined,
  responseCode: number | undefined,
): SessionStatus {
  const raw = statusDetails && statusDetails !== status ? `${status ?? ""}/${statusDetails}` : (status ?? "");
  const detail = normalise(statusDetails);
  if (LOST_DETAILS[detail]) return { state: "LOST", reason: `${statusDetails}: ${LOST_DETAILS[detail]}`, raw };
  if (detail === "executiontimedout") {
    const exitCode = exitCodeOf(responseCode);
    return {
      state: "EXITED",
      ...(exitCode !== undefined ? { exitCode } : {}),
      reason: "Execution Timed Out: the agent ran past the document's executionTimeout and was stopped",
      raw,
    };
  }
  switch (normalise(status)) {
    case "pending":
      return { state: "PENDING", raw };
    case "delayed":
      // SSM could not reach the instance yet and will retry until the delivery timeout.
      return { state: "PENDING", reason: "delivery delayed; SSM retries until the delivery timeout", raw };
    case "inprogress":
      return { state: "RUNNING", raw };
    case "cancelling":
      // The script may still be running until the SSM agent stops it.
      return { state: "RUNNING", reason: "the command is being cancelled", raw };
    case "success":
      return { state: "EXITED", exitCode: exitCodeOf(responseCode) ?? 0, raw };
    case "failed": {
      const exitCode = exitCodeOf(responseCode);
      return {
        state: "EXITED",
        ...(exitCode !== undefined ? { exitCode } : {}),
        reason:
          exitCode === undefined
            ? "the agent command failed"
            : exitCode === AGENT_CREDENTIALS_EXIT_CODE
              ? `the agent command failed with exit code ${exitCode}: the instance could not assume the fleet's agent role for the task's model credentials (the command's output says why)`
              : `the agent command failed with exit code ${exitCode}`,
        raw,
      };
    }
    case "cancelled":
      return { state: "LOST", reason: "the SSM command was cancelled before the agent finished", raw };
    case "timedout":
      return { state: "LOST", reason: `the SSM command timed out${statusDetails ? ` (${statusDetails})` : ""}`, raw };
    default:
      // An unknown status is not evidence of failure: report it and let heartbeats decide.
      return { state: "RUNNING", reason: `unrecognised SSM status '${raw}'`, raw };
  }
}
