// Human and JSON reports of simulator runs. Every violation names the command that replays it.
import type { RunTotals, SeedSummary } from "./runner.js";

export function formatViolation(s: SeedSummary): string[] {
  const lines = [`seed ${s.seed} (n=${s.n}, byzantine=${s.byzantine}): ${s.violations.length} violation(s)`];
  for (const v of s.violations) {
    const where = [
      v.replica !== undefined ? `replica ${v.replica}` : "",
      v.height !== undefined ? `height ${v.height}` : "",
    ]
      .filter((x) => x !== "")
      .join(", ");
    lines.push(`  ${v.invariant} at ${v.atMs} ms${where ? ` (${where})` : ""}: ${v.detail.split("\n")[0]}`);
  }
  lines.push(`  replay: ${s.replay}`);
  return lines;
}

export function formatTotals(t: RunTotals): string[] {
  const seedsPerSec = t.wallMs > 0 ? (t.seeds * 1000) / t.wallMs : 0;
  const lines = [
    `seeds run:          ${t.seeds}`,
    `heights committed:  ${t.heights}`,
    `view changes:       ${t.viewChanges}`,
    `simulated seconds:  ${(t.simulatedMs / 1000).toFixed(1)}`,
    `messages delivered: ${t.messages}`,
    `transactions:       ${t.txCommitted} committed of ${t.txSubmitted} submitted`,
    `wall time:          ${(t.wallMs / 1000).toFixed(1)} s (${seedsPerSec.toFixed(1)} seeds/s)`,
    `NEW-VIEW overrides: ${t.seedsWithOverride} seed(s) (${t.seeds > 0 ? ((100 * t.seedsWithOverride) / t.seeds).toFixed(1) : "0"}%) re-proposed over an honest COMMIT`,
    `violations:         ${t.failures.length === 0 ? "none" : `${t.failures.length} seed(s)`}`,
  ];
  if (t.electedSets > 0)
    lines.push(
      `staking elections: ${t.electedSets} sets elected, ${t.setChanges} changed members, ${t.distinctSets} distinct sets over the seeds; ${t.stakingCalls} staking calls (${t.stakingFailed} failed)`,
    );
  if (t.seedsStitchReached > 0)
    lines.push(`stitch script:      reached its goal in ${t.seedsStitchReached} seed(s)`);
  if (t.truncated > 0) lines.push(`truncated seeds:    ${t.truncated} (step budget reached)`);
  for (const f of t.failures.slice(0, 20)) lines.push(...formatViolation(f));
  if (t.failures.length > 20) lines.push(`  ... and ${t.failures.length - 20} more failing seeds`);
  return lines;
}

/** JSON with bigints as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2);
}

export function printTotals(t: RunTotals): void {
  for (const line of formatTotals(t)) console.log(line);
}
