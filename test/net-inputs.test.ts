/**
 * Issue 16, the parts that need no network: listing walks that end on cursor cycles and endless cursors, capped
 * bodies, http(s)-only URLs, truncated vs corrupt covers, the CLI's one error path (exit codes, no stack traces),
 * and inputs people produce (BOM and CRLF in TSV files, ids beyond 2^53, `--set` keys, bad links-file lines).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { BlockedError, BodyTooLargeError, HostBudget, PoliteClient, readCapped, RequestFailedError, UnsupportedUrlError, type Transport } from '../bandcamp/client.ts';
import { ProgressLog } from '../bandcamp/crawl.ts';
import { describeFailure } from '../cli/covers.ts';
import { ConfigError, loadConfig, resolveConfig } from '../pipeline/config.ts';
import { RerunLaterError, UserError } from '../pipeline/stage.ts';
import { manifestFormat } from '../schemas/manifest.ts';
import { walkGenre, type PageRecord } from '../stages/discover.ts';
import { checkImage, looksTruncated } from '../stages/download.ts';
import { readManifestInput } from '../stages/select.ts';

const tmp = mkdtempSync(join(tmpdir(), 'net-inputs-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A listing page with albums `ids` and the next cursor. */
function page(genre: string, cursor: string, next: string | null, ids: number[]): PageRecord {
  return { genre, cursor, next, results: ids.map((id) => ({ item_id: id, art_id: id, item_url: `https://x.bandcamp.com/album/${id}`, title: 't', band_name: 'b', band_id: 1, result_type: 'a' })) };
}

test('walkGenre: a cursor cycle, an endless cursor and the page cap end a listing; a normal listing is walked to its end', () => {
  const limits = { maxEmptyPages: 3, maxPages: 100 };
  // A -> B -> A (the page recorded under B points back to A): ends, never loops.
  const cycle = new Map([['*', page('g', '*', 'A', [1, 2])], ['A', page('g', 'A', 'B', [3, 4])], ['B', page('g', 'B', 'A', [5, 6])]]);
  const w = walkGenre(cycle, 100, limits);
  assert.equal(w.ended, 'cursor-cycle');
  assert.equal(w.cycleAt, 'A');
  assert.deepEqual(w.albums.map((a) => a.item_id), [1, 2, 3, 4, 5, 6]);
  assert.equal(w.nextCursor, null);
  // A page pointing at itself.
  assert.equal(walkGenre(new Map([['*', page('g', '*', '*', [1])]]), 100, limits).ended, 'cursor-cycle');

  // New cursors forever, the same albums: ends after maxEmptyPages pages without a new album.
  const endless = new Map<string, PageRecord>([['*', page('g', '*', 'c1', [1, 2])]]);
  for (let i = 1; i <= 50; i++) endless.set(`c${i}`, page('g', `c${i}`, `c${i + 1}`, [1, 2]));
  const e = walkGenre(endless, 100, limits);
  assert.equal(e.ended, 'no-new-items');
  assert.equal(e.pagesUsed, 4, 'the first page and three without a new album');
  // Not yet fetched: the walk asks for the next page.
  const partial = walkGenre(new Map([['*', page('g', '*', 'c1', [1, 2])]]), 100, limits);
  assert.deepEqual([partial.ended, partial.nextCursor], [null, 'c1']);
  // The page cap.
  const capped = walkGenre(endless, 100, { maxEmptyPages: 100, maxPages: 7 });
  assert.deepEqual([capped.ended, capped.pagesUsed], ['page-limit', 7]);
  // The site's own end, and a target reached: whole pages are kept.
  const normal = new Map([['*', page('g', '*', 'A', [1, 2, 3])], ['A', page('g', 'A', null, [4, 5])]]);
  assert.deepEqual([walkGenre(normal, 100, limits).ended, walkGenre(normal, 100, limits).albums.length], ['end', 5]);
  const enough = walkGenre(normal, 2, limits);
  assert.deepEqual([enough.ended, enough.nextCursor, enough.albums.length], [null, null, 3]);
});

