/**
 * The Bandcamp simulator: discover_web paging and filters, image formats, faithfulness of its pages to the real
 * captures (the same parsers read both), deterministic faults, request log, DIR catalogue, CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cheerio from 'cheerio';
import sharp from 'sharp';
import { DISCOVER_WEB_PATH, TRALBUM_DETAILS_PATH } from '../bandcamp/api.ts';
import { detectBlocked, parseAlbumPage, parseDiscoverWebResponse, parseTralbumDetails, readAlbumPage, type ParsedDiscoverWebResponse } from '../bandcamp/parse.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { discoverPayload } from '../stages/discover.ts';
import { SIM_DISCOVER_WEB_PATH, SIM_TRALBUM_DETAILS_PATH } from '../simulator/protocol.ts';
import { albumPath } from '../simulator/catalog.ts';
import { IMAGE_FAULTS, parseFaultSpec } from '../simulator/faults.ts';
import { BOMB_SIDE } from '../simulator/images.ts';
import { retryAfterViolations } from '../simulator/retry-after.ts';
import { decodeCursor, startSimulator, type RequestLogEntry, type Simulator } from '../simulator/server.ts';
import { COVERS_DIR } from './helpers/dataset.ts';

const GENRES = ['ambient', 'metal', 'pop'];

/** The body real clients send (docs/BANDCAMP.md#discover_web, bandcamp-fetch 3.2.1); tests override some keys. */
const FULL_BODY = { category_id: 0, tag_norm_names: [] as string[], geoname_id: 0, slice: 'top', time_facet_id: null, cursor: '*', size: 60, include_result_types: ['a', 's'] };

async function discover(sim: Simulator, body: Record<string, unknown>): Promise<ParsedDiscoverWebResponse> {
  const r = await fetch(sim.origin + DISCOVER_WEB_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...FULL_BODY, ...body }) });
  assert.equal(r.status, 200);
  return parseDiscoverWebResponse(await r.json());
}

async function allPages(sim: Simulator, body: Record<string, unknown>): Promise<{ ids: number[]; pages: number; total: number }> {
  const ids: number[] = [];
  let cursor = '*';
  let pages = 0;
  let total = 0;
  for (;;) {
    const r = await discover(sim, { ...body, cursor });
    pages++;
    total = r.result_count ?? -1;
    ids.push(...r.results.map((x) => x.item_id));
    if (!r.cursor) break;
    cursor = r.cursor;
  }
  return { ids, pages, total };
}

async function getBytes(url: string): Promise<{ status: number; bytes: Buffer; headers: Headers }> {
  const r = await fetch(url);
  return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()), headers: r.headers };
}

