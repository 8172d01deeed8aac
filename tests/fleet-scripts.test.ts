/**
 * The SSM document and the boot script, read as text and run for real under bash with fake curl/docker/aws on
 * PATH (each fake logs its arguments), so order, environment and exit codes are observed, not just grepped.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { bootScript } from "../runtime/fleet/boot-script";
import {
  AGENT_TASK_DOCUMENT_PARAMETERS,
  INSTANCE_STATE_DIR,
  agentTaskDocument,
  agentTaskParameters,
  type AgentTaskParameterValues,
} from "../runtime/fleet/document";

const FAKE_CURL = `#!/bin/bash
echo "curl $*" >> "$LOG"
case "$*" in
  *api/token*) echo tok ;;
  *"X-aws-ec2-metadata-token: tok"*placement/region*) echo eu-west-3 ;;
  *"X-aws-ec2-metadata-token: tok"*instance-id*) echo i-0123456789abcdef0 ;;
  *X-Amz-Signature*)
    [ -f "$FIXTURE" ] || exit 22
    prev=""; for a in "$@"; do [ "$prev" = "-o" ] && cp "$FIXTURE" "$a"; prev="$a"; done ;;
  *) exit 22 ;;
esac
`;

const FAKE_DOCKER = `#!/bin/bash
echo "docker $*" >> "$LOG"
case "$1" in
  run)
    echo "env AWS_REGION=$AWS_REGION TASK_ID=$TASK_ID PAYLOAD_URL=\${PAYLOAD_URL:-unset} IMDS_TOKEN=\${IMDS_TOKEN:-unset}" >> "$LOG"
    for a in "$@"; do case "$a" in *:/agent/payload.json:ro) cp "\${a%%:*}" "$OUT/seen-payload.json" ;; esac; done
    echo cid ;;
  wait) echo "$FAKE_EXIT" ;;
  pull) exit "\${FAKE_PULL_EXIT:-0}" ;;
  *) exit 0 ;;
esac
`;

const FAKE_AWS = `#!/bin/bash
echo "aws $*" >> "$LOG"
if [ "$1 $2" = "s3 cp" ]; then cp "$FIXTURE" "\${@: -1}"; fi
exit "\${FAKE_AWS_EXIT:-0}"
`;

const FAKE_OK = `#!/bin/bash
echo "$(basename "$0") $*" >> "$LOG"
`;

function sandbox(): { dir: string; bin: string; log: string; run(script: string, env?: Record<string, string>): { status: number | null; log: string[]; stderr: string } } {
  const dir = mkdtempSync(path.join(tmpdir(), "fleet-script-"));
  const bin = path.join(dir, "bin");
  const log = path.join(dir, "calls.log");
  spawnSync("mkdir", ["-p", bin]);
  for (const [name, body] of Object.entries({ curl: FAKE_CURL, docker: FAKE_DOCKER, aws: FAKE_AWS, dnf: FAKE_OK, systemctl: FAKE_OK, "nvidia-smi": FAKE_OK, "nvidia-ctk": FAKE_OK })) {
    writeFileSync(path.join(bin, name), body);
    chmodSync(path.join(bin, name), 0o755);
  }
  writeFileSync(log, "");
  return {
    dir,
    bin,
    log,
    run(script, env = {}) {
      const file = path.join(dir, "script.sh");
      writeFileSync(file, script);
      const res = spawnSync("bash", [file], {
        env: { PATH: `${bin}:/usr/bin:/bin`, LOG: log, OUT: dir, HOME: dir, ...env },
        encoding: "utf8",
        timeout: 20_000,
      });
      return { status: res.status, log: readFileSync(log, "utf8").split("\n").filter(Boolean), stderr: res.stderr };
    },
  };
}

/** What SSM does with the document's runCommand: join the lines and substitute {{ name }} textually. */
function renderAsSsm(values: AgentTaskParameterValues, workRoot: string): string {
  const doc = agentTaskDocument() as { mainSteps: { inputs: { runCommand: string[] } }[] };
  let text = doc.mainSteps[0].inputs.runCommand.join("\n");
  for (const [name, value] of Object.entries(values)) text = text.split(`{{ ${name} }}`).join(value);
  // Test-only: the instance's work folder moved under the sandbox so the run needs no root-owned path.
  return text.split(INSTANCE_STATE_DIR).join(workRoot);
}