test('readCapped: a Content-Length over the cap is refused unread; a body growing past the cap is cut off', async () => {
  let pulled = 0;
  let cancelled = 0;
  const endless = () => Readable.from((function* () {
    for (;;) {
      pulled++;
      yield Buffer.alloc(64 * 1024);
    }
  })());
  await assert.rejects(readCapped(endless(), { url: 'u', maxBytes: 1 << 20, contentLength: String(2 * 1024 ** 3), cancel: () => cancelled++ }), (e: unknown) => {
    assert.ok(e instanceof BodyTooLargeError);
    assert.equal(e.declared, 2 * 1024 ** 3);
    return true;
  });
  assert.equal(pulled, 0, 'nothing read when Content-Length is too large');
  assert.equal(cancelled, 1);
  await assert.rejects(readCapped(endless(), { url: 'u', maxBytes: 1 << 20, contentLength: null, cancel: () => cancelled++ }), BodyTooLargeError);
  assert.ok(pulled <= 18, `read ${pulled} chunks of 64 KiB for a 1 MiB cap`);
  assert.equal(cancelled, 2);
  const ok = await readCapped(Readable.from([Buffer.from('ab'), Buffer.from('c')]), { url: 'u', maxBytes: 3, contentLength: '3', cancel: () => undefined });
  assert.equal(ok.toString(), 'abc');
});

test('only http(s) URLs are fetched: another scheme is an UnsupportedUrlError before any request; a body over the cap is not retried', async () => {
  let calls = 0;
  const transport: Transport = async (req) => {
    calls++;
    throw new BodyTooLargeError(req.url, req.maxBytes, null);
  };
  const client = new PoliteClient({ transport, budget: new HostBudget({ maxRequestsPerMinute: Infinity, maxConcurrency: 1 }), userAgent: 'test', timeoutMs: 1000, maxRetries: 5, maxBlockedRetries: 1, backoff: { initialMs: 1, maxMs: 2, factor: 2 } });
  for (const url of ['file:///etc/passwd', 'javascript:alert(1)', 'data:text/plain,x', 'not a url']) {
    await assert.rejects(client.request({ url }), UnsupportedUrlError, url);
  }
  assert.equal(calls, 0);
  await assert.rejects(client.request({ url: 'http://127.0.0.1:9/x', maxBytes: 10 }), BodyTooLargeError);
  assert.equal(calls, 1, 'a body over the cap is permanent: no retry');
});

test('a cover that ends early is truncated (retried on later runs); a garbled one is corrupt (permanent)', async () => {
  const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 90 } } }).jpeg().toBuffer();
  const png = await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } }).png().toBuffer();
  assert.equal(looksTruncated(jpeg), false);
  assert.equal(looksTruncated(Buffer.concat([jpeg, Buffer.alloc(16)])), false, 'zero padding after EOI');
  assert.equal(looksTruncated(jpeg.subarray(0, Math.floor(jpeg.length * 0.55))), true);
  assert.equal(looksTruncated(png), false);
  assert.equal(looksTruncated(png.subarray(0, png.length - 12)), true);
  assert.equal((await checkImage(jpeg.subarray(0, Math.floor(jpeg.length * 0.55)), 1e6)).ok ? 'ok' : 'rejected', 'rejected');
  const t = await checkImage(jpeg.subarray(0, Math.floor(jpeg.length * 0.55)), 1e6);
  assert.equal(t.ok ? null : t.reason, 'truncated');
  const garbled = Buffer.from(jpeg);
  for (let i = 2; i < Math.min(300, garbled.length - 2); i++) garbled[i] = (i * 37) & 0xff;
  const c = await checkImage(garbled, 1e6);
  assert.equal(c.ok ? null : c.reason, 'corrupt');
});

test('one error path: plain causes, the file named, what to do; no stack trace unless --verbose; exit codes', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', errno: -28 });
  const dir = join(tmp, 'progress-dir');
  mkdirSync(dir);
  // A file-system error from our own writers names the file.
  const log = new ProgressLog<{ a: number }>(join(dir, 'x.jsonl'));
  mkdirSync(log.path);
  let eisdir: unknown;
  try {
    log.append({ a: 1 });
  } catch (e) {
    eisdir = e;
  }
  const d1 = describeFailure(eisdir);
  assert.equal(d1.code, 1);
  assert.match(d1.message, new RegExp(`${log.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: a folder is in the way of a file \\(EISDIR\\)`));
  assert.doesNotMatch(d1.message, /\n\s+at /, 'no stack trace');
  const d2 = describeFailure(Object.assign(enospc, { path: '/data/images/a1.jpg' }));
  assert.match(d2.message, /cannot write \/data\/images\/a1\.jpg: the disk is full \(ENOSPC\)\. What to do: free some space/);
  // Transient: exit 75 and "rerun … later".
  const t = describeFailure(new RequestFailedError('https://bandcamp.com/api/mobile/22/tralbum_details?x', 'HTTP 429', 9, true));
  assert.equal(t.code, 75);
  assert.match(t.message, /HTTP 429 \(after 9 attempts\)\. .*progress is kept: rerun the same command later/);
  assert.equal(describeFailure(new BlockedError('u', 'challenge', 3)).code, 75);
  assert.equal(describeFailure(new RerunLaterError('2 covers could not be fetched yet')).code, 75);
  assert.equal(describeFailure(new RequestFailedError('u', 'HTTP 400', 1)).code, 1, 'a permanent 4xx is a failure');
  assert.equal(describeFailure(new UserError('bad row')).code, 1);
  assert.equal(describeFailure(new ConfigError('bad key')).code, 2);
  // Anything else is a bug: said so, stack only with --verbose.
  const bug = describeFailure(new TypeError('x is undefined'));
  assert.match(bug.message, /internal error: TypeError: x is undefined\n\(this is a bug/);
  assert.doesNotMatch(bug.message, /\n\s+at /);
  assert.match(describeFailure(new TypeError('x is undefined'), true).message, /\n\s+at /);
});

