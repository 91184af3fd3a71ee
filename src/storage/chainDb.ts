// The chain's durable record (DESIGN §5, §7): what the node and the execution pipeline read and
// write. Two atomic batches per block: the commit batch (sync) when consensus delivers, and the
// execution batch (not synced: recovery re-executes from committed blocks) after execution.

import type { ExecutionResult } from "../exec/types.js";
import type { CheckpointCertificate } from "../gen/parabft/v1/consensus_pb.js";
import type { CommitCertificate, Receipt, SignedTx } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import { u64be } from "../types/bytes.js";
import type { Hash } from "../types/hash.js";
import {
  ChainBlocks,
  type CommitBatchInput,
  type CommittedBlockRecord,
  META_COMMITTED,
  type StoredBlock,
  type TxLocation,
} from "./chainBlocks.js";
import { ChainEvidence, type StoredEvidence } from "./chainEvidence.js";
import { ChainState, type KeptWriteSet, META_EXECUTED, META_STATE_ROOT } from "./chainState.js";
import { Db, type DbOpenOpts } from "./db.js";
import { StorageError } from "./errors.js";
import { metaKey, readU64 } from "./keys.js";
import { RESET_TESTNET_HINT } from "./signingState.js";

// The three concerns live beside this file (ChainDb wires them to one Db and delegates):
// chainBlocks.ts the commit side, chainState.ts the execution side, chainEvidence.ts
// checkpoints and evidence.
export {
  type CommitBatchInput,
  type CommittedBlockRecord,
  emptyCommitCertificate,
  type StoredBlock,
  type TxLocation,
} from "./chainBlocks.js";
export type { StoredEvidence } from "./chainEvidence.js";
export { DEFAULT_STATE_APPLY_ENTRIES, type KeptWriteSet } from "./chainState.js";

/** Bump on any incompatible change of a bucket's key or value layout. */
/** 2: commit certificates carry their view (protocol version 2); version-1 databases are refused. */
export const SCHEMA_VERSION = 2;

const META_SCHEMA = metaKey("schemaVersion");
const META_EXEC_LAYOUT = metaKey("execLayout");

/**
 * How execution results are laid out, versioned apart from SCHEMA_VERSION (the commit side).
 * 1 (no marker): per-tx receipt and tx-seen keys, every state write a key in the execution batch.
 * 2: one write-set log and one receipts value per block; the state bucket is brought up to date
 *    in the background (see writeExecutionBatch).
 * 3: as 2, but a sender's recent-transactions record lives inside its account value
 *    (src/exec/codec.ts), not under a key of its own: 2 state keys per transfer, not 3.
 * Older layouts are refused, not migrated: their state roots were computed under other rules
 * (layout 1: no fees, per-nonce tx-seen records; layout 2: the separate record key), so a node
 * re-executing from them would disagree with its peers.
 */
export const EXEC_LAYOUT = 3;

export type WriteKind = "commit" | "execution" | "checkpoint" | "evidence" | "state";

export interface ChainDbOpts extends DbOpenOpts {
  log?: Logger;
  /** Called after each batch with its wall time: feeds the RocksDB write latency metric. */
  onWrite?: (kind: WriteKind, ms: number, ops: number) => void;
  /** Fold the write-set logs into the state bucket once they hold this many entries. */
  stateApplyEntries?: number;
  /**
   * Heights whose write set (with the state root before it) is kept for good in the
   * epochWriteSet bucket, in the same atomic batch as the execution results (DPoS: the last
   * block of each epoch, for GetEpochSetProof). Unset: none.
   */
  keepWriteSetOf?: (height: bigint) => boolean;
}

export class ChainDb {
  private readonly blocks: ChainBlocks;
  private readonly state: ChainState;
  private readonly evidence: ChainEvidence;

  private constructor(
    readonly db: Db,
    opts: ChainDbOpts,
    committed: bigint,
    executed: bigint,
  ) {
    this.blocks = new ChainBlocks(opts, { db }, committed);
    this.state = new ChainState(opts, { db, blocks: this.blocks }, executed);
    this.evidence = new ChainEvidence(opts, { db });
  }