describe('synthetic catalogue, no faults', () => {
  let sim: Simulator;
  before(async () => {
    sim = await startSimulator({ genres: GENRES, perGenre: 40, overlap: 0.3, noArt: 0.1, seed: 3 });
  });
  after(() => sim.close());

  test('cursor paging lists every album of a tag exactly once, for each slice', async () => {
    const expected = sim.catalog.albums.filter((a) => a.resultType === 'a' && a.genres.includes('metal')).map((a) => a.itemId).sort();
    assert.ok(expected.length > 40, 'overlap adds albums of other genres');
    const orders: number[][] = [];
    for (const slice of ['top', 'new', 'rand']) {
      const { ids, pages, total } = await allPages(sim, { tag_norm_names: ['metal'], slice, size: 7, include_result_types: ['a'] });
      assert.deepEqual([...ids].sort(), expected);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      assert.equal(pages, Math.ceil(expected.length / 7));
      assert.equal(total, expected.length);
      orders.push(ids);
    }
    assert.notDeepEqual(orders[0], orders[1]);
    assert.notDeepEqual(orders[0], orders[2]);
    const first = await discover(sim, { tag_norm_names: ['metal'], size: 7, include_result_types: ['a'] });
    assert.match(first.cursor!, /^AoMI/, 'Bandcamp-like opaque cursor');
    assert.equal(decodeCursor(first.cursor!)!.itemId, first.results.at(-1)!.item_id);
    assert.equal(first.batch_result_count, 7);
    assert.ok(first.results[0]!.item_url.startsWith(sim.origin + '/album/'), 'item_url lives on the simulator; ?from= stripped by the parser');
  });

  test('tag_norm_names are ANDed; include_result_types filters merch', async () => {
    const both = sim.catalog.albums.filter((a) => a.resultType === 'a' && a.genres.includes('metal') && a.genres.includes('pop'));
    assert.ok(both.length > 0);
    const { ids } = await allPages(sim, { tag_norm_names: ['metal', 'pop'], size: 60, include_result_types: ['a'] });
    assert.deepEqual(ids.sort(), both.map((a) => a.itemId).sort());
    const withMerch = await discover(sim, { tag_norm_names: ['pop'], size: 500, include_result_types: ['a', 's'] });
    assert.ok(withMerch.results.some((r) => r.result_type === 's'));
    const albumsOnly = await discover(sim, { tag_norm_names: ['pop'], size: 500, include_result_types: ['a'] });
    assert.ok(albumsOnly.results.every((r) => r.result_type === 'a'));
    const bad = await fetch(sim.origin + DISCOVER_WEB_PATH, { method: 'POST', body: JSON.stringify({ cursor: 'bogus', size: 5 }) });
    assert.equal(bad.status, 400);
  });

  test('image formats: sizes per format id, padded and unpadded ids, any art_id, 404 for unknown formats', async () => {
    const album = sim.catalog.albums.find((a) => a.artId !== null && a.resultType === 'a')!;
    const id = album.artId!;
    for (const [fmt, side] of [[2, 350], [3, 100], [4, 300], [5, 700], [7, 150], [9, 210], [16, 700]] as const) {
      const m = await sharp((await getBytes(`${sim.imageOrigin}/img/a${id}_${fmt}.jpg`)).bytes).metadata();
      assert.deepEqual([m.format, m.width, m.height], ['jpeg', side, side], `format ${fmt}`);
    }
    // a landscape original: _0 keeps its size, _10 fits within 1200 keeping the aspect ratio
    let wide = 0;
    for (let a = 1; !wide; a++) {
      const s = await sim.images.originalSize(a);
      if (s.width > 1200 && s.height < s.width) wide = a;
    }
    const orig = await sim.images.originalSize(wide);
    const m0 = await sharp((await getBytes(`${sim.imageOrigin}/img/a${wide}_0.jpg`)).bytes).metadata();
    assert.deepEqual([m0.width, m0.height], [orig.width, orig.height]);
    const m10 = await sharp((await getBytes(`${sim.imageOrigin}/img/a${wide}_10.jpg`)).bytes).metadata();
    assert.equal(m10.width, 1200);
    assert.ok(Math.abs(m10.height! - Math.round((orig.height * 1200) / orig.width)) <= 1);
    const padded = await getBytes(`${sim.imageOrigin}/img/a${String(id).padStart(10, '0')}_2.jpg`);
    const unpadded = await getBytes(`${sim.origin}/img/a${id}_2.jpg`);
    assert.ok(padded.bytes.equals(unpadded.bytes), 'zero-padded and unpadded ids, either origin');
    assert.equal(padded.headers.get('cache-control'), 'public, max-age=31536000');
    const stranger = await getBytes(`${sim.imageOrigin}/img/a4267850305_2.jpg`); // a 2015 study link, not in the catalogue
    assert.equal(stranger.status, 200);
    assert.equal((await sharp(stranger.bytes).metadata()).width, 350);
    assert.equal((await getBytes(`${sim.imageOrigin}/img/a${id}_999.jpg`)).status, 404);
    const head = await fetch(`${sim.imageOrigin}/img/a${id}_2.jpg`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), padded.bytes.length);
  });

  test('faithfulness: the parsers read the same fields from simulator pages as from the real capture', async () => {
    const real = cheerio.load(readFileSync(join(import.meta.dirname, 'fixtures', 'bandcamp', 'album_page__macbenson__coming-of-age__2026-05-25.html'), 'utf8'));
    const album = sim.catalog.albums.find((a) => a.artId !== null && a.resultType === 'a' && a.location && a.genres.length > 1)!;
    const html = await (await fetch(sim.origin + albumPath(album))).text();
    const $ = cheerio.load(html);
    for (const sel of ['meta[name="bc-page-properties"]', 'meta[property="og:image"]', 'link[rel="image_src"]', 'script[type="application/ld+json"]',
      'script[data-tralbum][data-band][data-embed]', '.trackView.has-art #name-section h2.trackTitle', '#tralbumArt a.popupImage picture img',
      '.tralbum-tags a.tag', '#band-name-location .location', '#pagedata[data-blob]']) {
      assert.equal(real(sel).length > 0, true, `real page has ${sel}`);
      assert.equal($(sel).length > 0, true, `simulator page has ${sel}`);
    }
    assert.equal(detectBlocked(200, html), null);
    const p = parseAlbumPage(html);
    assert.equal(p.itemId, album.itemId);
    assert.equal(p.itemType, 'a');
    assert.equal(p.artId, album.artId);
    assert.equal(p.hasArt, true);
    assert.equal(p.title, album.title);
    assert.equal(p.artist, album.bandName);
    assert.equal(p.bandId, album.bandId);
    assert.deepEqual(p.tags, album.tags);
    assert.deepEqual(p.locationTag, album.location!.tag);
    // images referenced by the page are served
    const og = $('meta[property="og:image"]').attr('content')!;
    assert.match(og, /\/img\/a\d{10}_5\.jpg$/);
    assert.equal((await fetch(og)).status, 200);
    // the mobile API agrees
    const d = parseTralbumDetails(await (await fetch(`${sim.origin}${TRALBUM_DETAILS_PATH}?band_id=${album.bandId}&tralbum_type=a&tralbum_id=${album.itemId}`)).json());
    assert.deepEqual([d.artId, d.tags, d.locationTag], [album.artId, album.tags, album.location!.tag]);
    // a listing result points at the same page
    const listed = (await allPages(sim, { tag_norm_names: [album.genres[0]], size: 60, include_result_types: ['a'] })).ids;
    assert.ok(listed.includes(album.itemId));
  });

  test('albums without art: is_art false in discover_web, art_id null and #missing-tralbum-art on the page', async () => {
    const album = sim.catalog.albums.find((a) => a.artId === null)!;
    const r = await discover(sim, { tag_norm_names: [album.genres[0]], size: 500, include_result_types: ['a'] });
    const hit = r.results.find((x) => x.item_id === album.itemId)!;
    assert.equal(hit.artId, null);
    assert.equal(hit.primary_image?.is_art, false);
    const html = await (await fetch(sim.origin + albumPath(album))).text();
    const p = parseAlbumPage(html);
    assert.deepEqual([p.artId, p.hasArt], [null, false]);
    const $ = cheerio.load(html);
    assert.equal($('#tralbumArt #missing-tralbum-art').length, 1);
    assert.equal($('meta[property="og:image"]').length, 0);
    assert.equal($('.trackView').hasClass('has-art'), false);
  });

  test('unknown pages are Bandcamp 404 pages; the request log records every request', async () => {
    const r = await fetch(sim.origin + '/album/no-such-album');
    assert.equal(r.status, 404);
    assert.equal(detectBlocked(404, await r.text()), 'not-found');
    const entry = sim.log.find((e) => e.path === '/album/no-such-album')!;
    assert.deepEqual([entry.method, entry.status, entry.fault, entry.host, entry.attempt], ['GET', 404, null, 'site', 0]);
    assert.ok(entry.time > 1.6e12 && entry.ms >= 0);
    assert.ok(entry.answeredAt !== null && entry.answeredAt >= entry.arrivedAt && entry.retryAfterMs === null);
  });
});

