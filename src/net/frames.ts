// Batch frames (issue 14 direction 4, "several envelopes per stream write"): when more than one
// envelope is queued for a peer, they leave in one gRPC message instead of one each, which saves
// the per-message work of grpc-js, http2 and node streams on both ends. A lone envelope still
// travels bare, exactly as before, so light load pays nothing.
//
//   batch = MAGIC "PBEB" ‖ (u32be length ‖ envelope bytes)+        (at least 2 entries)
//
// An encoded Envelope never starts with these bytes (its first field is `version`, tag 0x08), and
// handshake frames ("PBHS") are only read before a stream is authenticated. A node sends batches
// only to a peer that announced it reads them (BATCH_METADATA on the stream's metadata), so a
// peer of an older build keeps getting bare envelopes. Entries are not trusted: each one goes
// through the same checks as a bare envelope (sender, rate limit, verdict).

export const BATCH_MAGIC = [0x50, 0x42, 0x45, 0x42] as const; // "PBEB"
const HEADER = BATCH_MAGIC.length;
const LENGTH_PREFIX = 4;

/** Stream metadata key and value by which each side announces that it reads batch frames. */
export const BATCH_METADATA_KEY = "x-parabft-frames";
export const BATCH_METADATA_VALUE = "batch1";

/** At most this many envelopes per batch frame (bounds the work one frame can queue). */
export const MAX_BATCH_ENTRIES = 256;

/** Why a batch frame was refused (the peer is penalised for it: an honest one never sends these). */
export type BatchError = "batch_truncated" | "batch_too_few" | "batch_too_many" | "batch_empty_entry";

export class BatchFrameError extends Error {
  constructor(readonly code: BatchError) {
    super(`malformed batch frame: ${code}`);
    this.name = "BatchFrameError";
  }
}

/** Whether `bytes` is a batch frame (by its magic; its contents are checked by decodeBatch). */
export function isBatchFrame(bytes: Uint8Array): boolean {
  return (
    bytes.length >= HEADER &&
    bytes[0] === BATCH_MAGIC[0] &&
    bytes[1] === BATCH_MAGIC[1] &&
    bytes[2] === BATCH_MAGIC[2] &&
    bytes[3] === BATCH_MAGIC[3]
  );
}

/** The encoded size of a batch of envelopes with these lengths. */
export function batchSize(lengths: Iterable<number>): number {
  let n = HEADER;
  for (const l of lengths) n += LENGTH_PREFIX + l;
  return n;
}

/** One batch frame of `entries` (two or more non-empty envelopes). */
export function encodeBatch(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length < 2) throw new RangeError("a batch frame holds at least two envelopes");
  if (entries.length > MAX_BATCH_ENTRIES) throw new RangeError("too many envelopes for one batch frame");
  const out = new Uint8Array(batchSize(entries.map((e) => e.length)));
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(BATCH_MAGIC, 0);
  let o = HEADER;
  for (const e of entries) {
    if (e.length === 0) throw new RangeError("an empty envelope cannot be batched");
    dv.setUint32(o, e.length);
    o += LENGTH_PREFIX;
    out.set(e, o);
    o += e.length;
  }
  return out;
}

/**
 * The envelopes of a batch frame, as views into `bytes` (no copy). Throws BatchFrameError when
 * the frame is not exactly a sequence of 2..MAX_BATCH_ENTRIES non-empty length-prefixed entries.
 */
export function decodeBatch(bytes: Uint8Array): Uint8Array[] {
  if (!isBatchFrame(bytes)) throw new BatchFrameError("batch_truncated");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let o = HEADER;
  while (o < bytes.length) {
    if (out.length >= MAX_BATCH_ENTRIES) throw new BatchFrameError("batch_too_many");
    if (o + LENGTH_PREFIX > bytes.length) throw new BatchFrameError("batch_truncated");
    const len = dv.getUint32(o);
    o += LENGTH_PREFIX;
    if (len === 0) throw new BatchFrameError("batch_empty_entry");
    if (len > bytes.length - o) throw new BatchFrameError("batch_truncated");
    out.push(bytes.subarray(o, o + len));
    o += len;
  }
  if (out.length < 2) throw new BatchFrameError("batch_too_few");
  return out;
}
