// A dependency-free SVG bar chart writer for benchmark results: grouped bars, one group per
// category and one colour per series, with a linear or log value axis.

export interface BarChartSeries {
  name: string;
  /** One value per category; null leaves a gap. */
  values: readonly (number | null)[];
}

export interface BarChartSpec {
  title: string;
  categories: readonly string[];
  series: readonly BarChartSeries[];
  yLabel: string;
  /** Log scale suits throughputs spanning orders of magnitude. */
  logScale?: boolean;
  width?: number;
  height?: number;
  /** A horizontal reference line, e.g. a goal. */
  referenceLine?: { value: number; label: string };
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function shortNumber(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** Returns a standalone SVG document. */
export function barChartSvg(spec: BarChartSpec): string {
  const width = spec.width ?? Math.max(640, 90 + spec.categories.length * (spec.series.length * 14 + 24));
  const height = spec.height ?? 470;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = 160;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const all = spec.series.flatMap((s) => s.values.filter((v): v is number => v !== null && v > 0));
  if (spec.referenceLine) all.push(spec.referenceLine.value);
  const rawMax = all.length > 0 ? Math.max(...all) : 1;
  const log = spec.logScale === true;
  const minPos = all.length > 0 ? Math.min(...all) : 1;
  const logMin = log ? 10 ** Math.floor(Math.log10(minPos)) : 0;
  const logMax = log ? 10 ** Math.ceil(Math.log10(rawMax * 1.0001)) : 0;
  const linMax = niceMax(rawMax);
  const y = (v: number) => {
    if (log) {
      const f =
        (Math.log10(Math.max(v, logMin)) - Math.log10(logMin)) / (Math.log10(logMax) - Math.log10(logMin));
      return top + plotH - f * plotH;
    }
    return top + plotH - (v / linMax) * plotH;
  };
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(spec.title)}</text>`,
  );
  const ticks: number[] = [];
  if (log) for (let t = logMin; t <= logMax * 1.0001; t *= 10) ticks.push(t);
  else for (let i = 0; i <= 5; i++) ticks.push((linMax * i) / 5);
  for (const t of ticks) {
    const ty = y(t).toFixed(1);
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${shortNumber(t)}</text>`,
    );
  }
  parts.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  const groupW = plotW / Math.max(1, spec.categories.length);
  const barW = Math.max(2, (groupW - 10) / Math.max(1, spec.series.length));
  spec.categories.forEach((cat, ci) => {
    const gx = left + ci * groupW + 5;
    spec.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === null || v === undefined || v <= 0) return;
      const by = y(v);
      parts.push(
        `<rect x="${(gx + si * barW).toFixed(1)}" y="${by.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(top + plotH - by).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${s.name} / ${cat}: ${v}`)}</title></rect>`,
      );
    });
    const lx = gx + groupW / 2 - 5;
    parts.push(
      `<text transform="translate(${lx.toFixed(1)} ${top + plotH + 8}) rotate(40)" font-size="10">${esc(cat)}</text>`,
    );
  });
  if (spec.referenceLine) {
    const ry = y(spec.referenceLine.value).toFixed(1);
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${ry}" y2="${ry}" stroke="#c00" stroke-dasharray="6 4"/>`,
      `<text x="${width - right}" y="${Number(ry) - 4}" text-anchor="end" fill="#c00">${esc(spec.referenceLine.label)}</text>`,
    );
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(
    `<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`,
  );
  spec.series.forEach((s, si) => {
    const lx = left + (si % 4) * 160;
    const ly = height - 28 + Math.floor(si / 4) * 14;
    parts.push(
      `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${PALETTE[si % PALETTE.length]}"/>`,
      `<text x="${lx + 14}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
