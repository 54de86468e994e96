/**
 * Hand-written inline SVG charts for the report (no chart library, no script): line charts (training curves), a
 * confusion-matrix heatmap with counts, grouped horizontal bars (per-class accuracy against chance), an interval
 * plot (accuracy with 95% intervals), and a funnel. All text goes through {@link html}, so it is escaped.
 *
 * Colours are the Okabe–Ito palette (distinguishable with colour-vision deficiencies).
 */
import { html, join, type SafeHtml } from './html.ts';

/** Okabe–Ito colours by role. */
export const COLORS = {
  blue: '#0072B2',
  orange: '#E69F00',
  green: '#009E73',
  vermillion: '#D55E00',
  purple: '#CC79A7',
  sky: '#56B4E9',
  yellow: '#F0E442',
  grey: '#777777',
} as const;

/** Rounds to at most 4 significant decimals for SVG coordinates (smaller markup). */
function r(n: number): number {
  return Math.round(n * 100) / 100;
}

/**
 * "Nice" axis ticks covering [min, max] with about `count` steps of 1, 2 or 5 × 10^k.
 * @returns the tick values, ascending, first ≤ min and last ≥ max.
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max === min) {
    const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const rawStep = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(rawStep));
  const step = ([1, 2, 5, 10].map((m) => m * mag).find((s) => s >= rawStep) ?? 10 * mag);
  const lo = Math.floor(min / step + 1e-9);
  const hi = Math.ceil(max / step - 1e-9);
  // Round to the step's decimals, so 3 × 0.2 prints as 0.6, not 0.6000000000000001.
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  const ticks: number[] = [];
  for (let i = lo; i <= hi; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return ticks;
}

function tickLabel(v: number, percent: boolean): string {
  if (percent) return `${Math.round(v * 1000) / 10}%`;
  return String(Math.round(v * 1e6) / 1e6);
}

/** One line of a {@link lineChart}. */
export interface LineSeries {
  name: string;
  color: string;
  /** `[x, y]` points; points with a null y are gaps. */
  points: readonly (readonly [number, number | null])[];
  dashed?: boolean;
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** Fixed y range (e.g. [0, 1] for accuracy); otherwise from the data, padded to nice ticks. */
  yDomain?: readonly [number, number];
  /** Format y ticks as percentages. */
  percent?: boolean;
  /** Horizontal reference lines (e.g. chance). */
  hLines?: readonly { y: number; label: string; color?: string }[];
  /** Vertical markers (e.g. learning-rate drops). */
  vLines?: readonly { x: number; label: string }[];
  /** Pixel size of the chart. */
  width?: number;
  height?: number;
  /** What an x value is, in the points' tooltips (default `epoch`). */
  xName?: string;
}

/**
 * A line chart with axes, ticks, a legend, optional reference lines and markers; each point has a `<title>` tooltip.
 * @returns an `<svg>` element (`role="img"`, labelled by its title).
 */
