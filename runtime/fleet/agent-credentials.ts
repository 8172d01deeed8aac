/**
 * Model credentials for the agent container on a fleet instance. The container cannot reach the instance role
 * (bridge network, IMDSv2 hop limit 1), so the host hands it the credentials of the fleet's agent role, which may
 * invoke the stack's models and nothing else:
 *
 * - the SSM document's script assumes the agent role for the one task (session name `task-<id>`, session tag
 *   `agent-compute:task-id` = the task id) and writes the credentials as a `credential_process` answer into a
 *   folder mounted read-only into the container, with an AWS config file whose `credential_process` reads it;
 * - a background loop on the host assumes the role again every AGENT_CREDENTIALS_REFRESH_SECONDS and replaces the
 *   file by a rename, so the SDKs, which run `credential_process` again as the credentials near their expiration,
 *   always find fresh ones. No credential is in the container's environment or in `docker inspect`.
 *
 * The role ARN is the instance's (written by its boot script, one agent role per fleet); the Pulumi fleet
 * component writes the trust policy with the same session-name prefix and tag key.
 */
import { TASK_ID_TAG } from "./tags";

/** Where the boot script writes the instance's own settings for the document's script. */
export const FLEET_CONFIG_DIR = "/etc/agent-compute";
/** The fleet's agent role ARN, one line. */
export const AGENT_ROLE_FILE = `${FLEET_CONFIG_DIR}/agent-role-arn`;
/** Every agent session's name starts so; the agent role's trust policy requires it. */
export const AGENT_SESSION_PREFIX = "task-";
/** The session tag naming the task (the same key as the instance tag that mirrors the lease). */
export const AGENT_SESSION_TAG = TASK_ID_TAG;
/** Role chaining (instance role → agent role) caps a session at one hour. */
export const AGENT_SESSION_SECONDS = 3600;
/**
 * The host assumes the role again this often, so the credentials on file always have at least 40 minutes left:
 * the SDKs run credential_process again only when theirs are at most 15 minutes (Python; JavaScript 5) from expiring.
 */
export const AGENT_CREDENTIALS_REFRESH_SECONDS = 1200;
/** After a failed refresh the host tries again this soon; the credentials on file stay valid meanwhile. */
export const AGENT_CREDENTIALS_RETRY_SECONDS = 60;
/** Where the credentials folder appears inside the container. */
export const CONTAINER_AWS_DIR = "/agent/aws";
/** The script's exit code when it cannot get the agent's first credentials (sysexits EX_UNAVAILABLE). */
export const AGENT_CREDENTIALS_EXIT_CODE = 69;
/** An IAM role ARN: no quote, `$`, backtick or whitespace, so it can sit inside single quotes in a script. */
export const ROLE_ARN_PATTERN = /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[A-Za-z0-9+=,.@_\/-]{1,512}$/;

/** Session names: 2–64 characters; the task id (up to 128) is cut to fit, the session tag carries it whole. */
const SESSION_NAME_ROOM = 64 - AGENT_SESSION_PREFIX.length;

/**
 * Bash lines of the document's script that define the credential functions. They expect TASK_ID, WORK_DIR and
 * AGENT_ROLE_ARN set. `write_agent_credentials` runs in a subshell, so its IFS and noglob never leak; the
 * credentials pass through printf (a builtin), never through another program's argv.
 */
