/**
 * Renders the report: one self-contained HTML page (inline CSS and SVG, images as `data:` URIs, no script, and a
 * Content-Security-Policy that forbids loading anything else). Sections whose stage has not run say so instead of
 * failing. {@link buildReport} reads a data directory; {@link renderHtml} is the pure rendering step.
 */
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { hashJson, type Config } from '../pipeline/config.ts';
import { describeKeptCheckpoint, keptCheckpoint, wilsonInterval, type EpochMetrics, type EvalMetrics } from '../schemas/metrics.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { fmtDuration, fmtLearningRate } from '../util/format.ts';
import { join as joinPath } from 'node:path';
import { fmtInt, fmtPct, html, join, raw, type HtmlValue, type SafeHtml } from './html.ts';
import { readContactSheets, readMeanImage, type ContactSheets, type MeanImage } from './images.ts';
import { LEAKAGE_GROUPS_SHOWN, readLeakage, type Leakage } from './leakage.ts';
import { readInputs, type DataPath, type FunnelCounts, type Part, type ReportInputs } from './inputs.ts';
import { confusionCellId, INSPECT_SECTIONS, inspectSections, inspectStyles, linkedCells, readInspect, type InspectView } from './inspect.ts';
import { REPORT_CSS } from './style.ts';
import { classBars, COLORS, confusionHeatmap, funnelChart, intervalPlot, lineChart, scatterChart, type BarSeries } from './svg.ts';

/**
 * Reference figures of the 2015 study "Learning about deep learning through album cover classification"
 * (10 Bandcamp genres × 1,000 covers, test accuracy): the random forest on 50×50 grayscale pixels, CaffeNet
 * fine-tuned from ImageNet, and AlexNet trained from scratch; chance is 1/10.
 */
export const STUDY_2015 = [
  { name: '2015 study: fine-tuned CaffeNet', accuracy: 0.226 },
  { name: '2015 study: AlexNet from scratch', accuracy: 0.172 },
  { name: '2015 study: random forest', accuracy: 0.15 },
  { name: '2015 study: random forest on CaffeNet fc7', accuracy: 0.1672 },
  { name: '2015 study: chance (10 genres)', accuracy: 0.1 },
] as const;

/** Software versions recorded in the report. */
export interface Versions {
  package: string;
  node: string;
  sharp: string;
  libvips: string;
  tfjs: string;
}

/** Everything the page shows. */
export interface ReportModel {
  config: Config;
  /** The data directory, as given. */
  dataDir: string;
  generatedAt: Date;
  inputs: ReportInputs;
  sheets: Part<ContactSheets>;
  mean: Part<MeanImage>;
  versions: Versions;
  /** The split's leakage audit and near-duplicate thumbnails (absent: section shown as not built). */
  leakage?: Part<Leakage>;
  /** What the network learned (`eval/inspect/`, report/inspect.ts); absent = not read (shown as not built). */
  inspect?: Part<InspectView>;
}

/** Options of {@link buildReport}. */
export interface BuildReportOptions {
  dataDir: string;
  config: Config;
  /** Resolves data-directory paths (default: under `dataDir`); the report stage passes `ctx.path`. */
  path?: DataPath;
  /** Stage names in pipeline order, for the timings table (default: by start time). */
  stageOrder?: readonly string[];
  /** Time stamp shown in the header (default: now). */
  now?: Date;
}

