/**
 * End to end: discover → label → select → download against the Bandcamp simulator with faults on (3 genres × 30,
 * overlap 0.2): exact per-genre counts, distinct images, no album in two genres, rejected rows with reasons, 429s
 * waited out, one POST per page; a crawl killed (SIGKILL mid-discover, abort mid-label) resumes to the same result
 * without refetching finished pages, an abort rejecting with "interrupted"; the request rate limit holds; a blocked
 * crawl stops with a resumable message and leaves no crawlee writes behind.
 * About 20–30 s on 2 cores.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveConfig, type Config, type ConfigInput } from '../pipeline/config.ts';
import { sha256 } from '../util/fsutil.ts';
import { memoryLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import { UserError } from '../pipeline/stage.ts';
import { candidatesFormat } from '../schemas/candidates.ts';
import { imageRelPath, manifestFormat, rejectedFormat } from '../schemas/manifest.ts';
import { startSimulator, type Simulator, type RequestLogEntry } from '../simulator/server.ts';
import { discoverStage, downloadStage, labelStage, selectStage } from '../stages/index.ts';

const STAGES = [discoverStage, labelStage, selectStage, downloadStage];
const GENRES = ['ambient', 'jazz', 'metal'];
const FAULTS = '429=0.05,503=0.02,reset=0.01,challenge=0.02,stripped=0.02,corrupt=0.02,truncated=0.01,bomb=0.01,dup-album=0.02,dup-genre=0.02,404=0.02';
const RETRY_AFTER_S = 0.25;
const REPO = resolve(import.meta.dirname, '..');

const tmp = mkdtempSync(join(tmpdir(), 'crawl-e2e-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function simOptions(faults = FAULTS) {
  return { genres: GENRES, perGenre: 80, overlap: 0.2, seed: 3, faults, retryAfterSeconds: RETRY_AFTER_S };
}

function configFor(sim: Simulator, over: ConfigInput = {}): Config {
  const base: ConfigInput = {
    genres: GENRES,
    perGenre: 30,
    seed: 7,
    bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
    crawl: { maxRequestsPerMinute: 6000, maxConcurrency: 2, pageSize: 10, oversample: 3, maxRetries: 10, backoff: { initialMs: 20, maxMs: 1000, factor: 2 } },
    // A truncated cover counts as permanent at once here (the simulator's truncation is fixed per art_id); the
    // multi-run retry of truncated covers has its own test (test/net-faults.test.ts).
    download: { concurrency: 4, retries: 5, truncatedRuns: 1 },
  };
  const merged = { ...base, ...over, crawl: { ...base.crawl, ...over.crawl }, bandcamp: { ...base.bandcamp, ...over.bandcamp }, select: { ...over.select } };
  return resolveConfig(merged, 'test');
}

const discover200 = (log: RequestLogEntry[]) => log.filter((e) => e.method === 'POST' && e.path.startsWith('/api/discover/1/discover_web') && e.status === 200 && !e.fault);
const details200 = (log: RequestLogEntry[]) => log.filter((e) => e.path.startsWith('/api/mobile/22/tralbum_details') && e.status === 200 && !e.fault);

/** Every file and directory under `dir` with its size and mtime (ms). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    const s = statSync(p, { throwIfNoEntry: false });
    out[p] = !s ? 'vanished' : e.isDirectory() ? 'dir' : `${s.size}@${s.mtimeMs}`;
  }
  return out;
}

/** (item_id, genre, art_id, sha256) of each manifest row: the result, independent of the simulator's port. */
function resultOf(dataDir: string): string[] {
  return manifestFormat.read(join(dataDir, 'manifest.tsv')).map((m) => `${m.item_id}|${m.genre}|${m.art_id}|${m.sha256}`);
}

let sim: Simulator;
let cleanDir: string;
before(async () => {
  sim = await startSimulator(simOptions());
  cleanDir = join(tmp, 'clean');
  await make({ targets: ['download'], config: configFor(sim), dataDir: cleanDir, stages: STAGES, log: memoryLogger() });
});
after(async () => sim?.close());