const HOSTILE = ["'", '"', "$(touch /tmp/x)", "`touch /tmp/x`", "\n", ";rm -rf /", "{{ taskId }}"];
const VALID: AgentTaskParameterValues = {
  taskId: "task-0001",
  payloadUrl:
    "https://payload-bucket.s3.eu-west-3.amazonaws.com/tasks/task-0001/payload.json?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIA%2F20300101%2Feu-west-3%2Fs3%2Faws4_request&X-Amz-Security-Token=IQo%2B%3D&X-Amz-Signature=0a1b2c",
  image: "123456789012.dkr.ecr.eu-west-3.amazonaws.com/agent:1.2",
  executionTimeout: "7200",
};

describe("the agent task SSM document", () => {
  const doc = agentTaskDocument() as {
    schemaVersion: string;
    parameters: Record<string, { type: string; allowedPattern: string; default?: string }>;
    mainSteps: { action: string; inputs: { timeoutSeconds: string; runCommand: string[] } }[];
  };
  const script = doc.mainSteps[0].inputs.runCommand.join("\n");

  it("is a schema 2.2 aws:runShellScript document whose timeout is the required executionTimeout parameter", () => {
    expect(doc.schemaVersion).to.equal("2.2");
    expect(doc.mainSteps).to.have.length(1);
    expect(doc.mainSteps[0].action).to.equal("aws:runShellScript");
    expect(doc.mainSteps[0].inputs.timeoutSeconds).to.equal("{{ executionTimeout }}");
    expect(doc.parameters.executionTimeout).to.not.have.property("default");
  });

  it("declares every parameter with an allowedPattern, and uses each one", () => {
    expect(Object.keys(doc.parameters).sort()).to.deep.equal(["executionTimeout", "image", "payloadUrl", "taskId"]);
    for (const [name, p] of Object.entries(doc.parameters)) {
      expect(p.allowedPattern, name).to.match(/^\^.*\$$/);
      expect(p.allowedPattern).to.equal(AGENT_TASK_DOCUMENT_PARAMETERS[name as keyof typeof AGENT_TASK_DOCUMENT_PARAMETERS].allowedPattern);
      expect(JSON.stringify(doc.mainSteps), name).to.contain(`{{ ${name} }}`);
    }
  });

  it("exports AWS_REGION from IMDSv2, hands the container only its id, region and payload file, on the bridge network", () => {
    expect(script).to.match(/-X PUT "\$IMDS\/api\/token"/);
    expect(script).to.match(/X-aws-ec2-metadata-token: \$IMDS_TOKEN.*placement\/region/);
    expect(script).to.match(/export AWS_REGION/);
    for (const env of ["AWS_REGION", "TASK_ID"]) expect(script).to.contain(`-e ${env}`);
    expect(script).to.not.match(/TABLE_NAME|--network host/);
    expect(script).to.match(/docker run .*--network bridge/);
    expect(script).to.contain("-e AGENT_PAYLOAD_URL=/agent/payload.json");
    expect(script).to.match(/payload\.json:\/agent\/payload\.json:ro"/);
    expect(script, "the payload is never read into a shell variable").to.not.match(/\$\(\s*cat|`cat/);
  });

  it("parameters are single-quoted in the script, and no pattern admits a character that could leave the quotes", () => {
    for (const name of Object.keys(doc.parameters)) expect(script).to.contain(`='{{ ${name} }}'`);
    for (const [name, spec] of Object.entries(AGENT_TASK_DOCUMENT_PARAMETERS)) {
      for (const bad of ["'", '"', "$", "`", "\n", " ", "\\", ";", "{", "}"]) {
        expect(new RegExp(spec.allowedPattern).test(`a${bad}b`), `${name} admits ${JSON.stringify(bad)}`).to.equal(false);
      }
    }
  });

  it("agentTaskParameters accepts valid values and refuses hostile ones, naming the parameter", () => {
    expect(agentTaskParameters(VALID).payloadUrl).to.deep.equal([VALID.payloadUrl]);
    for (const name of Object.keys(VALID) as (keyof AgentTaskParameterValues)[]) {
      for (const bad of HOSTILE) {
        expect(() => agentTaskParameters({ ...VALID, [name]: `${VALID[name]}${bad}` }), `${name}+${JSON.stringify(bad)}`).to.throw(
          new RegExp(`parameter ${name} `),
        );
      }
    }
    expect(() => agentTaskParameters({ ...VALID, executionTimeout: "99" })).to.throw(/executionTimeout/);
    expect(() => agentTaskParameters({ ...VALID, executionTimeout: "172801" })).to.throw(/between 100 and 172800/);
    expect(() => agentTaskParameters({ ...VALID, payloadUrl: "s3://payload-bucket/p.json" })).to.throw(/payloadUrl/);
    // The URL is a secret while it lasts: a refusal never shows it.
    const err = (() => {
      try {
        agentTaskParameters({ ...VALID, payloadUrl: `${VALID.payloadUrl}'` });
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).to.not.contain("X-Amz").and.not.contain("payload-bucket");
  });

  it("run as SSM would: region from IMDSv2, payload fetched by its URL to a read-only file, no URL or IMDS token in the container, the agent's exit code returned, no hostile byte executed", () => {
    const box = sandbox();
    const marker = path.join(box.dir, `pwned-${randomBytes(3).toString("hex")}`);
    const hostilePayload = JSON.stringify({
      task_id: "task-0001",
      prompt: `'; touch ${marker}; echo "$(touch ${marker})" \`touch ${marker}\`\n$(touch /tmp/x)` + "x".repeat(1024 * 1024),
    });
    const fixture = path.join(box.dir, "fixture.json");
    writeFileSync(fixture, hostilePayload);
    const tmpXBefore = existsSync("/tmp/x");
    try {
      const res = box.run(renderAsSsm(VALID, path.join(box.dir, "work")), { FIXTURE: fixture, FAKE_EXIT: "7" });
      expect(res.status, res.stderr).to.equal(7);
      const calls = res.log.join("\n");
      expect(calls).to.contain(`-o ${path.join(box.dir, "work")}`);
      expect(calls).to.contain(VALID.payloadUrl);
      expect(calls).to.not.match(/^aws /m);
      expect(calls).to.contain("env AWS_REGION=eu-west-3 TASK_ID=task-0001 PAYLOAD_URL=unset IMDS_TOKEN=unset");
      expect(calls).to.match(/docker run -d --name agent-task-0001 .*--network bridge/);
      expect(calls).to.contain(`${VALID.image}`);
      expect(readFileSync(path.join(box.dir, "seen-payload.json"), "utf8"), "the container saw the payload byte for byte").to.equal(hostilePayload);
      expect(calls, "the container is removed afterwards").to.match(/docker rm -f agent-task-0001/);
      expect(existsSync(marker)).to.equal(false);
      if (!tmpXBefore) expect(existsSync("/tmp/x")).to.equal(false);
      expect(existsSync(path.join(box.dir, "work")) && spawnSync("ls", [path.join(box.dir, "work")], { encoding: "utf8" }).stdout.trim()).to.equal("");
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("run as SSM would: on an instance whose boot proved GPU access the agent gets --gpus all, elsewhere no GPU flag", () => {
    for (const gpu of [true, false]) {
      const box = sandbox();
      const work = path.join(box.dir, "work");
      try {
        spawnSync("mkdir", ["-p", work]);
        // The marker a GPU fleet's boot script leaves (see the boot script tests below).
        if (gpu) writeFileSync(path.join(work, "gpus"), "all\n");
        writeFileSync(path.join(box.dir, "fixture.json"), "{}");
        const res = box.run(renderAsSsm(VALID, work), { FIXTURE: path.join(box.dir, "fixture.json"), FAKE_EXIT: "0" });
        expect(res.status, res.stderr).to.equal(0);
        const run = res.log.find((l) => l.startsWith("docker run -d")) ?? "";
        if (gpu) expect(run).to.match(/--network bridge --gpus all -v /);
        else expect(run).to.not.contain("--gpus");
      } finally {
        rmSync(box.dir, { recursive: true, force: true });
      }
    }
  });

  it("run as SSM would: a payload that cannot be fetched fails before any container starts", () => {
    const box = sandbox();
    try {
      const res = box.run(renderAsSsm(VALID, path.join(box.dir, "work")), { FIXTURE: "/nonexistent", FAKE_EXIT: "0" });
      expect(res.status).to.not.equal(0);
      expect(res.log.join("\n")).to.not.match(/docker run/);
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });
});

describe("the fleet boot script", () => {
  const options = { fleet: "default", image: "public.ecr.aws/example/agent:1", pullRetryDelaySeconds: 0, pullAttempts: 2 };

  it("tags the instance boot=ready only after Docker is up, the SSM agent runs and the image is pulled", () => {
    const box = sandbox();
    try {
      const res = box.run(bootScript(options));
      expect(res.status, res.stderr).to.equal(0);
      const at = (pattern: RegExp) => res.log.findIndex((l) => pattern.test(l));
      const ready = at(/^aws ec2 create-tags .*Key=agent-compute:boot,Value=ready/);
      expect(ready).to.be.greaterThan(-1);
      expect(res.log[ready]).to.contain("--region eu-west-3 --resources i-0123456789abcdef0");
      for (const before of [/systemctl enable --now docker/, /systemctl enable --now amazon-ssm-agent/, /^docker pull public\.ecr\.aws\/example\/agent:1$/, /^docker image inspect/]) {
        const i = at(before);
        expect(i, String(before)).to.be.greaterThan(-1);
        expect(i, `${before} before the ready tag`).to.be.lessThan(ready);
      }
      expect(at(/X-aws-ec2-metadata-token: tok/), "IMDSv2 token used").to.be.greaterThan(-1);
      expect(res.log.filter((l) => /Value=failed/.test(l))).to.deep.equal([]);
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("a GPU fleet's boot proves a container of the agent's image sees the GPUs, then leaves the --gpus marker, before ready", () => {
    const box = sandbox();
    try {
      const state = path.join(box.dir, "state");
      const res = box.run(bootScript({ ...options, fleet: "gpu", gpu: true }).split(INSTANCE_STATE_DIR).join(state));
      expect(res.status, res.stderr).to.equal(0);
      const at = (pattern: RegExp) => res.log.findIndex((l) => pattern.test(l));
      const ready = at(/Value=ready/);
      for (const step of [/^nvidia-smi -L/, /^nvidia-ctk runtime configure --runtime=docker/, /^docker pull /, /^docker run --rm --gpus all --entrypoint nvidia-smi public\.ecr\.aws\/example\/agent:1 -L/]) {
        expect(at(step), String(step)).to.be.greaterThan(-1).and.lessThan(ready);
      }
      expect(readFileSync(path.join(state, "gpus"), "utf8").trim()).to.equal("all");
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("a GPU fleet whose container cannot see the GPUs is marked failed and leaves no marker; a CPU fleet never touches GPUs", () => {
    const box = sandbox();
    try {
      const state = path.join(box.dir, "state");
      // docker run fails (no GPU runtime): the fake docker exits 1 for `run --rm`.
      writeFileSync(path.join(box.bin, "docker"), FAKE_DOCKER.replace("  run)", '  run) [ "$2" = "--rm" ] && exit 1'));
      const res = box.run(bootScript({ ...options, fleet: "gpu", gpu: true }).split(INSTANCE_STATE_DIR).join(state));
      expect(res.status).to.not.equal(0);
      expect(res.log.filter((l) => /Value=failed/.test(l))).to.have.length(1);
      expect(existsSync(path.join(state, "gpus"))).to.equal(false);
      expect(bootScript(options)).to.not.match(/nvidia|--gpus/);
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("a failed image pull tags the instance boot=failed, never ready, after the configured attempts", () => {
    const box = sandbox();
    try {
      const res = box.run(bootScript(options), { FAKE_PULL_EXIT: "1" });
      expect(res.status).to.not.equal(0);
      expect(res.log.filter((l) => /^docker pull/.test(l))).to.have.length(2);
      expect(res.log.filter((l) => /Key=agent-compute:boot,Value=failed/.test(l))).to.have.length(1);
      expect(res.log.filter((l) => /Value=ready/.test(l))).to.deep.equal([]);
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("logs in to a private ECR registry before pulling, and refuses a hostile fleet or image", () => {
    const text = bootScript({ fleet: "gpu", image: "123456789012.dkr.ecr.eu-west-3.amazonaws.com/agent:2" });
    expect(text).to.contain("aws ecr get-login-password --region 'eu-west-3'");
    expect(text.indexOf("docker login")).to.be.lessThan(text.indexOf('docker pull "$AGENT_IMAGE"'));
    expect(() => bootScript({ fleet: "x'; reboot", image: "a" })).to.throw(/fleet/);
    expect(() => bootScript({ fleet: "gpu", image: "a'$(reboot)" })).to.throw(/image/);
  });
});
