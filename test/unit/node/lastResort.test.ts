// The last-resort handlers: an escaped error is logged and counted and the process goes on; only a
// storage failure (disk may be behind memory) ends it.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import pino from "pino";
import { type EscapedKind, installLastResort } from "../../../src/node/lastResort.js";
import { StorageError } from "../../../src/storage/errors.js";

describe("installLastResort", () => {
  it("counts and survives a stray rejection and exception; exits 70 on a storage failure", async () => {
    const counted: EscapedKind[] = [];
    const exits: number[] = [];
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (l: string) => lines.push(l) });
    const source = new EventEmitter();
    const remove = installLastResort({
      log,
      count: (k) => counted.push(k),
      exit: (c) => exits.push(c),
      source,
    });
    try {
      source.emit("unhandledRejection", new Error("client wait timed out"), Promise.resolve());
      source.emit("uncaughtException", new Error("timer callback threw"));
      assert.deepEqual(counted, ["unhandledRejection", "uncaughtException"]);
      assert.deepEqual(exits, []);
      assert.match(lines.join(""), /client wait timed out/);
      assert.match(lines.join(""), /node keeps running/);

      source.emit("unhandledRejection", new StorageError("DB_CLOSED", {}, "closed"), Promise.resolve());
      assert.deepEqual(exits, [70]);
    } finally {
      remove();
    }
    assert.equal(source.listenerCount("unhandledRejection"), 0, "handlers are removed");
    assert.equal(source.listenerCount("uncaughtException"), 0, "handlers are removed");
  });
});