test('uninterrupted crawl: exact counts, distinct images, exclusive genres, reasons, 429s waited out, one POST per page', () => {
  const manifest = manifestFormat.read(join(cleanDir, 'manifest.tsv'));
  for (const g of GENRES) assert.equal(manifest.filter((m) => m.genre === g).length, 30, `genre ${g}`);
  assert.equal(new Set(manifest.map((m) => m.sha256)).size, manifest.length, 'two kept images with the same sha256');
  assert.equal(new Set(manifest.map((m) => m.item_id)).size, manifest.length, 'an album kept twice');
  for (const m of manifest) {
    const album = sim.catalog.byItemId.get(m.item_id!)!;
    assert.deepEqual(album.genres.filter((g) => GENRES.includes(g)), [m.genre], `album ${m.item_id} is tagged ${album.genres.join(',')}`);
    const file = join(cleanDir, imageRelPath(m.genre!, m.art_id!));
    assert.equal(sha256(readFileSync(file)), m.sha256, file);
  }
  const rejected = rejectedFormat.read(join(cleanDir, 'rejected.tsv'));
  assert.ok(rejected.length > 0, 'with image faults on, some images must be rejected');
  for (const r of rejected) assert.match(r.reason!, /^(not-found|corrupt|truncated|too-large|duplicate-of:\d+)$/, JSON.stringify(r));
  assert.ok(rejected.some((r) => r.reason!.startsWith('duplicate-of:')), 'dup faults give duplicate-of rows');
  assert.ok(rejected.some((r) => r.reason === 'corrupt'), 'corrupt images are rejected as corrupt');
  assert.ok(rejected.some((r) => r.reason === 'truncated'), 'truncated images are rejected as truncated');

  // One POST per page (docs/PITFALLS.md #1): 90 albums per genre at 10 per page = 9 pages each, each requested once.
  const posts = discover200(sim.log);
  assert.equal(posts.length, 27);
  assert.equal(sim.log.filter((e) => e.path.startsWith('/api/discover') && e.attempt === 0).length, 27);
  const cands = candidatesFormat.read(join(cleanDir, 'candidates.arrow'));
  for (const g of GENRES) assert.equal(cands.filter((c) => c.genre === g).length, 90);

  // 429s waited out: the same request is retried no earlier than Retry-After, and no other site request starts meanwhile.
  const site = sim.log.filter((e) => e.host === 'site').sort((a, b) => a.time - b.time);
  const t429 = site.filter((e) => e.status === 429);
  assert.ok(t429.length > 0, 'the fault plan should produce some 429s');
  for (const e of t429) {
    const during = site.filter((x) => x.time > e.time + 50 && x.time < e.time + RETRY_AFTER_S * 1000 - 10);
    assert.deepEqual(during.map((x) => `${x.path} +${x.time - e.time}ms`), [], `requests during the pause after a 429 at ${e.path}`);
  }
  const logTimes = sim.log.filter((e) => e.host === 'img' && e.status === 429);
  for (const e of logTimes) {
    const retry = sim.log.find((x) => x.host === 'img' && x.path === e.path && x.attempt === e.attempt + 1);
    if (retry) assert.ok(retry.time - e.time >= RETRY_AFTER_S * 1000 - 10, `image retry after ${retry.time - e.time} ms`);
  }
});

