import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { freePorts } from "../../../src/cli/ports.js";

const ephemeralLow = Number(
  readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
);

describe("freePorts", () => {
  it("hands out distinct, bindable ports below the ephemeral range, never the same one twice", async () => {
    const a = await freePorts(12);
    const b = await freePorts(12);
    const all = [...a, ...b];
    assert.equal(new Set(all).size, all.length, `duplicates in ${all.join(",")}`);
    for (const p of all) {
      assert.ok(p >= 20_000 && p < ephemeralLow, `port ${p} is outside [20000, ${ephemeralLow})`);
    }
    // Each is free: bind them all at once.
    const servers = await Promise.all(
      a.map(
        (port) =>
          new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
            const s = createServer();
            s.once("error", reject);
            s.listen(port, "127.0.0.1", () => resolve(s));
          }),
      ),
    );
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  });
});
