// Runs one fault scenario end to end: a fresh network and cluster, the history recorder under
// load, the scenario's fault and heal, quiescence, then S1-S4 and liveness over everything
// recorded. Each result goes to the faults report when PARABFT_FAULTS_OUT names a directory
// (make faults-report writes bench/results/faults.{json,txt}).
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fromHex } from "../../../src/types/bytes.js";
import {
  checkAgreement,
  checkBank,
  checkExactlyOnce,
  checkLinearizable,
  checkLiveness,
  checkReadsAtHeight,
  type Verdict,
} from "./checkers.js";
import { DockerCluster, type DockerClusterOpts } from "./docker.js";
import { collectChain, History } from "./history.js";

export interface FaultWindow {
  /** performance.now() when the fault began and when it was healed. */
  startMs: number;
  healMs: number;
  /** Nodes faulty at the same time at most; liveness is only owed when this is ≤ f. */
  maxFaulty: number;
  notes?: string[];
}

export interface ScenarioCtx {
  cluster: DockerCluster;
  history: History;
  /** The primary a quorum of the live nodes agrees on. */
  primary(nodes?: number[]): Promise<{ view: bigint; primary: number }>;
  /** Waits until `more` further bank transfers are acknowledged. */
  moreAcks(more: number, timeoutMs?: number): Promise<void>;
  /** Highest committed height among `nodes`. */
  height(nodes?: number[]): Promise<bigint>;
  waitHeight(nodes: number[], height: bigint, timeoutMs?: number): Promise<void>;
  note(s: string): void;
}

export interface ScenarioResult {
  name: string;
  pass: boolean;
  violations: string[];
  durationS: number;
  ops: Record<string, { ok: number; fail: number; info: number }>;
  heights: number;
  recoverMs: number | null;
  finalityDuringFaultMs: { p50: number | null; p99: number | null; n: number };
  finalityBaselineMs: { p50: number | null; p99: number | null; n: number };
  checks: Record<string, { ok: boolean; checked: number }>;
  notes: string[];
}

/** Liveness bound after a heal: view timers may have doubled while the fault lasted. */
export const LIVENESS_BOUND_MS = 30_000;

export async function until<T>(
  what: string,
  fn: () => Promise<T | null | false | undefined>,
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${String(last)})` : ""}`);
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
};

