// Bodies (durable with the votes, served to BodyRequests), in-order delivery, and catch-up by state
// transfer (BlockRequest/BlockResponse with commit certificates).
// The pure PBFT state machine (DESIGN §2): (state, event) -> actions. No clocks, sockets or disk;
// iteration only over insertion-ordered maps or explicitly sorted lists, so the same state and the
// same event always yield the same actions.
import { create, toBinary } from "@bufbuild/protobuf";
import {
  BlockRequestSchema,
  BodyRequestSchema,
  BodyResponseSchema,
} from "../../gen/parabft/v1/consensus_pb.js";
import { type Block, BlockSchema, type CommitCertificate } from "../../gen/parabft/v1/types_pb.js";
import { blockDigest, nextChainHash } from "../../types/block.js";
import { bytesEqual, toHex } from "../../types/bytes.js";
import type { Hash } from "../../types/hash.js";
import { ACCEPTED, type Fetched, ign, ReplicaBase, rej, type Slot } from "./base.js";
import type { Height, ValidatorIndex, Verdict, View } from "./types.js";

export abstract class CatchUp extends ReplicaBase {
  protected onBlockRequest(from: ValidatorIndex, lo: Height, hi: Height): Verdict {
    if (lo === 0n || lo > this._committed) return ign("NOT_HANDLED");
    let top = hi < this._committed ? hi : this._committed;
    const cap = lo + this.windowSize - 1n;
    if (top > cap) top = cap;
    this.out.push({ kind: "serveBlocks", to: from, from: lo, toHeight: top });
    return ACCEPTED;
  }

  protected onBlockResponse(
    blocks: readonly { height: Height; block?: Block; certificate?: CommitCertificate }[],
  ): Verdict {
    let useful = false;
    const limit = this._committed + 4n * this.windowSize;
    const sorted = [...blocks].sort((a, b) => (a.height < b.height ? -1 : a.height > b.height ? 1 : 0));
    for (const cb of sorted) {
      const cert = cb.certificate!;
      if (cb.height <= this._committed || cb.height > limit || this.fetched.has(cb.height)) continue;
      if (cert.epoch !== this.epochNo || cb.height <= this.floorHeight) continue;
      if (this.lastHeight !== null && cb.height > this.lastHeight) continue;
      this.fetched.set(cb.height, { block: cb.block ?? null, digest: cert.blockDigest, cert });
      useful = true;
    }
    if (!useful) return ign("DUPLICATE");
    this.tryDeliver();
    if (this.fetchTarget !== null && this._committed >= this.fetchTarget.to) {
      const peer = this.fetchTarget.peer;
      this.fetchTarget = null;
      const best = this.bestPeer();
      if (best !== null && best.committed > this._committed) this.startFetch(best.index, best.committed);
      else if (this._stable > this._committed) this.startFetch(peer, this._stable);
    }
    return ACCEPTED;
  }

  protected onBodyRequest(from: ValidatorIndex, digest: Hash): Verdict {
    const b = this.bodies.get(toHex(digest));
    if (b === undefined) return ign("NOT_HANDLED");
    this.send(
      from,
      this.seal({
        case: "bodyResponse",
        value: create(BodyResponseSchema, { blockDigest: digest, block: b.block }),
      }),
    );
    return ACCEPTED;
  }

  protected onBody(block: Block): Verdict {
    if (block.header === undefined) return rej("MALFORMED");
    const hex = toHex(blockDigest(block.header));
    const h = this.neededBodies.get(hex);
    if (h === undefined) return ign("UNSOLICITED");
    this.neededBodies.delete(hex);
    this.storeBody(h, hex, block);
    // A PREPARE that waited for this body (a NEW-VIEW re-proposal) can be signed now.
    const slot = this.slots.get(h);
    const prop = slot?.proposals.get(this._view);
    if (slot !== undefined && prop?.hex === hex && this.active && h > this._committed) {
      if (this.safety.signedIn("prepare", h, this._view) === undefined)
        this.sendPrepare(slot, this._view, prop.digest);
      this.tryPrepared(slot);
    }
    this.tryDeliver();
    return ACCEPTED;
  }

  /** Delivers committed blocks strictly in height order, without gaps. */
  protected tryDeliver(): void {
    for (;;) {
      const h = this._committed + 1n;
      const slot = this.slots.get(h);
      let item: Fetched | null = null;
      if (slot?.committed) {
        const c = slot.committed;
        if (this.isNullDigest(h, c.digest)) item = { block: null, digest: c.digest, cert: c.cert };
        else {
          const b = this.bodies.get(c.hex);
          if (b !== undefined) item = { block: b.block, digest: c.digest, cert: c.cert };
        }
      }
      if (item === null) {
        const f = this.fetched.get(h);
        if (f !== undefined) item = f;
      }
      if (item === null) return;
      this.fetched.delete(h);
      this.deliver(h, item);
    }
  }

