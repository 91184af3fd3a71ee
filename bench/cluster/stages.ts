// Where the time goes: the validators' per-stage metrics scraped before and after a run.
import { STALL_PHASES } from "../../src/consensus/pbft/pace.js";
import { formatTable } from "../lib/index.js";
import type { RunReport, StageBreakdown, ValidatorWindow } from "./types.js";
// ---------------------------------------------------------------------------------------------
// Validator metrics: where the time goes

export type MetricSample = Map<string, number>;

export async function scrapeOne(addr: string): Promise<MetricSample | null> {
  try {
    const res = await fetch(`http://${addr}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) return null;
    const out: MetricSample = new Map();
    for (const line of (await res.text()).split("\n")) {
      if (line.length === 0 || line.startsWith("#")) continue;
      const sp = line.lastIndexOf(" ");
      const v = Number(line.slice(sp + 1));
      if (Number.isFinite(v)) out.set(line.slice(0, sp), v);
    }
    return out;
  } catch (err) {
    process.stderr.write(
      `metrics scrape of ${addr} failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return null;
  }
}

export async function scrapeMetrics(addrs: string[]): Promise<(MetricSample | null)[]> {
  return Promise.all(addrs.map(scrapeOne));
}

/** Sum over series whose name (with labels) starts with `prefix` and contains every `has`. */
export function sumOf(m: MetricSample, prefix: string, ...has: string[]): number {
  let t = 0;
  for (const [k, v] of m) if (k.startsWith(prefix) && has.every((h) => k.includes(h))) t += v;
  return t;
}

/** The API's status label of a successful call: the numeric gRPC code (0), as src/api records it. */
const OK_CODE = 'code="0"';

export function stageBreakdown(
  before: (MetricSample | null)[],
  after: (MetricSample | null)[],
  committedTxs: number,
  wallS: number,
): StageBreakdown | undefined {
  const pairs: [MetricSample, MetricSample][] = [];
  for (let i = 0; i < after.length; i++) if (before[i] && after[i]) pairs.push([before[i]!, after[i]!]);
  if (pairs.length === 0) return undefined;
  const P = "parabft_";
  const delta = (name: string, ...has: string[]) =>
    pairs.map(([b, a]) => sumOf(a, P + name, ...has) - sumOf(b, P + name, ...has));
  const total = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  const mean = (sumName: string, countName: string, ...has: string[]) => {
    const c = total(delta(countName, ...has));
    return c > 0 ? Math.round((total(delta(sumName, ...has)) / c) * 1e5) / 100 : null;
  };
  const heights = Math.max(0, ...delta("consensus_committed_height"));
  const persistCount = total(delta("consensus_signing_state_persist_seconds_count"));
  const kinds = new Set<string>();
  const methods = new Set<string>();
  for (const [, a] of pairs)
    for (const k of a.keys()) {
      // Histogram series print the node's default label (validator) first: match any order.
      const kind = /^parabft_storage_write_seconds_count\{(?:[^}]*,)?kind="([^"]+)"/.exec(k)?.[1];
      if (kind) kinds.add(kind);
      // Labels in any order (prom-client prints them as the series was first observed).
      const method = k.startsWith("parabft_api_call_seconds_count{")
        ? /[{,]method="([^"]+)"/.exec(k)?.[1]
        : undefined;
      if (method && new RegExp(`[{,]${OK_CODE}`).test(k)) methods.add(method);
    }
  const dbWriteMs: Record<string, number> = {};
  for (const k of kinds) {
    const v = mean("storage_write_seconds_sum", "storage_write_seconds_count", `kind="${k}"`);
    if (v !== null) dbWriteMs[k] = v;
  }
  const apiCallMs: Record<string, number> = {};
  for (const m of methods) {
    const v = mean("api_call_seconds_sum", "api_call_seconds_count", `method="${m}"`, OK_CODE);
    if (v !== null) apiCallMs[m] = v;
  }
  const cpuS = total(delta("process_cpu_seconds_total"));
  const blockChecks = (): { blockTxsVerifiedShare?: number } => {
    const checked = total(delta("consensus_block_check_txs_total", 'source="block"'));
    if (checked === 0) return {};
    return {
      blockTxsVerifiedShare: round3(
        total(delta("consensus_block_check_txs_total", 'source="verified"')) / checked,
      ),
    };
  };
  const r2 = (x: number) => Math.round(x * 100) / 100;
  const execBusy: Record<string, number> = {};
  for (const stage of ["prepare", "execute", "persist"]) {
    const busyS = total(delta("exec_stage_busy_seconds_total", `stage="${stage}"`));
    if (wallS > 0) execBusy[stage] = round3(busyS / pairs.length / wallS);
  }
  return {
    persistMs: mean(
      "consensus_signing_state_persist_seconds_sum",
      "consensus_signing_state_persist_seconds_count",
    ),
    persistsPerHeight: heights > 0 ? r2(persistCount / pairs.length / heights) : null,
    preparedMs: mean("consensus_phase_seconds_sum", "consensus_phase_seconds_count", 'phase="prepared"'),
    committedMs: mean("consensus_phase_seconds_sum", "consensus_phase_seconds_count", 'phase="committed"'),
    dbWriteMs,
    apiFinalityMs: mean("api_finality_seconds_sum", "api_finality_seconds_count"),
    apiCallMs,
    heights,
    viewChanges: Math.max(0, ...delta("consensus_view_changes_total")),
    cpuPerHeightMsPerValidator: heights > 0 ? r2((cpuS * 1000) / pairs.length / heights) : null,
    cpuPerTxMs: committedTxs > 0 ? r2((cpuS * 1000) / committedTxs) : null,
    cpuCores: wallS > 0 ? r2(cpuS / wallS) : 0,
    execBusy,
    ...blockChecks(),
    gossipShed: total(delta("consensus_messages_total", 'reason="GOSSIP_BACKLOG"')),
  };
}