/** Reads the versions of this package, Node, sharp, libvips and TensorFlow.js. */
async function readVersions(): Promise<Versions> {
  let pkg = 'unknown';
  try {
    // report/render.ts in a checkout, dist/report/render.js in the package: package.json is one or two levels up.
    const at = ['../package.json', '../../package.json'].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(u))!;
    pkg = (JSON.parse(readFileSync(at, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    /* keep "unknown" */
  }
  let tfjs = 'unknown';
  try {
    tfjs = (await import('@tensorflow/tfjs-core')).version_core;
  } catch {
    /* keep "unknown" */
  }
  const v = sharp.versions as Record<string, string | undefined>;
  return { package: pkg, node: process.version, sharp: v.sharp ?? 'unknown', libvips: v.vips ?? 'unknown', tfjs };
}

/**
 * Reads a data directory and renders the report. Never fails for missing or unreadable inputs: those sections say
 * what to run instead.
 * @returns the HTML text of the page.
 */
export async function buildReport(opts: BuildReportOptions): Promise<string> {
  const path = opts.path ?? ((rel: string) => joinPath(opts.dataDir, rel));
  const inputs = await readInputs(path, opts.config, opts.stageOrder);
  const [sheets, mean, versions, leakage] = await Promise.all([
    readContactSheets(path, inputs.genres, opts.config.report.contactSheet),
    readMeanImage(path),
    readVersions(),
    readLeakage(path),
  ]);
  return renderHtml({ config: opts.config, dataDir: opts.dataDir, generatedAt: opts.now ?? new Date(), inputs, sheets, mean, versions, leakage, inspect: readInspect(path) });
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** The note for an absent part: "Not built yet: run `covers make <stage>`" or the read error. */
function absent(part: Part<unknown>, what: string): SafeHtml {
  if (part.ok) return html``;
  if (part.kind === 'missing') {
    return html`<p class="missing">Not built yet: run <code>covers make ${part.stage}</code> (${what}: ${part.message}).</p>`;
  }
  return html`<p class="error">Could not read ${what}: ${part.message}. Rebuild it with <code>covers make ${part.stage}</code>.</p>`;
}

function num(v: number | null): SafeHtml {
  return v === null ? html`<td class="num na" title="not built yet">—</td>` : html`<td class="num">${fmtInt(v)}</td>`;
}

function sumRecord(r: Record<string, number> | null): number | null {
  return r === null ? null : Object.values(r).reduce((a, b) => a + b, 0);
}

function pp(x: number): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)} pp`;
}

/** A rendered section: its id, whether its stage has run, and its markup. */
interface Section {
  id: string;
  ok: boolean;
  markup: SafeHtml;
}

/** Section wrapper: `<section id class="section" data-state>` with its heading. */
function section(id: string, title: string, ok: boolean, body: HtmlValue): Section {
  return { id, ok, markup: html`<section id="${id}" class="section" data-state="${ok ? 'ok' : 'missing'}"><h2>${title}</h2>${body}</section>` };
}

/** Correct predictions (diagonal) and total of a confusion matrix. */
export function confusionTotals(matrix: readonly (readonly number[])[]): { correct: number; n: number } {
  let correct = 0;
  let n = 0;
  matrix.forEach((row, i) => row.forEach((c, j) => {
    n += c;
    if (i === j) correct += c;
  }));
  return { correct, n };
}

/** Per-class accuracy (recall) from the confusion matrix, with 95% Wilson intervals; null for a class without images. */
export function perClassFromMatrix(matrix: readonly (readonly number[])[]): { accuracy: (number | null)[]; interval: ([number, number] | null)[]; n: number[] } {
  const n = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const accuracy = matrix.map((row, i) => (n[i]! > 0 ? row[i]! / n[i]! : null));
  const interval = matrix.map((row, i) => (n[i]! > 0 ? wilsonInterval(row[i]!, n[i]!) : null));
  return { accuracy, interval, n };
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

function summarySection(m: ReportModel): Section {
  const { inputs } = m;
  const cards: SafeHtml[] = [];
  const card = (k: string, v: string, title = '') => cards.push(html`<div class="card" title="${title}"><div class="v">${v}</div><div class="k">${k}</div></div>`);
  card('genres', String(inputs.genres.length));
  if (inputs.manifestRows !== null) card('images in the dataset', fmtInt(inputs.manifestRows));
  if (inputs.testSplitSize !== null) card('test images', fmtInt(inputs.testSplitSize));
  for (const [label, part] of [['convnet test accuracy', inputs.evaluation], ['random forest test accuracy', inputs.baseline], ['linear SVM test accuracy', inputs.linearSvm]] as const) {
    if (part.ok) {
      const { correct, n } = confusionTotals(part.data.confusionMatrix);
      const [lo, hi] = wilsonInterval(correct, n);
      const r = part.data.repeats;
      if (r) card(`${label}, mean ± std over ${r.seeds.length} seeds`, `${fmtPct(r.mean)} ± ${fmtPct(r.std)}`, `seeds ${r.seeds.map((s) => `${s.seed}: ${fmtPct(s.accuracy)}`).join(', ')}`);
      else card(label, n ? fmtPct(correct / n) : '—', `95% interval ${fmtPct(lo)}–${fmtPct(hi)}, n = ${n}`);
    }
  }
  const k = inputs.evaluation.ok ? inputs.evaluation.data.labels.length : inputs.genres.length;
  if (k > 0) card('chance', fmtPct(1 / k));
  const lead = html`<p class="lead">Album covers from Bandcamp, labelled by genre tag (albums matching exactly one of the chosen genres), following the 2015 study “Learning about deep learning through album cover classification”. Every figure below is read from the data directory <code>${m.dataDir}</code>.</p>`;
  return section('summary', 'Summary', true, [lead, html`<div class="cards">${cards}</div>`]);
}

const FUNNEL_COLUMNS: { key: keyof FunnelCounts; name: string; part: keyof ReportInputs['funnelParts']; stage: string }[] = [
  { key: 'candidates', name: 'Candidates', part: 'candidates', stage: 'discover' },
  { key: 'exclusive', name: 'Exclusive', part: 'labels', stage: 'label' },
  { key: 'selected', name: 'Selected', part: 'selection', stage: 'select' },
  { key: 'downloaded', name: 'Downloaded', part: 'manifest', stage: 'download' },
  { key: 'rejected', name: 'Rejected by download', part: 'rejected', stage: 'download' },
  { key: 'shardRejected', name: 'Rejected by shards', part: 'shardRejected', stage: 'shards' },
];

/**
 * How many extra rounds (list further, label, download) each genre needed to reach `perGenre`, and the extra
 * requests: `discover_web` pages and albums labelled (one `tralbum_details` request each) beyond round 1.
 */
function roundsNote(inputs: ReportInputs): SafeHtml {
  const l = inputs.listing;
  if (!l) return html``;
  const extra = inputs.genres.filter((g) => (l[g]?.extraRounds ?? 0) > 0);
  if (extra.length === 0) return html`<p class="note" data-rounds="0">Every genre was filled from the first round's listing.</p>`;
  const items = extra.map((g) => {
    const x = l[g]!;
    return html`<li data-genre="${g}"><strong>${g}</strong>: ${fmtInt(x.extraRounds)} extra round${x.extraRounds === 1 ? '' : 's'}, ${fmtInt(x.pages - x.firstRoundPages)} extra discover_web page${x.pages - x.firstRoundPages === 1 ? '' : 's'} and ${fmtInt(x.albums - x.firstRoundAlbums)} extra album${x.albums - x.firstRoundAlbums === 1 ? '' : 's'} to label (about ${fmtInt(x.pages - x.firstRoundPages + x.albums - x.firstRoundAlbums)} extra requests)</li>`;
  });
  return html`<p class="note" data-rounds="${String(extra.length)}">Genres that needed more than the first round's listing to reach their number of images:</p><ul class="rounds">${items}</ul>`;
}