describe('request log and Retry-After', () => {
  test('a 429 is logged with its Retry-After and the moment it was answered', async () => {
    const s = await startSimulator({ genres: ['ambient'], perGenre: 5, seed: 1, faults: '429=1', retryAfterSeconds: 0.25 });
    try {
      const r = await fetch(`${s.origin}/album/anything`);
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '0.25');
      await r.arrayBuffer();
      const e = s.log.at(-1)!;
      assert.deepEqual([e.status, e.retryAfterMs, e.host], [429, 250, 'site']);
      assert.ok(e.answeredAt !== null && e.answeredAt >= e.arrivedAt, `arrived ${e.arrivedAt}, answered ${e.answeredAt}`);
    } finally {
      await s.close();
    }
  });

  test('retryAfterViolations: arrivals after a 429 was answered and inside its Retry-After, on the same host only', () => {
    const entry = (host: 'site' | 'img', path: string, arrivedAt: number, status = 200, answeredAt: number | null = arrivedAt + 1): RequestLogEntry => ({
      time: 0, method: 'GET', path, status, fault: null, host, attempt: 0, ms: 1, arrivedAt, answeredAt, retryAfterMs: status === 429 ? 50 : null,
    });
    const log = [
      entry('img', '/img/429', 10, 429, 12), // holds img over (12, 62)
      entry('img', '/img/on-the-wire', 11.9), // arrived before the 429 was answered
      entry('img', '/img/too-soon', 12.5),
      entry('img', '/img/last-moment', 61.99),
      entry('img', '/img/in-time', 62),
      entry('site', '/other-host', 30),
      entry('site', '/never-answered', 5, 429, null),
      entry('site', '/after-unanswered', 6),
    ];
    const found = retryAfterViolations(log);
    assert.deepEqual(found.map((v) => [v.host, v.request.path, v.after429.path]), [['img', '/img/too-soon', '/img/429'], ['img', '/img/last-moment', '/img/429']]);
    assert.ok(Math.abs(found[0]!.msAfter - 0.5) < 1e-9 && Math.abs(found[1]!.msAfter - 49.99) < 1e-9, found.map((v) => v.msAfter).join(', '));
  });
});

