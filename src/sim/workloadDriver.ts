// The run's workload: clients submitting transfers (and, with epochs, staking calls) to every
// live replica, resubmitting what has not committed, and each primary's block built from its
// mempool when its core asks for a proposal.
import { create } from "@bufbuild/protobuf";
import { EpochReplica } from "../consensus/pbft/epochReplica.js";
import type { Event, Verdict } from "../consensus/pbft/types.js";
import type { ValidatorSet } from "../consensus/valset/index.js";
import { BlockSchema } from "../gen/parabft/v1/types_pb.js";
import { blockDigest, commitCertificateHash, txsRoot } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { SIM_CHAIN_ID, type SimConfig, seedSecret } from "./config.js";
import type { SimElections } from "./elections.js";
import type { LivenessChecker, ValidityChecker } from "./invariants.js";
import type { Prng } from "./prng.js";
import type { EventQueue } from "./queue.js";
import type { StandInKeyRegistry } from "./signer.js";
import type { QEvent, SimNode } from "./types.js";
import { SimClient, type SimTx } from "./workload.js";

/** Clients resubmit uncommitted transactions this often (virtual ms). */
const RETRY_MS = 1000;
const DEFAULT_TX_INTERVAL_MS: [number, number] = [150, 900];

export interface WorkloadDriverOptions {
  cfg: SimConfig;
  clientCount: number;
  submitUntilMs: number;
  /** The genesis set (its hash goes in the headers of a run without epochs). */
  set: ValidatorSet;
}

export interface WorkloadDriverModules {
  q: EventQueue<QEvent>;
  registry: StandInKeyRegistry;
  clientRng: Prng;
  nodes: readonly SimNode[];
  liveness: LivenessChecker;
  validity: ValidityChecker;
  elections: SimElections | null;
  /** Virtual time each height was first proposed (deliveries.ts reads it). */
  proposedAt: Map<bigint, number>;
  /** Hands an event to a replica's core (harness.ts). */
  feed: (node: SimNode, event: Event) => Verdict | null;
  reportPending: (node: SimNode) => void;
  clock: (node: SimNode) => bigint;
}

export class WorkloadDriver {
  /** Every transaction a client sent, by hash. */
  readonly allTxs = new Map<string, SimTx>();
  private readonly clients: SimClient[] = [];
  private readonly clientPending: { tx: SimTx; at: number }[][] = [];
  txSubmitted = 0;

  constructor(
    private readonly opts: WorkloadDriverOptions,
    private readonly modules: WorkloadDriverModules,
  ) {
    const cfg = opts.cfg;
    for (let c = 0; c < opts.clientCount; c++) {
      this.clientPending.push([]);
      this.clients.push(
        new SimClient(SIM_CHAIN_ID, modules.registry, (i) => seedSecret(cfg.seed, `client${c}`, i)),
      );
    }
  }

  private get now(): number {
    return this.modules.q.now;
  }

  /** The first submissions and retries (and, with epochs, the extra validators' registrations). */
  start(): void {
    const [lo, hi] = this.opts.cfg.txIntervalMs ?? DEFAULT_TX_INTERVAL_MS;
    // (Epochs) The extra validators register at once (their operators' first transactions).
    for (const t of this.modules.elections?.registrationTxs() ?? []) this.submitTx(0, t);
    this.clients.forEach((_, c) => {
      this.modules.q.schedule(this.modules.clientRng.range(lo, hi), { k: "submit", client: c });
      this.modules.q.schedule(RETRY_MS + this.modules.clientRng.int(RETRY_MS), { k: "retry", client: c });
    });
  }

  submit(c: number): void {
    if (this.now > this.opts.submitUntilMs) return;
    const [lo, hi] = this.opts.cfg.txIntervalMs ?? DEFAULT_TX_INTERVAL_MS;
    this.modules.q.schedule(this.modules.clientRng.range(lo, hi), { k: "submit", client: c });
    this.submitTx(
      c,
      this.modules.elections?.nextStakingCall(c) ?? this.clients[c]!.nextTransfer(this.modules.clientRng),
    );
  }

  private submitTx(c: number, t: SimTx): void {
    this.allTxs.set(t.hashHex, t);
    this.txSubmitted++;
    this.modules.liveness.onSubmit(this.now, t.hashHex);
    this.clientPending[c]!.push({ tx: t, at: this.now });
    this.offer(t);
  }

  /** The API of every live validator receives it (the real node also gossips it with TxBatch). */
  private offer(t: SimTx): void {
    for (const node of this.modules.nodes) {
      if (node.core === null) continue;
      if (node.mempool.add(t)) this.modules.reportPending(node);
    }
  }

  /**
   * Clients resubmit what has not committed after a while (as SubmitTxAndWait callers retry),
   * so a replica that was down when a transaction was first sent still learns it.
   */
  retry(c: number): void {
    this.modules.q.schedule(RETRY_MS, { k: "retry", client: c });
    const pending = this.clientPending[c]!.filter((p) => !this.modules.liveness.isCommitted(p.tx.hashHex));
    this.clientPending[c] = pending;
    for (const p of pending) if (this.now - p.at >= RETRY_MS) this.offer(p.tx);
  }

  buildProposal(node: SimNode, height: bigint): void {
    const taken = node.mempool.take(height, 500, 1024 * 1024);
    // Nothing left to propose: stay idle; the next pendingWork report lets the core ask again.
    if (taken.length === 0) {
      node.reportedPending = -1;
      this.modules.reportPending(node);
      return;
    }
    const lastCommit = node.lastCert ?? undefined;
    const core = node.core;
    const epoch = core instanceof EpochReplica ? core.epoch : 0n;
    const proposer = core instanceof EpochReplica ? (core.selfIndex ?? -1) : node.index;
    const header = {
      chainId: SIM_CHAIN_ID,
      height,
      epoch,
      txsRoot: txsRoot(taken.map((t) => hexBytes(t.hashHex))),
      validatorsHash: core instanceof EpochReplica ? core.set.hash : this.opts.set.hash,
      proposer,
      timestampMs: this.modules.clock(node),
      lastCommitHash: lastCommit === undefined ? new Uint8Array(0) : commitCertificateHash(lastCommit),
    };
    const block = create(BlockSchema, { header, txs: taken.map((t) => t.tx), lastCommit });
    const digest = blockDigest(block.header!);
    this.modules.validity.recordProposal(digest, { proposer });
    node.bodies.set(toHex(digest), block);
    node.sentPrePrepare = false;
    this.modules.feed(node, { kind: "proposal", height, block, nowMs: this.modules.clock(node) });
    if (node.sentPrePrepare) {
      if (!this.modules.proposedAt.has(height)) this.modules.proposedAt.set(height, this.now);
    } else if (node.core !== null) {
      // The core declined the block (e.g. its window moved meanwhile): the transactions return.
      node.mempool.release(height);
      this.modules.reportPending(node);
    }
  }
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
