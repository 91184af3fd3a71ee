// Main CI simulator run, part 1 of 4 (seeds 1..250 by default): see ciSeeds.ts.
import { describe, it } from "node:test";
import { CHUNK, runMainChunk } from "./ciSeeds.js";

describe("simulator over many seeds, part 1 of 4", () => {
  it(`keeps agreement, order, validity and liveness over ${CHUNK} seeds with every fault mixed`, async () => {
    await runMainChunk(0);
  });
});
