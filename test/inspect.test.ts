/**
 * Stage `inspect` end to end on a planted shortcut (test/helpers/planted.ts: noise covers, only the first genre's
 * with a white square in the top-left corner): `train` (a tiny convnet, 4 epochs), `evaluate`, `inspect`, then the
 * report in headless Chromium.
 *
 * - the saliency maps of the marked genre put most of their heat in the marked corner (the visualisation finds the
 *   shortcut it exists to find);
 * - `inspect.json` agrees with `evaluate`'s predictions and confusion matrix (examples, confusion cells, groups);
 * - the report's `filters`, `examples`, `saliency`, `embedding` and `sources` sections are built, every image in them
 *   decodes, the scatter's hover thumbnails come from an inlined sprite, confusion cells link to their covers, and
 *   the page logs no console error and requests nothing.
 *
 * The browser part skips with the reason when Chromium is absent (`apt-get install -y chromium` or `CHROMIUM_PATH`).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import sharp from 'sharp';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { readInspection, type Inspection } from '../schemas/inspect.ts';
import { EvalMetricsSchema } from '../schemas/metrics.ts';
import { readPredictions, type Prediction } from '../schemas/predictions.ts';
import { INSPECT_SECTIONS } from '../report/inspect.ts';
import { buildReport } from '../report/render.ts';
import { evaluateStage, inspectStage, trainStage } from '../stages/index.ts';
import { memoryLogger } from '../util/log.ts';
import { PLANTED_GENRES, PLANTED_SIZE, writePlantedDataset } from './helpers/planted.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const noChromium = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" (Debian) or set CHROMIUM_PATH`;

const config = resolveConfig({
  genres: PLANTED_GENRES,
  image: { size: PLANTED_SIZE },
  train: {
    backend: 'wasm', architecture: 'ConvNet', crop: PLANTED_SIZE, mirror: false, optimizer: 'adam', learningRate: 0.002, epochs: 4, batchSize: 16, run: 'planted',
    modelParams: 'num_conv_layers=2:lc0_num_filters=8:lc0_filter_size=5:lc0_mp=True:lc1_num_filters=16:lc1_filter_size=3:lc1_mp=False:ld0_num_units=32',
  },
  eval: { crops: 1 },
  inspect: { saliency: 6, examples: 4 },
});

/** Share of a grayscale heat map's mass in its top-left quadrant. */
async function cornerShare(png: string): Promise<number> {
  assert.equal((await sharp(png).metadata()).channels, 1, `${png} is grayscale`);
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  let all = 0;
  let corner = 0;
  for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) {
    const v = data[y * info.width + x]!;
    all += v;
    if (y < info.height / 2 && x < info.width / 2) corner += v;
  }
  assert.ok(all > 0, `${png} is not empty`);
  return corner / all;
}