function funnelSection(m: ReportModel): Section {
  const { inputs } = m;
  const parts = inputs.funnelParts;
  const anyBuilt = Object.values(parts).some((p) => p.ok);
  if (!anyBuilt) {
    return section('funnel', 'Dataset funnel', false, [absent(parts.candidates, 'the candidate list'), absent(parts.manifest, 'the manifest')]);
  }
  const genres = inputs.genres;
  const total = (f: (c: FunnelCounts) => number | null): number | null => {
    let s = 0;
    for (const g of genres) {
      const v = f(inputs.funnel[g]!);
      if (v === null) return null;
      s += v;
    }
    return s;
  };
  const reasonsTitle = (r: Record<string, number> | null) => (r ? Object.entries(r).map(([k, v]) => `${k}: ${v}`).join(', ') : '');
  const rows = genres.map((g) => {
    const c = inputs.funnel[g]!;
    return html`<tr data-genre="${g}"><th scope="row">${g}</th>${num(c.candidates)}${c.exclusive === null ? num(null) : html`<td class="num" title="${reasonsTitle(c.labelRejected)}">${fmtInt(c.exclusive)}</td>`}${num(c.selected)}${num(c.downloaded)}<td class="num${c.rejected === null ? ' na' : ''}" title="${reasonsTitle(c.rejected)}">${c.rejected === null ? '—' : fmtInt(sumRecord(c.rejected)!)}</td><td class="num${c.shardRejected === null ? ' na' : ''}" title="${reasonsTitle(c.shardRejected)}">${c.shardRejected === null ? '—' : fmtInt(sumRecord(c.shardRejected)!)}</td>${SPLIT_NAMES.map((s) => num(c.splits ? c.splits[s] : null))}</tr>`;
  });
  const totals = {
    candidates: total((c) => c.candidates),
    exclusive: total((c) => c.exclusive),
    selected: total((c) => c.selected),
    downloaded: total((c) => c.downloaded),
    rejected: total((c) => sumRecord(c.rejected)),
    shardRejected: total((c) => sumRecord(c.shardRejected)),
    splits: SPLIT_NAMES.map((s) => total((c) => (c.splits ? c.splits[s] : null))),
  };
  const foot = html`<tr><th scope="row">total</th>${num(totals.candidates)}${num(totals.exclusive)}${num(totals.selected)}${num(totals.downloaded)}${num(totals.rejected)}${num(totals.shardRejected)}${totals.splits.map(num)}</tr>`;
  const table = html`<div class="table-wrap"><table class="funnel"><thead><tr><th>Genre</th>${FUNNEL_COLUMNS.map((c) => html`<th class="num">${c.name}</th>`)}${SPLIT_NAMES.map((s) => html`<th class="num">${s}</th>`)}</tr></thead><tbody>${rows}</tbody><tfoot>${foot}</tfoot></table></div>`;

  const splitTotal = totals.splits.every((v) => v !== null) ? totals.splits.reduce<number>((a, b) => a + (b ?? 0), 0) : null;
  const chart = funnelChart(
    [
      { name: 'candidates', value: totals.candidates },
      { name: 'exclusive', value: totals.exclusive },
      { name: 'selected', value: totals.selected },
      { name: 'downloaded', value: totals.downloaded },
      { name: 'in a split', value: splitTotal },
    ],
    'Albums at each step, all genres',
  );

  // Rejections by reason × genre: candidates label did not keep (labels.arrow), and both rejected files.
  const reasonRows: SafeHtml[] = [];
  for (const [key, stage] of [['labelRejected', 'label'], ['rejected', 'download'], ['shardRejected', 'shards']] as const) {
    const reasons = new Set<string>();
    for (const g of genres) for (const r of Object.keys(inputs.funnel[g]![key] ?? {})) reasons.add(r);
    for (const reason of [...reasons].sort()) {
      const cells = genres.map((g) => inputs.funnel[g]![key]?.[reason] ?? 0);
      reasonRows.push(html`<tr><td>${stage}</td><td>${reason}</td>${cells.map((v) => html`<td class="num">${fmtInt(v)}</td>`)}<td class="num">${fmtInt(cells.reduce((a, b) => a + b, 0))}</td></tr>`);
    }
  }
  const reasonTable = reasonRows.length
    ? html`<h3>Rejections by reason</h3><div class="table-wrap"><table class="reasons"><thead><tr><th>Stage</th><th>Reason</th>${genres.map((g) => html`<th class="num">${g}</th>`)}<th class="num">total</th></tr></thead><tbody>${reasonRows}</tbody></table></div>`
    : parts.rejected.ok || parts.shardRejected.ok
      ? html`<p>No image was rejected.</p>`
      : '';
  const fromManifest = m.config.select.fromManifest;
  const notes = FUNNEL_COLUMNS.filter((c, i, all) => !parts[c.part].ok && all.findIndex((x) => x.part === c.part) === i)
    .map((c) => {
      const p = parts[c.part];
      // In rebuild mode `discover` and `label` are skipped on purpose: the selection is the given manifest.
      if (fromManifest && !p.ok && p.kind === 'missing' && (c.part === 'candidates' || c.part === 'labels')) {
        return html`<p class="note">Column “${c.name}”: skipped, the selection is rebuilt from <code>${fromManifest}</code> (<code>select.fromManifest</code>).</p>`;
      }
      return absent(p, `column “${c.name}”`);
    });
  const splitNote = parts.splits.ok ? '' : absent(parts.splits, 'the split columns');
  const lead = html`<p class="lead">Albums per genre at each step: listed by <code>discover_web</code> under the genre's tag (candidates), matching exactly one chosen genre (exclusive), eligible and ranked by the seeded selection (selected; download walks that order until the genre has <code>perGenre</code> images), downloaded and kept (the manifest), rejected with a reason, and assigned to each split. Hover an exclusive or rejection count for the reasons the others were dropped; the table below the funnel lists them by stage (label: <code>no-tags</code> albums without any tag but the location, <code>no-chosen-genre</code> tagged but with none of the chosen genres, <code>multi-genre</code>, <code>not-found</code>, <code>not-an-album</code>, <code>redirected-to</code>).</p>`;
  return section('funnel', 'Dataset funnel', true, [lead, chart, table, notes, splitNote, roundsNote(inputs), reasonTable]);
}

