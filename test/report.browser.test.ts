/**
 * The report rendered in headless Chromium (Debian's `chromium` package, driven by playwright-core): no console
 * errors, no network request, every image decodes, the confusion matrix adds up to the test split, every section
 * has visible content (screenshots checked non-blank with sharp), and a partial data directory renders with
 * "not built yet" notes.
 *
 * Skips with the reason when Chromium is absent: install it with `apt-get install -y chromium` (or point
 * `CHROMIUM_PATH` at a Chromium binary).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { buildReport, pageSections } from '../report/render.ts';
import { reportStage } from '../stages/index.ts';
import { writeReportFixture, type ReportFixture } from './helpers/report-fixture.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" (Debian) or set CHROMIUM_PATH`;

/** Chromium flags: no sandbox (root in CI containers), no GPU, and no background traffic of its own. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** What loading a page produced. */
interface Loaded {
  page: Page;
  consoleErrors: string[];
  /** Requests to anything but `data:`/`about:` URLs and the page itself. */
  foreignRequests: string[];
}

async function load(browser: Browser, file: string): Promise<Loaded> {
  const url = pathToFileURL(file).href;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  const foreignRequests: string[] = [];
  const allowed = (u: string) => u.startsWith('data:') || u.startsWith('about:') || u === url || u.startsWith(`${url}#`);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (!allowed(r.url())) foreignRequests.push(r.url());
  });
  await context.route('**/*', async (route) => {
    const u = route.request().url();
    if (allowed(u)) await route.continue();
    else {
      foreignRequests.push(u);
      await route.abort('blockedbyclient');
    }
  });
  await page.goto(url, { waitUntil: 'load' });
  return { page, consoleErrors, foreignRequests };
}

/** Per-channel standard deviation of a PNG, averaged over R, G, B (0 for a uniform image). */
async function pixelStdev(png: string): Promise<number> {
  const stats = await sharp(png).stats();
  const rgb = stats.channels.slice(0, 3);
  return rgb.reduce((a, c) => a + c.stdev, 0) / rgb.length;
}

describe('report in headless Chromium', { skip }, () => {
  let root: string;
  let shots: string;
  let browser: Browser;
  let full: ReportFixture;
  let fullFile: string;
  let partialFile: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'report-browser-'));
    // Screenshots stay after the test when REPORT_SCREENSHOT_DIR is set (to look at them).
    shots = process.env.REPORT_SCREENSHOT_DIR ?? join(root, 'shots');
    mkdirSync(shots, { recursive: true });
    full = await writeReportFixture(join(root, 'full'));
    await runStageOnce(reportStage, { config: full.config, dataDir: full.dataDir, log: createLogger({ level: 'quiet' }) });
    fullFile = join(full.dataDir, 'report', 'index.html');
    const partial = await writeReportFixture(join(root, 'partial'), { partial: true });
    partialFile = join(root, 'partial-report.html');
    writeFileSync(partialFile, await buildReport({ dataDir: partial.dataDir, config: partial.config }));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('loads the full report without console errors or network requests, and every image decodes', async () => {
    const { page, consoleErrors, foreignRequests } = await load(browser, fullFile);
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreignRequests, []);
    const images = await page.$$eval('img', (imgs) => imgs.map((i) => ({ ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0, src: i.src.slice(0, 40), w: i.getBoundingClientRect().width })));
    // 3 genres × 12 covers + the mean image, and the inspection's images (test/inspect.test.ts checks those).
    assert.equal(await page.locator('section#covers img, section#mean img').count(), full.genres.length * 12 + 1);
    // The two covers of the fixture's near-duplicate group (leakage audit).
    assert.equal(await page.locator('section#leakage img').count(), 2);
    for (const img of images) {
      assert.ok(img.ok, `image did not load: ${img.src}`);
      assert.ok(img.w >= 90, `image not laid out: ${img.src}`);
    }
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true, 'the page scrolls sideways at 1280 px');
    await page.context().close();
  });

  it('draws a confusion matrix whose cells add up to the test split', async () => {
    const { page } = await load(browser, fullFile);
    const cells = await page.$$eval('#confusion .cm-cell', (els) =>
      els.map((e) => ({ count: Number(e.getAttribute('data-count')), text: e.querySelector('text')?.textContent ?? '', w: e.getBoundingClientRect().width })),
    );
    assert.equal(cells.length, full.genres.length ** 2);
    for (const c of cells) {
      assert.equal(c.text, String(c.count), 'the visible count matches the cell');
      assert.ok(c.w > 20, 'cell drawn');
    }
    assert.equal(cells.reduce((a, c) => a + c.count, 0), full.testSize);
    await page.context().close();
  });

  it('has visible, non-blank content in every section (screenshots)', async (t) => {
    const { page } = await load(browser, fullFile);
    const fullShot = join(shots, 'report-full.png');
    await page.screenshot({ path: fullShot, fullPage: true });
    t.diagnostic(`screenshot: ${fullShot}`);
    assert.ok((await pixelStdev(fullShot)) > 10);
    for (const [id, title] of pageSections()) {
      const section = page.locator(`section#${id}`);
      assert.equal(await section.getAttribute('data-state'), 'ok', `${id} built`);
      const box = await section.boundingBox();
      assert.ok(box && box.width > 500 && box.height > 120, `section ${id} is laid out (${JSON.stringify(box)})`);
      const text = (await section.innerText()).trim();
      assert.ok(text.startsWith(title) && text.length > title.length + 80, `section ${id} has content`);
      const shot = join(shots, `section-${id}.png`);
      await section.screenshot({ path: shot });
      assert.ok((await pixelStdev(shot)) > 8, `section ${id} screenshot is not blank`);
    }
    for (const svg of await page.locator('svg.chart').all()) {
      const box = await svg.boundingBox();
      assert.ok(box && box.width > 150 && box.height > 60, `chart ${await svg.getAttribute('aria-label')} is drawn`);
    }
    // Table-of-contents links resolve to elements.
    const missingTargets = await page.$$eval('nav.toc a', (as) => as.map((a) => a.getAttribute('href')!).filter((h) => !document.querySelector(h)));
    assert.deepEqual(missingTargets, []);
    await page.context().close();
  });

  it('renders a partial data directory with "not built yet" notes and no errors', async (t) => {
    const { page, consoleErrors, foreignRequests } = await load(browser, partialFile);
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(foreignRequests, []);
    const states = Object.fromEntries(await page.$$eval('section.section', (els) => els.map((e) => [e.id, e.getAttribute('data-state')])));
    assert.equal(states.covers, 'ok');
    assert.equal(states.mean, 'ok');
    assert.equal(states.training, 'missing');
    assert.equal(states.evaluation, 'missing');
    for (const id of ['training', 'evaluation']) {
      const note = page.locator(`section#${id} p.missing`).first();
      assert.ok(await note.isVisible(), `${id} shows a note`);
      assert.match(await note.innerText(), /^Not built yet: run covers make (train|evaluate)/);
    }
    const missingTargets = await page.$$eval('nav.toc a', (as) => as.map((a) => a.getAttribute('href')!).filter((h) => !document.querySelector(h)));
    assert.deepEqual(missingTargets, []);
    const broken = await page.$$eval('img', (imgs) => imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).length);
    assert.equal(broken, 0);
    const shot = join(shots, 'report-partial.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    assert.ok((await pixelStdev(shot)) > 10);
    await page.context().close();
  });
});