export function lineChart(o: LineChartOptions): SafeHtml {
  const W = o.width ?? 400;
  const H = o.height ?? 280;
  const m = { l: 56, r: 16, t: 34, b: 46 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1]).filter((y): y is number => y !== null && Number.isFinite(y)));
  for (const h of o.hLines ?? []) ys.push(h.y);
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const yTicks = o.yDomain ? niceTicks(o.yDomain[0], o.yDomain[1], 5) : niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1, 5);
  const y0 = o.yDomain ? o.yDomain[0] : yTicks[0]!;
  const y1 = o.yDomain ? o.yDomain[1] : yTicks[yTicks.length - 1]!;
  const xTicks = niceTicks(xMin, xMax, Math.min(8, Math.max(1, xMax - xMin))).filter((t) => t >= xMin && t <= xMax && Number.isInteger(t));
  const sx = (x: number) => m.l + (xMax === xMin ? pw / 2 : ((x - xMin) / (xMax - xMin)) * pw);
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0 || 1)) * ph;

  const grid = yTicks
    .filter((t) => t >= y0 - 1e-12 && t <= y1 + 1e-12)
    .map((t) => html`<line class="grid" x1="${m.l}" x2="${m.l + pw}" y1="${r(sy(t))}" y2="${r(sy(t))}"/><text class="tick" x="${m.l - 6}" y="${r(sy(t)) + 4}" text-anchor="end">${tickLabel(t, !!o.percent)}</text>`);
  const xt = xTicks.map((t) => html`<line class="axis" x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${m.t + ph}" y2="${m.t + ph + 4}"/><text class="tick" x="${r(sx(t))}" y="${m.t + ph + 16}" text-anchor="middle">${t}</text>`);
  const hl = (o.hLines ?? []).map(
    (h) => html`<line x1="${m.l}" x2="${m.l + pw}" y1="${r(sy(h.y))}" y2="${r(sy(h.y))}" stroke="${h.color ?? COLORS.grey}" stroke-dasharray="2 3"/><text class="note" x="${m.l + pw - 2}" y="${r(sy(h.y)) - 4}" text-anchor="end">${h.label}</text>`,
  );
  const vl = (o.vLines ?? []).map(
    (v) => html`<line x1="${r(sx(v.x))}" x2="${r(sx(v.x))}" y1="${m.t}" y2="${m.t + ph}" stroke="${COLORS.grey}" stroke-dasharray="1 3"><title>${v.label}</title></line>`,
  );
  const lines = o.series.map((s) => {
    const segs: string[] = [];
    let cur: string[] = [];
    for (const [x, y] of s.points) {
      if (y === null || !Number.isFinite(y)) {
        if (cur.length) segs.push(cur.join(' '));
        cur = [];
      } else cur.push(`${r(sx(x))},${r(sy(y))}`);
    }
    if (cur.length) segs.push(cur.join(' '));
    const dots = s.points
      .filter((p): p is readonly [number, number] => p[1] !== null && Number.isFinite(p[1]))
      .map(([x, y]) => html`<circle cx="${r(sx(x))}" cy="${r(sy(y))}" r="2.5" fill="${s.color}"><title>${s.name}, ${o.xName ?? 'epoch'} ${x}: ${o.percent ? `${(y * 100).toFixed(1)}%` : y.toFixed(4)}</title></circle>`);
    return html`<g class="series">${segs.map((pts) => html`<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dashed ? html`stroke-dasharray="5 3"` : ''} points="${pts}"/>`)}${dots}</g>`;
  });
  const legend = o.series.map(
    (s, i) => html`<g transform="translate(${m.l + i * 110},${14})"><line x1="0" x2="18" y1="0" y2="0" stroke="${s.color}" stroke-width="2" ${s.dashed ? html`stroke-dasharray="5 3"` : ''}/><text class="legend" x="24" y="4">${s.name}</text></g>`,
  );
  return html`<svg class="chart" role="img" aria-label="${o.title}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg"><title>${o.title}</title>${grid}${hl}${vl}<line class="axis" x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}"/><line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}"/>${xt}${lines}${legend}<text class="label" x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">${o.xLabel}</text><text class="label" transform="translate(14,${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${o.yLabel}</text></svg>`;
}

/** Linear blend from white to `rgb` by `t` in [0, 1], as `rgb(r,g,b)`. */
function shade(t: number, rgb: readonly [number, number, number] = [0, 114, 178]): string {
  const k = Math.max(0, Math.min(1, t));
  const c = rgb.map((v) => Math.round(255 + (v - 255) * k));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * The confusion matrix as a heatmap: rows are the true genre, columns the predicted one, each cell shows its count
 * and is shaded by the row-normalised fraction (so rows of different sizes compare). The diagonal is outlined.
 * Every cell carries `data-count`, `data-true` and `data-predicted` attributes.
 * @param labels genre names in label order; @param matrix `matrix[true][predicted]` counts, `labels.length` square.
 * @param cellHref a link target per cell (true i, predicted j), or null for none.
 * @throws Error when the matrix is not square in the number of labels.
 */
export function confusionHeatmap(labels: readonly string[], matrix: readonly (readonly number[])[], title = 'Confusion matrix', cellHref: (i: number, j: number) => string | null = () => null): SafeHtml {
  const k = labels.length;
  if (matrix.length !== k || matrix.some((row) => row.length !== k)) {
    throw new Error(`confusion matrix: expected ${k}×${k} counts for ${k} labels, found ${matrix.length} rows`);
  }
  const cell = k <= 4 ? 56 : k <= 10 ? 46 : 34;
  const longest = Math.max(...labels.map((l) => l.length), 4);
  const lm = Math.min(160, 16 + longest * 7) + 18;
  const tm = Math.min(150, 16 + longest * 6) + 18;
  const W = lm + k * cell + 12;
  const H = tm + k * cell + 12;
  const cells: SafeHtml[] = [];
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      const frac = total > 0 ? count / total : 0;
      const x = lm + j * cell;
      const y = tm + i * cell;
      const dark = frac > 0.55;
      const g = html`<g class="cm-cell" data-true="${labels[i]!}" data-predicted="${labels[j]!}" data-count="${count}"><rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${shade(frac)}" stroke="${i === j ? '#222' : '#fff'}" stroke-width="${i === j ? 1.5 : 1}"/><text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" class="${dark ? 'cm-count dark' : 'cm-count'}">${count}</text><title>true ${labels[i]!}, predicted ${labels[j]!}: ${count} of ${total} (${total ? ((frac * 100).toFixed(1)) : '0'}%)</title></g>`;
      const href = cellHref(i, j);
      cells.push(href ? html`<a href="${href}">${g}</a>` : g);
    });
  });
  const rowLabels = labels.map((l, i) => html`<text class="tick" x="${lm - 6}" y="${tm + i * cell + cell / 2 + 4}" text-anchor="end">${l}</text>`);
  const colLabels = labels.map((l, j) => html`<text class="tick" transform="translate(${lm + j * cell + cell / 2 + 4},${tm - 6}) rotate(-60)" text-anchor="start">${l}</text>`);
  return html`<svg class="chart heatmap" role="img" aria-label="${title}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg"><title>${title}</title><text class="label" x="${lm + (k * cell) / 2}" y="12" text-anchor="middle">predicted genre →</text><text class="label" transform="translate(12,${tm + (k * cell) / 2}) rotate(-90)" text-anchor="middle">true genre →</text>${rowLabels}${colLabels}${cells}</svg>`;
}

