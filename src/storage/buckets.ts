// One-byte key prefixes: RocksDB here has no column families, so the prefix IS the bucket.
// Append only: never renumber, never reuse a retired prefix (old databases still hold it).
export enum Bucket {
  /** Schema version, committed height, executed height, state root, stable checkpoint. */
  meta = 0x00,
  /** u64be height -> encoded Block (absent for a null block, see blockMeta). */
  block = 0x01,
  /** block digest -> u64be height. */
  blockByDigest = 0x02,
  /** u64be height -> encoded CommitCertificate. */
  commitCert = 0x03,
  /** tx hash -> u64be height ‖ u32be index. */
  txIndex = 0x04,
  /** state key -> value. */
  state = 0x05,
  /** Retired with execution layout 1 (tx hash -> encoded Receipt). Never reuse. */
  receipt = 0x06,
  /** u64be height -> encoded CheckpointCertificate (stable ones). */
  checkpoint = 0x07,
  /** u64be height ‖ evidence id -> encoded evidence. */
  evidence = 0x08,
  /** u64be height -> digest ‖ chain hash ‖ u64be block time ‖ null flag. */
  blockMeta = 0x09,
  /**
   * tx hash ‖ u64be height ‖ u32be index -> empty: every inclusion of a tx after its first (the
   * first is in txIndex). Rare; getReceipt reads it when the first inclusion did not count.
   */
  txReinclusion = 0x0a,
  // 0x20+: execution layout 2 (issue 13), numbered apart from the commit-side buckets.
  /** u64be height -> the block's write-set log (execLog.ts), until folded into `state`. */
  execLog = 0x20,
  /** u64be height -> the block's receipts in one value (execLog.ts); found via txIndex. */
  blockReceipts = 0x21,
  /**
   * u64be height -> state root before the height ‖ the height's write-set log (execLog.ts), kept
   * for the heights ChainDbOpts.keepWriteSetOf names (DPoS: the last block of each epoch, whose
   * write set proves the election to light clients). Never folded or deleted.
   */
  epochWriteSet = 0x22,
}
