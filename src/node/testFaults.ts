// TEST-ONLY faults for the fault suites (test/containers, test/cluster). Every one is off unless its
// environment variable is set; a validator started without them never builds a TestFaults.
//
//   PARABFT_TEST_PEER_DELAY_MS="<ms>[:<jitter ms>]"  peer envelopes this node receives are handed to
//       it that much later, in arrival order (PeerNetwork.setTestOnlyDelay; the kernel has no netem)
//   PARABFT_TEST_CLOCK_OFFSET_MS="<signed ms>"       added to the consensus driver's wall clock: the
//       timestamps of the blocks it proposes and the "now" of the core's timestamp-skew check
//   PARABFT_TEST_EQUIVOCATE="<index>[,<index>...]|*" those validators equivocate (Equivocator below)
//   PARABFT_TEST_FAULTS_FILE="<path>"                JSON {"peerDelayMs", "peerJitterMs",
//       "clockOffsetMs", "equivocate": boolean}, re-read every 250 ms, so a test can start and heal
//       a fault on a running validator (a relative path is in the validator's home, which for a
//       container is a bind mount); a field it sets wins over the environment, a missing file or
//       a field it leaves out means the environment's value
//   PARABFT_TEST_CRASH_AFTER_PERSIST, PARABFT_TEST_ACK_BEFORE_COMMIT, PARABFT_TEST_HOLD_COMMIT_WRITES
//       see crashAfterPersistForTests, ACK_BEFORE_COMMIT_FOR_TESTS and holdCommitWritesForTests at
//       the end of this file
import { existsSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { sealMessage } from "../consensus/envelope.js";
import type { SigningRecord } from "../consensus/pbft/types.js";
import { EnvelopeSchema, type PeerMessage, PeerMessageSchema } from "../gen/parabft/v1/consensus_pb.js";
import { BlockSchema } from "../gen/parabft/v1/types_pb.js";
import type { Logger } from "../logger/index.js";
import { blockDigest } from "../types/block.js";
import { toHex } from "../types/bytes.js";
import { sha256 } from "../types/hash.js";
import { commitSignBytes, type MessageSigner, prepareSignBytes } from "../types/signing.js";
import { ConfigError } from "./config.js";

export interface FaultValues {
  peerDelayMs: number;
  peerJitterMs: number;
  clockOffsetMs: number;
  equivocate: boolean;
}

/** What the driver sends through: the peer network, or the equivocator in front of it. */
export interface DriverNet {
  send(to: number, bytes: Uint8Array): boolean;
  broadcast(bytes: Uint8Array): number;
  penalize(peer: number, reason: string, weight?: number): void;
}

const POLL_MS = 250;

function int(env: string, raw: string): number {
  const v = Number(raw);
  if (!Number.isSafeInteger(v)) throw new ConfigError(env, `must be an integer, got '${raw}'`);
  return v;
}

export class TestFaults {
  private timer: NodeJS.Timeout | null = null;
  private lastFile = "";

  private constructor(
    private readonly base: FaultValues,
    private readonly file: string | null,
    private readonly log: Logger,
    private values: FaultValues = { ...base },
  ) {}

  /** null unless a PARABFT_TEST_* fault variable is set (the normal case). Bad values: ConfigError. */
  static fromEnv(
    self: number,
    home: string,
    log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ): TestFaults | null {
    const delay = env.PARABFT_TEST_PEER_DELAY_MS;
    const offset = env.PARABFT_TEST_CLOCK_OFFSET_MS;
    const eq = env.PARABFT_TEST_EQUIVOCATE;
    const file = env.PARABFT_TEST_FAULTS_FILE;
    if (!delay && !offset && !eq && !file) return null;
    const base: FaultValues = { peerDelayMs: 0, peerJitterMs: 0, clockOffsetMs: 0, equivocate: false };
    if (delay) {
      const [ms, jitter] = delay.split(":");
      base.peerDelayMs = int("PARABFT_TEST_PEER_DELAY_MS", ms ?? "");
      base.peerJitterMs = jitter === undefined ? 0 : int("PARABFT_TEST_PEER_DELAY_MS", jitter);
      if (base.peerDelayMs < 0 || base.peerJitterMs < 0)
        throw new ConfigError("PARABFT_TEST_PEER_DELAY_MS", "must not be negative");
    }
    if (offset) base.clockOffsetMs = int("PARABFT_TEST_CLOCK_OFFSET_MS", offset);
    if (eq) {
      const who = eq.split(",").map((s) => s.trim());
      if (!who.every((s) => s === "*" || /^\d+$/.test(s)))
        throw new ConfigError(
          "PARABFT_TEST_EQUIVOCATE",
          `expected '<index>[,<index>...]' or '*', got '${eq}'`,
        );
      base.equivocate = who.includes("*") || who.map(Number).includes(self);
    }
    const faults = new TestFaults(base, file ? path.resolve(home, file) : null, log);
    log.warn(
      { ...base, file: file || null },
      "TEST-ONLY faults enabled (PARABFT_TEST_*): not for production",
    );
    return faults;
  }

  get current(): Readonly<FaultValues> {
    return this.values;
  }

  /** The driver's wall clock. */
  readonly now = (): number => Date.now() + this.values.clockOffsetMs;

  /** Applies the values now and, with a faults file, whenever it changes. */
  async start(apply: (v: Readonly<FaultValues>) => void): Promise<void> {
    apply(this.values);
    if (this.file === null) return;
    const poll = async () => {
      const text = await readFile(this.file!, "utf8").catch(() => "");
      if (text === this.lastFile) return;
      this.lastFile = text;
      let next: FaultValues = { ...this.base };
      if (text.trim() !== "") {
        try {
          const j = JSON.parse(text) as Partial<Record<keyof FaultValues, unknown>>;
          const num = (k: "peerDelayMs" | "peerJitterMs" | "clockOffsetMs") =>
            typeof j[k] === "number" && Number.isFinite(j[k]) ? (j[k] as number) : this.base[k];
          next = {
            peerDelayMs: Math.max(0, num("peerDelayMs")),
            peerJitterMs: Math.max(0, num("peerJitterMs")),
            clockOffsetMs: num("clockOffsetMs"),
            equivocate: typeof j.equivocate === "boolean" ? j.equivocate : this.base.equivocate,
          };
        } catch {
          this.log.warn({ file: this.file }, "test faults file is not JSON: ignored");
          return;
        }
      }
      this.values = next;
      this.log.warn({ ...next }, "TEST-ONLY faults changed");
      apply(next);
    };
    await poll();
    this.timer = setInterval(() => void poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * TEST-ONLY Byzantine validator (PARABFT_TEST_EQUIVOCATE): sits between the consensus driver and the
 * peer network and, while `active()`, rewrites what this validator broadcasts:
 * - its PRE-PREPARE: a second block for the same (view, height), the same transactions with the
 *   timestamp one millisecond later, signed; half the peers (lowest indices first) get the real one
 *   first and the other half the conflicting one first, and every peer gets both;
 * - its PREPAREs and COMMITs: after the real vote, a second signed vote of the same view and height
 *   for another digest (the conflicting block's at a height it equivocated, otherwise
 *   SHA-256 of the real digest), to every peer. The pair is slashable evidence (src/staking).
 * Honest validators keep both envelopes as evidence (parabft_consensus_evidence_total{phase}, the
 * "equivocation evidence kept" log line, storage) and ignore the second one.
 */
export class Equivocator implements DriverNet {
  private readonly conflicting = new Map<bigint, Uint8Array>();
  stats = { prePrepares: 0, votes: 0 };

  constructor(
    private readonly net: DriverNet,
    private readonly o: {
      chainId: string;
      /** This validator's index in the set of an epoch (it differs per epoch with DPoS). */
      self: number | ((epoch: bigint) => number);
      n: number;
      signer: MessageSigner;
      active: () => boolean;
    },
  ) {}

  send(to: number, bytes: Uint8Array): boolean {
    return this.net.send(to, bytes);
  }

  penalize(peer: number, reason: string, weight?: number): void {
    this.net.penalize(peer, reason, weight);
  }

  broadcast(bytes: Uint8Array): number {
    if (!this.o.active()) return this.net.broadcast(bytes);
    const env = fromBinary(EnvelopeSchema, bytes);
    const msg = fromBinary(PeerMessageSchema, env.payload);
    const m = msg.kind;
    if (m.case === "prePrepare" && m.value.block?.header !== undefined) {
      const alt = fromBinary(BlockSchema, toBinary(BlockSchema, m.value.block));
      alt.header!.timestampMs += 1n;
      const digest = blockDigest(alt.header!);
      this.remember(m.value.height, digest);
      const second = this.seal(env.epoch, {
        kind: {
          case: "prePrepare",
          value: { view: m.value.view, height: m.value.height, blockDigest: digest, block: alt },
        },
      });
      const self = this.selfIn(env.epoch);
      const peers = Array.from({ length: this.o.n }, (_, i) => i).filter((i) => i !== self);
      const half = Math.ceil(peers.length / 2);
      let sent = 0;
      peers.forEach((to, k) => {
        const [a, b] = k < half ? [bytes, second] : [second, bytes];
        if (this.net.send(to, a)) sent++;
        this.net.send(to, b);
      });
      this.stats.prePrepares++;
      return sent;
    }
    const sent = this.net.broadcast(bytes);
    if (m.case === "prepare" || m.case === "commit") {
      const { view, height, blockDigest: real } = m.value;
      const other = this.conflicting.get(height);
      const d = other !== undefined && toHex(other) !== toHex(real) ? other : sha256(real);
      const signBytes = m.case === "prepare" ? prepareSignBytes : commitSignBytes;
      const voteSignature = this.o.signer.sign(signBytes(this.o.chainId, env.epoch, view, height, d));
      const value = { view, height, blockDigest: d, voteSignature };
      this.net.broadcast(
        this.seal(
          env.epoch,
          m.case === "prepare" ? { kind: { case: "prepare", value } } : { kind: { case: "commit", value } },
        ),
      );
      this.stats.votes++;
    }
    return sent;
  }

  private remember(height: bigint, digest: Uint8Array): void {
    this.conflicting.set(height, digest);
    for (const h of this.conflicting.keys()) if (h + 256n < height) this.conflicting.delete(h);
  }

  private seal(epoch: bigint, init: MessageInitShape<typeof PeerMessageSchema>): Uint8Array {
    const message: PeerMessage = create(PeerMessageSchema, init);
    return sealMessage(this.o.chainId, epoch, this.selfIn(epoch), this.o.signer, message).bytes;
  }

  private selfIn(epoch: bigint): number {
    return typeof this.o.self === "number" ? this.o.self : this.o.self(epoch);
  }
}

/**
 * Test-only fault: PARABFT_TEST_ACK_BEFORE_COMMIT=1 makes SubmitTxAndWait acknowledge on
 * admission, before any commit, at a guessed height. The container fault suite's S2 checker must
 * catch it.
 */
export const ACK_BEFORE_COMMIT_FOR_TESTS = process.env.PARABFT_TEST_ACK_BEFORE_COMMIT === "1";

// Read once: process.env is a getenv per access, and this runs on every persist.
const CRASH_AFTER_PERSIST_SPEC = process.env.PARABFT_TEST_CRASH_AFTER_PERSIST;

/**
 * Test-only fault: PARABFT_TEST_CRASH_AFTER_PERSIST="<validator|*>:<record kind>:<marker file>[:<min height>]"
 * kills this process with SIGKILL right after a matching signing record (at or above the minimum
 * height, when given) became durable and before the message it guards is sent, once (the marker
 * file records that it happened; with `*` every validator crashes once, marker `<file>.<index>`).
 * The cluster tests use it to prove a restarted validator never signs a conflicting vote, and that
 * a cluster killed whole between prepare and commit is not wedged.
 */
export function crashAfterPersistForTests(self: number, records: readonly SigningRecord[]): void {
  const spec = CRASH_AFTER_PERSIST_SPEC;
  if (!spec) return;
  const [index, kind, file, minHeight] = spec.split(":");
  if (file === undefined || (index !== "*" && Number(index) !== self)) return;
  const min = minHeight === undefined ? 0n : BigInt(minHeight);
  const hit = records.find((r) => r.kind === kind && (!("height" in r) || r.height >= min));
  if (hit === undefined) return;
  const marker = index === "*" ? `${file}.${self}` : file;
  if (existsSync(marker)) return;
  writeFileSync(marker, `${self}:${kind}:${"height" in hit ? hit.height : ""}\n`);
  process.kill(process.pid, "SIGKILL");
}

// Read once, as above.
const HOLD_COMMIT_WRITES_FILE = process.env.PARABFT_TEST_HOLD_COMMIT_WRITES;

/**
 * Test-only fault: PARABFT_TEST_HOLD_COMMIT_WRITES="<marker file>" holds every commit batch write
 * until the file exists (polled every 50 ms), so a test can see clients answered at certificate
 * time while no block is durable yet (test/cluster/answerFirst.test.ts). Null when unset (no
 * await on the commit path).
 */
export function holdCommitWritesForTests(): Promise<void> | null {
  const file = HOLD_COMMIT_WRITES_FILE;
  if (!file) return null;
  return (async () => {
    while (!existsSync(file)) await sleep(50);
  })();
}