/** One group member of {@link classBars}. */
export interface BarSeries {
  name: string;
  color: string;
  /** One value per label in [0, 1]; null = no data. */
  values: readonly (number | null)[];
  /** Optional 95% intervals per label. */
  intervals?: readonly (readonly [number, number] | null)[];
}

/**
 * Grouped horizontal bars per label (per-class accuracy), with error bars and a dashed chance line.
 * @param chance the chance level in [0, 1] (1 / number of classes).
 */
export function classBars(labels: readonly string[], series: readonly BarSeries[], chance: number, title = 'Per-class accuracy'): SafeHtml {
  const bh = 14;
  const gap = 12;
  const groupH = series.length * bh + gap;
  const longest = Math.max(...labels.map((l) => l.length), 4);
  const lm = Math.min(170, 16 + longest * 7);
  const pw = 360;
  const legendH = series.length * 18;
  const tm = legendH + 26;
  const W = Math.max(lm + pw + 48, lm + 24 + Math.max(...series.map((x) => x.name.length)) * 7);
  const H = tm + labels.length * groupH + 24;
  const sx = (v: number) => lm + v * pw;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const bottom = H - 24;
  const grid = ticks.map((t) => html`<line class="grid" x1="${sx(t)}" x2="${sx(t)}" y1="${tm}" y2="${bottom}"/><text class="tick" x="${sx(t)}" y="${H - 10}" text-anchor="middle">${tickLabel(t, true)}</text>`);
  const bars = labels.map((l, i) => {
    const y0 = tm + i * groupH + gap / 2;
    const members = series.map((s, j) => {
      const v = s.values[i] ?? null;
      const y = y0 + j * bh;
      if (v === null) return html`<text class="note" x="${lm + 4}" y="${y + bh - 3}">no test images</text>`;
      const iv = s.intervals?.[i] ?? null;
      const mid = y + (bh - 2) / 2;
      return html`<g><rect x="${lm}" y="${y}" width="${r(Math.max(0.5, v * pw))}" height="${bh - 2}" fill="${s.color}"><title>${l} — ${s.name}: ${(v * 100).toFixed(1)}%${iv ? ` (95% interval ${(iv[0] * 100).toFixed(1)}–${(iv[1] * 100).toFixed(1)}%)` : ''}</title></rect>${iv ? html`<line x1="${r(sx(iv[0]))}" x2="${r(sx(iv[1]))}" y1="${mid}" y2="${mid}" stroke="#222" stroke-opacity="0.55" stroke-width="1"/><line x1="${r(sx(iv[1]))}" x2="${r(sx(iv[1]))}" y1="${mid - 3}" y2="${mid + 3}" stroke="#222" stroke-opacity="0.55"/><line x1="${r(sx(iv[0]))}" x2="${r(sx(iv[0]))}" y1="${mid - 3}" y2="${mid + 3}" stroke="#222" stroke-opacity="0.55"/>` : ''}<text class="note" x="${lm + pw + 8}" y="${y + bh - 3}">${(v * 100).toFixed(0)}%</text></g>`;
    });
    return html`<text class="tick" x="${lm - 8}" y="${y0 + (series.length * bh) / 2 + 3}" text-anchor="end">${l}</text>${members}`;
  });
  const legend = series.map((s, j) => html`<g transform="translate(${lm},${12 + j * 18})"><rect x="0" y="-9" width="12" height="10" fill="${s.color}"/><text class="legend" x="18" y="0">${s.name}</text></g>`);
  const cx = sx(chance);
  return html`<svg class="chart" role="img" aria-label="${title}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg"><title>${title}</title>${legend}${grid}${bars}<line x1="${r(cx)}" x2="${r(cx)}" y1="${tm - 4}" y2="${bottom}" stroke="${COLORS.vermillion}" stroke-dasharray="4 3" stroke-width="1.5"/><text class="note chance" x="${r(cx)}" y="${tm - 8}" text-anchor="middle">chance ${(chance * 100).toFixed(1)}%</text></svg>`;
}