describe('faults', () => {
  test('parseFaultSpec validates names, rates and sums', () => {
    assert.deepEqual(parseFaultSpec('429=0.05,reset=0.01'), { '429': 0.05, reset: 0.01 });
    assert.throws(() => parseFaultSpec('teapot=0.1'), /unknown fault "teapot"/);
    assert.throws(() => parseFaultSpec('429=2'), /\[0,1\]/);
    assert.throws(() => parseFaultSpec('429'), /NAME=RATE/);
    assert.throws(() => parseFaultSpec('429=0.6,503=0.6'), /more than 1/);
  });

  test('close() ends slow responses in flight: no --slow-ms timer keeps the process alive', async () => {
    // In a child process: a request delayed by 20 s is in flight when the simulator closes; the child must exit at once.
    const code = `
      import { startSimulator } from ${JSON.stringify(new URL('../simulator/server.ts', import.meta.url).href)};
      import { albumPath } from ${JSON.stringify(new URL('../simulator/catalog.ts', import.meta.url).href)};
      const sim = await startSimulator({ genres: ['ambient'], perGenre: 4, seed: 1, faults: 'slow=1', slowMs: 20000 });
      fetch(sim.origin + albumPath(sim.catalog.albums.find((a) => a.resultType === 'a'))).catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      await sim.close();
      console.log('closed ' + performance.now());`;
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const exit = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(exit, 0);
    assert.match(out, /^closed /);
    assert.ok(seconds < 10, `the child took ${seconds.toFixed(1)} s to exit after closing (a 20 s slow response kept it alive)`);
  });

  test('transient faults depend on seed, key and attempt; retries succeed; Retry-After is sent', async () => {
    const faults = '429=0.2,503=0.1,reset=0.05,challenge=0.1,stripped=0.1';
    const run = async (seed: number): Promise<string[]> => {
      const sim = await startSimulator({ genres: GENRES, perGenre: 10, seed, faults, slowMs: 1 });
      try {
        const album = sim.catalog.albums.find((a) => a.resultType === 'a')!;
        const url = sim.origin + albumPath(album);
        const outcomes: string[] = [];
        let sawRetryAfter = false;
        let kinds = new Set<string>();
        for (let i = 0; i < 40; i++) {
          try {
            const r = await fetch(url);
            const text = await r.text();
            if (r.status === 429) sawRetryAfter ||= r.headers.get('retry-after') === '1';
            const kind = `${r.status}:${detectBlocked(r.status, text) ?? 'ok'}`;
            outcomes.push(kind);
            kinds.add(kind);
          } catch {
            outcomes.push('reset');
            kinds.add('reset');
          }
        }
        assert.ok(kinds.has('200:ok'), 'a retry succeeds');
        assert.ok(kinds.has('200:challenge') && kinds.has('200:stripped') && kinds.has('429:ok'), [...kinds].join(' '));
        assert.ok(sawRetryAfter, 'Retry-After header on 429');
        const attempts = sim.log.filter((e) => e.path === albumPath(album)).map((e) => e.attempt);
        assert.deepEqual(attempts.slice(0, 5), [0, 1, 2, 3, 4]);
        kinds = new Set();
        return outcomes;
      } finally {
        await sim.close();
      }
    };
    const a = await run(1);
    assert.deepEqual(await run(1), a, 'same seed, same outcomes');
    assert.notDeepEqual(await run(2), a, 'another seed, other outcomes');
  });

  test('content faults are fixed per item and exposed by catalog.faultsOf', async () => {
    const spec = IMAGE_FAULTS.map((f) => `${f}=0.09`).join(',') + ',404=0.1';
    const sim = await startSimulator({ genres: GENRES, perGenre: 40, seed: 5, faults: spec, noArt: 0 });
    try {
      const byFault = new Map<string, number>();
      for (const a of sim.catalog.albums) {
        if (a.resultType !== 'a' || a.artId === null || sim.catalog.albumFaultsOf(a.itemId).length) continue;
        for (const f of sim.catalog.faultsOf(a.artId)) if (!byFault.has(f)) byFault.set(f, a.artId);
      }
      assert.deepEqual([...byFault.keys()].sort(), [...IMAGE_FAULTS].sort());
      const img = async (artId: number): Promise<Buffer> => {
        const r = await getBytes(`${sim.imageOrigin}/img/a${artId}_2.jpg`);
        assert.equal(r.status, 200);
        return r.bytes;
      };
      await assert.rejects(sharp(await img(byFault.get('truncated')!)).raw().toBuffer());
      await assert.rejects(sharp(await img(byFault.get('corrupt')!)).raw().toBuffer());
      assert.equal((await sharp(await img(byFault.get('cmyk')!)).metadata()).space, 'cmyk');
      assert.equal((await sharp(await img(byFault.get('grayscale')!)).metadata()).channels, 1);
      assert.equal((await sharp(await img(byFault.get('progressive')!)).metadata()).isProgressive, true);
      const png = await sharp(await img(byFault.get('png-alpha')!)).metadata();
      assert.deepEqual([png.format, png.hasAlpha], ['png', true]);
      const bombBytes = await img(byFault.get('bomb')!);
      await assert.rejects(sharp(bombBytes).metadata(), /pixel limit/);
      const bomb = await sharp(bombBytes, { limitInputPixels: false }).metadata();
      assert.deepEqual([bomb.width, bomb.height], [BOMB_SIDE, BOMB_SIDE]);
      for (const f of ['dup-album', 'dup-genre'] as const) {
        const id = byFault.get(f)!;
        const src = sim.catalog.imageSourceOf(id);
        assert.notEqual(src, id);
        assert.ok((await img(id)).equals(await img(src)), `${f}: same bytes as ${src}`);
        const [ga, gb] = [sim.catalog.byArtId.get(id)!.genres, sim.catalog.byArtId.get(src)!.genres];
        if (f === 'dup-album') assert.equal(ga[0], gb[0]);
        else assert.ok(!ga.some((g) => gb.includes(g)));
      }
      // fixed per item: a second request gives the same bytes; the log names the fault
      assert.ok((await img(byFault.get('truncated')!)).equals(await img(byFault.get('truncated')!)));
      assert.ok(sim.log.some((e) => e.fault === 'truncated'));
      // 404 albums: listed, but page, tralbum_details and cover answer 404
      const gone = sim.catalog.albums.find((a) => a.resultType === 'a' && sim.catalog.albumFaultsOf(a.itemId).includes('404'))!;
      assert.equal((await fetch(sim.origin + albumPath(gone))).status, 404);
      assert.equal((await fetch(`${sim.origin}${TRALBUM_DETAILS_PATH}?band_id=${gone.bandId}&tralbum_type=a&tralbum_id=${gone.itemId}`)).status, 404);
      assert.equal((await fetch(`${sim.imageOrigin}/img/a${gone.artId}_2.jpg`)).status, 404);
      assert.ok(sim.catalog.contentFaults().some((c) => c.itemId === gone.itemId && c.faults.includes('404')));
    } finally {
      await sim.close();
    }
  });
});