  static async open(dir: string, opts: ChainDbOpts = {}): Promise<ChainDb> {
    // A block's execution batch carries a few MB of logs: a 4 MiB memtable (the binding's
    // default) would flush and compact after every block.
    const db = await Db.open(dir, { writeBufferSize: 64 * 1024 * 1024, ...opts });
    try {
      const raw = await db.get(META_SCHEMA);
      if (raw === undefined) {
        await db.put(META_SCHEMA, u64be(SCHEMA_VERSION), { sync: true });
      } else {
        const found = Number(readU64(raw));
        if (found < SCHEMA_VERSION) {
          throw new StorageError(
            "SCHEMA_TOO_OLD",
            { dir, found, supported: SCHEMA_VERSION },
            `database at ${dir} has schema version ${found} (view-less commit certificates); ${RESET_TESTNET_HINT}`,
          );
        }
        if (found > SCHEMA_VERSION) {
          throw new StorageError(
            "SCHEMA_TOO_NEW",
            { dir, found, supported: SCHEMA_VERSION },
            `database at ${dir} has schema version ${found}; this build supports up to ${SCHEMA_VERSION}`,
          );
        }
      }
      await checkExecLayout(db, dir);
    } catch (err) {
      await db.close();
      throw err;
    }
    const [committed, executed] = await db.getMany([META_COMMITTED, META_EXECUTED]);
    const chain = new ChainDb(
      db,
      opts,
      committed === undefined ? 0n : readU64(committed),
      executed === undefined ? 0n : readU64(executed),
    );
    await chain.state.loadPendingLogs();
    opts.log?.info(
      { dir, committed: await chain.getCommittedHeight(), executed: await chain.getExecutedHeight() },
      "chain database opened",
    );
    return chain;
  }

  async close(): Promise<void> {
    // Pending logs are durable: an apply cut short here is finished by the next one.
    await this.state.stopFolding();
    await this.db.close();
  }

  async getSchemaVersion(): Promise<number> {
    const raw = await this.db.get(META_SCHEMA);
    return raw === undefined ? 0 : Number(readU64(raw));
  }

  // ---- commit batch (chainBlocks.ts) ----------------------------------------------------------

  writeCommitBatch(input: CommitBatchInput): Promise<void> {
    return this.blocks.writeCommitBatch(input);
  }

  /** 0 when nothing is committed yet (genesis). */
  getCommittedHeight(): Promise<bigint> {
    return this.blocks.getCommittedHeight();
  }

  getBlock(height: bigint): Promise<StoredBlock | undefined> {
    return this.blocks.getBlock(height);
  }

  getBlockByDigest(digest: Hash): Promise<StoredBlock | undefined> {
    return this.blocks.getBlockByDigest(digest);
  }

  getCertificate(height: bigint): Promise<CommitCertificate | undefined> {
    return this.blocks.getCertificate(height);
  }

  getBlockBytes(height: bigint): Promise<Uint8Array | undefined> {
    return this.blocks.getBlockBytes(height);
  }

  getTx(hash: Hash): Promise<(TxLocation & { tx: SignedTx }) | undefined> {
    return this.blocks.getTx(hash);
  }

  getTxLocation(hash: Hash): Promise<TxLocation | undefined> {
    return this.blocks.getTxLocation(hash);
  }

  getCommittedRange(from: bigint, to: bigint, limit?: number): Promise<CommittedBlockRecord[]> {
    return this.blocks.getCommittedRange(from, to, limit);
  }

  // ---- execution batch and state (chainState.ts) ----------------------------------------------

  writeExecutionBatch(result: ExecutionResult): Promise<void> {
    return this.state.writeExecutionBatch(result);
  }

  /** Folds every pending write-set log into the state bucket now (tests, benchmarks, tools). */
  flushState(): Promise<void> {
    return this.state.flushState();
  }