/** Metrics scraped at one moment: `atMs` is the midpoint of the scrape (performance.now()). */
export interface TimedScrape {
  atMs: number;
  samples: (MetricSample | null)[];
}

export async function timedScrape(addrs: string[]): Promise<TimedScrape> {
  const t0 = performance.now();
  const samples = await scrapeMetrics(addrs);
  return { atMs: (t0 + performance.now()) / 2, samples };
}

/**
 * The validators' own counters between two scrapes: committed transactions per validator, the
 * median validator's rate and heights (a validator that lags or catches up moves neither), the
 * highest validator's view changes. Null when no validator answered both scrapes.
 */
export function validatorWindow(before: TimedScrape, after: TimedScrape): ValidatorWindow | null {
  // Rounded once, so the reported rate is the reported transactions over the reported window.
  const windowS = round3((after.atMs - before.atMs) / 1000);
  const P = "parabft_consensus_";
  const delta = (i: number, name: string): number | null => {
    const b = before.samples[i];
    const a = after.samples[i];
    return b && a ? sumOf(a, P + name) - sumOf(b, P + name) : null;
  };
  const n = Math.max(before.samples.length, after.samples.length);
  const committedTxs: (number | null)[] = [];
  const heights: number[] = [];
  const views: number[] = [];
  for (let i = 0; i < n; i++) {
    committedTxs.push(delta(i, "committed_txs_total"));
    const h = delta(i, "committed_height");
    if (h !== null) heights.push(h);
    const v = delta(i, "view_changes_total");
    if (v !== null) views.push(v);
  }
  const txs = committedTxs.filter((x): x is number => x !== null);
  if (txs.length === 0 || windowS <= 0) return null;
  const loopMs = (suffix: string) =>
    after.samples.map((m) => {
      if (m === null) return null;
      for (const [k, v] of m) if (k.includes(suffix)) return Math.round(v * 1e5) / 100;
      return null;
    });
  const lastTimeout = (m: MetricSample, value: string) =>
    Math.round(sumOf(m, `${P}last_request_timeout_seconds`, `value="${value}"`) * 1000);
  // What the fired timers' lowest uncommitted height waited for (absent: a build without it).
  const stalledAt = (i: number): { stalledAt?: Record<string, number> } => {
    const b = before.samples[i];
    const a = after.samples[i];
    const name = `${P}request_timeouts_stalled_total`;
    if (!b || !a || ![...a.keys()].some((k) => k.startsWith(name))) return {};
    const by: Record<string, number> = {};
    for (const phase of STALL_PHASES) {
      const n = sumOf(a, name, `stalled_at="${phase}"`) - sumOf(b, name, `stalled_at="${phase}"`);
      if (n > 0) by[phase] = n;
    }
    return { stalledAt: by };
  };
  const requestTimeouts = after.samples.map((m, i) => {
    if (m === null || ![...m.keys()].some((k) => k.startsWith(`${P}request_timeouts_total`))) return null;
    return {
      fired: delta(i, "request_timeouts_total") ?? 0,
      superseded: delta(i, "request_timers_superseded_total") ?? 0,
      armedMs: lastTimeout(m, "armed"),
      longestWaitMs: lastTimeout(m, "longest_wait"),
      lateMs: lastTimeout(m, "late"),
      ...stalledAt(i),
    };
  });
  const viewsAtEnd = after.samples.map((m) => {
    if (m === null) return null;
    for (const [k, v] of m) if (k === `${P}view` || k.startsWith(`${P}view{`)) return v;
    return null;
  });
  return {
    ...(requestTimeouts.some((r) => r !== null) ? { requestTimeouts } : {}),
    ...(viewsAtEnd.some((v) => v !== null) ? { views: viewsAtEnd } : {}),
    loopDelayP99Ms: loopMs("eventloop_lag_p99_seconds"),
    loopDelayMaxMs: loopMs("eventloop_lag_max_seconds"),
    windowS,
    committedTxs,
    tps: Math.round((median(txs) / windowS) * 10) / 10,
    heights: median(heights),
    viewChanges: Math.max(0, ...views),
  };
}

