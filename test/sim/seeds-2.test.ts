// Main CI simulator run, part 2 of 4 (seeds 251..500 by default): see ciSeeds.ts.
import { describe, it } from "node:test";
import { CHUNK, runMainChunk } from "./ciSeeds.js";

describe("simulator over many seeds, part 2 of 4", () => {
  it(`keeps agreement, order, validity and liveness over ${CHUNK} seeds with every fault mixed`, async () => {
    await runMainChunk(1);
  });
});
