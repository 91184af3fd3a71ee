// Why an admitted transaction did not commit by the end of a run's drain (issue 14: "the excess
// is refused at admission, never silently dropped"). Runs only when something is left: for each
// such transaction it asks every validator for its sender's account (the chain's next nonce) and
// reads every validator's pool size, then files the transaction under one verdict:
//   - "nonce used": the chain has moved past its nonce without it. It can never commit: a lost
//     admission (or a client that signed two transactions with one nonce).
//   - "next in line": the chain waits for exactly this nonce. It sits in some pool unproposed,
//     or was dropped from every pool: a liveness or a loss question the pool sizes narrow down.
//   - "behind a gap": an earlier nonce of its sender has not committed either;
//     "behind the client's gap" when the client itself gave up on an earlier nonce (an open loop
//     whose retries of a refused transaction ran out): the cluster is not at fault.
//   - "unknown": no validator answered the account query.
import type { RunContext } from "./load.js";
import { scrapeMetrics } from "./stages.js";
/** An admitted transaction that had not committed when the drain ended. */
export interface Uncommitted {
  sender: number;
  nonce: bigint;
  /** The bench connection that admitted it (-1: not known); its validator is conn % validators. */
  conn: number;
  /** Seconds after the run's first scheduled send that its admission was answered. */
  admittedAtS: number;
  /** The client abandoned an earlier nonce of this sender (never admitted). */
  clientGap?: boolean;
}

export type StuckVerdict =
  | "nonce used"
  | "next in line"
  | "behind a gap"
  | "behind the client's gap"
  | "unknown";

export interface StuckReport {
  total: number;
  byVerdict: Partial<Record<StuckVerdict, number>>;
  /** Transactions left uncommitted per admitting validator. */
  byNode: number[];
  /** Each validator's `mempool_txs` after the drain (null: not scraped). */
  poolTxs: (number | null)[];
  /** The first few, for a person to follow up. */
  examples: {
    sender: number;
    nonce: string;
    node: number;
    admittedAtS: number;
    chainNonces: (string | null)[];
    verdict: StuckVerdict;
  }[];
}

const EXAMPLES = 20;

/** Files one transaction under its verdict from the validators' next nonces of its sender. */
export function stuckVerdict(nonce: bigint, chainNonces: (bigint | null)[], clientGap = false): StuckVerdict {
  const known = chainNonces.filter((n): n is bigint => n !== null);
  if (known.length === 0) return "unknown";
  const highest = known.reduce((a, b) => (b > a ? b : a));
  if (highest > nonce) return "nonce used";
  if (highest === nonce) return "next in line";
  return clientGap ? "behind the client's gap" : "behind a gap";
}

export interface StuckModules {
  /** Every validator's next nonce of `address` (null where it did not answer). */
  chainNonces: (address: Uint8Array) => Promise<(bigint | null)[]>;
  /** Every validator's pool size (null where it did not answer). */
  poolTxs: () => Promise<(number | null)[]>;
  addressOf: (sender: number) => Uint8Array;
  nodes: number;
}

export async function explainUncommitted(
  list: readonly Uncommitted[],
  m: StuckModules,
): Promise<StuckReport | undefined> {
  if (list.length === 0) return undefined;
  const bySender = new Map<number, (bigint | null)[]>();
  for (const u of list)
    if (!bySender.has(u.sender)) bySender.set(u.sender, await m.chainNonces(m.addressOf(u.sender)));
  const byVerdict: Partial<Record<StuckVerdict, number>> = {};
  const byNode = new Array<number>(m.nodes).fill(0);
  const examples: StuckReport["examples"] = [];
  const sorted = [...list].sort(
    (a, b) => a.sender - b.sender || (a.nonce < b.nonce ? -1 : a.nonce > b.nonce ? 1 : 0),
  );
  for (const u of sorted) {
    const chain = bySender.get(u.sender)!;
    const verdict = stuckVerdict(u.nonce, chain, u.clientGap);
    byVerdict[verdict] = (byVerdict[verdict] ?? 0) + 1;
    const node = u.conn >= 0 ? u.conn % m.nodes : -1;
    if (node >= 0) byNode[node]!++;
    if (examples.length < EXAMPLES)
      examples.push({
        sender: u.sender,
        nonce: u.nonce.toString(),
        node,
        admittedAtS: Math.round(u.admittedAtS * 10) / 10,
        chainNonces: chain.map((n) => (n === null ? null : n.toString())),
        verdict,
      });
  }
  return { total: list.length, byVerdict, byNode, poolTxs: await m.poolTxs(), examples };
}

export function formatStuck(s: StuckReport): string {
  const verdicts = Object.entries(s.byVerdict)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  return [
    `  admitted but not committed: ${s.total} (${verdicts}); by admitting validator ${s.byNode.join(" / ")}; pool sizes after the drain ${s.poolTxs.map((x) => x ?? "-").join(" / ")}`,
    ...s.examples.map(
      (e) =>
        `    sender ${e.sender} nonce ${e.nonce} via validator ${e.node} at ${e.admittedAtS} s: chain next nonce ${e.chainNonces.map((x) => x ?? "-").join(" / ")} -> ${e.verdict}`,
    ),
  ].join("\n");
}

/** The metric a validator exports for its pool's size, summed over its series. */
function poolSize(sample: Map<string, number> | null): number | null {
  if (sample === null) return null;
  let t = 0;
  for (const [k, v] of sample)
    if (k === "parabft_mempool_txs" || k.startsWith("parabft_mempool_txs{")) t += v;
  return t;
}

/** `explainUncommitted` against the run's validators: their API for accounts, metrics for pools. */
export function explainStuck(
  ctx: RunContext,
  list: readonly Uncommitted[],
): Promise<StuckReport | undefined> {
  const clients = ctx.validatorClients;
  return explainUncommitted(list, {
    nodes: clients.length,
    addressOf: (sender) => ctx.senders[sender]!.address,
    chainNonces: (address) =>
      Promise.all(
        clients.map((c) =>
          c.getAccount(address).then(
            (a) => a.nonce,
            () => null,
          ),
        ),
      ),
    poolTxs: async () =>
      ctx.metricsAddrs.length === 0
        ? clients.map(() => null)
        : (await scrapeMetrics(ctx.metricsAddrs)).map(poolSize),
  });
}
