// A replica's messages, both ways: what its core sends (the crash-after-COMMIT fault, the
// adversary's rewrite, the scripted stitch filter, the network's delays, losses and copies) and
// what it receives (the core's verdict, checked against what the sender's role expects).
import { fromBinary } from "@bufbuild/protobuf";
import type { Event, OutMessage, Verdict } from "../consensus/pbft/types.js";
import { PeerMessageSchema } from "../gen/parabft/v1/consensus_pb.js";
import { toHex } from "../types/bytes.js";
import type { Outgoing } from "./byzantine.js";
import type { SimConfig } from "./config.js";
import type { FaultPlan } from "./faults.js";
import type { Violation } from "./invariants.js";
import type { SimNetwork } from "./network.js";
import type { Prng } from "./prng.js";
import type { EventQueue } from "./queue.js";
import { STITCH_BYZANTINE, type StitchAttack } from "./stitch.js";
import { type TraceHash, TraceTag } from "./trace.js";
import type { QEvent, SimNode } from "./types.js";

export interface SimMessagingOptions {
  cfg: SimConfig;
  plan: FaultPlan;
}

export interface SimMessagingModules {
  q: EventQueue<QEvent>;
  network: SimNetwork;
  trace: TraceHash;
  nodes: readonly SimNode[];
  violations: Violation[];
  crashRng: Prng;
  /** The scripted stitch attack (faults `stitch`), or null. */
  stitch: StitchAttack | null;
  /** Hands an event to a replica's core (harness.ts). */
  feed: (node: SimNode, event: Event) => Verdict | null;
  clock: (node: SimNode) => bigint;
}

export class SimMessaging {
  messages = 0;
  rejectedByHonest = 0;
  expectationsChecked = 0;
  /** height -> digests some honest replica signed a COMMIT for (statistics only). */
  private readonly honestCommitted = new Map<bigint, Set<string>>();
  newViewOverrides = 0;
  /** Messages sent per kind (debugging and tuning). */
  readonly sentByKind = new Map<string, number>();

  constructor(
    private readonly opts: SimMessagingOptions,
    private readonly modules: SimMessagingModules,
  ) {}

  private get now(): number {
    return this.modules.q.now;
  }

  /** A message the network delivers: the core judges it; an honest replica's verdict is checked. */
  receive(e: Extract<QEvent, { k: "net" }>): void {
    const node = this.modules.nodes[e.to]!;
    if (node.core === null) return;
    this.messages++;
    this.modules.trace.record(TraceTag.messageDelivered, this.now, e.from, e.to, e.bytes);
    node.adversary?.onReceived(e.bytes);
    const verdict = this.modules.feed(node, {
      kind: "message",
      bytes: e.bytes,
      from: e.from,
      nowMs: this.modules.clock(node),
    });
    if (node.honest && e.expect !== undefined && this.opts.cfg.checkVerdicts !== false) {
      this.expectationsChecked++;
      const k = verdict?.kind;
      // A vote skipped unverified (skipUnneededVotes) is ignored, not judged: not accepted either.
      const skipped = verdict?.kind === "ignore" && verdict.reason === "NOT_NEEDED";
      const ok = e.expect === "notAccept" || skipped ? k !== "accept" : k === e.expect;
      if (!ok) {
        this.modules.violations.push({
          invariant: "verdict",
          atMs: this.now,
          replica: node.index,
          detail: `honest replica ${node.index} gave ${k ?? "no verdict"}${verdict && "reason" in verdict ? ` (${verdict.reason})` : ""} to a message from Byzantine ${e.from} that must get ${e.expect}`,
        });
      }
    }
    if (node.honest && verdict?.kind === "reject") {
      this.rejectedByHonest++;
      if (e.honest && this.opts.cfg.checkVerdicts !== false) {
        this.modules.violations.push({
          invariant: "verdict",
          atMs: this.now,
          replica: node.index,
          detail: `honest replica ${node.index} rejected (${verdict.reason}) a message from honest replica ${e.from}`,
        });
      }
    }
  }

  send(node: SimNode, to: readonly number[], msg: OutMessage): void {
    this.sentByKind.set(msg.kind, (this.sentByKind.get(msg.kind) ?? 0) + to.length);
    this.noteForStats(node, msg);
    if (msg.kind === "prePrepare") node.sentPrePrepare = true;
    if (
      msg.kind === "commit" &&
      node.honest &&
      this.opts.plan.crashAfterCommitPerMille > 0 &&
      this.now < this.opts.plan.stableAtMs - 1600 &&
      this.modules.crashRng.chance(this.opts.plan.crashAfterCommitPerMille, 1000)
    ) {
      // Crashes right after this COMMIT leaves: the sends of this step still happen.
      this.modules.q.schedule(0, {
        k: "crash",
        r: node.index,
        restartAfterMs: 50 + this.modules.crashRng.int(1000),
      });
    }
    if (node.adversary !== null) {
      for (const o of node.adversary.onOutgoing(to, msg)) this.route(node.index, o, false);
      return;
    }
    for (const r of to) this.route(node.index, { to: r, bytes: msg.bytes, extraDelayMs: 0 }, true);
  }

  /** Statistics only (never changes the run): does a NEW-VIEW override an honestly COMMITted digest? */
  private noteForStats(node: SimNode, msg: OutMessage): void {
    if (msg.kind !== "commit" && msg.kind !== "newView") return;
    const pm = fromBinary(PeerMessageSchema, msg.envelope.payload);
    if (pm.kind.case === "commit" && node.honest) {
      const c = pm.kind.value;
      let set = this.honestCommitted.get(c.height);
      if (set === undefined) {
        set = new Set();
        this.honestCommitted.set(c.height, set);
      }
      set.add(toHex(c.blockDigest));
    } else if (pm.kind.case === "newView") {
      for (const p of pm.kind.value.proposals) {
        const set = this.honestCommitted.get(p.height);
        if (set === undefined) continue;
        const hex = toHex(p.blockDigest);
        if ([...set].some((d) => d !== hex)) {
          this.newViewOverrides++;
          return;
        }
      }
    }
  }

  private route(from: number, o: Outgoing, honest: boolean): void {
    if (this.modules.stitch !== null) {
      const d = this.modules.stitch.route(from, o.to, o.bytes, this.now);
      for (const i of d.inject)
        this.routeNow(STITCH_BYZANTINE, { to: i.to, bytes: i.bytes, extraDelayMs: 0 }, false);
      if (!d.deliver) return;
    }
    this.routeNow(from, o, honest);
  }

  private routeNow(from: number, o: Outgoing, honest: boolean): void {
    for (const d of this.modules.network.route(from, o.to, o.bytes)) {
      this.modules.q.schedule(d.delayMs + o.extraDelayMs, {
        k: "net",
        from,
        to: d.to,
        bytes: d.bytes,
        honest,
        expect: o.expect,
      });
    }
  }
}
