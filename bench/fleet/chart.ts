/**
 * The fleet frontier as an SVG scatter: instance-hours (x, logarithmic: a static fleet sits at several times the
 * others) against p95 wait for capacity (y), one point per policy and buffer, one colour per policy, points of
 * one policy joined in buffer order. Plain SVG text, no dependency: the bench writes it and docs/performance.md
 * shows it.
 */
export interface ChartPoint {
  series: string;
  label: string;
  x: number;
  y: number;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
const W = 760;
const H = 460;
const M = { left: 70, right: 250, top: 40, bottom: 55 };

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Round numbers for the axes: 1, 2 or 5 times a power of ten, about `count` of them. */
function linearTicks(min: number, max: number, count = 6): number[] {
  const span = Math.max(max - min, 1e-9);
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(Number(v.toFixed(6)));
  return out;
}

/** Round values for a logarithmic axis: 1, 1.5, 2, 3, 5, 7 times powers of ten. */
function logTicks(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 1.5, 2, 3, 5, 7]) {
      const v = m * 10 ** e;
      if (v >= min && v <= max) out.push(Number(v.toPrecision(6)));
    }
  }
  return out;
}

export function frontierSvg(points: readonly ChartPoint[], title: string, xLabel: string, yLabel: string): string {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const pad = (lo: number, hi: number) => [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05];
  const lx = xs.map((x) => Math.log10(Math.max(x, 1e-6)));
  const [x0, x1] = pad(Math.min(...lx), Math.max(...lx));
  const [, y1] = pad(0, Math.max(...ys, 1));
  const y0 = 0;
  const px = (x: number) => M.left + ((Math.log10(Math.max(x, 1e-6)) - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const series = [...new Set(points.map((p) => p.series))];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="14" font-weight="bold">${escape(title)}</text>`);
  for (const t of logTicks(10 ** x0, 10 ** x1)) {
    out.push(`<line x1="${px(t).toFixed(1)}" y1="${M.top}" x2="${px(t).toFixed(1)}" y2="${H - M.bottom}" stroke="#eee"/>`);
    out.push(`<text x="${px(t).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of linearTicks(y0, y1)) {
    out.push(`<line x1="${M.left}" y1="${py(t).toFixed(1)}" x2="${W - M.right}" y2="${py(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 14}" text-anchor="middle">${escape(xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`);
  series.forEach((name, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const own = points.filter((p) => p.series === name);
    if (own.length > 1) {
      out.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${own.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ")}"/>`);
    }
    for (const p of own) {
      out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="4.5" fill="${colour}"><title>${escape(`${name} ${p.label}: ${p.x.toFixed(1)} h, ${p.y} s`)}</title></circle>`);
      if (p.label) out.push(`<text x="${(px(p.x) + 6).toFixed(1)}" y="${(py(p.y) - 6).toFixed(1)}" fill="${colour}" font-size="10">${escape(p.label)}</text>`);
    }
    const ly = M.top + 10 + i * 34;
    out.push(`<circle cx="${W - M.right + 16}" cy="${ly}" r="4.5" fill="${colour}"/>`);
    const words = name.split(" ");
    const lines: string[] = [""];
    for (const w of words) {
      if ((lines[lines.length - 1] + " " + w).length > 32) lines.push(w);
      else lines[lines.length - 1] = `${lines[lines.length - 1]} ${w}`.trim();
    }
    lines.forEach((line, j) => out.push(`<text x="${W - M.right + 26}" y="${ly + 4 + j * 13}">${escape(line)}</text>`));
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
