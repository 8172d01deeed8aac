/**
 * The compute a task runs on. A handle is persisted on the task record (compute_type, compute_metadata)
 * so that any process — the orchestrator after a replay, the cancel API — can poll or stop it.
 */

export const BACKEND_TYPES = ["agentcore", "ecs", "ec2", "local"] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

export function isBackendType(value: unknown): value is BackendType {
  return typeof value === "string" && (BACKEND_TYPES as readonly string[]).includes(value);
}

/** Human name of a backend, for messages that must name the real backend. */
export const BACKEND_NAMES: Readonly<Record<BackendType, string>> = {
  agentcore: "AgentCore session",
  ecs: "ECS task",
  ec2: "EC2 instance command",
  local: "local agent process",
};

export interface AgentCoreHandle {
  type: "agentcore";
  runtimeArn: string;
  qualifier?: string;
  /** Derived from the task id; ≥ 33 characters as InvokeAgentRuntime requires. */
  sessionId: string;
}

export interface EcsHandle {
  type: "ecs";
  cluster: string;
  taskArn: string;
}

export interface Ec2Handle {
  type: "ec2";
  fleet: string;
  instanceId: string;
  commandId: string;
  documentName: string;
}

export interface LocalHandle {
  type: "local";
  pid: number;
  /** Folder holding the payload, the log and the exit-status file of this run. */
  runDir: string;
}

export type SessionHandle = AgentCoreHandle | EcsHandle | Ec2Handle | LocalHandle;

export type HandleOf<T extends BackendType> = Extract<SessionHandle, { type: T }>;
