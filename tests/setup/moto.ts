/**
 * Starts one moto server (python3 -m moto.server) for the whole test run and points every AWS SDK client
 * at it through the SDK's standard AWS_ENDPOINT_URL variable; stops it when the run ends.
 * Loaded by .mocharc.json ("file"), so `npm test` and a bare `npx mocha` both get it.
 */
import { motoEnvironment, startMotoServer, type MotoServer } from "./moto-server";

let moto: MotoServer | undefined;

before(async function startMoto() {
  this.timeout(60_000);
  moto = await startMotoServer();
  Object.assign(process.env, motoEnvironment(moto.url));
  delete process.env.AWS_PROFILE;
});

after(() => {
  moto?.stop();
});
