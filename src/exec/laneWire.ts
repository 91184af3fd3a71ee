// The binary job and result formats between the executor and its workers. A job carries the
// raw tx bodies of one bin plus the pre-block value of every key those txs may touch; a result
// carries per-tx outcomes and the bin's writes. Both travel as transferred ArrayBuffers.
import type { TxStatus } from "../gen/parabft/v1/types_pb.js";
import { ByteReader, ByteWriter } from "./codec.js";
import {
  decodeTx,
  type FeeTotal,
  feeSum,
  MALFORMED_OUTCOME,
  newFeeTotal,
  type OutcomeEvent,
  type TxOutcome,
} from "./programs.js";
import { applyTxFast } from "./transfer.js";

export interface JobTx {
  index: number;
  hash: Uint8Array;
  body: Uint8Array;
}

export function encodeJob(txs: readonly JobTx[], state: ReadonlyMap<string, Uint8Array | null>): ArrayBuffer {
  let size = 8;
  for (const t of txs) size += 44 + t.body.length;
  for (const [k, v] of state) size += 9 + k.length + (v === null ? 0 : v.length);
  const w = new ByteWriter(size);
  w.u32(txs.length);
  for (const t of txs) {
    w.u32(t.index);
    w.raw(t.hash);
    w.bytes(t.body);
  }
  w.u32(state.size);
  for (const [k, v] of state) {
    w.key(k);
    w.optBytes(v);
  }
  return w.finish();
}

export class StateNotLoadedError extends Error {
  constructor(readonly key: string) {
    super("executor bug: state key used but not loaded");
  }
}

/** Runs a job: the worker's whole job, also callable inline (tests). */
export function runJob(job: ArrayBuffer): ArrayBuffer {
  const r = new ByteReader(job);
  const n = r.u32();
  const txs: { index: number; hash: Uint8Array; body: Uint8Array }[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const index = r.u32();
    const hash = r.raw(32).slice();
    txs[i] = { index, hash, body: r.bytes() };
  }
  const base = new Map<string, Uint8Array | null>();
  const m = r.u32();
  for (let i = 0; i < m; i++) {
    const k = r.key();
    const v = r.optBytes();
    base.set(k, v === null ? null : v.slice());
  }
  const writes = new Map<string, Uint8Array | null>();
  const view = {
    get(k: string): Uint8Array | null {
      const w = writes.get(k);
      if (w !== undefined) return w;
      const b = base.get(k);
      if (b === undefined) throw new StateNotLoadedError(k);
      return b;
    },
    set(k: string, v: Uint8Array | null) {
      writes.set(k, v);
    },
  };
  const out = new ByteWriter(64 + n * 64);
  out.u32(n);
  const fees: FeeTotal = newFeeTotal();
  for (const t of txs) {
    const tx = decodeTx(t.body, t.hash);
    writeOutcome(out, t.index, tx === null ? MALFORMED_OUTCOME : applyTxFast(view, tx, fees));
  }
  out.u32(writes.size);
  for (const [k, v] of writes) {
    out.key(k);
    out.optBytes(v);
  }
  // The bin's fees: credited to the collector once, by the main thread, after the whole block.
  out.str(feeSum(fees).toString());
  return out.finish();
}

function writeOutcome(w: ByteWriter, index: number, o: TxOutcome): void {
  w.u32(index);
  w.u8(o.status);
  w.uint(o.gasUsed);
  w.str(o.error);
  w.u8(o.events.length);
  for (const e of o.events) {
    w.str(e.kind);
    w.u8(e.attrs.length);
    for (const [k, v] of e.attrs) {
      w.str(k);
      w.str(v);
    }
  }
}

export interface JobResult {
  outcomes: { index: number; outcome: TxOutcome }[];
  writes: [string, Uint8Array | null][];
  /** Fees charged by the bin's transactions. */
  fees: bigint;
}

export function decodeResult(buf: ArrayBuffer): JobResult {
  const r = new ByteReader(buf);
  const n = r.u32();
  const outcomes: JobResult["outcomes"] = new Array(n);
  for (let i = 0; i < n; i++) {
    const index = r.u32();
    const status = r.u8() as TxStatus;
    const gasUsed = r.uint();
    const error = r.str();
    const ne = r.u8();
    const events: OutcomeEvent[] = new Array(ne);
    for (let e = 0; e < ne; e++) {
      const kind = r.str();
      const na = r.u8();
      const attrs: [string, string][] = new Array(na);
      for (let a = 0; a < na; a++) attrs[a] = [r.str(), r.str()];
      events[e] = { kind, attrs };
    }
    outcomes[i] = { index, outcome: { status, gasUsed, error, events } };
  }
  const m = r.u32();
  const writes: JobResult["writes"] = new Array(m);
  for (let i = 0; i < m; i++) {
    const k = r.key();
    const v = r.optBytes();
    writes[i] = [k, v === null ? null : v.slice()];
  }
  return { outcomes, writes, fees: BigInt(r.str()) };
}
