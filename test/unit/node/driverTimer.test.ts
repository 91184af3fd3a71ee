// The driver's view timer is re-armed lazily (issue 14, p14): re-arming moves a deadline instead of
// clearing and setting a Node timeout. It must still fire once, with the latest token, never
// before the latest deadline, early when the new deadline is shorter, and never once cancelled.
import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { describe, it } from "node:test";
import type { Action, Event, StepResult } from "../../../src/consensus/pbft/types.js";
import { ConsensusDriver, type DriverOpts } from "../../../src/node/driver.js";
import { noop, stubDriverModules } from "./driverStubs.js";

function setup() {
  const fired: { token: number; at: number }[] = [];
  let next: Action[] = [];
  const mod = stubDriverModules({
    replica: {
      handle: (e: Event): StepResult => {
        if (e.kind === "timer") fired.push({ token: e.token, at: performance.now() });
        const actions = next;
        next = [];
        return { actions, verdict: null, sender: null };
      },
      committedHeight: 0n,
    },
  });
  const driver = new ConsensusDriver({ chainId: "t", self: 0, tickMs: 500 } as DriverOpts, mod);
  /** Runs one core step whose actions are `actions` (an `executed` event carries them in). */
  const step = (...actions: Action[]): number => {
    next = actions;
    const at = performance.now();
    driver.executed(1n, new Uint8Array(32));
    return at;
  };
  const set = (token: number, afterMs: number): number =>
    step({ kind: "setTimer", timer: "view", afterMs, token });
  const handleOf = () =>
    (driver as unknown as { timers: Map<string, { handle: unknown }> }).timers.get("view")?.handle;
  /** The PRE-PREPARE block checks in flight (onEnvelope adds one per proposal it verifies). */
  const blockChecks = () => (driver as unknown as { blockChecks: Set<Promise<unknown>> }).blockChecks;
  return { driver, fired, step, set, handleOf, blockChecks };
}

async function until(cond: () => boolean, what: string, boundMs = 20_000): Promise<void> {
  const end = Date.now() + boundMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("driver: lazily re-armed view timer", () => {
  it("fires once with its token, not before its deadline", async () => {
    const t = setup();
    const at = t.set(1, 40);
    await until(() => t.fired.length === 1, "the timer");
    assert.equal(t.fired[0]!.token, 1);
    assert.ok(t.fired[0]!.at >= at + 39, `fired ${t.fired[0]!.at - at} ms after arming`);
    // Fired once: a later timer is the next event.
    t.set(2, 10);
    await until(() => t.fired.length === 2, "the second timer");
    assert.deepEqual(
      t.fired.map((f) => f.token),
      [1, 2],
    );
    await t.driver.stop();
  });

  it("a longer re-arm moves the deadline: only the latest token fires, after the latest deadline", async () => {
    const t = setup();
    t.set(3, 30);
    const at = t.set(4, 150);
    await until(() => t.fired.length > 0, "the timer");
    assert.deepEqual(
      t.fired.map((f) => f.token),
      [4],
    );
    assert.ok(t.fired[0]!.at >= at + 149, `fired ${t.fired[0]!.at - at} ms after the re-arm`);
    await t.driver.stop();
  });

  it("a shorter re-arm fires at the shorter deadline", async () => {
    const t = setup();
    t.set(5, 60_000);
    const at = t.set(6, 20);
    await until(() => t.fired.length > 0, "the timer");
    assert.equal(t.fired[0]!.token, 6);
    assert.ok(t.fired[0]!.at >= at + 19);
    assert.ok(t.fired[0]!.at < at + 60_000);
    await t.driver.stop();
  });

  it("a cancelled timer never fires, though its Node timeout runs out", async () => {
    const t = setup();
    t.set(7, 20);
    t.step({ kind: "cancelTimer", timer: "view" });
    assert.ok(t.handleOf() !== null, "the timeout is left to run out");
    await until(() => t.handleOf() === null, "the idle timeout to run out");
    assert.equal(t.fired.length, 0);
    // Armed again after the cancel: it fires, with the new token.
    t.set(8, 10);
    await until(() => t.fired.length > 0, "the re-armed timer");
    assert.deepEqual(
      t.fired.map((f) => f.token),
      [8],
    );
    await t.driver.stop();
  });

  it("an expiry due after a stall yields to the messages already on the sockets (read first)", async () => {
    // After a stall libuv runs due timers before it reads the sockets: a message already waiting
    // (the progress that would re-arm the timer) must be handled before the timer's event.
    const t = setup();
    const order: string[] = [];
    const origPush = t.fired.push.bind(t.fired);
    t.fired.push = (...f) => {
      order.push("timer");
      return origPush(...f);
    };
    let serverSide: Socket | null = null;
    const server = createServer((sock) => {
      serverSide = sock;
      sock.on("data", () => order.push("message"));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const client = connect(port, "127.0.0.1");
    try {
      await new Promise<void>((r) => client.once("connect", () => r()));
      await until(() => serverSide !== null, "the connection");
      t.set(9, 20);
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          // The stall: the message arrives and the timer falls due while the loop is busy.
          client.write("progress");
          const end = performance.now() + 80;
          while (performance.now() < end) {
            // busy
          }
          resolve();
        }, 5),
      );
      await until(() => order.length >= 2, "the message and the timer");
      assert.deepEqual(order.slice(0, 2), ["message", "timer"]);
    } finally {
      client.destroy();
      (serverSide as Socket | null)?.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await t.driver.stop();
    }
  });

  it("an expiry waits for the PRE-PREPARE checks in flight then, not for later ones", async () => {
    // A backup verifying a large proposal when its request timer runs out: the proposal is the
    // progress that re-arms the timer, so the expiry waits for that check (and only that one).
    const t = setup();
    let finishFirst: () => void = noop;
    const first = new Promise<void>((r) => {
      finishFirst = r;
    });
    t.blockChecks().add(first);
    t.set(10, 10);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(t.fired.length, 0, "the expiry waits while the check runs");
    // A check that starts after the expiry does not hold it further.
    t.blockChecks().add(new Promise<void>(noop));
    finishFirst();
    await until(() => t.fired.length === 1, "the expiry once the first check settled");
    assert.equal(t.fired[0]!.token, 10);
    // With no check in flight an expiry is not held.
    t.blockChecks().clear();
    const at = t.set(11, 10);
    await until(() => t.fired.length === 2, "the next timer");
    assert.ok(t.fired[1]!.at - at < 5_000);
    await t.driver.stop();
  });
});
