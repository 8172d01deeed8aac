/**
 * The SSM document and the boot script, read as text and run for real under bash with fake curl/docker/aws on
 * PATH (each fake logs its arguments), so order, environment and exit codes are observed, not just grepped.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import { expect } from "chai";
import { FLEET_CONFIG_DIR } from "../runtime/fleet/agent-credentials";
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
    echo "env AWS_REGION=$AWS_REGION TASK_ID=$TASK_ID PAYLOAD_URL=\${PAYLOAD_URL:-unset} IMDS_TOKEN=\${IMDS_TOKEN:-unset} ANTHROPIC_MODEL=\${ANTHROPIC_MODEL:-unset}" >> "$LOG"
    for a in "$@"; do case "$a" in
      *:/agent/payload.json:ro) cp "\${a%%:*}" "$OUT/seen-payload.json" ;;
      *:/agent/aws:ro)
        d="\${a%%:*}"; echo "$d" > "$OUT/aws-mount"
        cp "$d/config" "$OUT/seen-config"; cp "$d/credentials.json" "$OUT/seen-credentials.json"
        stat -c '%a' "$d" "$d/config" "$d/credentials.json" > "$OUT/seen-modes"
        ln "$d/credentials.json" "$OUT/held-since-run.json" ;;
    esac; done
    echo cid ;;
  wait)
    # With a FIFO in place, the container "runs" until the host's refresher has slept FAKE_SLEEPS times.
    if [ -p "$OUT/wait.fifo" ]; then
      read -r _ < "$OUT/wait.fifo"
      cp "$(cat "$OUT/aws-mount")/credentials.json" "$OUT/seen-at-wait.json"
      stat -c '%i' "$(cat "$OUT/aws-mount")/credentials.json" "$OUT/held-since-run.json" > "$OUT/inodes"
    fi
    echo "$FAKE_EXIT" ;;
  pull) exit "\${FAKE_PULL_EXIT:-0}" ;;
  *) exit 0 ;;
esac
`;

const FAKE_AWS = `#!/bin/bash
echo "aws $*" >> "$LOG"
if [ "$1 $2" = "s3 cp" ]; then cp "$FIXTURE" "\${@: -1}"; fi
if [ "$1 $2" = "sts assume-role" ]; then
  n=$(( $(cat "$OUT/assume-count" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$OUT/assume-count"
  case ",\${FAKE_ASSUME_FAIL:-}," in *",$n,"*) echo "An error occurred (AccessDenied) when calling the AssumeRole operation" >&2; exit 254 ;; esac
  # What --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken,Expiration]' --output text prints.
  printf 'ASIAFAKE%04d\\tsecret%d/+key=\\ttoken%d/+tok==\\t%s\\n' "$n" "$n" "$n" "\${FAKE_EXPIRATION:-2030-01-01T00:00:00+00:00}"
  exit 0
fi
exit "\${FAKE_AWS_EXIT:-0}"
`;

/** Real sleep, unless FAKE_SLEEPS is set: then sleeps return at once until the FAKE_SLEEPS-th, which lets the fake
 * container finish (through the FIFO) and then sleeps until it is killed. */
const FAKE_SLEEP = `#!/bin/bash
echo "sleep $*" >> "$LOG"
[ -n "\${FAKE_SLEEPS:-}" ] || exec /bin/sleep "$@"
n=$(( $(cat "$OUT/sleep-count" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$OUT/sleep-count"
[ "$n" -ge "$FAKE_SLEEPS" ] || exit 0
echo "$$" > "$OUT/sleep.pid"
echo go > "$OUT/wait.fifo"
exec /bin/sleep 300
`;

const FAKE_OK = `#!/bin/bash
echo "$(basename "$0") $*" >> "$LOG"
`;

