import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BoundedQueue } from "../../../src/net/queue.js";

describe("BoundedQueue", () => {
  it("keeps FIFO order across wrap-around", () => {
    const q = new BoundedQueue<number>(3, "oldest");
    q.push(1);
    q.push(2);
    assert.equal(q.shift(), 1);
    q.push(3);
    q.push(4);
    assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], [2, 3, 4, undefined]);
    assert.equal(q.length, 0);
  });

  it("peek shows the head without taking it, across wrap-around", () => {
    const q = new BoundedQueue<number>(2, "oldest");
    assert.equal(q.peek(), undefined);
    q.push(1);
    q.push(2);
    assert.equal(q.peek(), 1);
    assert.equal(q.length, 2);
    assert.equal(q.shift(), 1);
    q.push(3);
    assert.equal(q.peek(), 2);
    q.shift();
    assert.equal(q.peek(), 3);
    q.shift();
    assert.equal(q.peek(), undefined);
  });

  it("drop-oldest loses the head and keeps the newest items", () => {
    const q = new BoundedQueue<number>(3, "oldest");
    const lost: (number | undefined)[] = [];
    for (let i = 0; i < 7; i++) lost.push(q.push(i));
    assert.deepEqual(lost, [undefined, undefined, undefined, 0, 1, 2, 3]);
    assert.equal(q.length, 3);
    assert.deepEqual([q.shift(), q.shift(), q.shift()], [4, 5, 6]);
  });

  it("drop-newest refuses the incoming item and keeps the first ones", () => {
    const q = new BoundedQueue<number>(2, "newest");
    assert.equal(q.push(1), undefined);
    assert.equal(q.push(2), undefined);
    assert.equal(q.push(3), 3);
    assert.deepEqual([q.shift(), q.shift(), q.shift()], [1, 2, undefined]);
  });

  it("rejects a non-positive capacity", () => {
    assert.throws(() => new BoundedQueue<number>(0, "oldest"), RangeError);
  });
});
