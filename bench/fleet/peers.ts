/**
 * The peers' policies, for comparison only (they live in bench/, never in the product). Each runs on the same
 * trace with its own mechanics: in these systems an idle runner pulls the next job itself, so capacity reaches
 * the oldest waiting job the moment it is free, and a finished job frees its runner at once.
 */
import type { ScalingPolicy } from "./simulate";

/**
 * Buildkite's Elastic CI Stack runs its scaler with scale-in disabled and lets an agent that has been idle for
 * ScaleInIdlePeriod terminate its own instance, decrementing the group (buildkite-agent-scaler README; the
 * stack's templates/aws-stack.yml: ScaleInIdlePeriod default 600, InstanceBuffer "how many free instances to
 * maintain", scaler schedule "1 minute").
 */
export const AGENT_SCALER_IDLE_SECONDS = 600;

/** A fixed number of instances, up all day. */
export function staticFleet(size: number): ScalingPolicy {
  return { name: "static fleet", initialInstances: size };
}

/** One fresh instance per task, terminated when its task ends (ephemeral runners). */
export function ephemeralRunners(): ScalingPolicy {
  return { name: "ephemeral (one instance per task)", launchPerTask: true, terminateOnRelease: true };
}

/** agent-scaler style: every `loopSeconds`, scale out to queued + running + buffer; idle instances retire themselves. */
export function agentScaler(buffer: number, loopSeconds = 60): ScalingPolicy {
  return {
    name: "agent-scaler (queued + running + buffer, 60 s loop)",
    buffer,
    loopSeconds,
    idleTimeoutSeconds: AGENT_SCALER_IDLE_SECONDS,
    decide: (v) => Math.max(v.desired, v.queued + v.busy + buffer),
  };
}