function sandbox(): { dir: string; bin: string; log: string; run(script: string, env?: Record<string, string>): { status: number | null; log: string[]; stderr: string } } {
  const dir = mkdtempSync(path.join(tmpdir(), "fleet-script-"));
  const bin = path.join(dir, "bin");
  const log = path.join(dir, "calls.log");
  spawnSync("mkdir", ["-p", bin]);
  for (const [name, body] of Object.entries({ curl: FAKE_CURL, docker: FAKE_DOCKER, aws: FAKE_AWS, sleep: FAKE_SLEEP, dnf: FAKE_OK, systemctl: FAKE_OK, "nvidia-smi": FAKE_OK, "nvidia-ctk": FAKE_OK })) {
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

const MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
const AGENT_ROLE_ARN = "arn:aws:iam::123456789012:role/agent-compute-test-fleet-default-agent-role";

/** Test-only: the instance's settings folder moved into the sandbox (beside `work`), so no root-owned path is needed. */
const sandboxEtc = (text: string, sandboxDir: string) => text.split(FLEET_CONFIG_DIR).join(path.join(sandboxDir, "etc"));

/** What SSM does with the document's runCommand: join the lines and substitute {{ name }} textually. */
function renderAsSsm(values: AgentTaskParameterValues, workRoot: string): string {
  const doc = agentTaskDocument({ model: MODEL }) as { mainSteps: { inputs: { runCommand: string[] } }[] };
  let text = doc.mainSteps[0].inputs.runCommand.join("\n");
  for (const [name, value] of Object.entries(values)) text = text.split(`{{ ${name} }}`).join(value);
  // Test-only: the instance's work folder moved under the sandbox so the run needs no root-owned path.
  return sandboxEtc(text.split(INSTANCE_STATE_DIR).join(workRoot), path.dirname(workRoot));
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
  const doc = agentTaskDocument({ model: MODEL }) as {
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
      // No agent role recorded on this instance (one booted before it had one): no credentials, said on stderr.
      expect(calls).to.not.match(/^aws /m);
      expect(res.stderr).to.contain("no agent role on this instance");
      expect(calls).to.not.contain("/agent/aws");
      expect(calls).to.contain(`env AWS_REGION=eu-west-3 TASK_ID=task-0001 PAYLOAD_URL=unset IMDS_TOKEN=unset ANTHROPIC_MODEL=${MODEL}`);
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

describe("the agent's model credentials on a fleet instance (the document's script with the fleet's agent role)", () => {
  const SECRETS = ["secret1/+key=", "token1/+tok==", "secret2/", "token2/"];
  /** A sandbox whose instance has booted with the fleet's agent role recorded (what the boot script writes). */
  function instanceWithRole() {
    const box = sandbox();
    spawnSync("mkdir", ["-p", path.join(box.dir, "etc")]);
    writeFileSync(path.join(box.dir, "etc", "agent-role-arn"), `${AGENT_ROLE_ARN}\n`);
    const fixture = path.join(box.dir, "fixture.json");
    writeFileSync(fixture, JSON.stringify({ task_id: VALID.taskId, prompt: "p" }));
    return { box, run: (values: AgentTaskParameterValues, env: Record<string, string> = {}) => box.run(renderAsSsm(values, path.join(box.dir, "work")), { FIXTURE: fixture, FAKE_EXIT: "0", ...env }) };
  }
  const seen = (box: { dir: string }, file: string) => readFileSync(path.join(box.dir, file), "utf8");

  it("assumes the agent role for the task before the container starts, and hands the container a read-only credential_process config: no key in its environment, argv or inspect", () => {
    const { box, run } = instanceWithRole();
    try {
      const res = run(VALID);
      expect(res.status, res.stderr).to.equal(0);
      const assume = res.log.findIndex((l) => l.startsWith("aws sts assume-role"));
      const start = res.log.findIndex((l) => l.startsWith("docker run"));
      expect(assume, "assumed before the container starts").to.be.greaterThan(-1).and.lessThan(start);
      expect(res.log[assume]).to.equal(
        `aws sts assume-role --role-arn ${AGENT_ROLE_ARN} --role-session-name task-task-0001 --tags Key=agent-compute:task-id,Value=task-0001 ` +
          "--duration-seconds 3600 --query Credentials.[AccessKeyId,SecretAccessKey,SessionToken,Expiration] --output text",
      );
      expect(res.log[start]).to.match(/ -v \S+\/work\/task\.\w+\/aws:\/agent\/aws:ro -e AWS_CONFIG_FILE=\/agent\/aws\/config -e AWS_SDK_LOAD_CONFIG=1 /);
      expect(res.log[start]).to.not.match(/AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_CONTAINER_CREDENTIALS/);
      expect(seen(box, "seen-config")).to.equal("[default]\ncredential_process = cat /agent/aws/credentials.json\n");
      expect(JSON.parse(seen(box, "seen-credentials.json"))).to.deep.equal({
        Version: 1,
        AccessKeyId: "ASIAFAKE0001",
        SecretAccessKey: "secret1/+key=",
        SessionToken: "token1/+tok==",
        Expiration: "2030-01-01T00:00:00+00:00",
      });
      // The folder and its files are readable by the container's own (non-root) user, and mounted read-only.
      expect(seen(box, "seen-modes").split("\n").filter(Boolean)).to.deep.equal(["755", "644", "644"]);
      for (const secret of SECRETS) {
        expect(res.log.join("\n"), "no credential in any argv").to.not.contain(secret);
        expect(res.stderr).to.not.contain(secret);
      }
      expect(spawnSync("ls", ["-A", path.join(box.dir, "work")], { encoding: "utf8" }).stdout.trim(), "nothing left on disk").to.equal("");
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("refreshes them while the agent runs: every 20 minutes, again after 60 s when a refresh fails, replacing the file whole; the refresher is gone when the task ends", () => {
    const { box, run } = instanceWithRole();
    spawnSync("mkfifo", [path.join(box.dir, "wait.fifo")]);
    try {
      // The 4th sleep ends the fake container; the 3rd assume-role (the 2nd refresh) is refused.
      const res = run(VALID, { FAKE_SLEEPS: "4", FAKE_ASSUME_FAIL: "3" });
      expect(res.status, res.stderr).to.equal(0);
      expect(res.log.filter((l) => l.startsWith("sleep "))).to.deep.equal(["sleep 1200", "sleep 1200", "sleep 60", "sleep 1200"]);
      expect(res.log.filter((l) => l.startsWith("aws sts assume-role"))).to.have.length(4);
      expect(res.stderr).to.contain("refreshing the agent's model credentials failed; trying again in 60 s");
      // What the running container reads now: the 4th credentials, whole.
      expect(JSON.parse(seen(box, "seen-at-wait.json"))).to.include({ Version: 1, AccessKeyId: "ASIAFAKE0004", SessionToken: "token4/+tok==" });
      // Replaced by a rename, never rewritten in place: the file as the container first saw it is untouched.
      const [now, held] = seen(box, "inodes").split("\n");
      expect(now, "a new file, not the old one rewritten").to.not.equal(held);
      expect(JSON.parse(seen(box, "held-since-run.json")).AccessKeyId).to.match(/^ASIAFAKE000[12]$/);
      const sleeper = Number(seen(box, "sleep.pid"));
      expect(() => process.kill(sleeper, 0), "the refresher's sleep was ended with it").to.throw(/ESRCH/);
      expect(spawnSync("ls", ["-A", path.join(box.dir, "work")], { encoding: "utf8" }).stdout.trim()).to.equal("");
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("cannot assume the role: exits 69 before any container starts, and leaves nothing behind", () => {
    const { box, run } = instanceWithRole();
    try {
      const res = run(VALID, { FAKE_ASSUME_FAIL: "1" });
      expect(res.status).to.equal(69);
      expect(res.stderr).to.contain("cannot assume the agent role for this task");
      expect(res.log.join("\n")).to.not.match(/^docker run/m);
      expect(spawnSync("ls", ["-A", path.join(box.dir, "work")], { encoding: "utf8" }).stdout.trim()).to.equal("");
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("a task id longer than a session name allows: the name is cut to 64 characters, the session tag carries the whole id", () => {
    const { box, run } = instanceWithRole();
    const taskId = `t${"0123456789".repeat(12)}x`.slice(0, 128);
    try {
      const res = run({ ...VALID, taskId });
      expect(res.status, res.stderr).to.equal(0);
      const assume = res.log.find((l) => l.startsWith("aws sts assume-role"))!;
      const name = / --role-session-name (\S+) /.exec(assume)![1];
      expect(name).to.have.length(64).and.equal(`task-${taskId.slice(0, 59)}`);
      expect(assume).to.contain(` --tags Key=agent-compute:task-id,Value=${taskId} `);
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("the AWS SDK's default chain reads what the host wrote, keeps fresh credentials, and reads the host's newer file once its own expire", async () => {
    const hour = () => new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "+00:00");
    /** One real run of the script; returns the config and credentials file its container was given. */
    const hostRun = (previousAssumes: number) => {
      const { box, run } = instanceWithRole();
      try {
        writeFileSync(path.join(box.dir, "assume-count"), String(previousAssumes));
        const res = run(VALID, { FAKE_EXPIRATION: hour() });
        expect(res.status, res.stderr).to.equal(0);
        return { config: seen(box, "seen-config"), credentials: seen(box, "seen-credentials.json") };
      } finally {
        rmSync(box.dir, { recursive: true, force: true });
      }
    };
    const first = hostRun(0);
    const refreshed = hostRun(1);
    // The container's view: the mounted folder, here a local one.
    const mount = mkdtempSync(path.join(tmpdir(), "agent-aws-"));
    writeFileSync(path.join(mount, "config"), first.config.split("/agent/aws").join(mount));
    writeFileSync(path.join(mount, "credentials.json"), first.credentials);
    const saved = { ...process.env };
    const realNow = Date.now;
    try {
      for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]) delete process.env[k];
      const chain = fromNodeProviderChain({ profile: "default", configFilepath: path.join(mount, "config"), filepath: path.join(mount, "no-credentials-file") });
      const c1 = await chain();
      expect(c1).to.include({ accessKeyId: "ASIAFAKE0001", secretAccessKey: "secret1/+key=", sessionToken: "token1/+tok==" });
      expect(c1.expiration!.getTime()).to.be.greaterThan(Date.now() + 3500_000);
      // The host's refresh: a new file renamed into the folder.
      writeFileSync(path.join(mount, "credentials.json.new"), refreshed.credentials);
      renameSync(path.join(mount, "credentials.json.new"), path.join(mount, "credentials.json"));
      expect((await chain()).accessKeyId, "fresh credentials are kept, not read again").to.equal("ASIAFAKE0001");
      // The SDK's clock past the first credentials' expiry: it runs credential_process again and gets the new ones.
      Date.now = () => realNow() + 3601_000;
      expect(await chain()).to.include({ accessKeyId: "ASIAFAKE0002", sessionToken: "token2/+tok==" });
    } finally {
      Date.now = realNow;
      process.env = saved;
      rmSync(mount, { recursive: true, force: true });
    }
  });
});

describe("the fleet boot script", () => {
  const options = { fleet: "default", image: "public.ecr.aws/example/agent:1", agentRoleArn: AGENT_ROLE_ARN, pullRetryDelaySeconds: 0, pullAttempts: 2 };

  it("tags the instance boot=ready only after Docker is up, the SSM agent runs, the agent role is recorded and the image is pulled", () => {
    const box = sandbox();
    try {
      const res = box.run(sandboxEtc(bootScript(options), box.dir));
      expect(res.status, res.stderr).to.equal(0);
      expect(readFileSync(path.join(box.dir, "etc", "agent-role-arn"), "utf8")).to.equal(`${AGENT_ROLE_ARN}\n`);
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
      const res = box.run(sandboxEtc(bootScript(options), box.dir), { FAKE_PULL_EXIT: "1" });
      expect(res.status).to.not.equal(0);
      expect(res.log.filter((l) => /^docker pull/.test(l))).to.have.length(2);
      expect(res.log.filter((l) => /Key=agent-compute:boot,Value=failed/.test(l))).to.have.length(1);
      expect(res.log.filter((l) => /Value=ready/.test(l))).to.deep.equal([]);
    } finally {
      rmSync(box.dir, { recursive: true, force: true });
    }
  });

  it("logs in to a private ECR registry before pulling, and refuses a hostile fleet, image or agent role", () => {
    const text = bootScript({ fleet: "gpu", image: "123456789012.dkr.ecr.eu-west-3.amazonaws.com/agent:2", agentRoleArn: AGENT_ROLE_ARN });
    expect(text).to.contain("aws ecr get-login-password --region 'eu-west-3'");
    expect(text.indexOf("docker login")).to.be.lessThan(text.indexOf('docker pull "$AGENT_IMAGE"'));
    expect(() => bootScript({ fleet: "x'; reboot", image: "a", agentRoleArn: AGENT_ROLE_ARN })).to.throw(/fleet/);
    expect(() => bootScript({ fleet: "gpu", image: "a'$(reboot)", agentRoleArn: AGENT_ROLE_ARN })).to.throw(/image/);
    for (const bad of [`${AGENT_ROLE_ARN}'; reboot`, "arn:aws:iam::123456789012:user/alice", "*"]) {
      expect(() => bootScript({ fleet: "gpu", image: "a", agentRoleArn: bad }), bad).to.throw(/agent role/);
    }
  });
});