test('DIR catalogue: covers served unchanged as _0 and resized for other formats', async () => {
  const sim = await startSimulator({ catalog: COVERS_DIR, dirLimit: 2, seed: 1 });
  try {
    assert.equal(sim.catalog.kind, 'dir');
    assert.ok(sim.catalog.genres.includes('hip-hop-rap'), 'the label hiphop_rap is served as the norm name hip-hop-rap');
    assert.equal(sim.catalog.albums.length, sim.catalog.genres.length * 2);
    const { ids } = await allPages(sim, { tag_norm_names: ['hip-hop-rap'], size: 60, include_result_types: ['a'] });
    assert.equal(ids.length, 2);
    const album = sim.catalog.byItemId.get(ids[0]!)!;
    const original = await getBytes(`${sim.imageOrigin}/img/a${album.artId}_0.jpg`);
    assert.ok(original.bytes.equals(readFileSync(album.imageFile!)), '_0 = the file, byte for byte');
    const m = await sharp((await getBytes(`${sim.imageOrigin}/img/a${album.artId}_2.jpg`)).bytes).metadata();
    assert.deepEqual([m.width, m.height], [350, 350]);
    assert.equal((await fetch(`${sim.imageOrigin}/img/a123_2.jpg`)).status, 404, 'unknown art ids are 404 in DIR mode');
    const p = parseAlbumPage(await (await fetch(sim.origin + albumPath(album))).text());
    assert.deepEqual(p.tags.map((t) => t.normName), ['hip-hop-rap']);
  } finally {
    await sim.close();
  }
});

