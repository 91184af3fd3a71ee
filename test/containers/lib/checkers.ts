// The fault suite's checkers (issue 12, research/reliability.md §4). Pure functions over what the
// history recorder and the chain collector gathered, so unit tests can feed them known-bad input.
// Each returns a verdict listing every violation found (empty = the property holds).
//   S1 chain agreement   same block digest at every height on every node, and the same state root
//                        wherever two nodes reported one at the same executed height;
//   S2 exactly once      every acknowledged transaction is in the chain, took effect exactly once,
//                        at the height it was acknowledged; unknown ones took effect at most once;
//                        definitely failed ones never;
//   S3 bank              every consistent balance snapshot sums to the total, none is negative;
//   S4 linearizable kv   per key, a WGL search (Wing & Gong with Lowe's memoisation, as Knossos and
//                        Porcupine do) for a linearization of put / compare-and-set / read;
//   liveness             a commit arrives within a bound after the heal.

export interface Verdict {
  name: string;
  ok: boolean;
  violations: string[];
  /** What was checked, for the report (heights, transactions, keys...). */
  checked: number;
}

const verdict = (name: string, violations: string[], checked: number): Verdict => ({
  name,
  ok: violations.length === 0,
  violations,
  checked,
});

// ---------------------------------------------------------------------------------------------
// S1

export interface NodeChain {
  node: number;
  /** Block digest (hex) by height, from height 1 up to the node's committed height. */
  digests: Map<bigint, string>;
}

export interface StateRootSample {
  node: number;
  executedHeight: bigint;
  stateRoot: string;
}

export function checkAgreement(chains: NodeChain[], roots: StateRootSample[]): Verdict {
  const v: string[] = [];
  let checked = 0;
  const heights = new Set<bigint>();
  for (const c of chains) for (const h of c.digests.keys()) heights.add(h);
  for (const h of [...heights].sort((a, b) => (a < b ? -1 : 1))) {
    const seen = chains.filter((c) => c.digests.has(h)).map((c) => [c.node, c.digests.get(h)!] as const);
    checked++;
    const first = seen[0]![1];
    const differ = seen.filter(([, d]) => d !== first);
    if (differ.length > 0) {
      v.push(
        `S1 height ${h}: digests differ: ${seen.map(([n, d]) => `node${n}=${d.slice(0, 12)}`).join(" ")}`,
      );
    }
  }
  const byHeight = new Map<bigint, StateRootSample>();
  for (const r of roots) {
    const prev = byHeight.get(r.executedHeight);
    if (!prev) byHeight.set(r.executedHeight, r);
    else if (prev.stateRoot !== r.stateRoot) {
      v.push(
        `S1 executed height ${r.executedHeight}: state root node${prev.node}=${prev.stateRoot.slice(0, 12)} node${r.node}=${r.stateRoot.slice(0, 12)}`,
      );
    }
  }
  return verdict("S1", v, checked + byHeight.size);
}

// ---------------------------------------------------------------------------------------------
// S2

export type Outcome = "ok" | "fail" | "info";

export interface TxRecord {
  hash: string;
  outcome: Outcome;
  /** Height the acknowledgement named (outcome ok). */
  ackHeight?: bigint;
}

export interface Inclusion {
  hash: string;
  height: bigint;
}

/** The receipt the node answers for a transaction: where it took effect (or was answered DUPLICATE). */
export interface ReceiptInfo {
  hash: string;
  height: bigint;
  status: "ok" | "failed" | "duplicate";
}

export function checkExactlyOnce(
  records: TxRecord[],
  inclusions: Inclusion[],
  receipts: ReceiptInfo[],
): Verdict {
  const v: string[] = [];
  const at = new Map<string, bigint[]>();
  for (const inc of inclusions) at.set(inc.hash, [...(at.get(inc.hash) ?? []), inc.height]);
  const rec = new Map<string, ReceiptInfo[]>();
  for (const r of receipts) rec.set(r.hash, [...(rec.get(r.hash) ?? []), r]);
  /** Heights where the transaction took effect (a receipt that is not DUPLICATE). */
  const effective = (hash: string) =>
    (rec.get(hash) ?? []).filter((r) => r.status !== "duplicate").map((r) => r.height);
  for (const [hash, heights] of at) {
    const eff = effective(hash);
    if (eff.length > 1)
      v.push(`S2 tx ${hash.slice(0, 12)} took effect ${eff.length} times (${eff.join(",")})`);
    if (eff.length === 1 && eff[0] !== heights[0]) {
      v.push(`S2 tx ${hash.slice(0, 12)} took effect at ${eff[0]}, not at its first inclusion ${heights[0]}`);
    }
  }
  for (const r of records) {
    const heights = at.get(r.hash) ?? [];
    const eff = effective(r.hash);
    if (r.outcome === "ok") {
      if (heights.length === 0)
        v.push(`S2 acknowledged tx ${r.hash.slice(0, 12)} is lost (not in the chain)`);
      else if (r.ackHeight !== undefined && heights[0] !== r.ackHeight) {
        v.push(
          `S2 acknowledged tx ${r.hash.slice(0, 12)} at ${r.ackHeight} but first included at ${heights[0]}`,
        );
      }
      if (heights.length > 0 && eff.length === 0) {
        v.push(`S2 acknowledged tx ${r.hash.slice(0, 12)} never took effect`);
      }
    } else if (r.outcome === "fail" && eff.length > 0) {
      v.push(`S2 tx ${r.hash.slice(0, 12)} was answered as failed but took effect at ${eff[0]}`);
    }
  }
  return verdict("S2", v, records.length);
}