function sheetsSection(m: ReportModel): Section {
  const s = m.sheets;
  const lead = html`<p class="lead">Covers as the model sees them: decoded from the shards (${s.ok ? `${s.data.imageSize}×${s.data.imageSize}` : 'S×S'} RGB, after cropping and resizing), shown as small JPEG thumbnails. Training split first.</p>`;
  if (!s.ok) return section('covers', 'Contact sheets', false, absent(s, 'the shards'));
  if (m.config.report.contactSheet === 0) return section('covers', 'Contact sheets', true, html`<p>Disabled (<code>report.contactSheet</code> = 0).</p>`);
  const sheets = m.inputs.genres.map((g) => {
    const thumbs = s.data.byGenre[g] ?? [];
    const imgs = thumbs.map(
      (t) => html`<img src="${t.src}" width="96" height="96" alt="${g} cover${t.artId !== null ? `, art_id ${t.artId}` : ''}" title="${g} · item_id ${t.itemId ?? '?'} · art_id ${t.artId ?? '?'} · ${t.split}">`,
    );
    return html`<div class="sheet" data-genre="${g}"><h3>${g} <small>${thumbs.length} cover${thumbs.length === 1 ? '' : 's'}</small></h3>${thumbs.length ? html`<div class="thumbs">${imgs}</div>` : html`<p class="missing">No ${g} image in the shards.</p>`}</div>`;
  });
  return section('covers', 'Contact sheets', true, [lead, sheets]);
}

function meanSection(m: ReportModel): Section {
  const p = m.mean;
  if (!p.ok) return section('mean', 'Per-pixel mean image', false, absent(p, 'the per-pixel mean'));
  const d = p.data;
  const rgb = (v: number[] | null) => (v ? v.map((x) => x.toFixed(1)).join(', ') : '—');
  const body = html`<p class="lead">The mean over the training split of each pixel and channel, subtracted from every image before training (when <code>train.subtractMean</code> is on).</p><figure class="mean${d.size < 128 ? ' pixelated' : ''}"><img src="${d.src}" width="256" height="256" alt="per-pixel mean of the training images"><figcaption>${d.size}×${d.size}, ${d.count === null ? '?' : fmtInt(d.count)} training images</figcaption></figure><dl class="kv"><dt>channel mean (R, G, B)</dt><dd>${rgb(d.channelMean)}</dd><dt>channel std (R, G, B)</dt><dd>${rgb(d.channelStd)}</dd></dl>`;
  return section('mean', 'Per-pixel mean image', true, body);
}

function trainingSection(m: ReportModel): Section {
  const p = m.inputs.training;
  if (!p.ok) return section('training', 'Training curves', false, absent(p, `the training metrics of run “${m.config.train.run}”`));
  const { epochs, warnings, path } = p.data;
  if (!epochs.length) return section('training', 'Training curves', false, html`<p class="error">${path} holds no epoch. Rerun <code>covers make train</code>.</p>`);
  const pts = (f: (e: EpochMetrics) => number | null) => epochs.map((e) => [e.epoch, f(e)] as const);
  // A schedule's event (plateau, study) is recorded on the epoch after which the rate changed; cosine changes every
  // epoch by its formula and is shown by the learning-rate chart alone.
  const lrDrops = m.config.train.schedule === 'cosine' ? [] : epochs.filter((e, i) => i > 0 && e.learningRate !== epochs[i - 1]!.learningRate).map((e) => {
    const prev = epochs[epochs.indexOf(e) - 1]!;
    return { x: e.epoch - 0.5, label: `learning rate ${fmtLearningRate(prev.learningRate)} → ${fmtLearningRate(e.learningRate)} from epoch ${e.epoch}${prev.scheduleEvent ? ` (${prev.scheduleEvent})` : ''}` };
  });
  const k = m.inputs.evaluation.ok ? m.inputs.evaluation.data.labels.length : m.inputs.genres.length;
  const loss = lineChart({
    title: 'Loss per epoch',
    xLabel: 'epoch',
    yLabel: 'cross-entropy (nats)',
    series: [
      { name: 'train', color: COLORS.blue, points: pts((e) => e.trainLoss) },
      { name: 'validation', color: COLORS.orange, points: pts((e) => e.validationLoss), dashed: true },
    ],
    hLines: k > 1 ? [{ y: Math.log(k), label: `ln ${k} (uniform guess)` }] : [],
    vLines: lrDrops,
  });
  const acc = lineChart({
    title: 'Accuracy per epoch',
    xLabel: 'epoch',
    yLabel: 'accuracy',
    percent: true,
    yDomain: [0, 1],
    series: [
      { name: 'train', color: COLORS.blue, points: pts((e) => e.trainAccuracy) },
      { name: 'validation', color: COLORS.orange, points: pts((e) => e.validationAccuracy), dashed: true },
    ],
    hLines: k > 0 ? [{ y: 1 / k, label: `chance ${fmtPct(1 / k)}`, color: COLORS.vermillion }] : [],
    vLines: lrDrops,
  });
  const lr = lineChart({
    title: 'Learning rate per epoch',
    xLabel: 'epoch',
    yLabel: 'log₁₀ learning rate',
    series: [{ name: `learning rate (${m.config.train.schedule})`, color: COLORS.green, points: pts((e) => (e.learningRate > 0 ? Math.log10(e.learningRate) : null)) }],
    vLines: lrDrops,
  });
  const kept = keptCheckpoint(epochs, m.config.train.schedule);
  const seconds = epochs.reduce((a, e) => a + e.seconds, 0);
  const ips = epochs.reduce((a, e) => a + e.imagesPerSecond, 0) / epochs.length;
  const facts = html`<dl class="kv"><dt>run</dt><dd><code>${m.config.train.run}</code> (${path})</dd><dt>epochs</dt><dd>${epochs.length}</dd><dt>kept checkpoint</dt><dd>${describeKeptCheckpoint(kept)}</dd><dt>final learning rate</dt><dd>${fmtLearningRate(epochs[epochs.length - 1]!.learningRate)}</dd><dt>training time</dt><dd>${fmtDuration(seconds * 1000)} (mean ${ips.toFixed(1)} images/s)</dd></dl>`;
  const warn = warnings.length ? html`<p class="error">Skipped ${warnings.length} malformed line${warnings.length === 1 ? '' : 's'} of ${path}: ${warnings.slice(0, 5).join(' · ')}</p>` : '';
  const lead = html`<p class="lead">Mean cross-entropy and accuracy per epoch on the training and validation splits, and the learning rate each epoch trained with (schedule <code>${m.config.train.schedule}</code>). Dotted vertical lines mark learning-rate changes; hover them for the schedule's reason.${m.config.train.repeats > 1 ? ` The curves are those of the first training seed (${m.config.train.repeats} were trained; see the evaluation for each).` : ''}</p>`;
  return section('training', 'Training curves', true, [lead, html`<div class="charts">${loss}${acc}${lr}</div>`, facts, warn]);
}

