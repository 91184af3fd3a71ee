// A node outside the current epoch's set (a joiner before its epoch, a validator voted out)
// follows the chain (issue 11): it never votes, and it takes committed blocks with their
// certificates from other validators' public APIs (the `api` addresses in the config's peers).
// The core checks every certificate against the set of the block's own epoch before delivering.
import { create } from "@bufbuild/protobuf";
import { ParabftClient } from "../client/node.js";
import { type CommittedBlock, CommittedBlockSchema } from "../gen/parabft/v1/consensus_pb.js";
import { errorMessage } from "../types/errors.js";

export interface FollowerModules {
  /** Public API addresses to fetch from (tried in turn). */
  apis: readonly string[];
  following(): boolean;
  committedHeight(): bigint;
  deliver(blocks: CommittedBlock[]): void;
  log: { debug(o: object, m: string): void; warn(o: object, m: string): void };
}

const BATCH = 32;
const POLL_MS = 100;

export class Follower {
  private readonly clients: ParabftClient[];
  private next = 0;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private failures = 0;

  constructor(private readonly mod: FollowerModules) {
    this.clients = mod.apis.map((a) => new ParabftClient(a, { deadlineMs: 3000 }));
  }

  start(): void {
    if (this.clients.length === 0) return;
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const c of this.clients) c.close();
  }

  private async poll(): Promise<void> {
    if (this.busy || !this.mod.following()) return;
    this.busy = true;
    const client = this.clients[this.next % this.clients.length]!;
    try {
      const from = this.mod.committedHeight() + 1n;
      // Only heights the peer has: at the tip, asking for BATCH blocks every poll would cost the
      // peer BATCH refused calls per POLL_MS (each gRPC call is ~0.6 ms of its CPU on a small box).
      const top = (await client.getStatus()).committedHeight;
      if (top < from) {
        this.failures = 0;
        return;
      }
      const n = top - from + 1n < BigInt(BATCH) ? Number(top - from + 1n) : BATCH;
      const blocks: CommittedBlock[] = [];
      // Fetched in parallel, delivered in order up to the first gap: a follower close to the tip
      // keeps up, so it is in step when its epoch makes it a member.
      const got = await Promise.all(
        Array.from({ length: n }, (_, i) => client.getBlock({ height: from + BigInt(i) }).catch(() => null)),
      );
      for (const r of got) {
        if (r === null || r.certificate === undefined) break;
        blocks.push(
          create(CommittedBlockSchema, { height: r.height, block: r.block, certificate: r.certificate }),
        );
      }
      if (blocks.length > 0) {
        this.mod.log.debug({ from: String(from), n: blocks.length, api: client.address }, "following");
        this.mod.deliver(blocks);
      }
      this.failures = 0;
    } catch (err) {
      this.next++;
      if (++this.failures % 20 === 1)
        this.mod.log.warn({ err: errorMessage(err), api: client.address }, "follower fetch failed");
    } finally {
      this.busy = false;
    }
  }
}
