/**
 * Fleet discovery: the instances that finished booting become capacity; leases of instances that are no longer
 * running are dropped and their tasks reported as lost.
 */
import { EC2Client, paginateDescribeInstances, type Instance } from "@aws-sdk/client-ec2";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";
import { LeaseTable } from "./lease";
import { executeReconcile, planReconcile } from "./reconcile";
import { BOOT_READY, BOOT_TAG, FLEET_TAG } from "./tags";

export interface SyncResult {
  fleet: string;
  /** Running, booted instances of the fleet seen in this sync. */
  running: string[];
  /** Instances newly registered as ready capacity. */
  registered: string[];
  /** Leases removed because their instance is gone. */
  dropped: string[];
  /** Tasks that were running on an instance that is gone: the orchestrator must fail them. */
  lostTasks: { taskId: string; instanceId: string }[];
}

/** Running instances of `fleet` whose boot finished (the instance tagged itself agent-compute:boot=ready). */
export async function describeReadyInstances(config: RuntimeConfig, fleet: string): Promise<Instance[]> {
  const ec2 = awsClient(EC2Client, { region: config.region });
  const found: Instance[] = [];
  const pages = paginateDescribeInstances(
    { client: ec2, pageSize: 500 },
    {
      Filters: [
        { Name: `tag:${FLEET_TAG}`, Values: [fleet] },
        { Name: `tag:${BOOT_TAG}`, Values: [BOOT_READY] },
        { Name: "instance-state-name", Values: ["running"] },
      ],
    },
  );
  for await (const page of pages) {
    for (const r of page.Reservations ?? []) found.push(...(r.Instances ?? []));
  }
  return found;
}

export async function syncFleet(config: RuntimeConfig, fleet: string, table = new LeaseTable(config)): Promise<SyncResult> {
  const instances = await describeReadyInstances(config, fleet);
  const running = new Set(instances.map((i) => i.InstanceId!));
  const leases = await table.list(fleet);
  const known = new Set(leases.map((l) => l.instanceId));

  const registered: string[] = [];
  for (const instance of instances) {
    if (known.has(instance.InstanceId!)) continue;
    const r = await table.registerInstance(fleet, instance.InstanceId!, instance);
    if (r.registered && r.created) registered.push(instance.InstanceId!);
  }

  const losses = planReconcile({ leases, tasks: new Map(), runningInstanceIds: running }).filter((a) => a.kind === "drop-instance");
  const { dropped, lostTasks } = await executeReconcile(table, losses);
  return { fleet, running: [...running], registered, dropped, lostTasks };
}