// ---------------------------------------------------------------------------------------------
// S3

export interface BankSnapshot {
  /** Where and at which height the balances were read (every read answered this height). */
  node: number;
  height: bigint;
  balances: bigint[];
}

export function checkBank(total: bigint, snapshots: BankSnapshot[]): Verdict {
  const v: string[] = [];
  for (const s of snapshots) {
    const sum = s.balances.reduce((a, b) => a + b, 0n);
    if (sum !== total) v.push(`S3 node${s.node} height ${s.height}: balances sum to ${sum}, not ${total}`);
    const neg = s.balances.findIndex((b) => b < 0n);
    if (neg >= 0)
      v.push(`S3 node${s.node} height ${s.height}: account ${neg} is negative (${s.balances[neg]})`);
  }
  if (snapshots.length === 0) v.push("S3 no consistent bank snapshot was read");
  return verdict("S3", v, snapshots.length);
}

// ---------------------------------------------------------------------------------------------
// S4: WGL linearizability of compare-and-set registers

/** A register operation; values are strings, null = absent. */
export type KvCall =
  | { f: "put"; value: string }
  | { f: "cas"; expected: string | null; value: string }
  | { f: "read" };

export interface KvOp {
  process: number;
  key: string;
  call: KvCall;
  /** ok: completed with `result`; fail: definitely had no effect; info: unknown (may or may not have). */
  outcome: Outcome;
  /** read: the value read; cas: whether it swapped. */
  result?: string | null | boolean;
  invokeMs: number;
  /** Completion time; ignored for info (treated as never returning). */
  completeMs: number;
  /** read: the node that answered and the executed height its value belongs to (S5). */
  node?: number;
  height?: bigint;
  /** put / cas: the hex hash of the transaction (S5 finds where it took effect). */
  tx?: string;
}

type RegState = string | null;

/** The register model: the state after `op`, or undefined when op cannot happen in state s. */
function step(s: RegState, op: KvOp): RegState | undefined {
  const c = op.call;
  switch (c.f) {
    case "put":
      return c.value;
    case "cas":
      if (op.outcome === "info") return s === c.expected ? c.value : s; // either way is allowed
      if (op.result === true) return s === c.expected ? c.value : undefined;
      return s !== c.expected ? s : undefined;
    case "read":
      return s === op.result ? s : undefined;
  }
}

export type LinResult = "ok" | "violation" | "unknown";

interface Ev {
  op: number;
  call: boolean;
  t: number;
  prev: Ev | null;
  next: Ev | null;
  match: Ev | null;
}

/**
 * Wing & Gong's search with Lowe's cache over one key's history. Ops with outcome "fail" are
 * dropped (they had no effect); info reads are dropped (they constrain nothing); other info ops
 * never return, so they may be linearized anywhere after their invocation, or not at all.
 */