/** One row of an {@link intervalPlot}. */
export interface IntervalRow {
  name: string;
  value: number;
  /** 95% interval; omitted for reference figures without one. */
  interval?: readonly [number, number];
  color: string;
  /** Drawn hollow (reference figures from elsewhere). */
  hollow?: boolean;
}

/** A dot-and-whisker plot of accuracies with 95% intervals on a 0–100% axis, with optional chance line. */
export function intervalPlot(rows: readonly IntervalRow[], chance: number | null, title = 'Accuracy with 95% intervals'): SafeHtml {
  const rowH = 24;
  const longest = Math.max(...rows.map((x) => x.name.length), 4);
  const lm = Math.min(260, 16 + longest * 6.5);
  const pw = 380;
  const tm = 14;
  const W = lm + pw + 24;
  const H = tm + rows.length * rowH + 30;
  const hi = Math.max(0.3, ...rows.map((x) => x.interval?.[1] ?? x.value));
  const ticks = niceTicks(0, Math.min(1, hi), 5).filter((t) => t <= 1);
  const max = ticks[ticks.length - 1]!;
  const sx = (v: number) => lm + (v / max) * pw;
  const grid = ticks.map((t) => html`<line class="grid" x1="${r(sx(t))}" x2="${r(sx(t))}" y1="${tm}" y2="${H - 26}"/><text class="tick" x="${r(sx(t))}" y="${H - 12}" text-anchor="middle">${tickLabel(t, true)}</text>`);
  const marks = rows.map((x, i) => {
    const y = tm + i * rowH + rowH / 2;
    const iv = x.interval;
    return html`<text class="tick" x="${lm - 8}" y="${y + 4}" text-anchor="end">${x.name}</text>${iv ? html`<line x1="${r(sx(iv[0]))}" x2="${r(sx(iv[1]))}" y1="${y}" y2="${y}" stroke="${x.color}" stroke-width="2"/><line x1="${r(sx(iv[0]))}" x2="${r(sx(iv[0]))}" y1="${y - 5}" y2="${y + 5}" stroke="${x.color}" stroke-width="2"/><line x1="${r(sx(iv[1]))}" x2="${r(sx(iv[1]))}" y1="${y - 5}" y2="${y + 5}" stroke="${x.color}" stroke-width="2"/>` : ''}<circle cx="${r(sx(x.value))}" cy="${y}" r="5" fill="${x.hollow ? '#fff' : x.color}" stroke="${x.color}" stroke-width="2"><title>${x.name}: ${(x.value * 100).toFixed(1)}%${iv ? ` (95% interval ${(iv[0] * 100).toFixed(1)}–${(iv[1] * 100).toFixed(1)}%)` : ''}</title></circle>`;
  });
  const chanceLine = chance === null ? '' : html`<line x1="${r(sx(chance))}" x2="${r(sx(chance))}" y1="${tm}" y2="${H - 26}" stroke="${COLORS.vermillion}" stroke-dasharray="4 3" stroke-width="1.5"/>`;
  return html`<svg class="chart" role="img" aria-label="${title}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg"><title>${title}</title>${grid}${chanceLine}${marks}</svg>`;
}

/** One step of a {@link funnelChart}. */
export interface FunnelStep {
  name: string;
  /** Count at this step; null = stage not built. */
  value: number | null;
}

