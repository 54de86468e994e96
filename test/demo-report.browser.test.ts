/**
 * The demo's report in headless Chromium (issue 26's "done when"): the sections on what the network learned
 * (`filters`, `examples`, `saliency`, `embedding`, and `sources`) are built, each has its images and every one decodes
 * (the embedding's hover thumbnails are tiles of an inlined sprite: hovering points shows them), and the page logs no
 * console error or warning and requests nothing.
 *
 * Which demo:
 * - with `COVERS_DEMO_DIR` set, the data directory of a finished `covers demo` (.ci/run sets it to the `demo-data/` its
 *   `npm run demo` has just written, so CI runs the demo once, at full size);
 * - else the test runs `covers demo` itself into a temporary directory: the demo's simulator and configuration
 *   (cli/demo.ts), scaled down only in training, `--set train.epochs=6` (of 20), to stay near 90 s on two cores.
 *
 * With `REPORT_SCREENSHOT_DIR` set, it leaves `inspect-demo.png` there: the inspect sections with a hovered point
 * (how docs/inspect-demo.png is made). Skips with the reason when Chromium is absent (`apt-get install -y chromium`
 * or `CHROMIUM_PATH`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { hoverThumbnail } from './helpers/scatter-hover.ts';
import { INSPECT_DIR, readInspection, type Inspection } from '../schemas/inspect.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" (Debian) or set CHROMIUM_PATH`;
const COVERS = join(import.meta.dirname, '..', 'bin', 'covers.js');
/** The one change to the demo's configuration when the test runs the demo itself (see above). */
const SCALED_DOWN = ['train.epochs=6'];

/** Runs `covers demo` into `dir`, quietly; resolves with its exit code and the end of its stderr. */
function runDemo(dir: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [COVERS, 'demo', '--data-dir', dir, '--quiet', ...SCALED_DOWN.flatMap((s) => ['--set', s])], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stderr }));
  });
}

/** Whether every `<img>` under `selector` decodes, and how many there are. */
async function images(page: Page, selector: string): Promise<{ n: number; decoded: number }> {
  const ok = await page.$$eval(`${selector} img`, (els) => els.map((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0));
  return { n: ok.length, decoded: ok.filter(Boolean).length };
}

describe("the demo's report in headless Chromium", { skip }, () => {
  let root: string | null = null;
  let dataDir: string;
  let ins: Inspection;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const foreign: string[] = [];

  before(async () => {
    if (process.env.COVERS_DEMO_DIR) {
      dataDir = resolve(process.env.COVERS_DEMO_DIR);
      assert.ok(existsSync(join(dataDir, 'demo.config.json')), `COVERS_DEMO_DIR=${dataDir} is not the data directory of a \`covers demo\` run (no demo.config.json)`);
    } else {
      root = mkdtempSync(join(tmpdir(), 'demo-report-'));
      dataDir = join(root, 'demo-data');
      const run = await runDemo(dataDir);
      assert.equal(run.code, 0, `covers demo failed:\n${run.stderr}`);
    }
    const file = join(dataDir, 'report', 'index.html');
    assert.ok(existsSync(file), `${file} not found`);
    ins = readInspection(join(dataDir, INSPECT_DIR));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    const url = pathToFileURL(file).href;
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    await context.route('**/*', async (route) => {
      const u = route.request().url();
      if (u.startsWith('data:') || u.startsWith('about:') || u === url || u.startsWith(`${url}#`)) await route.continue();
      else {
        foreign.push(u);
        await route.abort('blockedbyclient');
      }
    });
    await page.goto(url, { waitUntil: 'load' });
  });

  after(async () => {
    await browser?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('builds the filters, examples, saliency, embedding and sources sections', async () => {
    for (const id of ['filters', 'examples', 'saliency', 'embedding', 'sources']) {
      assert.equal(await page.locator(`section#${id}`).getAttribute('data-state'), 'ok', `section ${id} is built`);
    }
  });

  it('shows the trained and the initial filters', async () => {
    assert.ok(ins.filters, 'the demo model has a conv layer');
    assert.deepEqual(await images(page, 'section#filters'), { n: 2, decoded: 2 });
  });

  it('shows the right and wrong covers of each genre and the covers of each confusion cell', async () => {
    const expected = ins.examples.reduce((a, e) => a + e.right.length + e.wrong.length, 0) + ins.confusions.reduce((a, c) => a + c.rows.length, 0);
    // Every genre has a row; whether it has right or wrong covers depends on the model, not on the page.
    assert.equal(ins.examples.length, ins.labels.length);
    assert.ok(expected > 0, 'covers to show');
    assert.deepEqual(await images(page, 'section#examples'), { n: expected, decoded: expected });
  });

  it('shows a saliency overlay beside each cover, for every genre', async () => {
    const n = ins.saliency.items.length;
    assert.ok(n >= ins.labels.length, `${n} saliency maps`);
    assert.deepEqual(await images(page, 'section#saliency'), { n: 2 * n, decoded: 2 * n });
    assert.equal(await page.locator('section#saliency .sheet').count(), ins.labels.length);
  });

  it('draws every embedding as a scatter whose points show their cover on hover', async () => {
    assert.deepEqual(await page.$$eval('section#embedding .scatter-wrap', (els) => els.map((e) => e.getAttribute('data-embedding'))), ins.embeddings.map((e) => e.name));
    assert.ok(ins.embeddings.length >= 2);
    for (const e of ins.embeddings) {
      const points = page.locator(`section#embedding [data-embedding="${e.name}"] .pt`);
      assert.equal(await points.count(), e.points.length, `${e.name}: one point per embedded cover`);
      for (const i of [0, e.points.length - 1]) {
        assert.equal(await hoverThumbnail(points.nth(i)), 'ok', `${e.name}: hovering point ${i} shows its cover`);
      }
    }
  });

  it('logs no console error or warning and requests nothing', async (t) => {
    const shots = process.env.REPORT_SCREENSHOT_DIR;
    if (shots) {
      mkdirSync(shots, { recursive: true });
      await page.locator('section#embedding .scatter .pt').nth(7).hover();
      // The table of contents is sticky: in a full-page picture it would sit over the sections.
      await page.locator('nav.toc').evaluate((el) => ((el as HTMLElement).style.visibility = 'hidden'));
      // Page coordinates (a full-page clip's), not the viewport's that boundingBox() gives.
      // (No named function inside: tsx's __name helper does not exist in the page.)
      const [top, bottom] = await page.evaluate(() => [
        window.scrollY + document.getElementById('filters')!.getBoundingClientRect().top,
        window.scrollY + document.getElementById('sources')!.getBoundingClientRect().bottom,
      ]);
      const file = join(shots, 'inspect-demo.png');
      await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: top - 8, width: 1280, height: bottom - top + 16 } });
      t.diagnostic(`screenshot: ${file}`);
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, []);
  });
});