  /** Write-set log entries not yet in the state bucket (metrics, tests). */
  get pendingStateEntries(): number {
    return this.state.pendingStateEntries;
  }

  getExecutedHeight(): Promise<bigint> {
    return this.state.getExecutedHeight();
  }

  /** The state root after the executed height; undefined before any execution (genesis). */
  getStateRoot(): Promise<Hash | undefined> {
    return this.state.getStateRoot();
  }

  getState(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.state.getState(key);
  }

  getStateSnapshot(
    keys: readonly Uint8Array[],
  ): Promise<{ height: bigint; values: (Uint8Array | undefined)[] }> {
    return this.state.getStateSnapshot(keys);
  }

  getReceipt(hash: Hash): Promise<Receipt | undefined> {
    return this.state.getReceipt(hash);
  }

  iterateState(): AsyncGenerator<[key: Uint8Array, value: Uint8Array]> {
    return this.state.iterateState();
  }

  writeGenesisState(
    entries: Iterable<{ key: Uint8Array; value: Uint8Array }>,
    stateRoot?: Hash,
  ): Promise<void> {
    return this.state.writeGenesisState(entries, stateRoot);
  }

  getKeptWriteSet(height: bigint): Promise<KeptWriteSet | undefined> {
    return this.state.getKeptWriteSet(height);
  }

  // ---- checkpoints and evidence (chainEvidence.ts) --------------------------------------------

  putStableCheckpoint(cert: CheckpointCertificate): Promise<void> {
    return this.evidence.putStableCheckpoint(cert);
  }

  getStableCheckpoint(): Promise<CheckpointCertificate | undefined> {
    return this.evidence.getStableCheckpoint();
  }

  getCheckpoint(height: bigint): Promise<CheckpointCertificate | undefined> {
    return this.evidence.getCheckpoint(height);
  }

  putEvidence(e: StoredEvidence): Promise<void> {
    return this.evidence.putEvidence(e);
  }

  listEvidence(from?: bigint, to?: bigint): Promise<StoredEvidence[]> {
    return this.evidence.listEvidence(from, to);
  }
}

/** What each refused layout was, for the EXEC_LAYOUT_OLD message. */
const OLD_LAYOUTS: Record<number, string> = {
  1: "per-transaction keys, no fees",
  2: "the recent-transactions record under a key of its own",
};

/**
 * Refuses a database whose execution results use an older layout (1: a state root but no
 * marker; 2: its marker), naming how to rebuild it; marks a database with no execution results
 * yet as the current layout.
 */
async function checkExecLayout(db: Db, dir: string): Promise<void> {
  const raw = await db.get(META_EXEC_LAYOUT);
  if (raw === undefined) {
    if ((await db.get(META_STATE_ROOT)) !== undefined) throw layoutOld(dir, 1);
    await db.put(META_EXEC_LAYOUT, u64be(EXEC_LAYOUT), { sync: true });
    return;
  }
  const found = Number(readU64(raw));
  if (found > EXEC_LAYOUT) {
    throw new StorageError(
      "SCHEMA_TOO_NEW",
      { dir, found, supported: EXEC_LAYOUT },
      `database at ${dir} has execution layout ${found}; this build reads layout ${EXEC_LAYOUT} only`,
    );
  }
  if (found !== EXEC_LAYOUT) throw layoutOld(dir, found);
}

function layoutOld(dir: string, found: number): StorageError {
  const what = OLD_LAYOUTS[found] ?? "an unknown older layout";
  return new StorageError(
    "EXEC_LAYOUT_OLD",
    { dir, found, supported: EXEC_LAYOUT },
    `database at ${dir} holds execution state in layout ${found} (${what}); ` +
      `this build reads layout ${EXEC_LAYOUT} only and never reinterprets old state. Rebuild it: ` +
      `stop the node, delete ${dir}, and run \`parabft start --home <home>\`: it re-creates ` +
      `genesis and catches the chain up from its peers (re-executing every block)`,
  );
}