/**
 * The search (`search/trials.tsv`, shown when the model came from it): best validation accuracy so far against the
 * trial number, and one small scatter per searched key against validation accuracy, pruned trials in their own
 * colour (failed ones have no accuracy and are only counted).
 */
function searchSection(m: ReportModel): Section {
  const p = m.inputs.search;
  if (!p.ok) return section('search', 'Hyperparameter search', false, absent(p, 'the search trials'));
  const { keys, rows } = p.data;
  const scored = [...rows].filter((r) => r.validationAccuracy !== null).sort((a, b) => a.trial - b.trial);
  let best = -Infinity;
  const bestSoFar = [...rows].sort((a, b) => a.trial - b.trial).map((r) => {
    if (r.status === 'complete' && r.validationAccuracy !== null) best = Math.max(best, r.validationAccuracy);
    return [r.trial + 1, Number.isFinite(best) ? best : null] as const;
  });
  const progress = lineChart({
    title: 'Best validation accuracy so far (complete trials)', xLabel: 'trial', yLabel: 'validation accuracy', percent: true,
    series: [{ name: 'best so far', color: COLORS.blue, points: bestSoFar }], width: 400, height: 240, xName: 'trial',
  });
  const colour = (status: string) => (status === 'pruned' ? COLORS.orange : COLORS.blue);
  const scatters = keys.map((key) => {
    const pts = scored.filter((r) => r.values[key] !== undefined);
    const values = pts.map((r) => r.values[key]!);
    const numeric = values.every((v) => typeof v === 'number');
    const categories = numeric ? undefined : [...new Set(values.map(String))];
    const nums = values.filter((v): v is number => typeof v === 'number');
    const logX = numeric && nums.length > 0 && Math.min(...nums) > 0 && Math.max(...nums) / Math.min(...nums) > 100;
    return scatterChart({
      title: `${key} against validation accuracy`, xLabel: key, yLabel: 'accuracy', percent: true, logX, categories,
      points: pts.map((r) => ({
        x: categories ? categories.indexOf(String(r.values[key])) : (r.values[key] as number), y: r.validationAccuracy!, color: colour(r.status),
        label: `trial ${r.trial + 1} (${r.status}, ${r.epochs} epochs): ${key} = ${r.values[key]}, accuracy ${fmtPct(r.validationAccuracy!)}`,
      })),
      legend: [{ color: COLORS.blue, name: 'complete' }, { color: COLORS.orange, name: 'pruned' }],
    });
  });
  const count = (s: string) => rows.filter((r) => r.status === s).length;
  const body = html`<p class="lead">${rows.length} trials on the validation split: ${count('complete')} complete, ${count('pruned')} pruned, ${count('failed')} failed (${m.config.search.algorithm}, ${m.config.search.epochs} epochs per trial, pruner ${m.config.search.pruner}). The model above is the best configuration trained fully (<code>train.fromSearch</code>).</p><figure>${progress}</figure><div class="charts">${scatters}</div>`;
  return section('search', 'Hyperparameter search', true, body);
}

function evalRow(name: string, m: EvalMetrics, chance: number): SafeHtml {
  const { correct, n } = confusionTotals(m.confusionMatrix);
  const acc = n ? correct / n : 0;
  const [lo, hi] = wilsonInterval(correct, n);
  const verdict = n === 0 ? '—' : lo > chance ? 'above chance' : hi < chance ? 'below chance' : 'not distinguishable from chance';
  return html`<tr><th scope="row">${name}</th><td class="num">${fmtInt(n)}</td><td class="num">${fmtInt(correct)}</td><td class="num">${fmtPct(acc)}</td><td class="num">${fmtPct(lo)} – ${fmtPct(hi)}</td><td class="num">${pp(acc - chance)}</td><td>${verdict}</td></tr>`;
}

