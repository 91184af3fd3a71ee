// Group commit of the signing state (src/node/groupCommit.ts, driven through the driver): a
// message leaves only once every signing record appended before it is durable; records signed
// while a sync is in flight share the next sync; a failed sync halts with nothing queued sent.
// And the crash test: a validator SIGKILLed right after a sync batch never signs a conflicting
// message after restart.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { applySigningRecord, emptyPersistedState } from "../../../src/consensus/pbft/persist.js";
import type { Action, PersistedState, SigningRecord } from "../../../src/consensus/pbft/types.js";
import { ConsensusDriver, type DriverOpts } from "../../../src/node/driver.js";
import { SigningStateLog } from "../../../src/storage/index.js";
import { blockDigest } from "../../../src/types/block.js";
import { bytesEqual, toHex } from "../../../src/types/bytes.js";
import { Cluster, makeBlock, prePrepareFrom } from "../consensus/harness.js";
import { removeDir, tempDir } from "../storage/helpers.js";
import { noop, stubDriverModules } from "./driverStubs.js";

function harnessDriver() {
  const sent: string[] = [];
  const persists: { records: SigningRecord[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  let diverged = 0;
  const mod = stubDriverModules({
    net: { broadcast: (b: Uint8Array) => sent.push(Buffer.from(b).toString()), send: noop },
    onDiverged: () => {
      diverged++;
    },
    persist: (records: SigningRecord[]) =>
      new Promise<void>((resolve, reject) => persists.push({ records, resolve, reject })),
  });
  const driver = new ConsensusDriver({ chainId: "c", self: 0 } as DriverOpts, mod);
  const perform = (actions: Action[]) =>
    (driver as unknown as { perform(a: Action[]): void }).perform(actions);
  return { driver, perform, sent, persists, diverged: () => diverged };
}

const rec = (kind: "prepare" | "commit", h: number): SigningRecord => ({
  kind,
  epoch: 0n,
  view: 0n,
  height: BigInt(h),
  digest: new Uint8Array(32).fill(h),
});
const persist = (r: SigningRecord): Action => ({ kind: "persist", record: r });
const bcast = (text: string): Action =>
  ({ kind: "broadcast", msg: { kind: "prepare", bytes: Buffer.from(text) } }) as unknown as Action;
const tick = () => new Promise((r) => setImmediate(r));

describe("driver group commit", () => {
  it("sends a message only once the batch holding its records is durable, in order", async () => {
    const d = harnessDriver();
    d.perform([persist(rec("prepare", 1)), bcast("P1")]);
    assert.deepEqual(d.sent, []);
    assert.equal(d.persists.length, 1);
    // While that sync is in flight the core goes on: two more steps, no new sync yet.
    d.perform([persist(rec("commit", 1)), bcast("C1")]);
    d.perform([persist(rec("prepare", 2)), bcast("P2")]);
    // A message with no record of its own still waits behind the ones before it.
    d.perform([bcast("X")]);
    assert.equal(d.persists.length, 1);
    assert.deepEqual(d.sent, []);
    d.persists[0]!.resolve();
    await tick();
    assert.deepEqual(d.sent, ["P1"]);
    // Everything signed meanwhile is one batch: one write and one sync.
    assert.equal(d.persists.length, 2);
    assert.deepEqual(
      d.persists[1]!.records.map((r) => `${r.kind}${(r as { height: bigint }).height}`),
      ["commit1", "prepare2"],
    );
    d.persists[1]!.resolve();
    await tick();
    assert.deepEqual(d.sent, ["P1", "C1", "P2", "X"]);
    // Nothing pending: a message without records goes out at once.
    d.perform([bcast("Y")]);
    assert.deepEqual(d.sent, ["P1", "C1", "P2", "X", "Y"]);
    // Records with no send of their own are made durable too.
    d.perform([persist(rec("prepare", 3))]);
    assert.equal(d.persists.length, 3);
  });

  it("never puts a COMMIT in the batch of the PREPARE it follows: the PREPARE leaves first", async () => {
    const d = harnessDriver();
    d.perform([persist(rec("commit", 0)), bcast("C0")]);
    // While C0 syncs, height 1 is prepared and then committed (the core counts its own PREPARE).
    d.perform([persist(rec("prepare", 1)), bcast("P1")]);
    d.perform([persist(rec("commit", 1)), bcast("C1")]);
    d.persists[0]!.resolve();
    await tick();
    assert.deepEqual(d.sent, ["C0"]);
    assert.deepEqual(
      d.persists[1]!.records.map((r) => r.kind),
      ["prepare"],
    );
    d.persists[1]!.resolve();
    await tick();
    // P1 is out before C1's record is even written.
    assert.deepEqual(d.sent, ["C0", "P1"]);
    assert.deepEqual(
      d.persists[2]!.records.map((r) => r.kind),
      ["commit"],
    );
    d.persists[2]!.resolve();
    await tick();
    assert.deepEqual(d.sent, ["C0", "P1", "C1"]);
  });

  it("halts on a failed sync: nothing queued behind it is ever sent", async () => {
    const d = harnessDriver();
    d.perform([persist(rec("prepare", 1)), bcast("P1")]);
    d.perform([persist(rec("commit", 1)), bcast("C1")]);
    d.persists[0]!.reject(new Error("EIO"));
    await tick();
    assert.equal(d.diverged(), 1);
    assert.equal(d.persists.length, 1);
    // The core's next event is refused (the driver stopped), and nothing goes out.
    assert.throws(() => d.perform([bcast("Z")]), /could not be made durable/);
    await tick();
    assert.deepEqual(d.sent, []);
  });

  it("stop() waits for the sync in flight and sends what it covers", async () => {
    const d = harnessDriver();
    d.perform([persist(rec("prepare", 1)), bcast("P1")]);
    let stopped = false;
    const s = d.driver.stop().then(() => {
      stopped = true;
    });
    await tick();
    assert.equal(stopped, false);
    d.persists[0]!.resolve();
    await s;
    assert.deepEqual(d.sent, ["P1"]);
  });
});

const CHILD = fileURLToPath(new URL("./groupCommitChild.js", import.meta.url));

async function runChild(dir: string, killAfter: number, mode: string): Promise<string[]> {
  const child = spawn(process.execPath, [CHILD], {
    env: { ...process.env, GC_DIR: dir, GC_KILL_AFTER: String(killAfter), GC_KILL_MODE: mode },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += String(d);
  });
  child.stderr.on("data", (d) => {
    stderr += String(d);
  });
  try {
    const signal = await new Promise<NodeJS.Signals | null>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("child did not exit")), 60_000);
      child.once("close", (_code, sig) => {
        clearTimeout(t);
        resolve(sig);
      });
    });
    assert.equal(signal, "SIGKILL", stderr);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  return stdout.split("\n").filter((l) => l.length > 0);
}