  protected deliver(h: Height, item: Fetched): void {
    this._committed = h;
    this.deliveredDigests.set(h, toHex(item.digest));
    this._chainHash = nextChainHash(this._chainHash, item.digest);
    // Each failed view doubled the request timeout; commits earn it back one step per checkpoint
    // interval, not all at once. A cluster that changed view because it was slow (a loaded host)
    // would otherwise fall straight back to the timeout that was too short, and churn views.
    if (this.failedViews > 0 && h % this.interval === 0n) this.failedViews--;
    this.progress = true;
    this.neededBodies.delete(toHex(item.digest));
    if (this.isCheckpointHeight(h)) this.chainHashes.set(h, this._chainHash);
    this.out.push({
      kind: "deliver",
      height: h,
      epoch: this.epochNo,
      block: item.block,
      digest: item.digest,
      certificate: item.cert,
      chainHash: this._chainHash,
    });
    const sc = this.stableCert;
    if (sc !== undefined && sc.height === h && !bytesEqual(sc.chainHash, this._chainHash)) {
      this.diverge(h, this._chainHash, sc.chainHash);
    }
  }

  protected requestBody(h: Height, digest: Hash, announce: boolean): void {
    const hex = toHex(digest);
    if (this.bodies.has(hex)) return;
    if (announce) {
      if (this.neededBodies.has(hex)) return;
      this.neededBodies.set(hex, h);
      this.out.push({ kind: "fetchBody", height: h, digest });
    }
    this.broadcast(
      this.seal({ case: "bodyRequest", value: create(BodyRequestSchema, { blockDigest: digest }) }),
    );
  }

  /** `encoded`: the block's bytes when at hand (a received PRE-PREPARE's), saving bodyForRecord an encode. */
  protected storeBody(h: Height, hex: string, block: Block, encoded?: Uint8Array): void {
    if (!this.bodies.has(hex)) this.bodies.set(hex, { height: h, block, durable: false, encoded });
  }

  /**
   * The encoded body to put into the signing record that is about to be made durable, or
   * undefined when it already is durable (or is a null block). Marks it durable: the record is
   * synced before the vote it guards is sent.
   */
  protected bodyForRecord(hex: string): Uint8Array | undefined {
    if (this.cfg.testOnlyFaults?.volatileBodies) return undefined;
    const b = this.bodies.get(hex);
    if (b === undefined || b.durable) return undefined;
    b.durable = true;
    const encoded = b.encoded ?? toBinary(BlockSchema, b.block);
    b.encoded = undefined;
    return encoded;
  }

  /** Holds the block to sign for: its body, or nothing when it is the null block of its height. */
  protected holdsBody(h: Height, digest: Hash, hex: string): boolean {
    return this.bodies.has(hex) || this.isNullDigest(h, digest);
  }

  protected bestPeer(): { index: ValidatorIndex; committed: Height } | null {
    let best: { index: ValidatorIndex; committed: Height } | null = null;
    for (const [index, s] of this.peerStatus) {
      if (best === null || s.committed > best.committed) best = { index, committed: s.committed };
    }
    return best;
  }

  protected pickPeer(candidates: readonly ValidatorIndex[]): ValidatorIndex | null {
    const others = candidates.filter((c) => c !== this.self);
    if (others.length === 0) return null;
    const p = others[this.fetchRotation % others.length]!;
    this.fetchRotation++;
    return p;
  }

  protected startFetch(peer: ValidatorIndex, upTo: Height): void {
    if (peer === this.self || upTo <= this._committed) return;
    const from = this._committed + 1n;
    let to = upTo;
    const cap = from + this.windowSize - 1n;
    if (to > cap) to = cap;
    if (this.lastHeight !== null && to > this.lastHeight) to = this.lastHeight;
    if (to < from) return;
    this.fetchTarget = { to, peer, committedAtRequest: this._committed };
    this.send(
      peer,
      this.seal({
        case: "blockRequest",
        value: create(BlockRequestSchema, { fromHeight: from, toHeight: to }),
      }),
    );
    this.out.push({ kind: "fetchBlocks", from, to, peer });
  }

  protected abstract sendPrepare(slot: Slot, view: View, digest: Hash): void;
  protected abstract tryPrepared(slot: Slot): void;
  protected abstract diverge(height: Height, ours: Hash, stable: Hash): void;
}
