// Plain-text tables for benchmark output: aligned columns, numbers right-aligned.

export type Cell = string | number | bigint | null | undefined;

function show(cell: Cell): string {
  if (cell === null || cell === undefined) return "-";
  if (typeof cell === "number") {
    if (!Number.isFinite(cell)) return String(cell);
    if (Number.isInteger(cell)) return cell.toLocaleString("en-US");
    return cell.toLocaleString("en-US", { maximumFractionDigits: Math.abs(cell) < 10 ? 2 : 1 });
  }
  return String(cell);
}

const isNumeric = (cell: Cell) => typeof cell === "number" || typeof cell === "bigint";

/** Renders rows under a header; numeric cells are right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((r) => header.map((_, i) => show(r[i])));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: readonly string[], numeric: readonly boolean[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out = [
    line(
      header,
      header.map(() => false),
    ),
    widths.map((w) => "-".repeat(w)).join("  "),
  ];
  rows.forEach((r, ri) => {
    out.push(
      line(
        text[ri]!,
        header.map((_, i) => isNumeric(r[i])),
      ),
    );
  });
  return out.join("\n");
}