function evaluationSection(m: ReportModel): Section {
  const { evaluation, baseline, linearSvm, testSplitSize } = m.inputs;
  const models: { name: string; data: EvalMetrics; color: string }[] = [];
  if (evaluation.ok) models.push({ name: `convnet (${m.config.train.init === 'pretrained' ? `fine-tuned ${m.config.pretrained.model.split('/').pop()}` : m.config.train.architecture}${evaluation.data.crops ? `, ${evaluation.data.crops} crop${evaluation.data.crops === 1 ? '' : 's'}` : ''})`, data: evaluation.data, color: COLORS.blue });
  if (baseline.ok) models.push({ name: 'random forest (baseline)', data: baseline.data, color: COLORS.green });
  if (linearSvm.ok) models.push({ name: 'linear SVM (baseline)', data: linearSvm.data, color: COLORS.orange });
  const { pretrainedForest, pretrainedLinearSvm } = m.inputs;
  if (pretrainedForest.ok) models.push({ name: 'random forest on pretrained features', data: pretrainedForest.data, color: COLORS.green });
  if (pretrainedLinearSvm.ok) models.push({ name: 'linear SVM on pretrained features', data: pretrainedLinearSvm.data, color: COLORS.orange });
  const pixels = m.config.baseline.features !== 'pretrained';
  const wantForest = pixels && m.config.baseline.model !== 'linear-svm';
  const wantSvm = pixels && m.config.baseline.model !== 'forest';
  const notes = [
    evaluation.ok ? '' : absent(evaluation, 'the convnet evaluation'),
    baseline.ok || !wantForest ? '' : absent(baseline, 'the random-forest baseline'),
    linearSvm.ok || !wantSvm ? '' : absent(linearSvm, 'the linear-SVM baseline'),
  ];
  const k = models[0]?.data.labels.length ?? m.inputs.genres.length;
  const chance = k > 0 ? 1 / k : 0;
  const rows = models.map((x) => evalRow(x.name, x.data, chance));
  const chanceRow = html`<tr><th scope="row">chance (1/${k})</th><td class="num na">—</td><td class="num na">—</td><td class="num">${fmtPct(chance)}</td><td class="num na">—</td><td class="num">${pp(0)}</td><td></td></tr>`;
  const study = STUDY_2015.map((s) => html`<tr class="reference"><th scope="row">${s.name}</th><td class="num">—</td><td class="num">—</td><td class="num">${fmtPct(s.accuracy)}</td><td class="num">not reported</td><td class="num">${pp(s.accuracy - 0.1)}</td><td>vs its chance of 10%</td></tr>`);
  const table = html`<div class="table-wrap"><table class="comparison"><thead><tr><th>Model</th><th class="num">test images</th><th class="num">correct</th><th class="num">accuracy</th><th class="num">95% interval (Wilson)</th><th class="num">vs chance</th><th></th></tr></thead><tbody>${rows}${chanceRow}${study}</tbody></table></div>`;
  const plot = intervalPlot(
    [
      ...models.map((x) => {
        const { correct, n } = confusionTotals(x.data.confusionMatrix);
        return { name: x.name, value: n ? correct / n : 0, interval: wilsonInterval(correct, n), color: x.color };
      }),
      ...STUDY_2015.map((s) => ({ name: s.name, value: s.accuracy, color: COLORS.grey, hollow: true })),
    ],
    chance,
    'Test accuracy with 95% intervals; dashed line: chance of this run',
  );
  const withRepeats = models.filter((x) => x.data.repeats);
  const repeatsTable = withRepeats.length
    ? html`<div class="subsection" id="repeats"><h3>Repeats over training seeds</h3><p class="lead">Each model trained again with other seeds on the same split (<code>train.repeats</code>); the table above and the charts below show the first seed's. Mean ± sample standard deviation, as the study reported its results.</p><div class="table-wrap"><table class="repeats"><thead><tr><th>Model</th><th class="num">seeds</th><th>accuracy per seed (95% interval)</th><th class="num">mean ± std</th></tr></thead><tbody>${withRepeats.map((x) => {
      const r = x.data.repeats!;
      return html`<tr><th scope="row">${x.name}</th><td class="num">${r.seeds.map((s) => s.seed).join(', ')}</td><td>${join(r.seeds.map((s) => html`${fmtPct(s.accuracy)} <small>(${fmtPct(s.accuracyInterval95[0], 0)}–${fmtPct(s.accuracyInterval95[1], 0)})</small>`), ' · ')}</td><td class="num"><strong>${fmtPct(r.mean)} ± ${fmtPct(r.std)}</strong></td></tr>`;
    })}</tbody></table></div></div>`
    : '';
  const lead = html`<p class="lead">Test-split accuracy with 95% Wilson score intervals, against chance (1/${k}) and, for context, the 2015 study's figures on 10 genres × 1,000 covers (hollow markers; its chance was 10%). A model is “above chance” when its whole interval lies above chance.</p>`;

  // Confusion matrix.
  let confusion: SafeHtml;
  if (evaluation.ok) {
    const e = evaluation.data;
    const { n } = confusionTotals(e.confusionMatrix);
    const check =
      testSplitSize === null
        ? html`<p>The matrix holds ${fmtInt(n)} test images.</p>`
        : n === testSplitSize
          ? html`<p class="check-ok">The matrix holds ${fmtInt(n)} images: the whole test split (${fmtInt(testSplitSize)}).</p>`
          : html`<p class="check-bad">The matrix holds ${fmtInt(n)} images but the test split has ${fmtInt(testSplitSize)}: the evaluation is out of date or incomplete (rerun <code>covers make evaluate</code>).</p>`;
    const linked = linkedCells(inspectPart(m));
    const href = (i: number, j: number) => (linked.has(`${i},${j}`) ? `#${confusionCellId(i, j)}` : null);
    confusion = html`<div id="confusion" class="subsection"><h3>Confusion matrix (convnet)</h3><p class="lead">Rows: true genre; columns: predicted genre. Shading is the fraction of the row; the diagonal (outlined) holds the correct predictions.${linked.size ? ' Click a cell off the diagonal for its covers.' : ''}</p>${confusionHeatmap(e.labels, e.confusionMatrix, 'Confusion matrix of the convnet on the test split', href)}${check}</div>`;
  } else confusion = html`<div id="confusion" class="subsection"><h3>Confusion matrix (convnet)</h3><p>Shown once the convnet evaluation (above) is built.</p></div>`;

  // Per-class accuracy.
  let perClass = html`<div id="per-class" class="subsection"><h3>Per-class accuracy against chance</h3><p>Shown once the convnet evaluation or the baseline is built.</p></div>`;
  if (models.length) {
    const labels = models[0]!.data.labels;
    const same = models.filter((x) => x.data.labels.join('\0') === labels.join('\0'));
    const stats = same.map((x) => ({ ...x, pc: perClassFromMatrix(x.data.confusionMatrix) }));
    const series: BarSeries[] = stats.map((x) => ({ name: x.name, color: x.color, values: x.pc.accuracy, intervals: x.pc.interval }));
    const rowsPc = labels.map((l, i) => html`<tr><th scope="row">${l}</th><td class="num">${fmtInt(stats[0]!.pc.n[i]!)}</td>${stats.map((x) => {
      const a = x.pc.accuracy[i];
      const iv = x.pc.interval[i];
      return a === null || a === undefined || !iv ? html`<td class="num na">—</td>` : html`<td class="num">${fmtPct(a)} <small>(${fmtPct(iv[0], 0)}–${fmtPct(iv[1], 0)})</small></td>`;
    })}</tr>`);
    perClass = html`<div id="per-class" class="subsection"><h3>Per-class accuracy against chance</h3><p class="lead">Accuracy (recall) per true genre with 95% intervals; the dashed line is chance (${fmtPct(chance)}).</p>${classBars(labels, series, chance, 'Per-class test accuracy')}<div class="table-wrap"><table class="per-class"><thead><tr><th>Genre</th><th class="num">test images</th>${stats.map((x) => html`<th class="num">${x.name}</th>`)}</tr></thead><tbody>${rowsPc}</tbody></table></div></div>`;
  }
  return section('evaluation', 'Evaluation', models.length > 0, [lead, notes, models.length ? [table, plot] : '', repeatsTable, confusion, perClass]);
}

