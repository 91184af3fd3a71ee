// Writing a benchmark result set: JSON, the table, and the chart side by side, plus the
// machine description every figure must be reported with (DESIGN §10).
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  /** 1-minute load average when the benchmark started: other work on a shared machine skews figures. */
  loadAverage1m: number;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? "unknown",
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** Progress for humans on stderr, so that stdout stays parseable. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

export interface WrittenFiles {
  json: string;
  table: string;
  svg?: string;
}

/** Writes `<dir>/<name>.json`, `<name>.txt` and optionally `<name>.svg`; returns the paths. */
export function writeResultFiles(
  dir: string,
  name: string,
  data: unknown,
  table: string,
  svg?: string,
): WrittenFiles {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${name}.json`);
  const txt = join(dir, `${name}.txt`);
  writeFileSync(json, `${JSON.stringify(data, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`);
  writeFileSync(txt, `${table}\n`);
  const out: WrittenFiles = { json, table: txt };
  if (svg !== undefined) {
    const p = join(dir, `${name}.svg`);
    writeFileSync(p, svg);
    out.svg = p;
  }
  return out;
}
