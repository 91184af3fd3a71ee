// The stack floor end to end (bench/stackFloor.ts): four replica processes over grpc-js with TLS
// and syncs, and over bare sockets, commit a closed loop's requests (and an open loop's batches)
// and exit when told. Figures
// are not asserted (speed lives in bench/results), only that requests committed and every
// replica reported its CPU.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseVariant, runFloor } from "../../../bench/stackFloor.js";

describe("stack floor", () => {
  for (const spec of ["tls+sync", "socket-plain+isync"]) {
    it(`commits a closed loop's requests (${spec})`, { timeout: 180_000 }, async () => {
      const run = await runFloor(parseVariant(spec), 1, 0.3, 1);
      assert.ok(run.requests > 0, `requests answered: ${run.requests}`);
      assert.ok(run.heightsPerS > 0);
      assert.ok(run.p50Ms > 0 && run.p50Ms <= run.p99Ms);
      assert.ok(run.cpuMsPerHeightPerReplica > 0);
    });
  }

  it("commits an open loop's batches, every request of them", { timeout: 180_000 }, async () => {
    const run = await runFloor(parseVariant("plain+sync"), 1, 0.3, 1, 300);
    // Requests scheduled in the measured second: about 300; each has a latency.
    assert.ok(run.requests >= 100 && run.requests <= 400, `requests measured: ${run.requests}`);
    assert.ok(run.achievedTps > 0);
    assert.ok(run.cpuMsPerTx > 0);
  });

  it("names a bad variant", () => {
    assert.throws(() => parseVariant("tls"), /expected \[socket-\]tls\|plain\+nosync\|sync\|isync/);
    assert.throws(() => parseVariant("quic+sync"), /--floors entry 'quic\+sync'/);
    assert.deepEqual(parseVariant("socket-tls+isync"), {
      label: "floor socket-tls+isync",
      transport: "socket",
      tls: true,
      sync: "inline",
    });
  });
});
