// Child process of groupCommit.test.ts: a ConsensusDriver whose signing state is a real
// SigningStateLog (fdatasync'ed), fed PREPARE/COMMIT steps for heights 1..HEIGHTS as separate
// events without waiting for their syncs (so batches group several steps). Every message the
// driver "sends" is written synchronously to stdout as `kind height digestHex`. The process
// SIGKILLs itself right after sync batch KILL_AFTER completes: before the driver releases the
// sends that batch covers (KILL_MODE=before) or just after (KILL_MODE=after).
import { writeSync } from "node:fs";
import { applySigningRecord, emptyPersistedState } from "../../../src/consensus/pbft/persist.js";
import type { Action, PersistedState, SigningRecord } from "../../../src/consensus/pbft/types.js";
import { ConsensusDriver, type DriverOpts } from "../../../src/node/driver.js";
import { SigningStateLog } from "../../../src/storage/index.js";
import { blockDigest } from "../../../src/types/block.js";
import { toHex } from "../../../src/types/bytes.js";
import { makeBlock, makeSets } from "../consensus/harness.js";
import { noop, stubDriverModules } from "./driverStubs.js";

const dir = process.env.GC_DIR!;
const killAfter = Number(process.env.GC_KILL_AFTER);
const mode = process.env.GC_KILL_MODE;
const heights = Number(process.env.GC_HEIGHTS ?? "12");

const log = new SigningStateLog<PersistedState, SigningRecord>(dir, {
  fold: applySigningRecord,
  initial: emptyPersistedState,
});
await log.open();

let batches = 0;
const mod = stubDriverModules({
  net: {
    broadcast: (bytes: Uint8Array) => writeSync(1, `${Buffer.from(bytes).toString()}\n`),
    send: noop,
  },
  persist: async (records: SigningRecord[]) => {
    await log.append(...records);
    batches++;
    if (batches === killAfter) {
      if (mode === "before") process.kill(process.pid, "SIGKILL");
      else setImmediate(() => process.kill(process.pid, "SIGKILL"));
    }
  },
});
const driver = new ConsensusDriver({ chainId: "test-chain", self: 2 } as DriverOpts, mod);
const perform = (actions: Action[]) => (driver as unknown as { perform(a: Action[]): void }).perform(actions);

const { set } = makeSets(4);
const step = (kind: "prepare" | "commit", height: bigint, digest: Uint8Array): Action[] => [
  { kind: "persist", record: { kind, epoch: 0n, view: 0n, height, digest } },
  {
    kind: "broadcast",
    msg: { kind, bytes: Buffer.from(`${kind} ${height} ${toHex(digest)}`) },
  } as unknown as Action,
];
for (let h = 1n; h <= BigInt(heights); h++) {
  const digest = blockDigest(makeBlock(set, h, 0, 0).header!);
  perform(step("prepare", h, digest));
  perform(step("commit", h, digest));
  // Every other height waits for the next sync to complete; the steps in between group into
  // one batch (two or more steps per write and sync).
  if (h % 2n === 0n) {
    const seen = batches;
    while (batches === seen) await new Promise((r) => setTimeout(r, 1));
  }
}
// Every batch done and nothing killed us (KILL_AFTER beyond the batches): say so and wait.
await new Promise((r) => setTimeout(r, 10_000));
writeSync(2, `not killed after ${batches} batches\n`);
process.exit(3);
