/**
 * The report's sections on what the network learned, read from `eval/inspect/` (schemas/inspect.ts, written by the
 * `inspect` stage): first-layer filters (`#filters`), right and wrong covers and the covers behind each
 * confusion-matrix cell (`#examples`), saliency overlays (`#saliency`), 2-D embeddings with hover thumbnails
 * (`#embedding`) and accuracy by source and image size (`#sources`). No script: the scatter's hover thumbnails are
 * CSS (`:hover` on each point shows its tile of a sprite sheet inlined once as a `data:` URI).
 */
import { existsSync } from 'node:fs';
import { INSPECT_DIR, inspectImageDataUri, readInspection, type CoverRef, type Inspection } from '../schemas/inspect.ts';
import { wilsonInterval } from '../schemas/metrics.ts';
import { fmtInt, fmtPct, html, raw, type HtmlValue, type SafeHtml } from './html.ts';
import type { DataPath, Part } from './inputs.ts';

/** `inspect.json` with every image it names as a `data:` URI. */
export interface InspectView {
  data: Inspection;
  /** Image file (relative to `eval/inspect/`) → `data:` URI. */
  images: Record<string, string>;
}

/** Section ids and titles of the inspect sections, in page order (after the evaluation). */
export const INSPECT_SECTIONS = [
  ['filters', 'First-layer filters'],
  ['examples', 'Right and wrong covers'],
  ['saliency', 'Where the network looked'],
  ['embedding', 'Feature map'],
  ['sources', 'Accuracy by source and image size'],
] as const;