test('TSV as people save it: a UTF-8 BOM and CRLF line ends are accepted; an id beyond 2^53 is named with its line and digits', () => {
  const rows = [{ item_id: 12, genre: 'metal', art_id: 34, url: 'https://f4.bcbits.com/img/a34_2.jpg', sha256: 'ab'.repeat(32), bytes: 10, width: 350, height: 350, phash: null, band_id: null }];
  const text = manifestFormat.format(rows);
  assert.deepEqual(manifestFormat.parse(`\uFEFF${text.replace(/\n/g, '\r\n')}`), rows);
  // The last line ends with CR and no LF: the CR is a line end, not part of the last value (height 350, not "350\r").
  assert.deepEqual(manifestFormat.parse(text.replace(/\n/g, '\r\n').replace(/\r\n$/, '\r')), rows);
  assert.deepEqual(manifestFormat.parse(text.replace(/\n$/, '\r')), rows);
  const big = text.replace('\t34\t', '\t12345678901234567890\t');
  assert.throws(() => manifestFormat.parse(big, 'm.tsv'), /m\.tsv: line 2: column art_id: 12345678901234567890 \(20 digits\) is beyond 2\^53 − 1/);
  assert.throws(() => manifestFormat.parse(text.replace('item_id', 'itemid'), 'm.tsv'), /m\.tsv: line 1: expected the manifest header .* found "itemid<TAB>genre/);

  // select.fromManifest reads the same file with a BOM; a URL that is not a URL is named with its line.
  const config = resolveConfig({ genres: ['metal', 'jazz'] });
  const two = manifestFormat.format([...rows, { ...rows[0]!, item_id: 13, genre: 'jazz', art_id: 35, url: 'https://f4.bcbits.com/img/a35_2.jpg', sha256: 'cd'.repeat(32) }]);
  const bom = join(tmp, 'bom.tsv');
  writeFileSync(bom, `\uFEFF${two.replace(/\n/g, '\r\n')}`);
  assert.equal(readManifestInput(bom, config).length, 2);
  const badUrl = join(tmp, 'bad-url.tsv');
  writeFileSync(badUrl, two.replace('https://f4.bcbits.com/img/a35_2.jpg', 'f4.bcbits.com/img/a35_2.jpg'));
  assert.throws(() => readManifestInput(badUrl, config), (e: unknown) => e instanceof UserError && /bad-url\.tsv: line 3: column url: "f4\.bcbits\.com\/img\/a35_2\.jpg" is not an http\(s\) URL/.test(e.message));
  const bigArt = join(tmp, 'big-art.tsv');
  writeFileSync(bigArt, two.replace('\t35\t', '\t123456789012345678901\t'));
  assert.throws(() => readManifestInput(bigArt, config), (e: unknown) => e instanceof UserError && /line 3: column art_id: 123456789012345678901 \(21 digits\)/.test(e.message));
});

test('links file: a line that is not genre/aN.jpg is refused with its line, never turned into a genre; big ids keep their digits', () => {
  const config = resolveConfig({ genres: ['metal', 'jazz'] });
  const ok = 'http://f1.bcbits.com/img/a0123_2.jpg\tmetal/a1.jpg\nhttp://f1.bcbits.com/img/a0456_2.jpg\tjazz/a2.jpg\n';
  const file = join(tmp, 'links.tsv');
  writeFileSync(file, `\uFEFF${ok}`);
  assert.deepEqual(readManifestInput(file, config).map((r) => [r.genre, r.item_id, r.art_id]), [['metal', 1, 123], ['jazz', 2, 456]]);
  writeFileSync(file, ok.replace(/\n$/, '\r')); // the last line ends with CR alone: jazz/a2.jpg, not "jazz/a2.jpg\r"
  assert.deepEqual(readManifestInput(file, config).map((r) => [r.genre, r.item_id, r.art_id]), [['metal', 1, 123], ['jazz', 2, 456]]);
  for (const [bad, re] of [
    ['../a123.jpg', /line 3: "\.\.\/a123\.jpg" is not of the form genre\/a<N>\.jpg/],
    ['/a123.jpg', /line 3: "\/a123\.jpg" is not of the form/],
    ['metal/a99999999999999999999.jpg', /line 3: N of metal\/a99999999999999999999\.jpg: 99999999999999999999 \(20 digits\) is beyond/],
  ] as const) {
    writeFileSync(file, `${ok}http://f1.bcbits.com/img/a0789_2.jpg\t${bad}\n`);
    assert.throws(() => readManifestInput(file, config), (e: unknown) => e instanceof UserError && re.test(e.message), bad);
  }
  writeFileSync(file, `${ok}file:///img/a0789_2.jpg\tmetal/a3.jpg\n`);
  assert.throws(() => readManifestInput(file, config), /line 3: "file:\/\/\/img\/a0789_2\.jpg" is not a Bandcamp image URL/);
});

test('--set keys are checked against the config schema\'s own keys: no prototype keys, sections named with their keys', () => {
  const cwd = join(tmp, 'nowhere');
  for (const key of ['__proto__.x', 'constructor.x', 'crawl.__proto__.x', 'toString', 'crawl.constructor']) {
    assert.throws(() => loadConfig({ cwd, sets: [`${key}=1`] }), ConfigError, key);
  }
  assert.equal(({} as Record<string, unknown>).x, undefined, 'Object.prototype is untouched');
  assert.throws(() => loadConfig({ cwd, sets: ['crawl.nope=1'] }), /--set crawl\.nope: unknown key "nope" in section crawl; known: maxRequestsPerMinute, maxConcurrency/);
  assert.throws(() => loadConfig({ cwd, sets: ['nope=1'] }), /--set nope: unknown key "nope"; known: genres, perGenre/);
  assert.throws(() => loadConfig({ cwd, sets: ['crawl=1'] }), /--set crawl: crawl is a section; set one of its keys: crawl\.maxRequestsPerMinute/);
  assert.throws(() => loadConfig({ cwd, sets: ['perGenre.x=1'] }), /perGenre is a setting, not a section/);
  // The problems of a good key are still the schema's, and no section lists a fake key.
  assert.throws(() => loadConfig({ cwd, sets: ['crawl.maxRetries=-1'] }), (e: unknown) => e instanceof ConfigError && e.problems.length === 1 && /crawl\.maxRetries = -1/.test(e.message));
  assert.equal(loadConfig({ cwd, sets: ['download.maxBytes=2048', 'train.adam.beta1=0.5'] }).download.maxBytes, 2048);
});

test('rounds: a stage that needs more input makes the runner write the demand upstream and rerun from there; then all is fresh', async () => {
  const { make } = await import('../pipeline/runner.ts');
  const { memoryLogger } = await import('../util/log.ts');
  const { DEMAND_FILE, MoreInputNeeded } = await import('../pipeline/stage.ts');
  const { existsSync, readFileSync } = await import('node:fs');
  const dir = join(tmp, 'rounds');
  const up = {
    name: 'up', description: 'lists', deps: [], inputs: [], params: [], outputs: ['up.json'], version: 1,
    async run(ctx: import('../pipeline/stage.ts').StageContext) {
      const d = join(ctx.workDir, DEMAND_FILE);
      const n = existsSync(d) ? (JSON.parse(readFileSync(d, 'utf8')) as { n: number }).n : 1;
      writeFileSync(ctx.out('up.json'), JSON.stringify({ n }));
    },
  };
  const down = {
    name: 'down', description: 'needs 3', deps: ['up'], inputs: ['up.json'], params: [], outputs: ['down.json'], version: 1,
    async run(ctx: import('../pipeline/stage.ts').StageContext) {
      const { n } = JSON.parse(readFileSync(ctx.path('up.json'), 'utf8')) as { n: number };
      if (n < 3) throw new MoreInputNeeded('up', { n: n + 1 }, `only ${n}`);
      writeFileSync(ctx.out('down.json'), JSON.stringify({ n }));
    },
  };
  const config = resolveConfig({});
  const outcomes = await make({ targets: ['down'], config, dataDir: dir, stages: [up, down], log: memoryLogger() });
  assert.deepEqual(outcomes.map((o) => `${o.name}:${o.action}`), ['up:ran', 'down:round', 'up:ran', 'down:round', 'up:ran', 'down:ran']);
  assert.match(outcomes[1]!.reason, /only 1 \(round 2 follows\)/);
  assert.equal(JSON.parse(readFileSync(join(dir, 'down.json'), 'utf8')).n, 3);
  const again = await make({ targets: ['down'], config, dataDir: dir, stages: [up, down], log: memoryLogger() });
  assert.deepEqual(again.map((o) => o.action), ['fresh', 'fresh']);
});
