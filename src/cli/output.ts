// Printing helpers for commands: data goes to stdout (JSON with --json), diagnostics to stderr.
import { toHex } from "../types/bytes.js";

/** JSON with bigint as decimal strings and bytes as hex. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key, v: unknown) {
      // The holder's raw value: JSON.stringify has already turned a Buffer into {type, data}.
      const raw = key === "" ? v : this[key];
      if (typeof raw === "bigint") return raw.toString();
      if (raw instanceof Uint8Array) return toHex(raw);
      return v;
    },
    indent,
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(`${toJson(value)}\n`);
}

/** A left-aligned text table. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((v, c) => v.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
