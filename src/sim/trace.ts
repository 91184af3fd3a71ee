// The trace hash: SHA-256 over the sequence of observable events (message deliveries,
// commits, deliveries to execution, crashes). Two runs of one seed must produce the same
// hash; that is the replay proof behind `parabft sim --seed S`.
import { createHash, type Hash as NodeHash } from "node:crypto";
import { u32be, u64be } from "../types/bytes.js";

export class TraceHash {
  private readonly h: NodeHash = createHash("sha256");
  events = 0;

  /** Records one event: a small tag, the virtual time and any number of byte fields. */
  record(tag: number, timeMs: number, ...fields: (Uint8Array | number | bigint)[]): void {
    this.events++;
    this.h.update(u32be(tag));
    this.h.update(u64be(timeMs));
    for (const f of fields) {
      if (typeof f === "number") this.h.update(u32be(f));
      else if (typeof f === "bigint") this.h.update(u64be(f));
      else {
        this.h.update(u32be(f.length));
        this.h.update(f);
      }
    }
  }

  /** Finalises the hash; the trace accepts no further events afterwards. */
  digestHex(): string {
    return this.h.digest("hex");
  }
}

export const TraceTag = {
  messageDelivered: 1,
  committed: 2,
  delivered: 3,
  crashed: 4,
  restarted: 5,
  executed: 6,
  timer: 7,
  partition: 8,
} as const;