test('killed crawl (SIGKILL mid-discover, abort mid-label) resumes to the same result without refetching finished work', async () => {
  const ksim = await startSimulator(simOptions());
  try {
    const dataDir = join(tmp, 'killed');
    // Slow enough (100 ms spacing) to kill mid-discover reliably.
    const config = configFor(ksim, { crawl: { maxRequestsPerMinute: 600 } });
    const child = join(tmp, 'child.mts');
    writeFileSync(child, `
import { make } from ${JSON.stringify(join(REPO, 'pipeline/runner.ts'))};
import { memoryLogger } from ${JSON.stringify(join(REPO, 'util/log.ts'))};
import { discoverStage, labelStage, selectStage, downloadStage } from ${JSON.stringify(join(REPO, 'stages/index.ts'))};
await make({ targets: ['download'], config: JSON.parse(process.argv[2]), dataDir: process.argv[3], stages: [discoverStage, labelStage, selectStage, downloadStage], log: memoryLogger() });
`);
    const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify(config), dataDir], { cwd: REPO, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const t0 = Date.now();
    while (discover200(ksim.log).length < 5) {
      assert.ok(Date.now() - t0 < 30_000, 'child crawl did not start');
      await new Promise((r) => setTimeout(r, 5));
    }
    proc.kill('SIGKILL');
    await exited;
    await new Promise((r) => setTimeout(r, 300)); // let the simulator log the killed child's last connections
    const pagesFile = join(dataDir, '.work/discover');
    const recorded = readFileSync(join(pagesFile, (await import('node:fs')).readdirSync(pagesFile).find((f) => f.startsWith('pages-'))!), 'utf8').split('\n').filter((l) => l.trim()).length;
    assert.ok(recorded >= 1 && recorded < 27, `recorded pages ${recorded}`);
    assert.ok(!existsSync(join(dataDir, 'candidates.arrow')), 'discover must not have finished');
    // Requests that arrived before the resume belong to the killed run, even if the simulator logs them later.
    const resumeStart = Date.now();

    // Resume in-process, abort in the middle of label. Paced at 50 ms per site request, so the abort lands mid-label
    // even on a loaded machine (label needs one request per album).
    const paced = configFor(ksim, { crawl: { maxRequestsPerMinute: 1200 } });
    const fast = configFor(ksim);
    const ac = new AbortController();
    const detailsAtStart = details200(ksim.log).length;
    const watch = setInterval(() => {
      if (details200(ksim.log).length - detailsAtStart >= 20) ac.abort();
    }, 2);
    await assert.rejects(make({ targets: ['download'], config: paced, dataDir, stages: STAGES, log: memoryLogger(), signal: ac.signal }), (e: unknown) => {
      assert.ok(e instanceof UserError, `got ${String(e)}`);
      assert.equal(e.message, 'interrupted', 'an abort is reported as a short "interrupted", not a stack');
      return true;
    });
    clearInterval(watch);
    assert.ok(existsSync(join(dataDir, 'candidates.arrow')), 'discover finished in the second run');
    assert.ok(!existsSync(join(dataDir, 'labels.arrow')), 'label was interrupted');
    assert.equal(discover200(ksim.log).filter((e) => e.time >= resumeStart).length, 27 - recorded, 'finished pages were requested again');
    const detailsDone = readFileSync(join(dataDir, '.work/label', (await import('node:fs')).readdirSync(join(dataDir, '.work/label')).find((f) => f.startsWith('tags-'))!), 'utf8').split('\n').filter((l) => l.trim()).length;
    const detailsBefore = details200(ksim.log).length;

    await make({ targets: ['download'], config: fast, dataDir, stages: STAGES, log: memoryLogger() });
    const albums = new Set(candidatesFormat.read(join(dataDir, 'candidates.arrow')).map((c) => c.item_id)).size;
    // Each album not yet labelled costs one successful tralbum_details call (or a 404 and a page fallback).
    assert.ok(details200(ksim.log).length - detailsBefore <= albums - detailsDone, 'labelled albums were requested again');
    assert.deepEqual(resultOf(dataDir), resultOf(cleanDir));
  } finally {
    await ksim.close();
  }
});

