/**
 * EC2 capacity errors: launches the Auto Scaling group could not make because EC2 had no capacity to give
 * (insufficient instance capacity, a vCPU or instance quota, no free addresses in the subnet). The fleet manager
 * reads them from the group's scaling activities and keeps the newest on the fleet's dispatcher item; every claim
 * reads it back with its kick (no extra call), and a task that times out waiting fails with it as its reason.
 */

/** Scaling-activity messages that mean EC2 could not give capacity (not a fault of ours to retry differently). */
export const CAPACITY_ERROR = /InsufficientInstanceCapacity|InsufficientFreeAddressesInSubnet|VcpuLimitExceeded|InstanceLimitExceeded|MaxSpotInstanceCountExceeded|insufficient capacity|free addresses|limit exceeded/i;

/** A failed launch older than this no longer explains a wait. */
export const CAPACITY_ERROR_FRESH_SECONDS = 900;

/** What the fleet's dispatcher item holds of it: the message and when the manager last saw it current. */
export interface RecordedCapacityError {
  capacity_error?: string;
  capacity_error_at?: string;
}

/** The fleet's capacity error if it is still current at `now`. */
export function currentCapacityError(item: RecordedCapacityError | undefined, now: Date): string | undefined {
  if (!item?.capacity_error || !item.capacity_error_at) return undefined;
  const age = (now.getTime() - Date.parse(item.capacity_error_at)) / 1000;
  return age >= 0 && age < CAPACITY_ERROR_FRESH_SECONDS ? item.capacity_error : undefined;
}

/** The failure reason of a task whose wait for an instance outlasted its timeout while EC2 had no capacity. */
export function capacityFailureReason(fleet: string | undefined, error: string, elapsedSeconds: number, timeoutSeconds: number): string {
  return `EC2 could not provide an instance${fleet ? ` for fleet '${fleet}'` : ""} within the task's ${timeoutSeconds}s timeout (waited ${Math.round(elapsedSeconds)}s): ${error}`;
}
