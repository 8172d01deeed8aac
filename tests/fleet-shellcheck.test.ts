/**
 * The boot script (every variant: CPU and GPU fleets, ECR and public images) and the SSM document's script pass
 * shellcheck. .ci/run installs shellcheck (Debian's package) on a fresh machine; without it this test fails
 * rather than skips, so a CI that lost the install step cannot pass silently.
 */
import { spawnSync } from "node:child_process";
import { expect } from "chai";
import { bootScript } from "../runtime/fleet/boot-script";
import { agentTaskDocument } from "../runtime/fleet/document";

const AGENT_ROLE = "arn:aws:iam::123456789012:role/agent-compute-dev-fleet-gpu-agent-role";

function shellcheck(script: string): { status: number | null; output: string } {
  const res = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], { input: script, encoding: "utf8" });
  if (res.error) {
    throw new Error(`shellcheck could not run (${res.error.message}); install it: apt-get install shellcheck (.ci/run does this on CI)`);
  }
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

describe("fleet scripts under shellcheck", () => {
  it("shellcheck is installed (it reports a known problem, so a silent no-op cannot pass)", () => {
    const res = shellcheck('#!/bin/bash\necho $UNQUOTED\n');
    expect(res.status).to.not.equal(0);
    expect(res.output).to.contain("SC2086");
  });

  const boots: [string, Parameters<typeof bootScript>[0]][] = [
    ["a CPU fleet with a private ECR image", { fleet: "default", image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent@sha256:" + "d".repeat(64), agentRoleArn: AGENT_ROLE }],
    ["a GPU fleet with a public image", { fleet: "gpu", image: "public.ecr.aws/example/agent:1", agentRoleArn: AGENT_ROLE, gpu: true }],
  ];
  for (const [label, options] of boots) {
    it(`the boot script of ${label} passes`, () => {
      const res = shellcheck(bootScript(options));
      expect(res.status, res.output).to.equal(0);
    });
  }

  it("the SSM document's script passes, as written (parameters single-quoted) and as SSM renders it", () => {
    const doc = agentTaskDocument({ model: "global.anthropic.claude-sonnet-4-5-20250929-v1:0" }) as { mainSteps: { inputs: { runCommand: string[] } }[] };
    const script = doc.mainSteps[0].inputs.runCommand.join("\n");
    const rendered = script
      .replace("{{ taskId }}", "task-0001")
      .replace("{{ payloadUrl }}", "https://bucket.s3.us-east-1.amazonaws.com/p.json?X-Amz-Signature=0a")
      .replace("{{ image }}", "public.ecr.aws/example/agent:1")
      .replace("{{ executionTimeout }}", "7200");
    for (const text of [script, rendered]) {
      const res = shellcheck(text);
      expect(res.status, res.output).to.equal(0);
    }
  });
});