test('rebuild from manifest.tsv gives the same files; the 2015 links file imports', async () => {
  const dataDir = join(tmp, 'rebuild');
  const config = configFor(sim, { select: { fromManifest: join(cleanDir, 'manifest.tsv') } });
  const before = sim.log.length;
  await make({ targets: ['download'], config, dataDir, stages: STAGES, log: memoryLogger() });
  assert.deepEqual(resultOf(dataDir), resultOf(cleanDir));
  assert.equal(sim.log.slice(before).filter((e) => e.host === 'site').length, 0, 'a rebuild makes no site requests');
  for (const m of manifestFormat.read(join(dataDir, 'manifest.tsv'))) {
    assert.ok(readFileSync(join(dataDir, imageRelPath(m.genre!, m.art_id!))).equals(readFileSync(join(cleanDir, imageRelPath(m.genre!, m.art_id!)))));
  }

  // The study's links file: 10 lines of each of three genres, URLs on f1.bcbits.com rewritten to the simulator.
  const clean = await startSimulator({ genres: GENRES, perGenre: 10, seed: 1 });
  try {
    // test/fixtures/dataset-links-sample.tsv: the first 10 lines of each of these genres in the study's file.
    const lines = readFileSync(join(import.meta.dirname, 'fixtures', 'dataset-links-sample.tsv'), 'utf8').split('\n');
    const pick = ['ambient', 'punk', 'hiphop_rap'].flatMap((g) => lines.filter((l) => l.includes(`\t${g}/`)).slice(0, 10));
    const links = join(tmp, 'links.tsv');
    writeFileSync(links, `${pick.join('\n')}\n`);
    const linksDir = join(tmp, 'links');
    const wrong = configFor(clean, { select: { fromManifest: links } });
    await assert.rejects(make({ targets: ['download'], config: wrong, dataDir: linksDir, stages: STAGES, log: memoryLogger() }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /--set genres=ambient,punk,hip-hop-rap/);
      return true;
    });
    const ok = configFor(clean, { genres: ['ambient', 'punk', 'hip-hop-rap'], select: { fromManifest: links } });
    await make({ targets: ['download'], config: ok, dataDir: linksDir, stages: STAGES, log: memoryLogger() });
    const got = manifestFormat.read(join(linksDir, 'manifest.tsv'));
    assert.equal(got.length, 30);
    const first = pick[0]!.split('\t');
    const row = got[0]!;
    assert.equal(row.item_id, Number(/a(\d+)\.jpg/.exec(first[1]!)![1]), 'item_id stands in from genre/a<N>.jpg');
    assert.equal(row.url, first[0]!.replace('http://f1.bcbits.com', clean.imageOrigin));
    assert.deepEqual([...new Set(got.map((m) => m.genre))], ['ambient', 'punk', 'hip-hop-rap']);
  } finally {
    await clean.close();
  }
});

test('politeness: request starts towards the site are spaced by crawl.maxRequestsPerMinute', async () => {
  const psim = await startSimulator(simOptions('429=0.05,503=0.05'));
  // When each request's headers went on the wire (undici's own diagnostics channel, as the client process sees it).
  const wire: number[] = [];
  const onSend = (m: unknown) => {
    const r = (m as { request: { origin: string } }).request;
    if (r.origin === psim.origin) wire.push(Date.now());
  };
  subscribe('undici:client:sendHeaders', onSend);
  try {
    const config = configFor(psim, { perGenre: 5, crawl: { maxRequestsPerMinute: 120, pageSize: 10, oversample: 2 } });
    await make({ targets: ['discover'], config, dataDir: join(tmp, 'polite'), stages: STAGES, log: memoryLogger() });
    assert.ok(wire.length >= 3);
    for (let i = 1; i < wire.length; i++) assert.ok(wire[i]! - wire[i - 1]! >= 498, `gap ${wire[i]! - wire[i - 1]!} ms between requests on the wire`);
    // Arrival times at the simulator: it runs in this process, so a busy event loop delays its handlers unevenly
    // (by tens of ms on a loaded machine); the spacing the site sees must still be close to the interval.
    const times = psim.log.filter((e) => e.host === 'site').map((e) => e.time).sort((a, b) => a - b);
    assert.equal(times.length, wire.length, 'every request on the wire reached the simulator');
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 400, `gap ${times[i]! - times[i - 1]!} ms between request arrivals`);
  } finally {
    unsubscribe('undici:client:sendHeaders', onSend);
    await psim.close();
  }
});

test('a blocked crawl stops with a clear, resumable message', async () => {
  const bsim = await startSimulator(simOptions('challenge=1'));
  try {
    const config = configFor(bsim, { perGenre: 5, crawl: { maxBlockedRetries: 2, backoff: { initialMs: 5, maxMs: 20, factor: 2 } } });
    const dataDir = join(tmp, 'blocked');
    await assert.rejects(make({ targets: ['label'], config, dataDir, stages: STAGES, log: memoryLogger() }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /blocking the crawl: 3 challenge responses in a row/);
      assert.match(e.message, /rerun the same `covers make` command later/);
      return true;
    });
    // Crawlee has stopped and flushed before the stage rejected: nothing under the work directory changes afterwards.
    const before = snapshot(join(dataDir, '.work'));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(snapshot(join(dataDir, '.work')), before, 'files changed after the blocked stage rejected');
  } finally {
    await bsim.close();
  }
});
