/**
 * End to end (discover → label → select → download) against the simulator with the markup-drift faults on: album
 * pages without data-tralbum (a new tralbum_page_version), ld+json-only and bc-page-properties-only pages, the
 * location listed twice and repeated API tags, albums without tags, removed albums whose URL redirects to another
 * album or to the band's /music page, pages served while tralbum_details answers 404, plus stripped/challenge pages
 * and 429s. Checks exact balanced counts, that no kept item is mislabelled, and that each fault gets its reason.
 * About 15 s on 2 cores.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveConfig } from '../pipeline/config.ts';
import { memoryLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import { labelsFormat, type LabelRow } from '../schemas/labels.ts';
import { manifestFormat } from '../schemas/manifest.ts';
import { startSimulator, type Simulator } from '../simulator/server.ts';
import { discoverStage } from '../stages/index.ts';
import { downloadStage } from '../stages/index.ts';
import { labelStage } from '../stages/index.ts';
import { selectStage } from '../stages/index.ts';

const GENRES = ['ambient', 'jazz', 'metal'];
const PER_GENRE = 25;
const FAULTS =
  'details-404=0.5,no-tralbum=0.2,ld-only=0.15,props-only=0.15,dup-location=0.25,no-tags=0.04,redirect=0.1,band-page=0.04,' +
  '429=0.03,stripped=0.06,challenge=0.02,corrupt=0.02';

const tmp = mkdtempSync(join(tmpdir(), 'crawl-markup-'));
let sim: Simulator;
let dataDir: string;
let log: ReturnType<typeof memoryLogger>;
let labels: LabelRow[];

before(async () => {
  sim = await startSimulator({ genres: GENRES, perGenre: 80, overlap: 0.3, seed: 11, faults: FAULTS, retryAfterSeconds: 0.1 });
  dataDir = join(tmp, 'data');
  log = memoryLogger();
  const config = resolveConfig({
    genres: GENRES,
    perGenre: PER_GENRE,
    seed: 3,
    bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
    crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 2, pageSize: 20, oversample: 3, maxRetries: 10, backoff: { initialMs: 10, maxMs: 200, factor: 2 } },
    download: { concurrency: 4, retries: 5 },
  }, 'test');
  await make({ targets: ['download'], config, dataDir, stages: [discoverStage, labelStage, selectStage, downloadStage], log });
  labels = labelsFormat.read(join(dataDir, 'labels.arrow'));
});
after(async () => {
  await sim?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('markup drift: exact balanced counts, and no kept album is mislabelled', () => {
  const manifest = manifestFormat.read(join(dataDir, 'manifest.tsv'));
  for (const g of GENRES) assert.equal(manifest.filter((m) => m.genre === g).length, PER_GENRE, `genre ${g}`);
  for (const m of manifest) {
    const album = sim.catalog.byItemId.get(m.item_id!)!;
    assert.deepEqual(album.genres.filter((g) => GENRES.includes(g)), [m.genre], `album ${m.item_id} (${album.genres}) kept as ${m.genre}`);
    assert.deepEqual(sim.catalog.albumFaultsOf(album.itemId), [], `album ${m.item_id} was removed (${sim.catalog.albumFaultsOf(album.itemId)}) but kept`);
  }
});

test('every label row agrees with the catalogue: reason per fault, source per template, location never a tag', () => {
  assert.ok(labels.length > 0);
  const seen = new Set<string>();
  for (const l of labels) {
    const a = sim.catalog.byItemId.get(l.item_id!)!;
    const albumFault = sim.catalog.albumFaultsOf(a.itemId)[0];
    const what = `item ${a.itemId} (${sim.catalog.contentFaults().find((c) => c.itemId === a.itemId)?.faults.join(',') ?? 'no faults'}): ${l.reason} from ${l.source}`;
    seen.add(l.reason!.split(':')[0]!);
    if (albumFault === 'redirect') {
      const to = sim.catalog.redirectTarget(a.itemId)!;
      // An ld-only target names no item_id: the page's URL is named instead.
      const expect = sim.catalog.markupOf(to.itemId) === 'ld-only' ? `redirected-to:${sim.origin}/album/${to.bandSlug}-${to.slug}` : `redirected-to:${to.itemId}`;
      assert.equal(l.reason, expect, what);
      assert.equal(l.exclusive, false, what);
      continue;
    }
    if (albumFault === 'band-page') {
      assert.deepEqual([l.reason, l.exclusive, l.source], ['not-an-album', false, null], what);
      continue;
    }
    if (albumFault === '404') continue;
    const fromPage = sim.catalog.detailsFaultOf(a.itemId) === 'details-404';
    const markup = sim.catalog.markupOf(a.itemId);
    const expectedSource = !fromPage ? 'tralbum_details' : markup === null ? 'data-tralbum' : markup === 'props-only' ? 'bc-page-properties' : 'ld+json';
    assert.equal(l.source, expectedSource, what);
    if (sim.catalog.tagFaultOf(a.itemId) === 'no-tags') {
      assert.deepEqual([l.reason, l.tags], ['no-tags', []], what);
      continue;
    }
    assert.deepEqual(l.tags, a.tags.map((t) => t.normName), `${what}: tags once each, in order`);
    if (a.location) assert.ok(!l.tags!.includes(a.location.tag.normName), `${what}: the location is not a tag`);
    const chosen = a.genres.filter((g) => GENRES.includes(g));
    assert.equal(l.exclusive, chosen.length === 1 && chosen[0] === l.genre, what);
  }
  for (const r of ['exclusive', 'multi-genre', 'no-tags', 'not-an-album', 'redirected-to']) assert.ok(seen.has(r), `some row has reason ${r}`);
  const sources = new Set(labels.map((l) => l.source));
  for (const s of ['tralbum_details', 'data-tralbum', 'ld+json', 'bc-page-properties']) assert.ok(sources.has(s), `some album read from ${s}`);
});

test('degrade, not halt: drifted pages are read, stripped/challenge pages retried, the new page version warned once', () => {
  const warnings = log.lines.filter((l) => /unknown tralbum_page_version 1 \(known: 0/.test(l));
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.ok(sim.log.some((e) => e.fault === 'stripped'), 'the fault plan should send some stripped pages');
  assert.ok(log.lines.some((l) => /album pages read from .*ld\+json \d+/.test(l)), 'the summary names the page sources');
});