export function agentCredentialFunctions(): string[] {
  return [
    "write_agent_credentials() (",
    "  set -f",
    "  IFS=$'\\t'",
    "  local out",
    `  out="$(aws sts assume-role --role-arn "$AGENT_ROLE_ARN" --role-session-name "${AGENT_SESSION_PREFIX}\${TASK_ID:0:${SESSION_NAME_ROOM}}" \\`,
    `    --tags "Key=${AGENT_SESSION_TAG},Value=$TASK_ID" --duration-seconds ${AGENT_SESSION_SECONDS} \\`,
    "    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken,Expiration]' --output text)\" || return 1",
    "  # shellcheck disable=SC2086 # split on the tabs on purpose (noglob is on)",
    "  set -- $out",
    "  [ \"$#\" -eq 4 ] || { echo 'sts assume-role answered no credentials' >&2; return 1; }",
    "  local field",
    "  for field in \"$@\"; do",
    // Keys, tokens (base64) and the ISO time hold none of the characters JSON would need escaped.
    "    case \"$field\" in ''|*[!A-Za-z0-9/+=:.-]*) echo 'sts assume-role answered an unexpected credential format' >&2; return 1 ;; esac",
    "  done",
    "  umask 022",
    // Written beside the mounted folder, then renamed into it: the container never reads a half-written file.
    "  printf '{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\",\"SessionToken\":\"%s\",\"Expiration\":\"%s\"}\\n' \"$1\" \"$2\" \"$3\" \"$4\" > \"$WORK_DIR/credentials.json.new\"",
    "  mv -f \"$WORK_DIR/credentials.json.new\" \"$WORK_DIR/aws/credentials.json\"",
    ")",
    // The loop waits on its sleep in the background so that a TERM ends it at once, sleep included: nothing is left
    // holding the command's output open after the script exits.
    "refresh_agent_credentials() {",
    "  local pause=" + AGENT_CREDENTIALS_REFRESH_SECONDS,
    "  SLEEP_PID=''",
    "  trap '[ -z \"$SLEEP_PID\" ] || { kill \"$SLEEP_PID\" 2>/dev/null; wait \"$SLEEP_PID\" 2>/dev/null; }; exit 0' TERM",
    "  while :; do",
    "    sleep \"$pause\" &",
    "    SLEEP_PID=$!",
    "    wait \"$SLEEP_PID\" || true",
    "    SLEEP_PID=''",
    "    if write_agent_credentials; then",
    `      pause=${AGENT_CREDENTIALS_REFRESH_SECONDS}`,
    "    else",
    `      echo "refreshing the agent's model credentials failed; trying again in ${AGENT_CREDENTIALS_RETRY_SECONDS} s" >&2`,
    `      pause=${AGENT_CREDENTIALS_RETRY_SECONDS}`,
    "    fi",
    "  done",
    "}",
  ];
}

/**
 * Bash lines that set up the container's credentials before it starts: read the role, write the config and the
 * first credentials, start the refresher (REFRESHER holds its pid) and fill AWS_ARGS with the docker run options.
 * An instance without a role file (booted before it had one) runs its agent without AWS credentials, as before.
 */
export function agentCredentialSetup(): string[] {
  return [
    "AGENT_ROLE_ARN=''",
    `[ ! -r ${AGENT_ROLE_FILE} ] || read -r AGENT_ROLE_ARN < ${AGENT_ROLE_FILE} || true`,
    "AWS_ARGS=()",
    "if [ -n \"$AGENT_ROLE_ARN\" ]; then",
    "  mkdir -m 0755 \"$WORK_DIR/aws\"",
    `  printf '[default]\\ncredential_process = cat ${CONTAINER_AWS_DIR}/credentials.json\\n' > "$WORK_DIR/aws/config"`,
    "  chmod 0644 \"$WORK_DIR/aws/config\"",
    "  if ! write_agent_credentials; then",
    "    echo \"cannot assume the agent role for this task; the agent does not start\" >&2",
    `    exit ${AGENT_CREDENTIALS_EXIT_CODE}`,
    "  fi",
    "  refresh_agent_credentials </dev/null >/dev/null &",
    "  REFRESHER=$!",
    `  AWS_ARGS=(-v "$WORK_DIR/aws:${CONTAINER_AWS_DIR}:ro" -e AWS_CONFIG_FILE=${CONTAINER_AWS_DIR}/config -e AWS_SDK_LOAD_CONFIG=1)`,
    "else",
    `  echo "no agent role on this instance (${AGENT_ROLE_FILE}): the agent runs without AWS credentials" >&2`,
    "fi",
  ];
}

/** Boot-script lines that record the fleet's agent role for the document's script. */
export function agentRoleFileLines(agentRoleArn: string): string[] {
  if (!ROLE_ARN_PATTERN.test(agentRoleArn)) throw new RangeError(`agent role '${agentRoleArn}' must be an IAM role ARN (${ROLE_ARN_PATTERN.source})`);
  return [`install -d -m 0755 ${FLEET_CONFIG_DIR}`, `printf '%s\\n' '${agentRoleArn}' > ${AGENT_ROLE_FILE}`];
}
