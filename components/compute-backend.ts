/**
 * What each backend's component hands the rest of the stack, so that a backend's wiring lives in its own
 * component: its part of the runtime config every Lambda reads, and the rights the control plane (orchestrator,
 * API, reconciler) needs over its sessions. index.ts and iam.ts only merge these.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { RuntimeConfig } from "../runtime/config";
import type { CloudBackend } from "./config/types";
import type { Statement } from "./iam";

export interface ComputeBackend<T extends CloudBackend = CloudBackend> {
  readonly backend: T;
  /** This backend's settings in the runtime config (RuntimeConfig[backend]), as the runtime reads them. */
  readonly runtimeSettings: pulumi.Output<NonNullable<RuntimeConfig[T]>>;
  /** Rights to start, poll and stop this backend's sessions; to poll and stop only when `start` is false. */
  controlPlaneStatements(start: boolean): Statement[];
}
