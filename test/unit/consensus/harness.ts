// A tiny synchronous driver for unit tests: n replicas, a FIFO network with optional filters,
// a trivial deterministic signer, an instant executor. Not the simulator: just enough wiring to
// exercise each handler.
import { create } from "@bufbuild/protobuf";
import { checkEnvelope, type EnvelopeContext } from "../../../src/consensus/envelope.js";
import { applySigningRecord, emptyPersistedState } from "../../../src/consensus/pbft/persist.js";
import { Replica } from "../../../src/consensus/pbft/replica.js";
import type {
  Action,
  CheckedMessage,
  ConsensusTiming,
  Event,
  OutMessage,
  PersistedState,
  ReplicaConfig,
  StepResult,
} from "../../../src/consensus/pbft/types.js";
import { type Member, StaticEpochSets, ValidatorSet } from "../../../src/consensus/valset/index.js";
import { CommittedBlockSchema } from "../../../src/gen/parabft/v1/consensus_pb.js";
import {
  type Block,
  BlockHeaderSchema,
  BlockSchema,
  type CommitCertificate,
  SignedTxSchema,
} from "../../../src/gen/parabft/v1/types_pb.js";
import { txHash, txsRoot } from "../../../src/types/block.js";
import { concatBytes, u32be } from "../../../src/types/bytes.js";
import { sha256 } from "../../../src/types/hash.js";
import type { MessageSigner, SignatureVerifier } from "../../../src/types/signing.js";

export const CHAIN = "test-chain";

/** sig = H(publicKey ‖ message): deterministic, cheap, forgeable only by knowing the key (fine for tests). */
export function testSigner(index: number): MessageSigner {
  const publicKey = sha256(u32be(index + 1));
  return { publicKey, sign: (m) => sha256(concatBytes(publicKey, m)) };
}
export const testVerifier: SignatureVerifier = {
  verify: (pk, m, sig) => {
    const want = sha256(concatBytes(pk, m));
    if (sig.length !== want.length) return false;
    for (let i = 0; i < want.length; i++) if (want[i] !== sig[i]) return false;
    return true;
  },
};

export const timing: ConsensusTiming = {
  window: 10,
  checkpointInterval: 5,
  maxExecLag: 5,
  viewTimeoutMs: 100,
  viewTimeoutCapMs: 800,
  maxClockSkewMs: 10_000,
};

export function makeSets(n: number, powers?: bigint[]): { set: ValidatorSet; sets: StaticEpochSets } {
  const members: Member[] = [];
  for (let i = 0; i < n; i++) members.push({ publicKey: testSigner(i).publicKey, power: powers?.[i] ?? 1n });
  const set = new ValidatorSet(0n, members);
  return { set, sets: new StaticEpochSets([set]) };
}

export function envCtx(sets: StaticEpochSets): EnvelopeContext {
  return { chainId: CHAIN, sets, verifier: testVerifier, maxMessageBytes: 1 << 20, currentEpoch: 0n };
}

export function makeBlock(set: ValidatorSet, height: bigint, proposer: number, tag = 0): Block {
  // One opaque transaction makes blocks with different tags differ; the header commits to it.
  const tx = create(SignedTxSchema, { body: u32be(tag), signature: new Uint8Array(0) });
  return create(BlockSchema, {
    header: create(BlockHeaderSchema, {
      chainId: CHAIN,
      height,
      epoch: 0n,
      txsRoot: txsRoot([txHash(tx)]),
      validatorsHash: set.hash,
      proposer,
      timestampMs: 1000n,
    }),
    txs: [tx],
  });
}

interface InFlight {
  from: number;
  to: number;
  msg: OutMessage;
}

export interface Delivered {
  height: bigint;
  digest: Uint8Array;
  isNull: boolean;
  cert: CommitCertificate;
  block: Block | null;
}

export class Node {
  replica: Replica;
  persisted: PersistedState = emptyPersistedState();
  delivered: Delivered[] = [];
  /** `atMs`: the cluster's fake clock when it was armed (null without a clock). */
  timer: { token: number; afterMs: number; atMs: bigint | null } | null = null;
  actions: Action[] = [];
  verdicts: StepResult[] = [];
  up = true;
  autoExecute = true;
  /** Overrides the executor's state root (to provoke divergence). */
  rootFor: ((height: bigint, chainHash: Uint8Array) => Uint8Array) | null = null;
  constructor(
    readonly index: number,
    readonly cfg: ReplicaConfig,
  ) {
    this.replica = new Replica(cfg);
  }
}

export type Filter = (m: InFlight) => boolean;

export class Cluster {
  readonly nodes: Node[] = [];
  readonly set: ValidatorSet;
  readonly sets: StaticEpochSets;
  queue: InFlight[] = [];
  /** Return false to drop a message. */
  filter: Filter = () => true;
  /** Blocks the driver hands out per proposal request; tag increments so digests differ. */
  private tag = 0;
  /** Blocks the default driver will still build; each answers one requestProposal. */
  blocksLeft = 1;
  proposalFor: ((node: Node, height: bigint) => Block | null) | null = null;
  /**
   * A fake clock (null: none, events carry no time). With one, every event carries `nowMs`, each
   * delivered message first moves the clock by `msgDelayMs(m)`, and timers fire when it passes them.
   */
  nowMs: bigint | null = null;
  msgDelayMs: (m: InFlight) => number = () => 0;

