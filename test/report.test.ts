/**
 * The report without a browser: escaping, chart helpers, the report of a full fixture data directory and of a
 * partial one, malformed inputs, and the stage writing `report/index.html`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { wilsonInterval } from '../schemas/metrics.ts';
import { esc, html, raw } from '../report/html.ts';
import { fmtDuration } from '../util/format.ts';
import { readTimings } from '../report/inputs.ts';
import { reasonKey } from '../schemas/manifest.ts';
import { readEpochMetrics } from '../schemas/model.ts';
import { buildReport, confusionTotals, pageSections, perClassFromMatrix, STUDY_2015 } from '../report/render.ts';
import { confusionHeatmap, niceTicks } from '../report/svg.ts';
import { reportStage } from '../stages/index.ts';
import { writeReportFixture, type ReportFixture } from './helpers/report-fixture.ts';

/** Every `src`/`href` value of the page. */
function urls(page: string): string[] {
  return [...page.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
}

/** The `data-state` of each section, by id. */
function sectionStates(page: string): Record<string, string> {
  return Object.fromEntries([...page.matchAll(/<section id="([^"]+)" class="section" data-state="([^"]+)"/g)].map((m) => [m[1]!, m[2]!]));
}

describe('report html helpers', () => {
  it('escapes interpolated text, but not safe markup', () => {
    const evil = `<img src=x onerror="alert('x')">&`;
    const out = html`<td title="${evil}">${evil}${raw('<b>ok</b>')}${[1, '<i>', null, false]}</td>`.value;
    assert.equal(out, `<td title="${esc(evil)}">${esc(evil)}<b>ok</b>1&lt;i&gt;</td>`);
    assert.ok(!out.includes('<img'));
    assert.equal(esc(`a"b'c`), 'a&quot;b&#39;c');
  });

  it('formats durations', () => {
    assert.equal(fmtDuration(850), '850 ms');
    assert.equal(fmtDuration(12_300), '12.3 s');
    assert.equal(fmtDuration(245_000), '4 min 05 s');
    assert.equal(fmtDuration(3_725_000), '1 h 02 min');
  });

  it('rounds durations to the shown unit before splitting them, so no part overflows', () => {
    assert.equal(fmtDuration(119_700), '2 min 00 s');
    assert.equal(fmtDuration(119_400), '1 min 59 s');
    assert.equal(fmtDuration(59_960), '1 min 00 s');
    assert.equal(fmtDuration(999.6), '1.0 s');
    assert.equal(fmtDuration(3_599_600), '1 h 00 min');
    assert.equal(fmtDuration(7_170_000), '2 h 00 min');
  });

  it('makes nice ticks that cover the range', () => {
    assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    const t = niceTicks(0.37, 2.31, 5);
    assert.ok(t[0]! <= 0.37 && t[t.length - 1]! >= 2.31);
    assert.deepEqual(niceTicks(3, 3, 4).length > 1, true);
  });

  it('groups rejection reasons and reads stage timings through the lock file reader', () => {
    assert.equal(reasonKey('duplicate-of:123'), 'duplicate-of');
    assert.equal(reasonKey(''), 'unknown');
    const dir = mkdtempSync(join(tmpdir(), 'report-lock-'));
    try {
      const p = join(dir, 'lock.json');
      const entry = (version: number, durationMs: number, startedAt: string) => ({
        version, params: {}, paramsHash: 'p', deps: {}, extraInputs: {}, outputs: {}, outputsHash: 'o', startedAt, finishedAt: 'then', durationMs,
      });
      writeFileSync(p, JSON.stringify({ lockVersion: 1, stages: { train: entry(2, 5, '2026-01-02'), discover: entry(1, 3, '2026-01-03'), zeta: entry(1, 1, '2026-01-01') } }));
      assert.deepEqual(readTimings(p, ['discover', 'train']).map((t) => [t.stage, t.durationMs, t.version]), [['discover', 3, 1], ['train', 5, 2], ['zeta', 1, 1]]);
      // Without an order: by start time.
      assert.deepEqual(readTimings(p, []).map((t) => t.stage), ['zeta', 'train', 'discover']);
      // Not a lock file: an error naming the file (the report shows it in place of the timings).
      writeFileSync(p, JSON.stringify({ evaluate: { durationMs: 7, finishedAt: 'then' } }));
      assert.throws(() => readTimings(p, []), /lock\.json: not a pipeline lock file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads metrics.jsonl, skipping malformed lines and keeping the last record of a repeated epoch', () => {
    const dir = mkdtempSync(join(tmpdir(), 'report-jsonl-'));
    try {
      const p = join(dir, 'metrics.jsonl');
      const e = (epoch: number, trainLoss: number) => JSON.stringify({ epoch, trainLoss, trainAccuracy: 0.5, validationLoss: 1, validationAccuracy: 0.4, learningRate: 0.01, seconds: 1, imagesPerSecond: 10 });
      writeFileSync(p, [e(1, 2), '{not json', e(2, 1.5), JSON.stringify({ epoch: 3 }), e(2, 1.25), ''].join('\n'));
      const { epochs, warnings } = readEpochMetrics(p);
      assert.deepEqual(epochs.map((x) => [x.epoch, x.trainLoss]), [[1, 2], [2, 1.25]]);
      assert.equal(warnings.length, 2);
      assert.match(warnings[0]!, /^line 2: not JSON/);
      assert.match(warnings[1]!, /^line 4: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('computes totals, per-class accuracy and intervals from a confusion matrix', () => {
    const m = [[3, 1, 0], [1, 2, 1], [0, 0, 0]];
    assert.deepEqual(confusionTotals(m), { correct: 5, n: 8 });
    const pc = perClassFromMatrix(m);
    assert.deepEqual(pc.accuracy, [0.75, 0.5, null]);
    assert.deepEqual(pc.interval[0], wilsonInterval(3, 4));
    assert.equal(pc.interval[2], null);
    const svg = confusionHeatmap(['a', 'b', 'c'], m).value;
    const counts = [...svg.matchAll(/data-count="(\d+)"/g)].map((x) => Number(x[1]));
    assert.equal(counts.length, 9);
    assert.equal(counts.reduce((a, b) => a + b, 0), 8);
    assert.throws(() => confusionHeatmap(['a', 'b'], m), /expected 2×2/);
  });
});

describe('report of a data directory', () => {
  let root: string;
  let full: ReportFixture;
  let partial: ReportFixture;
  let fullPage: string;
  let partialPage: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'report-test-'));
    full = await writeReportFixture(join(root, 'full'), { hostileReason: '<script>alert(1)</script>' });
    partial = await writeReportFixture(join(root, 'partial'), { partial: true });
    fullPage = await buildReport({ dataDir: full.dataDir, config: full.config });
    partialPage = await buildReport({ dataDir: partial.dataDir, config: partial.config });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('renders every section of a fully built data directory, with no "not built" note', () => {
    const states = sectionStates(fullPage);
    assert.deepEqual(Object.keys(states), pageSections().map(([id]) => id));
    for (const [id, state] of Object.entries(states)) assert.equal(state, 'ok', `section ${id}`);
    assert.ok(!fullPage.includes('Not built yet'));
    assert.ok(!fullPage.includes('class="error"'));
  });

  it('references nothing outside the page', () => {
    for (const u of urls(fullPage)) assert.match(u, /^(data:image\/(jpeg|png);base64,|#)/, u.slice(0, 60));
    assert.ok(!/<script|<link|@import/i.test(fullPage));
    // CSS url() only for inline images (the embedding's sprite sheet).
    for (const m of fullPage.matchAll(/url\(([^)]{0,40})/gi)) assert.match(m[1]!, /^"data:image\/(jpeg|png);base64,/, m[0]);
    assert.ok(fullPage.includes('url("data:image/jpeg;base64,'), 'the sprite sheet is inlined');
    assert.match(fullPage, /<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; img-src data:;/);
  });

  it('escapes text from the data directory', () => {
    assert.ok(!fullPage.includes('<script>alert(1)</script>'));
    assert.ok(fullPage.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  it('shows the funnel per genre from the real files', () => {
    const row = (g: string) => fullPage.match(new RegExp(`<tr data-genre="${g}">(.*?)</tr>`))![1]!;
    const cells = (g: string) => [...row(g).matchAll(/<td class="num[^"]*"[^>]*>([^<]*)</g)].map((m) => m[1]);
    // candidates, exclusive, selected, downloaded, rejected (download), rejected (shards), train, validation, test
    assert.deepEqual(cells('jazz'), ['21', '17', '17', '14', '3', '0', '8', '2', '4']);
    assert.deepEqual(cells('metal'), ['23', '17', '17', '14', '3', '1', '8', '2', '4']);
    assert.match(fullPage, /<td>shards<\/td><td>truncated<\/td>/);
    // label's rejections by reason: no-tags (no tags but the location) apart from multi-genre / no-chosen-genre.
    assert.match(fullPage, /<tr><td>label<\/td><td>no-tags<\/td><td class="num">1<\/td><td class="num">1<\/td><td class="num">1<\/td><td class="num">3<\/td><\/tr>/);
    assert.match(fullPage, /<tr><td>label<\/td><td>multi-genre<\/td>/);
    assert.match(row('jazz'), /title="multi-genre: \d+, no-tags: 1"/);
  });

  it('shows a contact sheet per genre from the shards, the mean image, curves and the comparison', () => {
    for (const g of full.genres) {
      const sheet = fullPage.match(new RegExp(`<div class="sheet" data-genre="${g}">(.*?)</div></div>`))![1]!;
      // contactSheet = 12, and each genre has 13–14 images in the shards.
      assert.equal([...sheet.matchAll(/<img src="data:image\/jpeg;base64,/g)].length, 12, g);
    }
    assert.match(fullPage, /<img src="data:image\/png;base64,[^"]+" width="256" height="256" alt="per-pixel mean/);
    assert.match(fullPage, /aria-label="Loss per epoch"/);
    assert.match(fullPage, /aria-label="Accuracy per epoch"/);
    assert.match(fullPage, /learning rate 0.01 → 0.001 from epoch 6/);
    for (const s of STUDY_2015) assert.ok(fullPage.includes(s.name), s.name);
    // convnet 6/12 correct per the fixture ([3, 2, 1] of 4 each): 58.3% with its Wilson interval.
    const [lo, hi] = wilsonInterval(6, 12);
    assert.ok(fullPage.includes(`${(lo * 100).toFixed(1)}% – ${(hi * 100).toFixed(1)}%`));
    assert.match(fullPage, /The matrix holds 12 images: the whole test split \(12\)/);
    const cmSum = [...fullPage.matchAll(/class="cm-cell"[^>]*data-count="(\d+)"/g)].reduce((a, m) => a + Number(m[1]), 0);
    assert.equal(cmSum, full.testSize);
  });

  it('records the manifest hash, versions and stage timings', async () => {
    const { sha256File } = await import('../util/fsutil.ts');
    assert.ok(fullPage.includes(await sha256File(join(full.dataDir, 'manifest.tsv'))));
    assert.ok(fullPage.includes(process.version));
    assert.match(fullPage, /TensorFlow.js<\/dt><dd>\d+\.\d+\.\d+/);
    assert.match(fullPage, /<th scope="row">train<\/th><td class="num">1<\/td><td class="num">1 h 02 min<\/td>/);
    assert.match(fullPage, /&quot;run&quot;: &quot;fixture&quot;/);
  });

  it('renders a partial data directory (manifest + shards) with "not built yet" notes', () => {
    const states = sectionStates(partialPage);
    assert.equal(states.covers, 'ok');
    assert.equal(states.mean, 'ok');
    assert.equal(states.funnel, 'ok');
    assert.equal(states.training, 'missing');
    assert.equal(states.evaluation, 'missing');
    assert.match(partialPage, /Not built yet: run <code>covers make train<\/code>/);
    assert.match(partialPage, /Not built yet: run <code>covers make evaluate<\/code>/);
    assert.match(partialPage, /Not built yet: run <code>covers make baseline<\/code>/);
    assert.match(partialPage, /Not built yet: run <code>covers make discover<\/code>/);
    assert.match(partialPage, /Not built yet: run <code>covers make split<\/code>/);
    assert.match(partialPage, /no pipeline.lock.json/);
    assert.ok(!partialPage.includes('class="error"'));
  });

  it('says discover and label were skipped when the selection is rebuilt from a manifest', async () => {
    const config = { ...partial.config, select: { ...partial.config.select, fromManifest: 'dataset-links.tsv' } };
    const page = await buildReport({ dataDir: partial.dataDir, config });
    assert.match(page, /Column “Candidates”: skipped, the selection is rebuilt from <code>dataset-links.tsv<\/code>/);
    assert.ok(!page.includes('run <code>covers make discover</code>'));
    assert.match(page, /Not built yet: run <code>covers make select<\/code>/);
  });

  it('shows learning rates with at most 3 significant digits', async () => {
    const dir = join(root, 'lr');
    await writeReportFixture(dir);
    const file = join(dir, 'models', 'fixture', 'metrics.jsonl');
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { learningRate: number });
    lines.forEach((l, i) => (l.learningRate = i < 5 ? 1.0000000000000002e-7 : 1.0000000000000002e-8));
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const page = await buildReport({ dataDir: dir, config: full.config });
    assert.match(page, /<dt>final learning rate<\/dt><dd>1e-8<\/dd>/);
    assert.match(page, /learning rate 1e-7 → 1e-8 from epoch 6/);
    assert.ok(!page.includes('0000000000002'));
  });

  it('shows the baselines on pretrained features beside the study\'s fc7 row (baseline.features=both)', async () => {
    const dir = join(root, 'pretrained');
    await writeReportFixture(dir);
    const forest = JSON.parse(readFileSync(join(dir, 'eval', 'baseline.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'eval', 'baseline-pretrained.json'), JSON.stringify({ ...forest, details: { source: 'pretrained: resnet18.onnx at fc' } }));
    const config = { ...full.config, baseline: { ...full.config.baseline, features: 'both' as const } };
    const page = await buildReport({ dataDir: dir, config });
    assert.match(page, /<th scope="row">random forest \(baseline\)<\/th>/);
    assert.match(page, /<th scope="row">random forest on pretrained features<\/th>/);
    assert.match(page, /2015 study: random forest on CaffeNet fc7<\/th><td class="num">—<\/td><td class="num">—<\/td><td class="num">16\.7%/);
    const only = await buildReport({ dataDir: dir, config: { ...config, baseline: { ...config.baseline, features: 'pretrained' as const } } });
    assert.ok(!only.includes('<th scope="row">random forest (baseline)</th>') && !only.includes('Not built yet: run <code>covers make baseline'), 'pixel rows are not expected');
  });

  it('renders an empty data directory', async () => {
    const empty = join(root, 'empty');
    const page = await buildReport({ dataDir: empty, config: full.config });
    const states = sectionStates(page);
    for (const id of ['funnel', 'covers', 'mean', 'training', 'evaluation']) assert.equal(states[id], 'missing', id);
    assert.match(page, /Not built yet: run <code>covers make shards<\/code>/);
  });

  it('reports a malformed input in its section instead of failing', async () => {
    const dir = join(root, 'broken');
    await writeReportFixture(dir);
    writeFileSync(join(dir, 'eval', 'metrics.json'), '{"model": "convnet"');
    writeFileSync(join(dir, 'eval', 'baseline.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(full.dataDir, 'eval', 'baseline.json'), 'utf8')), confusionMatrix: [[1, 2], [3, 4]] }));
    writeFileSync(join(dir, 'manifest.tsv'), 'not\ta\tmanifest\n');
    writeFileSync(join(dir, 'shards', 'mean.arrow'), 'garbage');
    const page = await buildReport({ dataDir: dir, config: full.config });
    assert.match(page, /Could not read the convnet evaluation: .*eval\/metrics.json/);
    assert.match(page, /Could not read the random-forest baseline: .*confusionMatrix is not 3×3/);
    assert.match(page, /Could not read column “Downloaded”: manifest.tsv: .*header/);
    assert.match(page, /Could not read the per-pixel mean: shards\/mean.arrow/);
    assert.equal(sectionStates(page).covers, 'ok');
  });

  it('the stage writes report/index.html', async () => {
    const dir = join(root, 'stage');
    const fx = await writeReportFixture(dir, { partial: true });
    await runStageOnce(reportStage, { config: fx.config, dataDir: dir, log: createLogger({ level: 'quiet' }) });
    const out = join(dir, 'report', 'index.html');
    assert.ok(existsSync(out));
    assert.match(readFileSync(out, 'utf8'), /^<!doctype html>/);
    assert.deepEqual(reportStage.deps, ['evaluate', 'inspect', 'baseline']);
  });
});