async function reopen(dir: string): Promise<PersistedState> {
  const log = new SigningStateLog<PersistedState, SigningRecord>(dir, {
    fold: applySigningRecord,
    initial: emptyPersistedState,
  });
  const s = await log.open();
  await log.close();
  return s ?? emptyPersistedState();
}

/** True when the replica answers a PRE-PREPARE of `block` (view 0, from node 0) with a PREPARE. */
function preparesFor(c: Cluster, height: bigint, tag: number): boolean {
  const block = makeBlock(c.set, height, 0, tag);
  const r = c.step(2, { kind: "message", bytes: prePrepareFrom(0, 0n, block).bytes });
  return r.actions.some((a) => a.kind === "broadcast" && a.msg.kind === "prepare");
}

describe("SIGKILL right after a signing-state sync batch", { timeout: 300_000 }, () => {
  let root: string;
  before(async () => {
    root = await tempDir("groupcommit");
  });
  after(async () => {
    await removeDir(root);
  });

  it("the control: a replica without those records does PREPARE a conflicting block", () => {
    const c = new Cluster(4);
    c.restart(2, { persisted: emptyPersistedState() });
    assert.equal(preparesFor(c, 1n, 99), true);
  });

  for (const mode of ["before", "after"])
    for (const killAfter of [1, 2, 3, 5]) {
      it(`killed after batch ${killAfter}, ${mode} its sends: every sent vote is durable, no conflicting vote after restart`, async () => {
        const dir = path.join(root, `${mode}-${killAfter}`);
        const sent = await runChild(dir, killAfter, mode);
        const persisted = await reopen(dir);
        const { set } = new Cluster(4);
        const prepared = new Set<bigint>();
        for (const line of sent) {
          const [kind, h, hex] = line.split(" ");
          const height = BigInt(h!);
          assert.equal(hex, toHex(blockDigest(makeBlock(set, height, 0, 0).header!)));
          const list = kind === "prepare" ? persisted.prepares : persisted.commits;
          assert.ok(
            list.some((r) => r.height === height && r.view === 0n && toHex(r.digest) === hex),
            `${line} was sent but its record is not durable`,
          );
          if (kind === "prepare") prepared.add(height);
        }
        if (mode === "after") assert.ok(sent.length > 0, "the sends of the durable batch went out");
        // Restart from what survived: for every height it sent a PREPARE for, a conflicting
        // block from the same primary in the same view gets no PREPARE.
        const c = new Cluster(4);
        c.restart(2, { persisted });
        assert.ok(persisted.prepares.some((r) => bytesEqual(r.digest, persisted.prepares[0]!.digest)));
        for (const h of prepared) assert.equal(preparesFor(c, h, 99), false, `conflicting PREPARE at ${h}`);
      });
    }
});