  constructor(
    n: number,
    opts: {
      powers?: bigint[];
      cfg?: Partial<ReplicaConfig>;
      perNode?: (i: number) => Partial<ReplicaConfig>;
    } = {},
  ) {
    const { set, sets } = makeSets(n, opts.powers);
    this.set = set;
    this.sets = sets;
    for (let i = 0; i < n; i++)
      this.nodes.push(new Node(i, this.config(i, { ...opts.cfg, ...opts.perNode?.(i) })));
  }

  config(i: number, extra: Partial<ReplicaConfig> = {}): ReplicaConfig {
    return {
      chainId: CHAIN,
      epoch: 0n,
      self: i,
      sets: this.sets,
      signer: testSigner(i),
      verifier: testVerifier,
      params: timing,
      maxMessageBytes: 1 << 20,
      ...extra,
    };
  }

  /** Feed an event to one node and route the resulting actions. */
  step(i: number, ev: Event): StepResult {
    const node = this.nodes[i]!;
    const r = node.replica.handle(ev);
    node.verdicts.push(r);
    this.apply(node, r.actions);
    return r;
  }

  apply(node: Node, actions: Action[]): void {
    for (const a of actions) {
      node.actions.push(a);
      switch (a.kind) {
        case "persist":
          node.persisted = applySigningRecord(node.persisted, a.record);
          break;
        case "broadcast":
          for (const n of this.nodes)
            if (n.index !== node.index) this.queue.push({ from: node.index, to: n.index, msg: a.msg });
          break;
        case "send":
          this.queue.push({ from: node.index, to: a.to, msg: a.msg });
          break;
        case "setTimer":
          node.timer = { token: a.token, afterMs: a.afterMs, atMs: this.nowMs };
          break;
        case "cancelTimer":
          node.timer = null;
          break;
        case "deliver":
          node.delivered.push({
            height: a.height,
            digest: a.digest,
            isNull: a.block === null,
            cert: a.certificate,
            block: a.block,
          });
          if (node.autoExecute) {
            const root = node.rootFor
              ? node.rootFor(a.height, a.chainHash)
              : sha256(concatBytes(a.chainHash, Uint8Array.of(1)));
            this.step(node.index, { kind: "executed", height: a.height, stateRoot: root });
          }
          break;
        case "requestProposal": {
          let b: Block | null;
          if (this.proposalFor) b = this.proposalFor(node, a.height);
          else if (this.blocksLeft > 0) {
            this.blocksLeft--;
            b = makeBlock(this.set, a.height, node.index, ++this.tag);
          } else b = null;
          if (b !== null) this.step(node.index, { kind: "proposal", height: a.height, block: b });
          else this.step(node.index, { kind: "pendingWork", count: 0 });
          break;
        }
        case "serveBlocks": {
          const blocks = node.delivered
            .filter((d) => d.height >= a.from && d.height <= a.toHeight)
            .map((d) =>
              create(CommittedBlockSchema, {
                height: d.height,
                ...(d.block !== null ? { block: d.block } : {}),
                certificate: d.cert,
              }),
            );
          this.step(node.index, { kind: "blocksForPeer", to: a.to, blocks });
          break;
        }
        default:
          break;
      }
    }
  }

  /** Deliver queued messages until quiet (bounded). */
  run(maxMessages = 100_000): number {
    let count = 0;
    while (this.queue.length > 0 && count < maxMessages) {
      const m = this.queue.shift()!;
      count++;
      const dest = this.nodes[m.to]!;
      if (!dest.up || !this.nodes[m.from]!.up) continue;
      if (!this.filter(m)) continue;
      if (this.nowMs !== null) {
        this.advance(this.msgDelayMs(m));
        if (!dest.up) continue;
      }
      this.step(m.to, { kind: "message", bytes: m.msg.bytes, from: m.from, ...this.stamp() });
    }
    if (this.queue.length > 0) throw new Error("network did not quiesce");
    return count;
  }

  private stamp(): { nowMs?: bigint } {
    return this.nowMs === null ? {} : { nowMs: this.nowMs };
  }

  /** Moves the fake clock by `ms`, firing (in time order) every timer it passes. */
  advance(ms: number): void {
    if (this.nowMs === null) throw new Error("the cluster has no clock");
    const to = this.nowMs + BigInt(Math.max(0, Math.round(ms)));
    for (;;) {
      let next: Node | null = null;
      let due = 0n;
      for (const n of this.nodes) {
        if (!n.up || n.timer === null || n.timer.atMs === null) continue;
        const at = n.timer.atMs + BigInt(n.timer.afterMs);
        if (at <= to && (next === null || at < due)) {
          next = n;
          due = at;
        }
      }
      if (next === null) break;
      this.nowMs = due;
      this.fireTimer(next.index);
    }
    this.nowMs = to;
  }