/** The median (the lower middle of an even count). */
function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1]!;
}

export function formatStages(runs: RunReport[]): string {
  const rows = runs
    .filter((x) => x.stages)
    .map((x) => {
      const s = x.stages!;
      const label =
        x.mode === "closed"
          ? `closed ×${x.clients}`
          : `${x.mode === "overload" ? "overload " : x.warmup ? "warm-up " : ""}${x.offeredRate} tx/s`;
      const db = Object.entries(s.dbWriteMs)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      const api = Object.entries(s.apiCallMs)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      return [
        label,
        s.heights,
        s.persistMs ?? "-",
        s.persistsPerHeight ?? "-",
        s.preparedMs ?? "-",
        s.committedMs ?? "-",
        db || "-",
        api || "-",
        s.viewChanges,
        s.cpuPerHeightMsPerValidator ?? "-",
        s.cpuPerTxMs ?? "-",
        s.cpuCores,
        s.execBusy ? ["prepare", "execute", "persist"].map((k) => s.execBusy?.[k] ?? "-").join(" / ") : "-",
      ];
    });
  if (rows.length === 0) return "";
  return formatTable(
    [
      "run",
      "heights",
      "persist ms",
      "persists/height",
      "prepare->prepared ms",
      "commit->committed ms",
      "db write ms",
      "api call ms (OK)",
      "view changes",
      "CPU ms/height/validator",
      "CPU ms/tx (cluster)",
      "CPU cores",
      "exec busy prep/exec/persist",
    ],
    rows,
  );
}

export const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Block rate of a run from the bench's own transactions: mean transactions per block (committed
 * / blocks holding them) and heights per second at the achieved rate (achieved tx/s / that mean).
 * Null without commits. Works on older result files too (same fields).
 */
export function blockRate(run: Pick<RunReport, "committed" | "blocks" | "achievedTps">): {
  txsPerBlock: number | null;
  heightsPerS: number | null;
} {
  if (run.blocks <= 0 || run.committed <= 0) return { txsPerBlock: null, heightsPerS: null };
  const perBlock = run.committed / run.blocks;
  const r1 = (x: number) => Math.round(x * 10) / 10;
  return { txsPerBlock: r1(perBlock), heightsPerS: r1(run.achievedTps / perBlock) };
}
