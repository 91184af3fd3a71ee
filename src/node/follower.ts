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
/** While following: one fetch round per POLL_MS. */
const POLL_MS = 100;
/**
 * While not following (every validator in the set, nearly always): whether to follow is checked
 * this often. A timer every 100 ms with nothing to do cost an idle validator ~2 ms of CPU per second
 * (issue 14, bench/results/l18-notes.md); an epoch change that makes the node a follower calls
 * wake() and starts it at once, so only the `lagging` case waits up to this long.
 */
const IDLE_CHECK_MS = 1_000;

export class Follower {
  private readonly clients: ParabftClient[];
  private next = 0;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private stopped = true;
  private failures = 0;

  constructor(private readonly mod: FollowerModules) {
    this.clients = mod.apis.map((a) => new ParabftClient(a, { deadlineMs: 3000 }));
  }

  start(): void {
    if (this.clients.length === 0) return;
    this.stopped = false;
    this.schedule(POLL_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const c of this.clients) c.close();
  }

  /** Checks now whether to follow (the node just left the set): no wait for the idle check. */
  wake(): void {
    if (this.stopped || this.clients.length === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.check();
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref();
  }

  /** One turn: a fetch round every POLL_MS while following, else the next check in IDLE_CHECK_MS. */
  private check(): void {
    this.timer = null;
    if (this.stopped) return;
    const following = this.mod.following();
    this.schedule(following ? POLL_MS : IDLE_CHECK_MS);
    if (following) void this.poll();
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
