// CI simulator run without Byzantine replicas, where restarts may also lose the signing state
// (amnesia, k = f) or the data directory: see ciSeeds.ts.
import { describe, it } from "node:test";
import { runAmnesia } from "./ciSeeds.js";

describe("simulator over many seeds without Byzantine replicas", () => {
  it("keeps every invariant over 200 seeds where restarts may lose the signing state or the data directory", async () => {
    await runAmnesia(200);
  });
});
