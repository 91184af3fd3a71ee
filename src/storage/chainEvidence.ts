// Checkpoints and evidence in ChainDb: the stable checkpoint certificates the node restarts
// from, and the equivocation evidence the consensus core reports. Both written synced.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type CheckpointCertificate, CheckpointCertificateSchema } from "../gen/parabft/v1/consensus_pb.js";
import { concatBytes, u64be } from "../types/bytes.js";
import { sha256 } from "../types/hash.js";
import { Bucket } from "./buckets.js";
import type { ChainDbOpts } from "./chainDb.js";
import { type Db, type DbOp, prefixEnd } from "./db.js";
import { decodeJson, encodeJson } from "./json.js";
import { bucketKey, heightKey, metaKey, readU64 } from "./keys.js";

const META_STABLE_CHECKPOINT = metaKey("stableCheckpointHeight");

/** Equivocation evidence as the consensus core reports it (structurally its EvidenceRecord). */
export interface StoredEvidence {
  sender: number;
  epoch: bigint;
  phase: string;
  view: bigint;
  height: bigint;
  first: Uint8Array;
  second: Uint8Array;
}

/** ChainDb's checkpoint certificates and equivocation evidence. */
export class ChainEvidence {
  constructor(
    private readonly opts: ChainDbOpts,
    private readonly modules: { db: Db },
  ) {}

  /** Synced: the stable checkpoint is the low watermark the node restarts from. */
  async putStableCheckpoint(cert: CheckpointCertificate): Promise<void> {
    const t0 = performance.now();
    const ops: DbOp[] = [
      {
        type: "put",
        key: heightKey(Bucket.checkpoint, cert.height),
        value: toBinary(CheckpointCertificateSchema, cert),
      },
    ];
    const current = await this.modules.db.get(META_STABLE_CHECKPOINT);
    if (current === undefined || readU64(current) < cert.height) {
      ops.push({ type: "put", key: META_STABLE_CHECKPOINT, value: u64be(cert.height) });
    }
    await this.modules.db.batch(ops, { sync: true });
    this.opts.onWrite?.("checkpoint", performance.now() - t0, ops.length);
  }

  /** The highest stable checkpoint certificate stored, if any. */
  async getStableCheckpoint(): Promise<CheckpointCertificate | undefined> {
    const h = await this.modules.db.get(META_STABLE_CHECKPOINT);
    return h === undefined ? undefined : this.getCheckpoint(readU64(h));
  }

  async getCheckpoint(height: bigint): Promise<CheckpointCertificate | undefined> {
    const raw = await this.modules.db.get(heightKey(Bucket.checkpoint, height));
    return raw === undefined ? undefined : fromBinary(CheckpointCertificateSchema, raw);
  }

  /** Keyed by (height, H(first ‖ second)): storing the same evidence twice keeps one copy. */
  async putEvidence(e: StoredEvidence): Promise<void> {
    const t0 = performance.now();
    const id = sha256(concatBytes(e.first, e.second));
    const key = bucketKey(Bucket.evidence, concatBytes(u64be(e.height), id));
    await this.modules.db.put(key, new TextEncoder().encode(encodeJson(e)), { sync: true });
    this.opts.onWrite?.("evidence", performance.now() - t0, 1);
  }

  /** Evidence with height in [from, to), ascending. */
  async listEvidence(from = 0n, to?: bigint): Promise<StoredEvidence[]> {
    const out: StoredEvidence[] = [];
    const lt = to === undefined ? prefixEnd(Uint8Array.of(Bucket.evidence)) : heightKey(Bucket.evidence, to);
    for await (const [, v] of this.modules.db.iterate({ gte: heightKey(Bucket.evidence, from), lt })) {
      out.push(decodeJson<StoredEvidence>(new TextDecoder().decode(v)));
    }
    return out;
  }
}