export async function runScenario(
  name: string,
  body: (ctx: ScenarioCtx) => Promise<FaultWindow>,
  opts: { n?: number; warmAcks?: number; afterAcks?: number; cluster?: DockerClusterOpts } = {},
): Promise<ScenarioResult> {
  const t0 = performance.now();
  const n = opts.n ?? 4;
  const f = Math.floor((n - 1) / 3);
  const notes: string[] = [];
  const cluster = await DockerCluster.start(n, opts.cluster);
  notes.push(`cluster up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let history: History | undefined;
  try {
    const accounts = cluster.testnet.accounts.map((a) => a.keyFile);
    history = await History.fromKeyFiles(
      cluster,
      accounts.slice(0, 4),
      accounts.slice(4, 7),
      cluster.testnet.nodes.map((n) => fromHex(n.address)),
    );
    const h = history;
    const all = Array.from({ length: n }, (_, i) => i);
    const height = async (nodes = [...h.live]) => {
      let m = 0n;
      for (const i of nodes) {
        const s = await cluster
          .client(i)
          .getStatus()
          .catch(() => null);
        if (s && s.committedHeight > m) m = s.committedHeight;
      }
      return m;
    };
    const ctx: ScenarioCtx = {
      cluster,
      history: h,
      note: (s) => notes.push(s),
      height,
      // The primary of the highest view a quorum of the live nodes report. One replica may sit
      // alone in a higher view it timed out into (it does not escalate further alone, and rejoins
      // at the cluster's next view change), so the highest view any node reports may have no
      // quorum. On a timeout the error names each node's last view.
      primary: async (nodes = [...h.live]) => {
        let seen = "no status yet";
        try {
          return await until(
            "a quorum of live nodes to agree on a view",
            async () => {
              const st = await Promise.all(
                nodes.map((i) =>
                  cluster
                    .client(i)
                    .getStatus()
                    .then((s) => ({ node: i, s }))
                    .catch(() => null),
                ),
              );
              const up = st.filter((x) => x !== null);
              seen = st.map((x, k) => `node ${nodes[k]}: ${x ? `view ${x.s.view}` : "no status"}`).join(", ");
              const views = [...new Set(up.map((x) => x.s.view))].sort((a, b) =>
                a > b ? -1 : a < b ? 1 : 0,
              );
              for (const view of views) {
                const agreeing = up.filter((x) => x.s.view === view);
                if (agreeing.length >= n - f) return { view, primary: agreeing[0]!.s.primary };
              }
              return null;
            },
            45_000,
          );
        } catch (err) {
          throw new Error(`${(err as Error).message}; last views: ${seen}`);
        }
      },
      moreAcks: async (more, timeoutMs = 45_000) => {
        const target = h.acked + more;
        await until(`${more} more acknowledged transfers`, async () => h.acked >= target, timeoutMs);
      },
      waitHeight: async (nodes, target, timeoutMs = 60_000) => {
        await until(
          `nodes ${nodes.join(",")} at height ${target}`,
          async () => {
            for (const i of nodes) {
              const s = await cluster.client(i).getStatus();
              if (s.committedHeight < target || s.executedHeight < target) return false;
            }
            return true;
          },
          timeoutMs,
        );
      },
    };
    h.start();
    const warmStart = performance.now();
    // The first commits need the cluster formed: on a loaded box (load 15+) four containers took
    // over 45 s to finish their TLS handshakes and first view change, so this bound is generous.
    await ctx.moreAcks(opts.warmAcks ?? 4, 90_000);
    const warmEnd = performance.now();
    const window = await body(ctx);
    for (const i of all) h.allow(i);
    // Liveness: a commit after the heal, then enough traffic to exercise the healed cluster.
    await ctx.moreAcks(opts.afterAcks ?? 4, 60_000);
    await h.stop();
    // Quiescence: every node at the same committed and executed height.
    await until(
      "every node to reach the same committed and executed height",
      async () => {
        const st = await Promise.all(all.map((i) => cluster.client(i).getStatus()));
        return st.every(
          (s) => s.committedHeight === st[0]!.committedHeight && s.executedHeight === s.committedHeight,
        )
          ? st
          : null;
      },
      60_000,
    ).then((st) =>
      st.forEach((s, i) => {
        h.roots.push({
          node: i,
          executedHeight: s.executedHeight,
          stateRoot: Buffer.from(s.stateRoot).toString("hex"),
        });
      }),
    );
    const chain = await collectChain(cluster, all);
    const total = (await Promise.all(h.bankAddresses.map((a) => cluster.client(0).getAccount(a)))).reduce(
      (s, a) => s + a.balance,
      0n,
    );
    const bankAtStart = h.snapshots[0];
    const verdicts: Verdict[] = [
      checkAgreement(chain.chains, h.roots),
      checkExactlyOnce([...h.bank, ...h.kvTx], chain.inclusions, chain.receipts),
      checkBank(bankAtStart ? bankAtStart.balances.reduce((s, b) => s + b, 0n) : total, [
        ...h.snapshots,
        { node: 0, height: chain.top, balances: [total] },
      ]),
      checkLinearizable(h.kv),
      checkReadsAtHeight(h.kv, chain.inclusions, chain.receipts),
    ];
    const commitTimes = [
      ...h.commits.map((c) => c.t),
      ...h.bank.filter((b) => b.completeMs).map((b) => b.completeMs!),
    ];
    const live = checkLiveness(commitTimes, window.healMs, LIVENESS_BOUND_MS);
    if (window.maxFaulty <= f) verdicts.push(live);
    const lat = (from: number, to: number) =>
      h.bank
        .filter((b) => b.outcome === "ok" && b.invokeMs >= from && b.invokeMs <= to)
        .map((b) => b.completeMs! - b.invokeMs);
    const during = lat(window.startMs, window.healMs);
    const base = lat(warmStart, warmEnd);
    const count = (recs: { outcome: string }[]) => ({
      ok: recs.filter((r) => r.outcome === "ok").length,
      fail: recs.filter((r) => r.outcome === "fail").length,
      info: recs.filter((r) => r.outcome === "info").length,
    });
    // Diagnostics: the recorded history and the chain it is checked against, one file per scenario.
    if (process.env.PARABFT_FAULTS_HISTORY) {
      await writeFile(
        `${process.env.PARABFT_FAULTS_HISTORY}-${name.replace(/\W+/g, "_")}-${Date.now()}.json`,
        JSON.stringify(
          {
            kv: h.kv,
            kvTx: h.kvTx,
            errors: h.errors,
            inclusions: chain.inclusions,
            receipts: chain.receipts,
          },
          (_k, v) => (typeof v === "bigint" ? String(v) : v === Number.POSITIVE_INFINITY ? "inf" : v),
        ),
      );
    }
    const result: ScenarioResult = {
      name,
      pass: verdicts.every((v) => v.ok),
      violations: verdicts.flatMap((v) => v.violations),
      durationS: Math.round((performance.now() - t0) / 100) / 10,
      ops: {
        transfer: count(h.bank),
        put: count(h.kv.filter((o) => o.call.f === "put")),
        cas: count(h.kv.filter((o) => o.call.f === "cas")),
        read: count(h.kv.filter((o) => o.call.f === "read")),
      },
      heights: Number(chain.top),
      recoverMs: live.recoverMs === null ? null : Math.round(live.recoverMs),
      finalityDuringFaultMs: { p50: pct(during, 50), p99: pct(during, 99), n: during.length },
      finalityBaselineMs: { p50: pct(base, 50), p99: pct(base, 99), n: base.length },
      checks: Object.fromEntries(verdicts.map((v) => [v.name, { ok: v.ok, checked: v.checked }])),
      notes: [...notes, ...(window.notes ?? [])],
    };
    await record(result);
    console.log(`# faults: ${summary(result)}`);
    return result;
  } catch (err) {
    if (err instanceof Error) {
      const logs = await Promise.all(
        Array.from({ length: n }, async (_, i) => `--- validator ${i}\n${await cluster.logs(i, 15)}`),
      );
      err.message += `\nrecorder errors (last 5): ${history?.errors.slice(-5).join(" | ")}\n${logs.join("\n")}`;
    }
    throw err;
  } finally {
    await history?.stop().catch(() => {});
    await cluster.stop();
  }
}