test('covers simulate: first stdout line "listening on", --log writes JSON lines, SIGTERM stops it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sim-cli-'));
  const logFile = join(dir, 'sim.jsonl');
  let child: ReturnType<typeof spawn> | undefined;
  try {
    child = spawn(process.execPath, ['--import', 'tsx', '-e',
      `import('./simulator/cli.ts').then(async (m) => process.exit(await m.runSimulateCommand(['--per-genre', '5', '--overlap', '0', '--genres', 'jazz,folk', '--log', ${JSON.stringify(logFile)}])))`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const firstLine = await new Promise<string>((resolve, reject) => {
      let buf = '';
      child!.stdout!.on('data', (c: Buffer) => {
        buf += c.toString();
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(buf.slice(0, nl));
      });
      child!.on('exit', (code) => reject(new Error(`exited ${code} before listening`)));
    });
    const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(firstLine);
    assert.ok(m, firstLine);
    const r = await fetch(`${m[1]}${DISCOVER_WEB_PATH}`, { method: 'POST', body: JSON.stringify({ ...FULL_BODY, tag_norm_names: ['jazz'], size: 60, include_result_types: ['a'] }) });
    assert.equal(((await r.json()) as { results: unknown[] }).results.length, 5);
    const code = await new Promise<number | null>((resolve) => {
      child!.on('exit', (c) => resolve(c));
      child!.kill('SIGTERM');
    });
    assert.equal(code, 0);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { method: string; status: number });
    assert.deepEqual([lines[0]!.method, lines[0]!.status], ['POST', 200]);
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('covers simulate --help documents the --faults syntax', async () => {
  const { runSimulateCommand } = await import('../simulator/cli.ts');
  const write = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    assert.equal(await runSimulateCommand(['--help']), 0);
  } finally {
    process.stdout.write = write;
  }
  assert.match(out, /--faults SPEC/);
  assert.match(out, /429=0\.05/);
  assert.match(out, /png-alpha/);
  assert.equal(await runSimulateCommand(['--faults', 'teapot=1']), 2);
});

describe('an independent witness', () => {
  test('the simulator imports nothing from the crawler (bandcamp/, stages/, schemas/, pipeline/ but its RNG)', () => {
    const dir = join(import.meta.dirname, '..', 'simulator');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const src = readFileSync(join(dir, f), 'utf8');
      for (const m of src.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        const spec = m[1]!;
        // util/rng.ts is the project's seeded generator (mulberry32), not code the simulator stands witness for.
        const ok = spec.startsWith('node:') || spec.startsWith('./') || spec === '../util/rng.ts' || !spec.startsWith('.');
        assert.ok(ok, `simulator/${f} imports ${spec}`);
      }
    }
  });

  test('discover_web: the crawler\'s request is accepted; what the real site would reject is rejected with 400', async () => {
    const sim = await startSimulator({ genres: GENRES, perGenre: 5, seed: 1 });
    try {
      const post = (body: unknown) => fetch(sim.origin + DISCOVER_WEB_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const config = resolveConfig({ genres: GENRES, perGenre: 5, bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin } });
      for (const slice of ['top', 'new', 'rand'] as const) {
        const r = await post(discoverPayload({ ...config, crawl: { ...config.crawl, slice } }, 'metal', '*'));
        assert.equal(r.status, 200, `the crawler's ${slice} payload`);
      }
      assert.equal((await post(FULL_BODY)).status, 200, 'bandcamp-fetch 3.2.1 payload');
      assert.equal((await post({ ...FULL_BODY, followed_bands: false })).status, 200, 'the Ruby client adds followed_bands');
      const bad: [string, unknown][] = [
        ['no body keys', {}],
        ['cursor missing', (({ cursor: _c, ...rest }) => rest)(FULL_BODY)],
        ['tag_norm_names missing', (({ tag_norm_names: _t, ...rest }) => rest)(FULL_BODY)],
        ['a misspelt key', { ...FULL_BODY, tag_norm_name: ['metal'] }],
        ['slice rec (does not answer)', { ...FULL_BODY, slice: 'rec' }],
        ['size over 500', { ...FULL_BODY, size: 501 }],
        ['size as a string', { ...FULL_BODY, size: '60' }],
        ['time_facet_id -1 (fresh is null)', { ...FULL_BODY, time_facet_id: -1 }],
        ['category_id 9', { ...FULL_BODY, category_id: 9 }],
        ['tag_norm_names a string', { ...FULL_BODY, tag_norm_names: 'metal' }],
        ['an empty cursor', { ...FULL_BODY, cursor: '' }],
      ];
      for (const [what, body] of bad) assert.equal((await post(body)).status, 400, what);
      // Tags are matched as norm names, not normalised: a display name lists nothing, as on the real site.
      const display = (await (await post({ ...FULL_BODY, tag_norm_names: ['Hip-Hop/Rap'] })).json()) as { results: unknown[] };
      assert.equal(display.results.length, 0);
      assert.equal(DISCOVER_WEB_PATH, SIM_DISCOVER_WEB_PATH);
      assert.equal(TRALBUM_DETAILS_PATH, SIM_TRALBUM_DETAILS_PATH);
    } finally {
      await sim.close();
    }
  });

  test('markup, tag, redirect and band-page faults: what the crawler\'s parser reads from each', async () => {
    const spec = 'no-tralbum=0.2,ld-only=0.2,props-only=0.2,dup-location=0.3,no-tags=0.1,redirect=0.1,band-page=0.1,details-404=0.2';
    const sim = await startSimulator({ genres: GENRES, perGenre: 40, seed: 8, faults: spec, noArt: 0 });
    try {
      const albums = sim.catalog.albums.filter((a) => a.resultType === 'a');
      const page = async (a: (typeof albums)[number]) => {
        const r = await fetch(sim.origin + albumPath(a));
        return { status: r.status, url: r.url, text: await r.text() };
      };
      const details = (a: (typeof albums)[number]) => fetch(`${sim.origin}${TRALBUM_DETAILS_PATH}?band_id=${a.bandId}&tralbum_type=a&tralbum_id=${a.itemId}`);
      const plain = (a: (typeof albums)[number]) => sim.catalog.albumFaultsOf(a.itemId).length === 0;
      for (const [markup, source] of [[null, 'data-tralbum'], ['no-tralbum', 'ld+json'], ['ld-only', 'ld+json'], ['props-only', 'bc-page-properties']] as const) {
        const a = albums.find((x) => plain(x) && sim.catalog.markupOf(x.itemId) === markup && sim.catalog.tagFaultOf(x.itemId) === null && x.location)!;
        const { text } = await page(a);
        assert.equal(detectBlocked(200, text), null, `${markup}`);
        const p = parseAlbumPage(text);
        assert.equal(p.source, source, `${markup}`);
        assert.equal(p.itemId, markup === 'ld-only' ? null : a.itemId, `${markup}: ids`);
        assert.deepEqual([p.artId, p.tags, p.locationTag?.normName], [a.artId, a.tags, a.location!.tag.normName], `${markup}`);
        assert.equal(p.pageVersion, markup === 'ld-only' ? null : markup === 'no-tralbum' ? 1 : 0);
      }
      // dup-location: the location twice on the page, every tag twice in the API; read once, location apart.
      const dup = albums.find((x) => plain(x) && sim.catalog.markupOf(x.itemId) === null && sim.catalog.tagFaultOf(x.itemId) === 'dup-location' && x.location && sim.catalog.detailsFaultOf(x.itemId) === null)!;
      const dupHtml = (await page(dup)).text;
      assert.equal(dupHtml.split(`/discover/${encodeURIComponent(dup.location!.tag.normName)}?`).length - 1, 2);
      assert.deepEqual(parseAlbumPage(dupHtml).tags, dup.tags);
      const dd = (await (await details(dup)).json()) as { tags: unknown[] };
      assert.equal(dd.tags.length, 2 * (dup.tags.length + 1) + 1);
      assert.deepEqual(parseTralbumDetails(dd).tags, dup.tags);
      // no-tags: listed under its genre, but page and API show only the location.
      const bare = albums.find((x) => plain(x) && sim.catalog.tagFaultOf(x.itemId) === 'no-tags' && sim.catalog.detailsFaultOf(x.itemId) === null)!;
      assert.ok((await allPages(sim, { tag_norm_names: [bare.genres[0]], size: 500, include_result_types: ['a'] })).ids.includes(bare.itemId));
      assert.deepEqual(parseAlbumPage((await page(bare)).text).tags, []);
      assert.deepEqual(parseTralbumDetails(await (await details(bare)).json()).tags, []);
      // details-404: the API has no such tralbum, the page is up.
      const noApi = albums.find((x) => plain(x) && sim.catalog.detailsFaultOf(x.itemId) === 'details-404')!;
      assert.equal((await details(noApi)).status, 404);
      assert.equal((await page(noApi)).status, 200);
      // redirect: 301 to another album tagged with the first genre only; the API answers 404 for the removed one.
      const moved = albums.find((x) => sim.catalog.albumFaultsOf(x.itemId)[0] === 'redirect')!;
      const target = sim.catalog.redirectTarget(moved.itemId)!;
      assert.notEqual(target.itemId, moved.itemId);
      assert.deepEqual(target.genres, [moved.genres[0]]);
      const raw = await fetch(sim.origin + albumPath(moved), { redirect: 'manual' });
      assert.deepEqual([raw.status, raw.headers.get('location')], [301, sim.origin + albumPath(target)]);
      const followed = await page(moved);
      const tp = parseAlbumPage(followed.text);
      // The page that answers is the target's (an ld-only target names no item_id: its art_id says who it is).
      if (sim.catalog.markupOf(target.itemId) === 'ld-only') assert.equal(tp.artId, target.artId);
      else assert.equal(tp.itemId, target.itemId);
      assert.equal((await details(moved)).status, 404);
      // band-page: 302 to the band's /music page, a discography and no album data: not an album, never blocked.
      const deleted = albums.find((x) => sim.catalog.albumFaultsOf(x.itemId)[0] === 'band-page')!;
      const bp = await page(deleted);
      assert.match(bp.url, /\/band\/[^/]+\/music$/);
      assert.equal(detectBlocked(200, bp.text), null);
      assert.deepEqual(readAlbumPage(bp.text), { kind: 'not-an-album', what: 'og:type "band"' });
      assert.equal((await details(deleted)).status, 404);
      assert.ok(sim.catalog.contentFaults().some((c) => c.itemId === deleted.itemId && c.faults.includes('band-page')));
    } finally {
      await sim.close();
    }
  });
});
