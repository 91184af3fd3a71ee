import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { BlockHeaderSchema } from "../../../src/gen/parabft/v1/types_pb.js";
import { defaultParams, minimalParams, validateParams } from "../../../src/params/index.js";
import { blockDigest, commitSignBytes, fromHex, nullBlockDigest, toHex } from "../../../src/types/index.js";

const header = () =>
  create(BlockHeaderSchema, {
    chainId: "test",
    height: 7n,
    epoch: 0n,
    txsRoot: new Uint8Array(32).fill(1),
    validatorsHash: new Uint8Array(32).fill(2),
    proposer: 1,
    timestampMs: 1000n,
  });

describe("block digest", () => {
  it("changes when any header field changes", () => {
    const base = toHex(blockDigest(header()));
    const h = header();
    h.proposer = 2;
    assert.notEqual(toHex(blockDigest(h)), base);
    const t = header();
    t.txsRoot = new Uint8Array(32).fill(3);
    assert.notEqual(toHex(blockDigest(t)), base);
  });

  it("is stable across calls and distinct from the null block digest", () => {
    assert.equal(toHex(blockDigest(header())), toHex(blockDigest(header())));
    assert.notEqual(toHex(nullBlockDigest("test", 0n, 7n)), toHex(blockDigest(header())));
    assert.notEqual(toHex(nullBlockDigest("test", 0n, 7n)), toHex(nullBlockDigest("test", 0n, 8n)));
  });

  it("commit sign bytes separate chain ids", () => {
    const d = new Uint8Array(32);
    assert.notEqual(toHex(commitSignBytes("a", 0n, 0n, 1n, d)), toHex(commitSignBytes("b", 0n, 0n, 1n, d)));
    // The view is signed: a COMMIT of view 0 is not a COMMIT of view 1.
    assert.notEqual(toHex(commitSignBytes("a", 0n, 0n, 1n, d)), toHex(commitSignBytes("a", 0n, 1n, 1n, d)));
  });

  it("rejects malformed hex", () => {
    assert.throws(() => fromHex("abc"), /not a hex string/);
    assert.deepEqual(fromHex("0x0aff"), Uint8Array.of(10, 255));
  });
});

describe("chain parameters", () => {
  it("accepts the presets", () => {
    validateParams(defaultParams);
    validateParams(minimalParams);
  });
  it("names the field of a broken rule", () => {
    const bad = { ...minimalParams, consensus: { ...minimalParams.consensus, window: 4 } };
    assert.throws(() => validateParams(bad), /consensus\.window/);
    const lag = { ...minimalParams, consensus: { ...minimalParams.consensus, maxExecLag: 99 } };
    assert.throws(() => validateParams(lag), /consensus\.maxExecLag/);
    for (const proposalDepth of [0, 1.5, 99]) {
      const depth = { ...minimalParams, consensus: { ...minimalParams.consensus, proposalDepth } };
      assert.throws(() => validateParams(depth), /consensus\.proposalDepth/, String(proposalDepth));
    }
  });
});
