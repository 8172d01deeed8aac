/**
 * EC2 tag keys and values of the fleet, in one place so that the boot script, the lease mirror, the fleet sync
 * and the IAM conditions written by the Pulumi components cannot disagree.
 */

/** Which named fleet an instance belongs to (set by the launch template). */
export const FLEET_TAG = "agent-compute:fleet";
/** Set by the instance itself at the end of its boot: "ready" once Docker runs and the image is pulled. */
export const BOOT_TAG = "agent-compute:boot";
/** Mirror of the lease: "ready" or "busy". The lease table is the truth; this is for people and IAM conditions. */
export const LEASE_TAG = "agent-compute:lease";
/** Mirror of the lease: the task the instance is running. Empty while ready. */
export const TASK_ID_TAG = "agent-compute:task-id";

export const BOOT_READY = "ready";
export const BOOT_FAILED = "failed";
export const LEASE_READY = "ready";
export const LEASE_BUSY = "busy";

/** Fleet names appear in tag values, lease keys and the boot script: keep them plain. */
export const FLEET_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
export const INSTANCE_ID_PATTERN = /^i-[0-9a-f]{8,17}$/;
/** Set by the fleet manager on a fleet instance found outside its group: the time it was first seen so. */
export const ORPHAN_TAG = "agent-compute:orphan-since";

/** The termination lifecycle hook every fleet group carries (hook names are per group, so one name serves all). */
export const TERMINATION_HOOK_NAME = "agent-compute-terminating";