describe('inspect on a planted shortcut', () => {
  let dir: string;
  let out: string;
  let ins: Inspection;
  let preds: Prediction[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inspect-'));
    await writePlantedDataset(dir);
    const log = memoryLogger();
    for (const stage of [trainStage, evaluateStage, inspectStage]) await runStageOnce(stage, { config, dataDir: dir, log });
    out = join(dir, 'eval', 'inspect');
    ins = readInspection(out);
    preds = readPredictions(join(dir, 'eval', 'predictions.arrow')).predictions;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('learned the mark, and the marked genre’s saliency maps put most of their heat in the marked corner', async (t) => {
    const marked = preds.filter((p) => p.label === 0);
    assert.ok(marked.filter((p) => p.predicted === 0).length >= 0.9 * marked.length, 'the model learned the planted mark');
    assert.equal(ins.saliency.method, 'hires-cam');
    const items = ins.saliency.items.filter((it) => preds[it.row]!.label === 0);
    assert.equal(items.length, 6);
    const shares = await Promise.all(items.map((it) => cornerShare(join(out, it.heat))));
    t.diagnostic(`heat in the marked quadrant: ${shares.map((s) => s.toFixed(2)).join(', ')} (uniform: 0.25)`);
    for (const s of shares) assert.ok(s > 0.5, `most of the heat in the corner (${s.toFixed(2)})`);
  });

  it('writes filters, examples, confusions, embeddings and groups that agree with evaluate', async () => {
    assert.equal(ins.filters?.count, 8);
    assert.deepEqual(ins.filters?.kernel, [5, 5]);
    const [trained, initial] = [ins.filters!.trained, ins.filters!.initial].map((f) => readFileSync(join(out, f)));
    assert.notDeepEqual(trained, initial, 'training changed the filters');
    assert.ok(ins.filters!.change > 0.01 && ins.filters!.change < 10, `filters moved by ${ins.filters!.change}`);
    for (const e of ins.examples) {
      const right = e.right.map((r) => preds[r]!);
      const wrong = e.wrong.map((r) => preds[r]!);
      assert.ok(right.every((p) => p.label === e.label && p.predicted === e.label));
      assert.ok(wrong.every((p) => p.label === e.label && p.predicted !== e.label));
      for (const list of [right, wrong]) for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]!.confidence >= list[i]!.confidence, 'by descending confidence');
    }
    const m = EvalMetricsSchema.parse(JSON.parse(readFileSync(join(dir, 'eval', 'metrics.json'), 'utf8')));
    const offDiagonal = m.confusionMatrix.flatMap((row, i) => row.map((n, j) => ({ i, j, n }))).filter((c) => c.i !== c.j && c.n > 0);
    assert.deepEqual(
      ins.confusions.map((c) => `${c.label},${c.predicted}:${c.count}`).sort(),
      offDiagonal.map((c) => `${c.i},${c.j}:${c.n}`).sort(),
      'one confusion entry per non-empty off-diagonal cell, with its count',
    );
    const byRow = new Map(ins.covers.map((c) => [c.row, c]));
    for (const r of [...ins.examples.flatMap((e) => [...e.right, ...e.wrong]), ...ins.confusions.flatMap((c) => c.rows), ...ins.saliency.items.map((s) => s.row)]) {
      assert.ok(byRow.has(r) && existsSync(join(out, byRow.get(r)!.file)), `thumbnail of row ${r}`);
    }
    assert.deepEqual(ins.embeddings.map((e) => e.name), ['penultimate', 'pixels']);
    for (const e of ins.embeddings) {
      assert.equal(e.points.length, preds.length);
      assert.ok(e.points.every((p) => p.x >= 0 && p.x <= 1 && p.y >= 0 && p.y <= 1 && p.label === preds[p.row]!.label));
    }
    assert.equal(ins.embeddings[0]!.inputDims, 32);
    const sprite = await sharp(join(out, ins.sprite!.file)).metadata();
    assert.equal(sprite.width, ins.sprite!.columns * ins.sprite!.side);
    const correct = preds.filter((p) => p.label === p.predicted).length;
    for (const g of ins.groups) {
      assert.equal(g.rows.length, 2, `${g.by}: two groups`);
      assert.equal(g.rows.reduce((a, r) => a + r.n, 0), preds.length);
      assert.equal(g.rows.reduce((a, r) => a + r.correct, 0), correct);
    }
    assert.deepEqual(ins.groups.find((g) => g.by === 'size')!.rows.map((r) => r.value).sort(), ['350×350', '700×700']);
  });

  it('renders the sections in headless Chromium: images decode, hover thumbnails, linked confusion cells, no console error', { skip: noChromium }, async () => {
    const file = join(dir, 'report.html');
    writeFileSync(file, await buildReport({ dataDir: dir, config }));
    const url = pathToFileURL(file).href;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const errors: string[] = [];
      const foreign: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') errors.push(`${msg.type()}: ${msg.text()}`);
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await context.route('**/*', async (route) => {
        const u = route.request().url();
        if (u.startsWith('data:') || u.startsWith(url)) await route.continue();
        else {
          foreign.push(u);
          await route.abort();
        }
      });
      await page.goto(url, { waitUntil: 'load' });
      for (const [id] of INSPECT_SECTIONS) assert.equal(await page.locator(`section#${id}`).getAttribute('data-state'), 'ok', `${id} built`);
      const expected: Record<string, number> = {
        filters: 2,
        examples: ins.examples.reduce((a, e) => a + e.right.length + e.wrong.length, 0) + ins.confusions.reduce((a, c) => a + c.rows.length, 0),
        saliency: 2 * ins.saliency.items.length,
      };
      for (const [id, n] of Object.entries(expected)) {
        const imgs = await page.$$eval(`section#${id} img`, (els) => els.map((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0));
        assert.equal(imgs.length, n, `${id}: ${n} images`);
        assert.ok(imgs.every(Boolean), `${id}: every image decodes`);
      }
      // The scatter: one point per embedded cover in each plot; hovering one shows its tile of the inlined sprite.
      assert.equal(await page.locator('section#embedding .scatter .pt').count(), 2 * preds.length);
      const point = page.locator('section#embedding .scatter .pt').first();
      await point.hover();
      const tip = point.locator('.tip');
      assert.ok(await tip.isVisible(), 'hover shows the cover');
      const decoded = await tip.evaluate(async (el) => {
        const bg = getComputedStyle(el).backgroundImage;
        const src = /^url\("(data:image\/jpeg;base64,[^"]+)"\)$/.exec(bg)?.[1];
        if (!src) return `not a data URI: ${bg.slice(0, 40)}`;
        const img = new Image();
        img.src = src;
        await img.decode();
        return img.naturalWidth > 0 ? 'ok' : 'empty';
      });
      assert.equal(decoded, 'ok');
      // Confusion-matrix cells off the diagonal link to their covers.
      const links = await page.$$eval('#confusion a', (as) => as.map((a) => a.getAttribute('href')!));
      assert.equal(links.length, ins.confusions.length);
      for (const h of links) assert.equal(await page.locator(h).count(), 1, `${h} exists`);
      const groupRows = await page.locator('section#sources table.groups tbody tr').count();
      assert.equal(groupRows, 4);
      assert.deepEqual(errors, []);
      assert.deepEqual(foreign, []);
      await context.close();
    } finally {
      await browser.close();
    }
  });
});