/** Horizontal bars of decreasing counts (candidates → … → in a split), each labelled with its count. */
export function funnelChart(steps: readonly FunnelStep[], title = 'Funnel'): SafeHtml {
  const rowH = 26;
  const lm = 150;
  const pw = 420;
  const W = lm + pw + 70;
  const H = steps.length * rowH + 8;
  const max = Math.max(1, ...steps.map((s) => s.value ?? 0));
  const rows = steps.map((s, i) => {
    const y = 4 + i * rowH;
    if (s.value === null) return html`<text class="tick" x="${lm - 8}" y="${y + 16}" text-anchor="end">${s.name}</text><text class="note" x="${lm + 4}" y="${y + 16}">not built yet</text>`;
    const w = Math.max(1, (s.value / max) * pw);
    return html`<text class="tick" x="${lm - 8}" y="${y + 16}" text-anchor="end">${s.name}</text><rect x="${lm + (pw - w) / 2}" y="${y}" width="${r(w)}" height="${rowH - 6}" fill="${COLORS.sky}"/><text class="note" x="${lm + pw + 6}" y="${y + 16}">${s.value.toLocaleString('en-GB')}</text>`;
  });
  return html`<svg class="chart" role="img" aria-label="${title}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg"><title>${title}</title>${join(rows)}</svg>`;
}

/** One point of a {@link scatterChart}. */
export interface ScatterPoint {
  /** A number, or for a categorical axis the category's index in `categories`. */
  x: number;
  y: number;
  color: string;
  /** Tooltip text. */
  label: string;
}

/** Options of {@link scatterChart}. */
export interface ScatterChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  /** Categorical x axis: these names at x = 0, 1, … */
  categories?: readonly string[];
  /** Logarithmic x axis (positive x only). */
  logX?: boolean;
  /** Format y ticks as percentages. */
  percent?: boolean;
  /** Legend entries (colour, name). */
  legend?: readonly { color: string; name: string }[];
  width?: number;
  height?: number;
}

/**
 * A small scatter plot (e.g. one searched parameter against validation accuracy), each point with a `<title>`
 * tooltip; categorical x values are spread slightly so that points of one category stay visible.
 * @returns an `<svg>` element (`role="img"`, labelled by its title).
 */
export function scatterChart(o: ScatterChartOptions): SafeHtml {
  const W = o.width ?? 260;
  const H = o.height ?? 200;
  const m = { l: 48, r: 12, t: 26, b: 40 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const tx = (x: number) => (o.logX ? Math.log10(x) : x);
  const xs = o.points.map((p) => tx(p.x));
  const [xMin, xMax] = o.categories ? [-0.5, o.categories.length - 0.5] : [Math.min(...xs), Math.max(...xs)];
  const ys = o.points.map((p) => p.y);
  const yTicks = niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1, 4);
  const y0 = yTicks[0]!;
  const y1 = yTicks[yTicks.length - 1]!;
  const sx = (x: number) => m.l + (xMax === xMin ? pw / 2 : ((x - xMin) / (xMax - xMin)) * pw);
  const sy = (y: number) => m.t + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const grid = yTicks.map((t) => html`<line class="grid" x1="${m.l}" x2="${m.l + pw}" y1="${r(sy(t))}" y2="${r(sy(t))}"/><text class="tick" x="${m.l - 6}" y="${r(sy(t)) + 4}" text-anchor="end">${tickLabel(t, !!o.percent)}</text>`);
  const xTickValues = o.categories ? o.categories.map((_, i) => i) : niceTicks(xMin, xMax, 3).filter((t) => t >= xMin - 1e-12 && t <= xMax + 1e-12);
  const xTickText = (t: number) => (o.categories ? o.categories[t]! : o.logX ? `1e${Number(t.toFixed(2))}` : String(Number(t.toPrecision(3))));
  const xt = xTickValues.map((t) => html`<text class="tick" x="${r(sx(t))}" y="${m.t + ph + 14}" text-anchor="middle">${xTickText(t)}</text>`);
  const jitter = (i: number) => (o.categories ? (((i * 37) % 11) / 10 - 0.5) * 0.3 : 0);
  const dots = o.points.map((p, i) => html`<circle cx="${r(sx(tx(p.x) + jitter(i)))}" cy="${r(sy(p.y))}" r="3" fill="${p.color}" fill-opacity="0.8"><title>${p.label}</title></circle>`);
  const legend = (o.legend ?? []).map((l, i) => html`<g transform="translate(${m.l + i * 90},${12})"><circle cx="4" cy="0" r="3" fill="${l.color}"/><text class="legend" x="12" y="4">${l.name}</text></g>`);
  return html`<svg class="chart" role="img" aria-label="${o.title}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg"><title>${o.title}</title>${grid}<line class="axis" x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}"/><line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}"/>${xt}${dots}${legend}<text class="label" x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">${o.xLabel}</text><text class="label" transform="translate(12,${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${o.yLabel}</text></svg>`;
}