export function linearizable(ops: KvOp[], initial: RegState = null, maxSteps = 2_000_000): LinResult {
  const kept = ops.filter((o) => o.outcome !== "fail" && !(o.outcome === "info" && o.call.f === "read"));
  const events: Ev[] = [];
  kept.forEach((o, i) => {
    const c: Ev = { op: i, call: true, t: o.invokeMs, prev: null, next: null, match: null };
    const r: Ev = {
      op: i,
      call: false,
      t: o.outcome === "info" ? Number.POSITIVE_INFINITY : o.completeMs,
      prev: null,
      next: null,
      match: null,
    };
    c.match = r;
    events.push(c, r);
  });
  // Calls before returns at equal times: concurrent ops at the boundary may be ordered either way.
  events.sort((a, b) => a.t - b.t || (a.call === b.call ? 0 : a.call ? -1 : 1));
  const head: Ev = { op: -1, call: false, t: -1, prev: null, next: null, match: null };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  const lift = (e: Ev) => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (e: Ev) => {
    const m = e.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };
  const done = new Uint8Array(kept.length);
  const cache = new Set<string>();
  const stack: { e: Ev; s: RegState }[] = [];
  let state: RegState = initial;
  let entry = head.next;
  let steps = 0;
  while (entry !== null) {
    if (++steps > maxSteps) return "unknown";
    if (entry.call) {
      const next = step(state, kept[entry.op]!);
      let advanced = false;
      if (next !== undefined) {
        done[entry.op] = 1;
        const key = `${done.join("")}|${next === null ? "\u0000" : next}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ e: entry, s: state });
          state = next;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else done[entry.op] = 0;
      }
      if (!advanced) entry = entry!.next;
    } else {
      // A return whose op is not linearized yet. Info ops return "at infinity": reaching one means
      // every op with a real return is linearized, and the info ops left may simply not happen.
      if (kept[entry.op]!.outcome === "info") return "ok";
      const top = stack.pop();
      if (!top) return "violation";
      state = top.s;
      done[top.e.op] = 0;
      unlift(top.e);
      entry = top.e.next;
    }
  }
  return "ok";
}

/**
 * A history cut to its first `max` operations by invocation time, kept sound: checking the cut
 * never reports a violation the whole history does not have. Operations invoked at or after the
 * cut are left out, and one of them may have taken effect before a kept operation that completed
 * after the cut (a CAS that failed because of a put invoked later). So a kept operation completing
 * at or after the cut constrains nothing: a read or a failed CAS (no effect) is dropped, a put or a
 * successful CAS becomes info (it took effect, at a point the cut cannot place).
 * (A cut by position in the recorder's list, which holds writes at invocation and reads at
 * completion, once failed a correct run: a CAS in flight across the cut had failed against a put
 * the cut left out.)
 */
export function cutByInvocation(ops: readonly KvOp[], max: number): KvOp[] {
  if (ops.length <= max) return [...ops];
  const sorted = [...ops].sort((a, b) => a.invokeMs - b.invokeMs);
  const cut = sorted[max]!.invokeMs;
  const out: KvOp[] = [];
  for (const o of sorted) {
    if (o.invokeMs >= cut) break;
    if (o.outcome !== "ok" || o.completeMs < cut) out.push(o);
    else if (o.call.f === "put" || (o.call.f === "cas" && o.result === true))
      out.push({ ...o, outcome: "info", completeMs: Number.POSITIVE_INFINITY });
  }
  return out;
}

export function checkLinearizable(ops: KvOp[], opts: { maxOpsPerKey?: number } = {}): Verdict {
  const v: string[] = [];
  const byKey = new Map<string, KvOp[]>();
  for (const o of ops) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  let unknown = 0;
  for (const [key, list] of byKey) {
    const capped = cutByInvocation(list, opts.maxOpsPerKey ?? 150);
    const r = linearizable(capped);
    if (r === "violation") v.push(`S4 key ${key}: no linearization of its ${capped.length} operations`);
    if (r === "unknown") unknown++;
  }
  const out = verdict("S4", v, byKey.size);
  if (unknown > 0) out.violations.push(`S4 ${unknown} key(s) undecided within the step budget`);
  return { ...out, ok: v.length === 0 };
}

// ---------------------------------------------------------------------------------------------
// S5: every read is the chain's value at the height its node reported

/**
 * Replays the kv writes the chain executed (receipt status ok, in block order: height, then the
 * position among the inclusions) and checks each read against the value of its key at the
 * executed height the answering node reported. Timing plays no part, so a stale or invented value
 * is caught even when the read's interval would let S4 place it.
 */
export function checkReadsAtHeight(ops: KvOp[], inclusions: Inclusion[], receipts: ReceiptInfo[]): Verdict {
  const position = new Map<string, number>();
  inclusions.forEach((x, i) => {
    const id = `${x.hash}@${x.height}`;
    if (!position.has(id)) position.set(id, i);
  });
  const receiptOf = new Map(receipts.map((r) => [r.hash, r]));
  const writes = new Map<string, { height: bigint; at: number; value: string }[]>();
  for (const o of ops) {
    if (o.call.f === "read" || o.tx === undefined) continue;
    const r = receiptOf.get(o.tx);
    if (r === undefined || r.status !== "ok") continue;
    const list = writes.get(o.key) ?? [];
    list.push({ height: r.height, at: position.get(`${o.tx}@${r.height}`) ?? -1, value: o.call.value });
    writes.set(o.key, list);
  }
  for (const list of writes.values()) list.sort((a, b) => a.at - b.at);
  const v: string[] = [];
  let checked = 0;
  for (const o of ops) {
    if (o.call.f !== "read" || o.outcome !== "ok" || o.height === undefined) continue;
    checked++;
    let expected: string | null = null;
    for (const w of writes.get(o.key) ?? []) if (w.height <= o.height) expected = w.value;
    if (o.result !== expected)
      v.push(
        `S5 key ${o.key}: node ${o.node} read ${JSON.stringify(o.result)} at height ${o.height}, the chain holds ${JSON.stringify(expected)}`,
      );
  }
  return verdict("S5", v.slice(0, 5), checked);
}

// ---------------------------------------------------------------------------------------------
// Liveness

/** A commit (acknowledged op, or a new block) must arrive within boundMs of healAtMs. */
export function checkLiveness(
  commitTimesMs: number[],
  healAtMs: number,
  boundMs: number,
): Verdict & {
  recoverMs: number | null;
} {
  const first = commitTimesMs.filter((t) => t >= healAtMs).sort((a, b) => a - b)[0];
  const recoverMs = first === undefined ? null : first - healAtMs;
  const v: string[] = [];
  if (recoverMs === null) v.push(`liveness: no commit after the heal (bound ${boundMs} ms)`);
  else if (recoverMs > boundMs)
    v.push(`liveness: first commit ${recoverMs} ms after the heal > ${boundMs} ms`);
  return { ...verdict("liveness", v, 1), recoverMs };
}
