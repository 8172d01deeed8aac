/**
 * Concurrency slots: the conditional string-set update, on moto (the cloud path) and on the embedded dynalite
 * store (the local platform's path), since both must evaluate size() and contains() on a string set.
 */
import { expect } from "chai";
import type { RuntimeConfig } from "../runtime/config";
import { startEmbeddedStore, type EmbeddedStore } from "../runtime/local/embedded-store";
import { ConcurrencySlots } from "../runtime/orchestrator/slots";
import { createTables, suffix, testConfig } from "./orchestrator-fixtures";

const emulators: { name: string; setup: () => Promise<{ config: Pick<RuntimeConfig, "region" | "endpoints" | "tables">; close?: () => Promise<void> }> }[] = [
  {
    name: "moto",
    setup: async () => {
      const config = testConfig();
      await createTables(config);
      return { config };
    },
  },
  {
    name: "embedded dynalite",
    setup: async () => {
      const store: EmbeddedStore = await startEmbeddedStore({ tablePrefix: `slots-${suffix()}`, setProcessCredentials: false });
      return { config: { region: store.region, endpoints: { dynamodb: store.endpoint }, tables: store.tableNames }, close: store.close };
    },
  },
];

for (const emulator of emulators) {
  describe(`ConcurrencySlots (${emulator.name})`, function () {
    this.timeout(60_000);
    let slots: ConcurrencySlots;
    let close: (() => Promise<void>) | undefined;
    before(async () => {
      const env = await emulator.setup();
      slots = new ConcurrencySlots(env.config);
      close = env.close;
    });
    after(async () => close?.());

    it("grants up to the cap and refuses the next", async () => {
      const user = `u-${suffix()}`;
      const granted = [];
      for (const id of ["a", "b", "c"]) granted.push(await slots.claim(user, id, 2));
      expect(granted).to.deep.equal([true, true, false]);
      expect(await slots.holders(user)).to.deep.equal(["a", "b"]);
    });

    it("a replayed claim by a holder succeeds at the cap without taking a second slot", async () => {
      const user = `u-${suffix()}`;
      await slots.claim(user, "a", 2);
      await slots.claim(user, "b", 2);
      expect(await slots.claim(user, "a", 2)).to.equal(true);
      expect(await slots.holders(user)).to.deep.equal(["a", "b"]);
    });

    it("release frees exactly one slot and is idempotent", async () => {
      const user = `u-${suffix()}`;
      await slots.claim(user, "a", 1);
      await slots.release(user, "a");
      await slots.release(user, "a");
      await slots.release(user, "never-held");
      expect(await slots.holders(user)).to.deep.equal([]);
      expect(await slots.claim(user, "b", 1)).to.equal(true);
    });

    it("concurrent claims for the last slots never exceed the cap", async () => {
      const user = `u-${suffix()}`;
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => slots.claim(user, `t${i}`, 5)));
      expect(results.filter(Boolean)).to.have.length(5);
      expect(await slots.holders(user)).to.have.length(5);
    });
  });
}
