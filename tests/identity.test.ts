import { expect } from "chai";
import { identityConfigProblems, parseCallerArn, userOf } from "../runtime/identity";
import { apiFixture, GOOD_SUBMIT, type ApiFixture } from "./api-helpers";
import { createLambdaHandler, type HttpApiEventV2 } from "../runtime/api/lambda";

const A = "111122223333";

describe("identity: who a caller is, per kind of AWS principal", () => {
  /** [kind, the ARN as signed on run 1, the ARN on run 2 of the same person, the user id both must give] */
  const samePerson: [string, string, string, string][] = [
    ["IAM user", `arn:aws:iam::${A}:user/alice`, `arn:aws:iam::${A}:user/alice`, `arn:aws:iam::${A}:user/alice`],
    ["IAM user with a path", `arn:aws:iam::${A}:user/eng/alice`, `arn:aws:iam::${A}:user/eng/alice`, `arn:aws:iam::${A}:user/eng/alice`],
    [
      "assumed role: the SDK picks a new session name each run",
      `arn:aws:sts::${A}:assumed-role/Developer/aws-sdk-js-1764400000000`,
      `arn:aws:sts::${A}:assumed-role/Developer/aws-sdk-js-1764400999999`,
      `arn:aws:iam::${A}:role/Developer`,
    ],
    [
      "Identity Center session: AWS sets the session name to the user",
      `arn:aws:sts::${A}:assumed-role/AWSReservedSSO_PowerUser_0123456789abcdef/alice@example.com`,
      `arn:aws:sts::${A}:assumed-role/AWSReservedSSO_PowerUser_0123456789abcdef/alice@example.com`,
      `arn:aws:sts::${A}:assumed-role/AWSReservedSSO_PowerUser_0123456789abcdef/alice@example.com`,
    ],
    ["federated user", `arn:aws:sts::${A}:federated-user/bob`, `arn:aws:sts::${A}:federated-user/bob`, `arn:aws:sts::${A}:federated-user/bob`],
    ["root", `arn:aws:iam::${A}:root`, `arn:aws:iam::${A}:root`, `arn:aws:iam::${A}:root`],
  ];
  for (const [kind, run1, run2, user] of samePerson) {
    it(`${kind}: two CLI runs are one user`, () => {
      const [u1, u2] = [userOf(run1), userOf(run2)];
      expect(u1).to.include({ ok: true, userId: user });
      expect(u2).to.include({ ok: true, userId: user });
    });
  }

  it("parses each kind", () => {
    expect(parseCallerArn(`arn:aws:iam::${A}:user/alice`)?.kind).to.equal("iam-user");
    expect(parseCallerArn(`arn:aws:sts::${A}:assumed-role/Dev/s`)).to.deep.include({ kind: "assumed-role", roleArn: `arn:aws:iam::${A}:role/Dev`, sessionName: "s" });
    expect(parseCallerArn(`arn:aws:sts::${A}:assumed-role/AWSReservedSSO_X_1/alice`)?.kind).to.equal("identity-center");
    expect(parseCallerArn(`arn:aws:sts::${A}:federated-user/bob`)?.kind).to.equal("federated-user");
    expect(parseCallerArn(`arn:aws-us-gov:iam::${A}:user/alice`)?.kind, "other partitions").to.equal("iam-user");
    for (const bad of [`arn:aws:iam::${A}:group/devs`, `arn:aws:iam::${A}:role/Dev`, "alice", `arn:aws:sts::${A}:assumed-role/Dev`, ""]) {
      expect(parseCallerArn(bad), bad).to.equal(undefined);
    }
  });

  it("a chosen session name cannot become another user: on an ordinary role every session is the role", () => {
    const mallory = userOf(`arn:aws:sts::${A}:assumed-role/Developer/alice`);
    expect(mallory).to.include({ userId: `arn:aws:iam::${A}:role/Developer` });
    // Not alice's IAM user, and not the session of alice in a trusted role.
    expect(mallory).to.not.include({ userId: `arn:aws:iam::${A}:user/alice` });
  });

  it("a role listed in sessionRoles (its trust policy pins session names) keeps sessions apart; the config may name them", () => {
    const identity = {
      sessionRoles: [`arn:aws:iam::${A}:role/teams/Developer`],
      users: { [`arn:aws:sts::${A}:assumed-role/Developer/alice`]: "alice", [`arn:aws:iam::${A}:user/alice`]: "alice" },
    };
    expect(identityConfigProblems(identity)).to.deep.equal([]);
    expect(userOf(`arn:aws:sts::${A}:assumed-role/Developer/alice`, identity)).to.include({ userId: "alice" });
    expect(userOf(`arn:aws:iam::${A}:user/alice`, identity), "the same person by two principals").to.include({ userId: "alice" });
    expect(userOf(`arn:aws:sts::${A}:assumed-role/Developer/bob`, identity)).to.include({ userId: `arn:aws:sts::${A}:assumed-role/Developer/bob` });
    // Another role with a session named alice is not alice.
    expect(userOf(`arn:aws:sts::${A}:assumed-role/Other/alice`, identity)).to.include({ userId: `arn:aws:iam::${A}:role/Other` });
  });

  it("mapped names never collide with an unmapped principal (names have no ':')", () => {
    expect(identityConfigProblems({ users: { [`arn:aws:iam::${A}:user/bob`]: `arn:aws:iam::${A}:user/alice` } }).join()).to.contain("no ':'");
  });

  const badConfigs: [string, unknown, RegExp][] = [
    ["not an object", "alice", /must be an object/],
    ["an unknown key", { groups: {} }, /identity\.groups is not a setting/],
    ["a session key of an untrusted role", { users: { [`arn:aws:sts::${A}:assumed-role/Dev/alice`]: "alice" } }, /not trusted; list arn:aws:iam::111122223333:role\/Dev in identity\.sessionRoles/],
    ["a key that is no principal", { users: { alice: "alice" } }, /is not a principal/],
    ["a role ARN with a path as a users key", { users: { [`arn:aws:iam::${A}:role/teams/Dev`]: "devs" } }, /role ARN without path/],
    ["a bad user name", { users: { [`arn:aws:iam::${A}:user/a`]: "a b" } }, /user name/],
    ["sessionRoles not role ARNs", { sessionRoles: [`arn:aws:iam::${A}:user/a`] }, /sessionRoles\[0\] must be an IAM role ARN/],
  ];
  for (const [name, config, why] of badConfigs) {
    it(`refuses an identity config with ${name}`, () => expect(identityConfigProblems(config).join("; ")).to.match(why));
  }
});