  setWork(count: number, nodes: number[] = this.nodes.map((n) => n.index)): void {
    for (const i of nodes) if (this.nodes[i]!.up) this.step(i, { kind: "pendingWork", count });
  }

  fireTimer(i: number): void {
    const n = this.nodes[i]!;
    if (n.timer === null) throw new Error(`node ${i} has no timer armed`);
    const token = n.timer.token;
    n.timer = null;
    this.step(i, { kind: "timer", timer: "view", token });
  }

  tick(nodes: number[] = this.nodes.map((n) => n.index)): void {
    for (const i of nodes) if (this.nodes[i]!.up) this.step(i, { kind: "tick", ...this.stamp() });
  }

  crash(i: number): void {
    this.nodes[i]!.up = false;
    this.queue = this.queue.filter((m) => m.to !== i && m.from !== i);
  }

  /** Restart from persisted signing state (or none) and the delivered blocks as storage. */
  restart(i: number, opts: { persisted?: PersistedState | null; cfg?: Partial<ReplicaConfig> } = {}): Node {
    const old = this.nodes[i]!;
    const last = old.delivered.at(-1);
    let chainHash: Uint8Array = new Uint8Array(32);
    for (const a of old.actions) if (a.kind === "deliver") chainHash = a.chainHash;
    const persisted = opts.persisted === undefined ? old.persisted : opts.persisted;
    const cfg = this.config(i, {
      ...opts.cfg,
      start: { committedHeight: last?.height ?? 0n, chainHash, executedHeight: last?.height ?? 0n },
      persisted,
    });
    const node = new Node(i, cfg);
    node.delivered = old.delivered;
    node.persisted = persisted ?? emptyPersistedState();
    this.nodes[i] = node;
    return node;
  }

  decode(bytes: Uint8Array): CheckedMessage {
    const r = checkEnvelope(bytes, envCtx(this.sets));
    if (r.msg === undefined) throw new Error(`not accepted: ${JSON.stringify(r.verdict)}`);
    return r.msg;
  }

  /** Executes delivered heights `from..to` on node `i` with the default (agreeing) state roots. */
  execute(i: number, from: bigint, to: bigint): void {
    const node = this.nodes[i]!;
    for (const a of [...node.actions]) {
      if (a.kind !== "deliver" || a.height < from || a.height > to) continue;
      const root = sha256(concatBytes(a.chainHash, Uint8Array.of(1)));
      this.step(i, { kind: "executed", height: a.height, stateRoot: root });
    }
  }

  heights(i: number): bigint[] {
    return this.nodes[i]!.delivered.map((d) => d.height);
  }
}

export function sentOf(actions: Action[], kind: OutMessage["kind"]): OutMessage[] {
  const out: OutMessage[] = [];
  for (const a of actions)
    if ((a.kind === "broadcast" || a.kind === "send") && a.msg.kind === kind) out.push(a.msg);
  return out;
}

import { sealMessage } from "../../../src/consensus/envelope.js";
import type { PeerMessage } from "../../../src/gen/parabft/v1/consensus_pb.js";
import {
  CheckpointSchema,
  CommitSchema,
  PeerMessageSchema,
  PrePrepareSchema,
  PrepareSchema,
} from "../../../src/gen/parabft/v1/consensus_pb.js";
import { blockDigest } from "../../../src/types/block.js";
import { checkpointSignBytes, commitSignBytes, prepareSignBytes } from "../../../src/types/signing.js";

/** A signed envelope from validator `from` (epoch 0). */
export function sealFrom(from: number, kind: PeerMessage["kind"], chainId = CHAIN): OutMessage {
  return sealMessage(chainId, 0n, from, testSigner(from), create(PeerMessageSchema, { kind }));
}

export function prepareFrom(from: number, view: bigint, height: bigint, digest: Uint8Array): OutMessage {
  const voteSignature = testSigner(from).sign(prepareSignBytes(CHAIN, 0n, view, height, digest));
  return sealFrom(from, {
    case: "prepare",
    value: create(PrepareSchema, { view, height, blockDigest: digest, voteSignature }),
  });
}

export function commitFrom(from: number, view: bigint, height: bigint, digest: Uint8Array): OutMessage {
  const voteSignature = testSigner(from).sign(commitSignBytes(CHAIN, 0n, view, height, digest));
  return sealFrom(from, {
    case: "commit",
    value: create(CommitSchema, { view, height, blockDigest: digest, voteSignature }),
  });
}

export function checkpointFrom(
  from: number,
  height: bigint,
  chainHash: Uint8Array,
  stateRoot: Uint8Array,
): OutMessage {
  const voteSignature = testSigner(from).sign(checkpointSignBytes(CHAIN, 0n, height, chainHash, stateRoot));
  return sealFrom(from, {
    case: "checkpoint",
    value: create(CheckpointSchema, { height, chainHash, stateRoot, voteSignature }),
  });
}

export function prePrepareFrom(from: number, view: bigint, block: Block): OutMessage {
  const digest = blockDigest(block.header!);
  return sealFrom(from, {
    case: "prePrepare",
    value: create(PrePrepareSchema, { view, height: block.header!.height, blockDigest: digest, block }),
  });
}
