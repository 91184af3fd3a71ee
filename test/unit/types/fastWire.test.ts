// The hand-rolled Envelope / vote decoders must build exactly what fromBinary builds, and step
// aside (undefined: the caller then uses fromBinary) for every input shape they do not take.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { sealMessage } from "../../../src/consensus/envelope.js";
import { Rng } from "../../../src/exec/workload.js";
import {
  CheckpointSchema,
  CommitSchema,
  EnvelopeSchema,
  PeerMessageSchema,
  PrePrepareSchema,
  PrepareSchema,
  StatusReportSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import {
  BlockHeaderSchema,
  BlockSchema,
  CommitCertificateSchema,
  SignedTxSchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import {
  blockTxBytesAt,
  decodeEnvelopeFast,
  decodeVoteFast,
  encodeEnvelopeFast,
  encodeVoteFast,
  prePrepareBlockBytes,
} from "../../../src/types/fastWire.js";
import { envelopeSignBytes, type MessageSigner, PROTOCOL_VERSION } from "../../../src/types/signing.js";

/** A deterministic PRNG (the workload's mulberry32): the same seed gives the same cases on every run. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const MAX64 = (1n << 64n) - 1n;

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}
function bytes(r: () => number, n: number): Uint8Array {
  return new Uint8Array(n).map(() => Math.floor(r() * 256));
}
function u64(r: () => number): bigint {
  return pick(r, [0n, 1n, 127n, 128n, 300n, 2n ** 32n, MAX64, BigInt(Math.floor(r() * 2 ** 40))]);
}

function fromBinaryOrError(decode: () => unknown): unknown {
  try {
    return decode();
  } catch (err) {
    return err;
  }
}

/** fast(x) is either undefined or deep-equal to what fromBinary builds (which must not throw then). */
function agrees(fast: unknown, slow: unknown, what: string): void {
  if (fast === undefined) return;
  assert.ok(!(slow instanceof Error), `${what}: fast decoded what fromBinary refuses`);
  assert.deepStrictEqual(fast, slow, what);
}

function vote(r: () => number): Uint8Array {
  const kind = pick(r, ["prepare", "commit", "checkpoint"] as const);
  const sig = bytes(r, pick(r, [0, 64]));
  if (kind === "checkpoint")
    return toBinary(
      PeerMessageSchema,
      create(PeerMessageSchema, {
        kind: {
          case: "checkpoint",
          value: create(CheckpointSchema, {
            height: u64(r),
            chainHash: bytes(r, pick(r, [0, 32])),
            stateRoot: bytes(r, pick(r, [0, 32])),
            voteSignature: sig,
          }),
        },
      }),
    );
  const init = {
    view: u64(r),
    height: u64(r),
    blockDigest: bytes(r, pick(r, [0, 31, 32])),
    voteSignature: sig,
  };
  return toBinary(
    PeerMessageSchema,
    create(PeerMessageSchema, {
      kind:
        kind === "prepare"
          ? { case: "prepare", value: create(PrepareSchema, init) }
          : { case: "commit", value: create(CommitSchema, init) },
    }),
  );
}

function envelope(r: () => number, payload: Uint8Array): Uint8Array {
  return toBinary(
    EnvelopeSchema,
    create(EnvelopeSchema, {
      version: pick(r, [0, 1, 2, 0xffffffff]),
      chainId: pick(r, ["", "parabft-local", "ünïcode-chain", "x".repeat(200)]),
      epoch: u64(r),
      sender: pick(r, [0, 1, 3, 1000, 0xffffffff]),
      payload,
      signature: bytes(r, pick(r, [0, 64])),
    }),
  );
}

describe("fast Envelope / vote decoding", () => {
  it("builds exactly fromBinary's messages for every vote kind and edge value", () => {
    const r = rng(14);
    let votes = 0;
    for (let i = 0; i < 500; i++) {
      const payload = vote(r);
      const env = envelope(r, payload);
      const fastEnv = decodeEnvelopeFast(env);
      assert.ok(fastEnv !== undefined, "a canonical envelope is decoded fast");
      assert.deepStrictEqual(fastEnv, fromBinary(EnvelopeSchema, env));
      const fastVote = decodeVoteFast(payload);
      const slowVote = fromBinary(PeerMessageSchema, payload);
      // An all-default vote encodes as an empty submessage: still exactly one field.
      assert.ok(fastVote !== undefined, "a canonical vote is decoded fast");
      assert.deepStrictEqual(fastVote, slowVote);
      votes++;
    }
    assert.equal(votes, 500);
  });

  it("steps aside for other messages, repeated, unknown or mistyped fields, and broken bytes", () => {
    const status = toBinary(
      PeerMessageSchema,
      create(PeerMessageSchema, {
        kind: { case: "status", value: create(StatusReportSchema, { committedHeight: 5n }) },
      }),
    );
    const pp = toBinary(
      PeerMessageSchema,
      create(PeerMessageSchema, {
        kind: { case: "prePrepare", value: create(PrePrepareSchema, { view: 1n, height: 2n }) },
      }),
    );
    const prepare = vote(rng(1));
    assert.equal(decodeVoteFast(status), undefined);
    assert.equal(decodeVoteFast(pp), undefined);
    assert.equal(decodeVoteFast(new Uint8Array(0)), undefined, "no kind: fromBinary's kind undefined");
    // A second oneof member after the vote: fromBinary keeps the later one.
    const twice = new Uint8Array([...prepare, ...status]);
    assert.equal(decodeVoteFast(twice), undefined);
    assert.equal(fromBinary(PeerMessageSchema, twice).kind.case, "status");
    // The same vote field twice: fromBinary merges.
    assert.equal(decodeVoteFast(new Uint8Array([...prepare, ...prepare])), undefined);
    // A field repeated inside the vote (last wins in fromBinary), an unknown one, a wrong wire type.
    const inner = (f: (w: BinaryWriter) => void): Uint8Array => {
      const w = new BinaryWriter();
      f(w);
      const body = w.finish();
      return new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(body).finish();
    };
    const repeated = inner((w) => w.tag(1, WireType.Varint).uint64(1n).tag(1, WireType.Varint).uint64(2n));
    assert.equal(decodeVoteFast(repeated), undefined);
    assert.equal(fromBinary(PeerMessageSchema, repeated).kind.value?.$typeName, "parabft.v1.Prepare");
    assert.equal(decodeVoteFast(inner((w) => w.tag(9, WireType.Varint).uint64(1n))), undefined);
    assert.equal(
      decodeVoteFast(inner((w) => w.tag(1, WireType.LengthDelimited).bytes(new Uint8Array(1)))),
      undefined,
    );
    // Envelope: unknown field (kept in $unknown by fromBinary), repeated field, bad UTF-8, truncated.
    const env = envelope(rng(2), prepare);
    const unknown = new Uint8Array([
      ...env,
      ...new BinaryWriter().tag(15, WireType.Varint).uint32(1).finish(),
    ]);
    assert.equal(decodeEnvelopeFast(unknown), undefined);
    assert.ok(fromBinary(EnvelopeSchema, unknown).$unknown !== undefined);
    const again = new Uint8Array([...env, ...new BinaryWriter().tag(4, WireType.Varint).uint32(7).finish()]);
    assert.equal(decodeEnvelopeFast(again), undefined);
    assert.equal(fromBinary(EnvelopeSchema, again).sender, 7);
    const badUtf8 = new BinaryWriter()
      .tag(2, WireType.LengthDelimited)
      .bytes(new Uint8Array([0xff, 0xfe]))
      .finish();
    assert.equal(decodeEnvelopeFast(badUtf8), undefined);
    assert.throws(() => fromBinary(EnvelopeSchema, badUtf8));
    // Cut anywhere: a cut between fields is a shorter valid envelope (equal), inside one undefined.
    let refused = 0;
    for (let cut = 1; cut < env.length; cut++) {
      const part = env.subarray(0, cut);
      const fast = decodeEnvelopeFast(part);
      if (fast === undefined) refused++;
      agrees(
        fast,
        fromBinaryOrError(() => fromBinary(EnvelopeSchema, part)),
        `cut at ${cut}`,
      );
    }
    assert.ok(refused > 0);
  });

  it("never disagrees with fromBinary on mutated bytes", () => {
    const r = rng(99);
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      const payload = vote(r);
      const env = envelope(r, payload);
      const target = r() < 0.5 ? env : payload;
      const m = target.slice(0, r() < 0.2 ? Math.floor(r() * target.length) : target.length);
      const flips = Math.floor(r() * 3);
      for (let k = 0; k < flips && m.length > 0; k++) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      const fe = decodeEnvelopeFast(m);
      agrees(
        fe,
        fromBinaryOrError(() => fromBinary(EnvelopeSchema, m)),
        "envelope",
      );
      const fv = decodeVoteFast(m);
      agrees(
        fv,
        fromBinaryOrError(() => fromBinary(PeerMessageSchema, m)),
        "vote",
      );
      if (fe !== undefined || fv !== undefined) fast++;
    }
    assert.ok(fast > 500, `the mutations kept some decodable inputs (${fast})`);
  });

  it("finds a PRE-PREPARE's block bytes, which decode to its block, and steps aside otherwise", () => {
    const r = rng(7);
    const block = create(BlockSchema, {
      header: create(BlockHeaderSchema, {
        chainId: "parabft-local",
        height: 9n,
        proposer: 2,
        timestampMs: 123n,
      }),
      txs: [create(SignedTxSchema, { body: bytes(r, 120), signature: bytes(r, 64) })],
    });
    const pp = (init: Parameters<typeof create<typeof PrePrepareSchema>>[1]) =>
      toBinary(
        PeerMessageSchema,
        create(PeerMessageSchema, { kind: { case: "prePrepare", value: create(PrePrepareSchema, init) } }),
      );
    const payload = pp({ view: 3n, height: 9n, blockDigest: bytes(r, 32), block });
    const got = prePrepareBlockBytes(payload);
    assert.ok(got !== undefined);
    assert.deepStrictEqual(
      fromBinary(BlockSchema, got),
      fromBinary(BlockSchema, toBinary(BlockSchema, block)),
    );
    assert.deepStrictEqual(got, toBinary(BlockSchema, block));
    assert.equal(prePrepareBlockBytes(pp({ view: 3n, height: 9n })), undefined, "null block: no body");
    assert.equal(prePrepareBlockBytes(vote(r)), undefined);
    assert.equal(prePrepareBlockBytes(new Uint8Array([...payload, ...payload])), undefined, "merged twice");
  });

  it("reads a block's i-th transaction alone, as fromBinary of the whole block has it", () => {
    const r = rng(11);
    for (const n of [0, 1, 2, 7, 130]) {
      const block = create(BlockSchema, {
        header: create(BlockHeaderSchema, { chainId: "parabft-local", height: 5n, timestampMs: 77n }),
        txs: Array.from({ length: n }, (_, i) =>
          create(SignedTxSchema, { body: bytes(r, 20 + ((i * 37) % 300)), signature: bytes(r, 64) }),
        ),
        lastCommit: create(CommitCertificateSchema, { height: 4n, blockDigest: bytes(r, 32) }),
      });
      const wire = toBinary(BlockSchema, block);
      const whole = fromBinary(BlockSchema, wire).txs;
      for (let i = 0; i < n; i++) {
        const got = blockTxBytesAt(wire, i);
        assert.ok(got !== undefined, `tx ${i} of ${n}`);
        assert.deepStrictEqual(fromBinary(SignedTxSchema, got), whole[i]);
      }
      assert.equal(blockTxBytesAt(wire, n), undefined, `past the last of ${n}`);
      if (n > 0) {
        // Torn inside the last transaction (the block without its trailing lastCommit).
        const bare = toBinary(BlockSchema, create(BlockSchema, { header: block.header, txs: block.txs }));
        assert.equal(blockTxBytesAt(bare.subarray(0, bare.length - 3), n - 1), undefined, "torn");
        assert.deepStrictEqual(blockTxBytesAt(bare, n - 1), blockTxBytesAt(wire, n - 1));
      }
    }
    assert.equal(blockTxBytesAt(new Uint8Array([0xff, 0xff, 0xff]), 0), undefined, "not a Block");
  });

  it("encodes votes and envelopes to exactly toBinary's bytes, and sealMessage is unchanged", () => {
    const r = rng(5);
    const signer: MessageSigner = { publicKey: new Uint8Array(32), sign: (m) => bytes(rng(m.length), 64) };
    for (let i = 0; i < 400; i++) {
      const payload = vote(r);
      const m = fromBinary(PeerMessageSchema, payload);
      assert.deepStrictEqual(encodeVoteFast(m), payload);
      const e = fromBinary(EnvelopeSchema, envelope(r, payload));
      assert.deepStrictEqual(encodeEnvelopeFast(e), toBinary(EnvelopeSchema, e));
      // sealMessage against the plain protobuf-es construction it replaced.
      const chainId = pick(r, ["parabft-local", "", "ünïcode"]);
      const epoch = u64(r);
      const sender = pick(r, [0, 1, 7]);
      const sealed = sealMessage(chainId, epoch, sender, signer, m);
      const ref = toBinary(
        EnvelopeSchema,
        create(EnvelopeSchema, {
          version: PROTOCOL_VERSION,
          chainId,
          epoch,
          sender,
          payload,
          signature: new Uint8Array(0),
        }),
      );
      assert.deepStrictEqual(sealed.bytes, ref);
      assert.deepStrictEqual(sealed.envelope, fromBinary(EnvelopeSchema, ref));
    }
    // A signed kind: the payload by toBinary, the envelope by hand, the same bytes.
    const status = create(PeerMessageSchema, {
      kind: { case: "status", value: create(StatusReportSchema, { committedHeight: 5n, view: 2n }) },
    });
    const payload = toBinary(PeerMessageSchema, status);
    const sealed = sealMessage("c", 3n, 1, signer, status);
    const signature = signer.sign(envelopeSignBytes("c", 3n, 1, payload));
    assert.deepStrictEqual(
      sealed.bytes,
      toBinary(
        EnvelopeSchema,
        create(EnvelopeSchema, {
          version: PROTOCOL_VERSION,
          chainId: "c",
          epoch: 3n,
          sender: 1,
          payload,
          signature,
        }),
      ),
    );
    // Out-of-range numbers are refused, as toBinary refuses them.
    const base = { version: 1, chainId: "c", epoch: 1n, sender: 1, payload, signature };
    for (const bad of [{ sender: -1 }, { version: 2 ** 32 }, { epoch: -1n }, { epoch: 1n << 64n }]) {
      assert.throws(() => encodeEnvelopeFast({ ...base, ...bad }));
      assert.throws(() => toBinary(EnvelopeSchema, create(EnvelopeSchema, { ...base, ...bad })));
    }
    // Not a vote, or carrying unknown fields: left to toBinary.
    assert.equal(encodeVoteFast(status), undefined);
    const withUnknown = fromBinary(
      PeerMessageSchema,
      new Uint8Array([...vote(r), ...new BinaryWriter().tag(20, WireType.Varint).uint32(1).finish()]),
    );
    assert.equal(encodeVoteFast(withUnknown), undefined);
  });
});

describe("the hand-written wire code and the schema", () => {
  // fastWire.ts writes and reads these messages field by field. A field added to one of them in
  // proto/ would be dropped by the encoders without a sound: this pin fails first, so whoever
  // changes the schema updates fastWire.ts (or stops using it for that message) in the same change.
  const shape = (fields: readonly { number: number; name: string; fieldKind: string }[]) =>
    fields.map((f) => `${f.number}:${f.name}:${f.fieldKind}`);
  it("knows every field of Envelope, the votes, PrePrepare, and the vote oneof numbers", () => {
    assert.deepEqual(shape(EnvelopeSchema.fields), [
      "1:version:scalar",
      "2:chain_id:scalar",
      "3:epoch:scalar",
      "4:sender:scalar",
      "5:payload:scalar",
      "6:signature:scalar",
    ]);
    for (const s of [PrepareSchema, CommitSchema])
      assert.deepEqual(shape(s.fields), [
        "1:view:scalar",
        "2:height:scalar",
        "3:block_digest:scalar",
        "4:vote_signature:scalar",
      ]);
    assert.deepEqual(shape(CheckpointSchema.fields), [
      "1:height:scalar",
      "2:chain_hash:scalar",
      "3:state_root:scalar",
      "4:vote_signature:scalar",
    ]);
    assert.deepEqual(shape(PrePrepareSchema.fields).slice(0, 4), [
      "1:view:scalar",
      "2:height:scalar",
      "3:block_digest:scalar",
      "4:block:message",
    ]);
    const oneof = (name: string) => PeerMessageSchema.fields.find((f) => f.name === name)?.number;
    assert.deepEqual(["pre_prepare", "prepare", "commit", "checkpoint"].map(oneof), [1, 2, 3, 4]);
  });
});