/** Categorical colours per genre (Tableau 10), repeating beyond ten genres. */
export const GENRE_COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Stylesheet of the inspect sections (added to the page's `<style>`). */
export const INSPECT_CSS = `
.filters { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.filters figure { margin: 0; }
.filters img { image-rendering: pixelated; max-width: 100%; height: auto; border: 1px solid var(--line); display: block; }
.ex-row { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 10px; align-items: flex-start; }
.ex-row .label { width: 88px; font-size: 13px; color: var(--muted); padding-top: 4px; }
.ex { margin: 0; width: 96px; font-size: 11px; line-height: 1.25; }
.ex img { width: 96px; height: 96px; display: block; background: #eee; }
.ex.wrong img { outline: 3px solid #b3261e; outline-offset: -3px; }
.ex.right img { outline: 3px solid #1e6b3a; outline-offset: -3px; }
.ex figcaption { margin: 2px 0 0; max-width: 96px; }
.confusions { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 6px 18px; }
.confusions > div { padding: 4px 8px; border-left: 3px solid var(--line); }
.confusions > div:target { border-left-color: var(--accent); background: #eef6fb; }
.confusions h4 { margin: 2px 0 4px; font-size: 13px; }
.sal { margin: 0; width: 200px; font-size: 11px; }
.sal .pair { display: flex; gap: 2px; }
.sal img { width: 98px; height: 98px; display: block; image-rendering: auto; background: #eee; }
.scatters { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.scatter-wrap { width: 440px; max-width: 100%; }
.scatter-wrap h3 { font-size: 14px; margin: 6px 0; min-height: 2.6em; }
.scatter { position: relative; width: 420px; height: 420px; border: 1px solid var(--line); background: #fff; margin: 4px 10px 10px; }
.scatter .pt { position: absolute; width: 8px; height: 8px; margin: -4px 0 0 -4px; border-radius: 50%; border: 2px solid transparent; }
.scatter .pt.wrong { background: #fff !important; }
.scatter .pt:hover { z-index: 2; transform: scale(1.6); }
.scatter .pt .tip { display: none; position: absolute; left: 10px; top: 10px; border: 2px solid #222; background-color: #eee; }
.scatter .pt:hover .tip { display: block; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; margin: 6px 0; }
`;

/**
 * Reads `eval/inspect/inspect.json` and every image it names.
 * @returns missing when the directory has no `inspect.json` (the stage has not run); error when it or an image
 *   cannot be read.
 */
export function readInspect(p: DataPath): Part<InspectView> {
  const dir = p(INSPECT_DIR);
  if (!existsSync(`${dir}/inspect.json`)) return { ok: false, kind: 'missing', stage: 'inspect', message: `${INSPECT_DIR}/inspect.json not found` };
  try {
    const data = readInspection(dir);
    const files = [
      ...(data.filters ? [data.filters.trained, data.filters.initial] : []),
      ...data.covers.map((c) => c.file),
      ...data.saliency.items.map((s) => s.overlay),
      ...(data.sprite ? [data.sprite.file] : []),
    ];
    const images: Record<string, string> = {};
    for (const f of files) images[f] = inspectImageDataUri(dir, f);
    return { ok: true, data: { data, images } };
  } catch (e) {
    return { ok: false, kind: 'error', stage: 'inspect', message: (e as Error).message };
  }
}

/** The extra CSS of the inspect sections, with the embedding's sprite sheet (one copy for every point). */
export function inspectStyles(part: Part<InspectView>): SafeHtml {
  const sprite = part.ok && part.data.data.sprite ? part.data.images[part.data.data.sprite.file] : undefined;
  // The URI is base64 produced by our own reader (no quote or bracket can occur in it).
  return raw(INSPECT_CSS + (sprite ? `#embedding .pt .tip { background-image: url("${sprite}"); }\n` : ''));
}

/** The id of the examples of a confusion-matrix cell (true genre i predicted as j), for links from the matrix. */
export function confusionCellId(i: number, j: number): string {
  return `confused-${i}-${j}`;
}

/** Which confusion-matrix cells have examples to link to (`confusionCellId`), or an empty set. */
export function linkedCells(part: Part<InspectView>): Set<string> {
  return new Set(part.ok ? part.data.data.confusions.filter((c) => c.rows.length).map((c) => `${c.label},${c.predicted}`) : []);
}

/** A rendered section: id, whether it has content, markup. */
export interface InspectSection {
  id: string;
  ok: boolean;
  markup: SafeHtml;
}

function wrap(id: string, title: string, ok: boolean, body: HtmlValue): InspectSection {
  return { id, ok, markup: html`<section id="${id}" class="section" data-state="${ok ? 'ok' : 'missing'}"><h2>${title}</h2>${body}</section>` };
}

function absentNote(part: Part<InspectView>): SafeHtml {
  if (part.ok) return html``;
  return part.kind === 'missing'
    ? html`<p class="missing">Not built yet: run <code>covers make ${part.stage}</code> (${part.message}).</p>`
    : html`<p class="error">Could not read the inspection: ${part.message}. Rebuild it with <code>covers make ${part.stage}</code>.</p>`;
}

/** One cover as a thumbnail with its prediction. */
function coverFigure(v: InspectView, c: CoverRef): SafeHtml {
  const labels = v.data.labels;
  const right = c.label === c.predicted;
  const caption = right ? html`${labels[c.label]!} ${fmtPct(c.confidence, 0)}` : html`${labels[c.label]!} → <strong>${labels[c.predicted]!}</strong> ${fmtPct(c.confidence, 0)}`;
  const title = `test row ${c.row} · item_id ${c.itemId ?? '?'} · art_id ${c.artId ?? '?'} · true ${labels[c.label]!} (p ${c.trueProbability.toFixed(3)}) · predicted ${labels[c.predicted]!} (p ${c.confidence.toFixed(3)})`;
  return html`<figure class="ex ${right ? 'right' : 'wrong'}" data-row="${c.row}"><img src="${v.images[c.file]!}" width="96" height="96" alt="${labels[c.label]!} cover predicted ${labels[c.predicted]!}" title="${title}"><figcaption>${caption}</figcaption></figure>`;
}

function filtersSection(part: Part<InspectView>): InspectSection {
  const [id, title] = INSPECT_SECTIONS[0];
  if (!part.ok) return wrap(id, title, false, absentNote(part));
  const { data: d, images } = part.data;
  const f = d.filters;
  if (!f) return wrap(id, title, true, html`<p class="note">The ${d.model.architecture} model has no conv layer: no filters to show.</p>`);
  const lead = html`<p class="lead">The ${fmtInt(f.count)} filters (${f.kernel[0]}×${f.kernel[1]}${f.channels === 3 ? ', RGB' : `, mean over ${f.channels} channels`}) of the first conv layer <code>${f.layer}</code>, each scaled to its own range, after training and at the untrained initialisation of the same seed (${d.model.seed}). Filters that became edge, colour or blob detectors look smooth and structured; filters that stayed like the initialisation are noise the data never shaped. On average training moved each filter by ${fmtPct(f.change, 0)} of its initial norm.</p>`;
  return wrap(id, title, true, [lead, html`<div class="filters"><figure><img src="${images[f.trained]!}" alt="trained first-layer filters"><figcaption>after training</figcaption></figure><figure><img src="${images[f.initial]!}" alt="first-layer filters at initialisation"><figcaption>at initialisation (seed ${d.model.seed})</figcaption></figure></div>`]);
}

function examplesSection(part: Part<InspectView>): InspectSection {
  const [id, title] = INSPECT_SECTIONS[1];
  if (!part.ok) return wrap(id, title, false, absentNote(part));
  const v = part.data;
  const { labels } = v.data;
  const byRow = new Map(v.data.covers.map((c) => [c.row, c]));
  const row = (name: string, rows: readonly number[], empty: string) =>
    html`<div class="ex-row"><div class="label">${name}</div>${rows.length ? rows.map((r) => coverFigure(v, byRow.get(r)!)) : html`<span class="na">${empty}</span>`}</div>`;
  const perGenre = v.data.examples.map((e) => html`<div class="sheet" data-genre="${labels[e.label]!}"><h3>${labels[e.label]!}</h3>${row('most confident, right', e.right, 'none right')}${row('most confident, wrong', e.wrong, 'none wrong')}</div>`);
  const cells = v.data.confusions.filter((c) => c.rows.length).map((c) => html`<div id="${confusionCellId(c.label, c.predicted)}"><h4>${labels[c.label]!} predicted as ${labels[c.predicted]!} <small>(${fmtInt(c.count)})</small></h4><div class="ex-row">${c.rows.map((r) => coverFigure(v, byRow.get(r)!))}</div></div>`);
  const lead = html`<p class="lead">Per genre, the test covers the model (seed ${v.data.model.seed}, the predictions of <code>evaluate</code>) was most confident about and right (green), and most confident about and wrong (red, with the genre it chose). Captions give the probability of the predicted genre; hover a cover for its ids.</p>`;
  const confusions = html`<h3 id="confusions">Covers behind the confusion matrix</h3><p class="lead">For each cell off the diagonal (true genre predicted as another; click a cell of the <a href="#confusion">confusion matrix</a> to come here), the covers predicted with the highest confidence, most confused pairs first.</p>${cells.length ? html`<div class="confusions">${cells}</div>` : html`<p>No test cover was misclassified.</p>`}`;
  return wrap(id, title, true, [lead, ...perGenre, confusions]);
}

function saliencySection(part: Part<InspectView>): InspectSection {
  const [id, title] = INSPECT_SECTIONS[2];
  if (!part.ok) return wrap(id, title, false, absentNote(part));
  const v = part.data;
  const { labels, saliency: s } = v.data;
  const byRow = new Map(v.data.covers.map((c) => [c.row, c]));
  const method = s.method === 'hires-cam'
    ? html`HiResCAM on <code>${s.layer ?? ''}</code> (each position's gradient of the logit times its activation, summed over channels; ${s.grid[0]}×${s.grid[1]} positions)`
    : s.method === 'grad-cam'
      ? html`Grad-CAM on <code>${s.layer ?? ''}</code> (channels weighted by their gradient averaged over positions; ${s.grid[0]}×${s.grid[1]} positions)`
      : html`input-gradient saliency (the model has no conv layer: |∂ logit / ∂ pixel|, largest over R, G, B)`;
  const lead = html`<p class="lead">Where the network looked: ${method}, for the logit of the genre it predicted, blended over the centre crop it saw (bright = more evidence). The most confident right covers of each genre first, then wrong ones. A map that sits on the same spot (a corner, a border, a logo) for a whole genre points to a shortcut rather than genre.</p>`;
  const genres = labels.map((g, k) => {
    const items = s.items.filter((it) => byRow.get(it.row)!.label === k);
    if (!items.length) return html``;
    return html`<div class="sheet" data-genre="${g}"><h3>${g}</h3><div class="ex-row">${items.map((it) => {
      const c = byRow.get(it.row)!;
      return html`<figure class="sal" data-row="${it.row}"><div class="pair"><img src="${v.images[c.file]!}" alt="${g} cover"><img src="${v.images[it.overlay]!}" alt="saliency for ${labels[it.target]!} over the ${g} cover"></div><figcaption>${c.label === c.predicted ? html`right, ${fmtPct(c.confidence, 0)}` : html`→ <strong>${labels[c.predicted]!}</strong> ${fmtPct(c.confidence, 0)}`}</figcaption></figure>`;
    })}</div></div>`;
  });
  return wrap(id, title, s.items.length > 0, [lead, s.items.length ? genres : html`<p class="note">No saliency map (<code>inspect.saliency</code> = 0).</p>`]);
}

function scatter(v: InspectView, e: Inspection['embeddings'][number]): SafeHtml {
  const { labels, sprite } = v.data;
  const side = sprite?.side ?? 0;
  const cols = sprite?.columns ?? 1;
  const pts = e.points.map((p, i) => {
    const colour = GENRE_COLOURS[p.label % GENRE_COLOURS.length]!;
    const wrong = p.label !== p.predicted;
    const tip = sprite ? html`<span class="tip" style="width:${side}px;height:${side}px;background-position:-${(i % cols) * side}px -${Math.floor(i / cols) * side}px"></span>` : '';
    return html`<span class="pt${wrong ? ' wrong' : ''}" style="left:${(3 + p.x * 94).toFixed(2)}%;top:${(3 + (1 - p.y) * 94).toFixed(2)}%;background:${colour};border-color:${colour}" title="${labels[p.label]!}${wrong ? ` → predicted ${labels[p.predicted]!}` : ''} · test row ${p.row}">${tip}</span>`;
  });
  return html`<div class="scatter-wrap" data-embedding="${e.name}"><h3>${e.title}</h3><div class="scatter" role="img" aria-label="${e.title}: ${e.points.length} test covers">${pts}</div></div>`;
}

function embeddingSection(part: Part<InspectView>): InspectSection {
  const [id, title] = INSPECT_SECTIONS[3];
  if (!part.ok) return wrap(id, title, false, absentNote(part));
  const v = part.data;
  const e = v.data.embeddings;
  if (!e.length) return wrap(id, title, false, html`<p class="note">Nothing embedded (<code>inspect.embedding</code> = 0).</p>`);
  const n = e[0]!.points.length;
  const sampled = n < v.data.model.testImages ? `A seeded sample of ${fmtInt(n)} of the ${fmtInt(v.data.model.testImages)} test covers` : `The ${fmtInt(n)} test covers`;
  const pretrained = e.some((x) => x.name === 'pretrained')
    ? html` In between, by the features the pretrained network (<code>pretrained.model</code>) gives them: genres that separate there but not in the first plot are signal a network trained elsewhere finds and ours missed.`
    : '';
  const lead = html`<p class="lead">${sampled}, placed by UMAP (umap-js, seeded) so that covers with similar vectors lie close: first by what the network computes before its last layer, last by their raw pixels, for contrast. Colour = true genre; hollow points were misclassified. Hover a point for its cover. Genres that separate in the first plot but not in the last are what the network learned beyond pixel statistics.${pretrained}</p>`;
  const legend = html`<div class="legend">${v.data.labels.map((g, k) => html`<span><span class="swatch" style="background:${GENRE_COLOURS[k % GENRE_COLOURS.length]!}"></span>${g}</span>`)}</div>`;
  return wrap(id, title, true, [lead, legend, html`<div class="scatters">${e.map((x) => scatter(v, x))}</div>`]);
}

function sourcesSection(part: Part<InspectView>): InspectSection {
  const [id, title] = INSPECT_SECTIONS[4];
  if (!part.ok) return wrap(id, title, false, absentNote(part));
  const tables = part.data.data.groups.map((g) => {
    const rows = g.rows.map((r) => {
      const [lo, hi] = wilsonInterval(r.correct, r.n);
      return html`<tr><th scope="row">${r.value}</th><td class="num">${fmtInt(r.n)}</td><td class="num">${fmtInt(r.correct)}</td><td class="num">${r.n ? fmtPct(r.correct / r.n) : '—'}</td><td class="num">${r.n ? `${fmtPct(lo)} – ${fmtPct(hi)}` : '—'}</td></tr>`;
    });
    return html`<div class="subsection" data-by="${g.by}"><h3>${g.title}</h3>${g.note ? html`<p class="note">${g.note}</p>` : ''}${rows.length ? html`<div class="table-wrap"><table class="groups"><thead><tr><th>${g.by === 'source' ? 'source' : 'size'}</th><th class="num">test images</th><th class="num">correct</th><th class="num">accuracy</th><th class="num">95% interval (Wilson)</th></tr></thead><tbody>${rows}</tbody></table></div>` : ''}</div>`;
  });
  const lead = html`<p class="lead">Test accuracy of the convnet per group of covers that should not matter for genre: where the album's data came from, and the size of the downloaded image. A group far above the others (intervals apart) is a confound the network can exploit, such as two collections at different resolutions.</p>`;
  return wrap(id, title, true, [lead, ...tables]);
}

/** Renders the inspect sections, in {@link INSPECT_SECTIONS} order. */
export function inspectSections(part: Part<InspectView>): InspectSection[] {
  return [filtersSection(part), examplesSection(part), saliencySection(part), embeddingSection(part), sourcesSection(part)];
}