describe("identity over the API: a chosen session name cannot reach another user's tasks", () => {
  let fx: ApiFixture;
  before(async () => {
    fx = await apiFixture();
  });
  after(async () => fx.cleanup());

  function as(userArn: string, method: string, rawPath: string, body?: string): HttpApiEventV2 {
    return { rawPath, rawQueryString: "", headers: {}, body, requestContext: { stage: "$default", http: { method, path: rawPath }, authorizer: { iam: { userArn } } } };
  }

  it("alice's two CLI runs (two session names) see the same task; a session of another trusted role named alice does not", async () => {
    const identity = { sessionRoles: [`arn:aws:iam::${A}:role/Developer`] };
    const handler = createLambdaHandler(async () => ({ runtime: { ...fx.runtime, config: { ...fx.runtime.config, identity } } as typeof fx.runtime, dispatcher: fx.dispatcher }));
    const ordinary = createLambdaHandler(async () => ({ runtime: fx.runtime, dispatcher: fx.dispatcher }));
    // On an ordinary role the SDK's per-run session names do not split the user.
    const run1 = await ordinary(as(`arn:aws:sts::${A}:assumed-role/Ops/aws-sdk-js-1`, "POST", "/tasks", JSON.stringify(GOOD_SUBMIT)));
    expect(run1.statusCode, run1.body).to.equal(201);
    const id = JSON.parse(run1.body).task.task_id;
    expect((await ordinary(as(`arn:aws:sts::${A}:assumed-role/Ops/aws-sdk-js-2`, "GET", `/tasks/${id}`))).statusCode).to.equal(200);
    // On a trusted role the session is the person: alice's task is not bob's, and an IAM user "alice" is not her either.
    const alice = await handler(as(`arn:aws:sts::${A}:assumed-role/Developer/alice`, "POST", "/tasks", JSON.stringify(GOOD_SUBMIT)));
    const aliceTask = JSON.parse(alice.body).task.task_id;
    expect((await handler(as(`arn:aws:sts::${A}:assumed-role/Developer/alice`, "GET", `/tasks/${aliceTask}`))).statusCode).to.equal(200);
    for (const other of [`arn:aws:sts::${A}:assumed-role/Developer/bob`, `arn:aws:iam::${A}:user/alice`, `arn:aws:sts::${A}:assumed-role/Ops/alice`]) {
      expect((await handler(as(other, "GET", `/tasks/${aliceTask}`))).statusCode, other).to.equal(404);
      expect((await handler(as(other, "POST", `/tasks/${aliceTask}/cancel`, "{}"))).statusCode, other).to.equal(404);
    }
  });
});
