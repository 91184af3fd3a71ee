// What happens when a replica's core delivers a committed block: the agreement, order,
// validity and epoch invariants (honest replicas), liveness and latency bookkeeping, the
// replica's stored chain and its executor's queue; and the isolate-the-committer fault.
import { createHash } from "node:crypto";
import { committedBlockOf } from "../consensus/pbft/epochReplica.js";
import type { Action } from "../consensus/pbft/types.js";
import { blockDigest } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { SIM_CHAIN_ID } from "./config.js";
import type { SimElections } from "./elections.js";
import type { FaultPlan } from "./faults.js";
import type {
  AgreementChecker,
  LivenessChecker,
  OrderChecker,
  ValidityChecker,
  Violation,
} from "./invariants.js";
import type { SimNetwork } from "./network.js";
import type { Prng } from "./prng.js";
import type { EventQueue } from "./queue.js";
import type { StandInKeyRegistry } from "./signer.js";
import { type TraceHash, TraceTag } from "./trace.js";
import type { QEvent, SimNode } from "./types.js";
import { type SimTx, simTx, statelessTxProblem } from "./workload.js";

export interface SimDeliveriesOptions {
  plan: FaultPlan;
  /** Replicas in the pool: n, plus the extra validators with epochs. */
  poolSize: number;
}

export interface SimDeliveriesModules {
  q: EventQueue<QEvent>;
  trace: TraceHash;
  registry: StandInKeyRegistry;
  network: SimNetwork;
  violations: Violation[];
  agreement: AgreementChecker;
  order: OrderChecker;
  validity: ValidityChecker;
  liveness: LivenessChecker;
  elections: SimElections | null;
  crashRng: Prng;
  /** Every transaction a client sent, by hash (workloadDriver.ts). */
  allTxs: ReadonlyMap<string, SimTx>;
  /** Virtual time each height was first proposed (workloadDriver.ts writes it). */
  proposedAt: ReadonlyMap<bigint, number>;
  /** Queues the replica's executor (harness.ts). */
  scheduleExec: (node: SimNode) => void;
}

export class SimDeliveries {
  private readonly firstDelivered = new Set<bigint>();
  readonly commitLatencies: number[] = [];
  firstCommitMs = -1;

  constructor(
    private readonly opts: SimDeliveriesOptions,
    private readonly modules: SimDeliveriesModules,
  ) {}

  private get now(): number {
    return this.modules.q.now;
  }

  deliver(node: SimNode, a: Extract<Action, { kind: "deliver" }>): void {
    const { height, digest } = a;
    this.modules.trace.record(TraceTag.delivered, this.now, node.index, height, digest);
    const txs: SimTx[] = [];
    let invalidTx: string | null = null;
    if (a.block !== null) {
      for (const tx of a.block.txs) {
        const h = toHex(createHash("sha256").update(tx.body).digest());
        let st = this.modules.allTxs.get(h);
        if (st === undefined) {
          try {
            st = simTx(tx);
          } catch {
            invalidTx ??= "undecodable body";
            continue;
          }
        }
        txs.push(st);
        if (node.honest && invalidTx === null)
          invalidTx = statelessTxProblem(tx, SIM_CHAIN_ID, this.modules.registry);
      }
    }
    if (node.honest) {
      const body =
        a.block === null
          ? null
          : {
              height: a.block.header?.height ?? -1n,
              proposer: a.block.header?.proposer ?? -1,
              recomputedDigest:
                a.block.header === undefined ? new Uint8Array(0) : blockDigest(a.block.header),
              invalidTx,
            };
      const v =
        this.modules.agreement.onCommit(this.now, node.index, height, digest) ??
        this.modules.order.onDeliver(this.now, node.index, height) ??
        this.modules.validity.onCommit(this.now, node.index, height, digest, body);
      if (v !== null) this.modules.violations.push(v);
      const ev = this.modules.elections?.checkEpoch(node, a) ?? null;
      if (ev !== null) this.modules.violations.push(ev);
      if (this.firstCommitMs < 0) this.firstCommitMs = this.now;
      if (!this.firstDelivered.has(height)) {
        this.firstDelivered.add(height);
        this.modules.elections?.onFirstDelivery(node, a);
        this.maybeIsolate(node);
        const at = this.modules.proposedAt.get(height);
        if (at !== undefined) this.commitLatencies.push(this.now - at);
      }
      for (const t of txs) this.modules.liveness.onTxCommitted(this.now, t.hashHex);
    }
    node.blocks.set(height, committedBlockOf(a));
    if (a.block !== null) node.bodies.set(toHex(digest), a.block);
    node.committedHeight = height;
    node.chainHash = a.chainHash;
    node.chainHashes.set(height, a.chainHash);
    node.lastCert = a.certificate;
    node.mempool.onCommitted(height, txs);
    node.exec.enqueue(height, digest, a.block?.txs ?? []);
    this.modules.scheduleExec(node);
  }

  /** Targeted fault: cut the first committer of a height off, so a view change happens without it. */
  private maybeIsolate(node: SimNode): void {
    if (this.opts.plan.isolateCommitterPerMille === 0 || this.modules.network.partitioned) return;
    if (this.now >= this.opts.plan.stableAtMs - 2000) return;
    if (!this.modules.crashRng.chance(this.opts.plan.isolateCommitterPerMille, 1000)) return;
    const others: number[] = [];
    for (let i = 0; i < this.opts.poolSize; i++) if (i !== node.index) others.push(i);
    this.modules.q.schedule(0, {
      k: "fault",
      ev: { at: 0, kind: "partition", groups: [[node.index], others] },
    });
    this.modules.q.schedule(500 + this.modules.crashRng.int(1500), {
      k: "fault",
      ev: { at: 0, kind: "heal" },
    });
  }
}