export function summary(r: ScenarioResult): string {
  return `${r.name}: ${r.pass ? "PASS" : "FAIL"} in ${r.durationS} s, ${r.heights} heights, transfers ${r.ops.transfer!.ok} ok/${r.ops.transfer!.info} info, recover ${r.recoverMs ?? "-"} ms, finality during fault p50 ${r.finalityDuringFaultMs.p50 ?? "-"} p99 ${r.finalityDuringFaultMs.p99 ?? "-"} ms${r.violations.length ? `; ${r.violations.slice(0, 3).join("; ")}` : ""}`;
}

async function record(r: ScenarioResult): Promise<void> {
  const dir = process.env.PARABFT_FAULTS_OUT;
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, "faults.json");
  const prev = JSON.parse(await readFile(file, "utf8").catch(() => '{"scenarios":[]}')) as {
    scenarios: ScenarioResult[];
  };
  const scenarios = [...prev.scenarios.filter((s) => s.name !== r.name), r];
  await writeFile(
    file,
    `${JSON.stringify({ generated: new Date().toISOString(), validators: 4, preset: "minimal", scenarios }, null, 2)}\n`,
  );
  await writeFile(path.join(dir, "faults.txt"), table(scenarios));
}

export function table(rs: ScenarioResult[]): string {
  const head = [
    "scenario",
    "result",
    "secs",
    "heights",
    "transfers ok/info",
    "kv ok/info",
    "recover ms",
    "fault p50/p99 ms",
    "base p50/p99 ms",
  ];
  const rows = rs.map((r) => {
    const kv = ["put", "cas", "read"].reduce(
      (a, k) => ({ ok: a.ok + r.ops[k]!.ok, info: a.info + r.ops[k]!.info }),
      { ok: 0, info: 0 },
    );
    return [
      r.name,
      r.pass ? "pass" : "FAIL",
      String(r.durationS),
      String(r.heights),
      `${r.ops.transfer!.ok}/${r.ops.transfer!.info}`,
      `${kv.ok}/${kv.info}`,
      r.recoverMs === null ? "-" : String(r.recoverMs),
      `${r.finalityDuringFaultMs.p50 ?? "-"}/${r.finalityDuringFaultMs.p99 ?? "-"}`,
      `${r.finalityBaselineMs.p50 ?? "-"}/${r.finalityBaselineMs.p99 ?? "-"}`,
    ];
  });
  const w = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, k) => c.padEnd(w[k]!))
      .join("  ")
      .trimEnd();
  return `# ParaBFT fault suite (4 validators in containers, minimal preset)\n${[line(head), line(w.map((x) => "-".repeat(x))), ...rows.map(line)].join("\n")}\n`;
}