function reproSection(m: ReportModel): Section {
  const { inputs, versions, config } = m;
  const backends = [
    `requested: ${config.train.backend}`,
    inputs.evaluation.ok ? `evaluate: ${inputs.evaluation.data.backend}` : '',
    inputs.baseline.ok ? `baseline: ${inputs.baseline.data.backend}` : '',
    inputs.linearSvm.ok ? `linear SVM: ${inputs.linearSvm.data.backend}` : '',
  ].filter(Boolean).join(' · ');
  const manifest = inputs.manifestSha256.ok ? html`<code>${inputs.manifestSha256.data}</code>` : html`<span class="na">not built yet (run <code>covers make download</code>)</span>`;
  const facts = html`<dl class="kv"><dt>manifest.tsv sha256</dt><dd>${manifest}</dd><dt>resolved config sha256</dt><dd><code>${hashJson(config)}</code></dd><dt>bandcamp-covers</dt><dd>${versions.package}</dd><dt>Node.js</dt><dd>${versions.node}</dd><dt>sharp / libvips</dt><dd>${versions.sharp} / ${versions.libvips}</dd><dt>TensorFlow.js</dt><dd>${versions.tfjs}</dd><dt>backend</dt><dd>${backends}</dd><dt>generated</dt><dd>${m.generatedAt.toISOString()}</dd></dl>`;
  let timings: SafeHtml;
  if (!inputs.timings.ok) {
    timings = inputs.timings.kind === 'missing' ? html`<p class="missing">No stage has been run through <code>covers make</code> yet (no pipeline.lock.json).</p>` : absent(inputs.timings, 'the pipeline lock file');
  } else {
    const t = inputs.timings.data;
    const total = t.reduce((a, x) => a + (x.durationMs ?? 0), 0);
    timings = html`<div class="table-wrap"><table class="timings"><thead><tr><th>Stage</th><th class="num">version</th><th class="num">duration</th><th>finished</th></tr></thead><tbody>${t.map((x) => html`<tr><th scope="row">${x.stage}</th><td class="num">${x.version ?? '—'}</td><td class="num">${x.durationMs === null ? '—' : fmtDuration(x.durationMs)}</td><td>${x.finishedAt ?? '—'}</td></tr>`)}</tbody><tfoot><tr><th scope="row">total</th><td></td><td class="num">${fmtDuration(total)}</td><td></td></tr></tfoot></table></div>`;
  }
  const cfg = html`<pre class="config">${JSON.stringify(config, null, 2)}</pre>`;
  const lead = html`<p class="lead">What is needed to rebuild this result: the resolved configuration (write it to <code>covers.config.json</code>), the manifest (rebuild exactly these images with <code>--set select.fromManifest=manifest.tsv</code>), and the software versions.</p>`;
  return section('reproducibility', 'Reproducibility', true, [lead, facts, html`<h3>Stage timings</h3>`, timings, html`<h3>Resolved configuration</h3>`, cfg]);
}

/**
 * The leakage audit (split/audit.json): held-out covers sharing an artist or a near-duplicate group with train, the
 * achieved fractions, the largest artists, and each near-duplicate group as thumbnails with its pairwise distances.
 */
