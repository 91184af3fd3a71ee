// The hand-rolled Envelope / vote codecs (src/types/fastWire.ts) against protobuf-es's
// fromBinary / toBinary, hot in one process: µs per decode and encode of a PREPARE envelope and
// its PeerMessage, and of
// a PRE-PREPARE's block re-encode that `prePrepareBlockBytes` replaces (issue 14, p14).
//   node dist/bench/fastWire.js [--rounds N]
// A hot loop on a warm JIT: the cluster's per-envelope cost is several times higher (cold caches,
// 4 processes on 2 cores); read the ratio, not the absolute figure.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  EnvelopeSchema,
  PeerMessageSchema,
  PrePrepareSchema,
  PrepareSchema,
} from "../src/gen/parabft/v1/consensus_pb.js";
import { BlockHeaderSchema, BlockSchema, SignedTxSchema } from "../src/gen/parabft/v1/types_pb.js";
import {
  decodeEnvelopeFast,
  decodeVoteFast,
  encodeEnvelopeFast,
  encodeVoteFast,
  prePrepareBlockBytes,
} from "../src/types/fastWire.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function perCallUs(f: () => unknown, n: number): number {
  for (let i = 0; i < n / 10; i++) f();
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / n;
}

const vote = toBinary(
  PeerMessageSchema,
  create(PeerMessageSchema, {
    kind: {
      case: "prepare",
      value: create(PrepareSchema, {
        view: 3n,
        height: 12345n,
        blockDigest: new Uint8Array(32).fill(7),
        voteSignature: new Uint8Array(64).fill(9),
      }),
    },
  }),
);
const env = toBinary(
  EnvelopeSchema,
  create(EnvelopeSchema, { version: 1, chainId: "parabft-local-4", epoch: 0n, sender: 2, payload: vote }),
);
const block = create(BlockSchema, {
  header: create(BlockHeaderSchema, { chainId: "parabft-local-4", height: 9n, proposer: 2, timestampMs: 1n }),
  txs: [create(SignedTxSchema, { body: new Uint8Array(150).fill(1), signature: new Uint8Array(64).fill(2) })],
});
const pp = toBinary(
  PeerMessageSchema,
  create(PeerMessageSchema, {
    kind: {
      case: "prePrepare",
      value: create(PrePrepareSchema, { view: 0n, height: 9n, blockDigest: new Uint8Array(32), block }),
    },
  }),
);
const voteMsg = fromBinary(PeerMessageSchema, vote);
const envMsg = fromBinary(EnvelopeSchema, env);
const decodedBlock = fromBinary(PeerMessageSchema, pp).kind.value as { block: typeof block };

const n = Number(arg("rounds") ?? 200_000);
const rows: [string, number, number][] = [
  [
    "Envelope decode",
    perCallUs(() => fromBinary(EnvelopeSchema, env), n),
    perCallUs(() => decodeEnvelopeFast(env), n),
  ],
  [
    "vote PeerMessage decode",
    perCallUs(() => fromBinary(PeerMessageSchema, vote), n),
    perCallUs(() => decodeVoteFast(vote), n),
  ],
  [
    "vote PeerMessage encode",
    perCallUs(() => toBinary(PeerMessageSchema, voteMsg), n),
    perCallUs(() => encodeVoteFast(voteMsg), n),
  ],
  [
    "Envelope encode",
    perCallUs(() => toBinary(EnvelopeSchema, envMsg), n),
    perCallUs(() => encodeEnvelopeFast(envMsg), n),
  ],
  [
    "PRE-PREPARE block bytes (re-encode vs find)",
    perCallUs(() => toBinary(BlockSchema, decodedBlock.block), n / 4),
    perCallUs(() => prePrepareBlockBytes(pp), n / 4),
  ],
];
console.log("what                                          fromBinary/toBinary µs   fast µs");
for (const [what, slow, fast] of rows)
  console.log(`${what.padEnd(46)}${slow.toFixed(2).padStart(10)}${fast.toFixed(2).padStart(16)}`);