function leakageSection(m: ReportModel): Section {
  const part: Part<Leakage> = m.leakage ?? { ok: false, kind: 'missing', stage: 'split', message: 'split/audit.json not read' };
  if (!part.ok) return section('leakage', 'Leakage audit', false, absent(part, 'the split audit'));
  const { audit, thumbnails } = part.data;
  const lead = html`<p class="lead">Split by <code>split.groupBy=${audit.groupBy}</code>, near-duplicates <code>dedupe.near=${audit.near}</code> within ${audit.maxDistance} bits of 64 (perceptual hash). ${fmtInt(audit.withBandId)} of ${fmtInt(audit.covers)} covers have a known artist (band_id), ${fmtInt(audit.withPhash)} a perceptual hash. Covers of one artist or one near-duplicate group in both training and held-out splits let a model score by recognising them.</p>`;
  const leakRows = (['validation', 'test'] as const).map((s) => {
    const l = audit.leaks[s];
    return html`<tr data-split="${s}"><th scope="row">${s}</th><td class="num">${fmtInt(l.covers)}</td><td class="num">${fmtInt(l.shareArtistWithTrain)}</td><td class="num">${fmtInt(l.shareNearDuplicateWithTrain)}</td></tr>`;
  });
  const leaks = html`<table class="leaks"><thead><tr><th scope="col">split</th><th scope="col">covers</th><th scope="col">share an artist with train</th><th scope="col">share a near-duplicate group with train</th></tr></thead><tbody>${leakRows}</tbody></table>`;
  const fr = audit.fractions;
  const fractions = html`<p>Fractions requested / achieved: ${join(SPLIT_NAMES.map((s) => html`${s} ${fmtPct(fr.requested[s])} / ${fmtPct(fr.achieved[s])}`), ', ')}.</p>`;
  const artists = audit.largestArtists.length
    ? html`<h3>Largest artists (${fmtInt(audit.multiCoverArtists)} with several covers)</h3><table class="artists"><thead><tr><th scope="col">band_id</th><th scope="col">covers</th><th scope="col">genres</th><th scope="col">splits</th></tr></thead><tbody>${audit.largestArtists.slice(0, 10).map((a) => html`<tr><td class="num">${a.band_id}</td><td class="num">${fmtInt(a.covers)}</td><td>${Object.entries(a.genres).map(([g, n]) => `${g} ${n}`).join(', ')}</td><td>${Object.entries(a.splits).map(([sp, n]) => `${sp} ${n}`).join(', ')}</td></tr>`)}</tbody></table>`
    : html`<p>No artist has more than one cover here.</p>`;
  const groups = audit.nearDuplicateGroups;
  const shown = groups.slice(0, LEAKAGE_GROUPS_SHOWN).map((g, gi) => {
    const covers = g.covers.map((c) => {
      const src = thumbnails.get(c.item_id);
      return html`<figure class="nd-cover">${src ? html`<img src="${src}" alt="item ${c.item_id}" width="96" height="96">` : html`<span class="na">not in the shards</span>`}<figcaption>${c.genre} · ${c.split}<br>item ${c.item_id}</figcaption></figure>`;
    });
    const dist = g.pairs.map((p) => `${p.a}–${p.b}: ${p.distance}`).join('; ');
    return html`<div class="nd-group" data-group="${gi}"><div class="nd-covers">${covers}</div><p class="nd-dist">distances (bits): ${dist}</p></div>`;
  });
  const more = groups.length > LEAKAGE_GROUPS_SHOWN ? html`<p>${fmtInt(groups.length - LEAKAGE_GROUPS_SHOWN)} more groups in <code>split/audit.json</code>.</p>` : html``;
  const nd = groups.length
    ? html`<h3>Near-duplicate groups (${fmtInt(groups.length)})</h3><p>Judge the threshold here: each row should show the same artwork (re-encoded, resized, cropped, re-listed).</p>${shown}${more}`
    : html`<h3>Near-duplicate groups</h3><p>None within ${audit.maxDistance} bits.</p>`;
  return section('leakage', 'Leakage audit', true, [lead, leaks, fractions, artists, nd]);
}

// ---------------------------------------------------------------------------------------------------------------
// Page

/** Section ids and titles, in page order (the table of contents). */
export const REPORT_SECTIONS = [
  ['summary', 'Summary'],
  ['funnel', 'Dataset funnel'],
  ['covers', 'Contact sheets'],
  ['leakage', 'Leakage audit'],
  ['mean', 'Per-pixel mean image'],
  ['training', 'Training curves'],
  ['evaluation', 'Evaluation'],
  ['reproducibility', 'Reproducibility'],
] as const;

/** The search's section, shown after the training curves only when the model came from the search (`train.fromSearch`). */
const SEARCH_SECTION = ['search', 'Hyperparameter search'] as const;

/** The sections of the page for this configuration, in order: {@link pageSections}, and the search's when shown. */
function sectionsShown(m: ReportModel): readonly (readonly [string, string])[] {
  const page = pageSections();
  if (!m.config.train.fromSearch) return page;
  const i = page.findIndex(([id]) => id === 'training') + 1;
  return [...page.slice(0, i), SEARCH_SECTION, ...page.slice(i)];
}

/** The Content-Security-Policy of the page: nothing may be loaded except inline styles and `data:` images. */
const REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/** The model's inspection, or "not built" when it was not read. */
function inspectPart(m: ReportModel): Part<InspectView> {
  return m.inspect ?? { ok: false, kind: 'missing', stage: 'inspect', message: 'eval/inspect/inspect.json not read' };
}

/** The page's sections in order (the table of contents): {@link REPORT_SECTIONS} with the inspect sections (report/inspect.ts) after the evaluation. */
export function pageSections(): readonly (readonly [string, string])[] {
  const at = REPORT_SECTIONS.findIndex(([id]) => id === 'evaluation') + 1;
  return [...REPORT_SECTIONS.slice(0, at), ...INSPECT_SECTIONS, ...REPORT_SECTIONS.slice(at)];
}

/** Renders the page from a {@link ReportModel}. Pure: reads nothing. */
function renderHtml(m: ReportModel): string {
  const sections = [summarySection(m), funnelSection(m), sheetsSection(m), leakageSection(m), meanSection(m), trainingSection(m), ...(m.config.train.fromSearch ? [searchSection(m)] : []), evaluationSection(m), ...inspectSections(inspectPart(m)), reproSection(m)];
  const state = (id: string) => sections.find((s) => s.id === id)?.ok ?? false;
  const sub: Record<string, SafeHtml> = {
    evaluation: html`<ol><li><a href="#confusion">Confusion matrix</a></li><li><a href="#per-class">Per-class accuracy</a></li></ol>`,
  };
  const toc = html`<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>${sectionsShown(m).map(([id, title]) => html`<li class="state-${state(id) ? 'ok' : 'missing'}"><a href="#${id}">${title}</a>${state(id) ? '' : ' (not built)'}${sub[id] ?? ''}</li>`)}</ol></nav>`;
  const title = `Bandcamp album covers by genre — ${m.inputs.genres.length} genres`;
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<style>${raw(REPORT_CSS)}${inspectStyles(inspectPart(m))}</style>
</head>
<body>
<header class="page"><h1>${title}</h1><p>${m.inputs.genres.join(' · ')}</p><p>Generated ${m.generatedAt.toISOString()} by bandcamp-covers ${m.versions.package}</p></header>
<div class="layout">
${toc}
<main>
${join(sections.map((s) => s.markup), '\n')}
</main>
</div>
<footer class="page">Reference: “Learning about deep learning through album cover classification” (2015). Intervals are 95% Wilson score intervals.</footer>
</body>
</html>
`;
  return page.value;
}
