/**
 * Same input, same `rejected.tsv`, byte for byte: libvips keeps one process-wide error buffer, so concurrent sharp
 * checks in `download` could read each other's messages (or "Unknown error"), and a truncated file's `detail` changed
 * from run to run. A failed check is now redone alone (withOwnSharpErrors, dataset/preprocess.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { resolveConfig } from '../pipeline/config.ts';
import { memoryLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import { startSimulator } from '../simulator/server.ts';
import { discoverStage } from '../stages/index.ts';
import { checkImage } from '../stages/download.ts';
import { downloadStage } from '../stages/index.ts';
import { labelStage } from '../stages/index.ts';
import { selectStage } from '../stages/index.ts';
import { oddImages } from './helpers/odd-jpegs.ts';
import { imageRelPath, manifestFormat } from '../schemas/manifest.ts';

const tmp = mkdtempSync(join(tmpdir(), 'download-det-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('checkImage: a bad file gets the same detail alone and among many concurrent checks, good and bad', async () => {
  const odd = await oddImages();
  const bad = [odd['truncated-60pct.jpg']!, odd['truncated-progressive-60pct.jpg']!, odd['bomb-60000x60000.jpg']!, Buffer.from('<html>403</html>')];
  const good = await sharp({ create: { width: 900, height: 700, channels: 3, background: 'red' } }).jpeg().toBuffer();
  const alone: string[] = [];
  for (const b of bad) {
    const c = await checkImage(b, 50_000_000);
    assert.equal(c.ok, false);
    alone.push(c.ok ? '' : `${c.reason}: ${c.detail}`);
  }
  for (let round = 0; round < 4; round++) {
    const inputs = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? good : bad[i % bad.length]!));
    const out = await Promise.all(inputs.map((b) => checkImage(b, 50_000_000)));
    out.forEach((c, i) => {
      if (inputs[i] === good) assert.equal(c.ok, true);
      else assert.equal(c.ok ? 'ok' : `${c.reason}: ${c.detail}`, alone[bad.indexOf(inputs[i]!)], `round ${round}, check ${i}`);
    });
  }
});

test('download twice on the same faulty catalogue: identical rejected.tsv bytes', async () => {
  const genres = ['ambient', 'jazz', 'metal'];
  const sim = await startSimulator({ genres, perGenre: 60, seed: 11, faults: 'truncated=0.12,corrupt=0.08,bomb=0.03,dup-album=0.03,404=0.03' });
  try {
    const config = resolveConfig({
      genres,
      perGenre: 20,
      seed: 7,
      bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
      crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 2, pageSize: 10, oversample: 3 },
      // A truncated cover is permanent at once here (the simulator's truncation is fixed per art_id).
      download: { concurrency: 8, retries: 2, truncatedRuns: 1 },
    });
    const stages = [discoverStage, labelStage, selectStage, downloadStage];
    const rejected: Buffer[] = [];
    for (const run of ['a', 'b']) {
      const dataDir = join(tmp, run);
      // A leftover of an earlier run: download prunes images/ to exactly the manifest's files.
      const stray = join(dataDir, 'images', 'jazz', 'a999999999.jpg');
      mkdirSync(join(dataDir, 'images', 'jazz'), { recursive: true });
      writeFileSync(stray, 'stale');
      await make({ targets: ['download'], config, dataDir, stages, log: memoryLogger() });
      rejected.push(readFileSync(join(dataDir, 'rejected.tsv')));
      assert.equal(existsSync(stray), false, 'the leftover image was removed');
      const files = readdirSync(join(dataDir, 'images'), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => relative(dataDir, join(e.parentPath, e.name)).split('\\').join('/'))
        .sort();
      const kept = manifestFormat.read(join(dataDir, 'manifest.tsv')).map((m) => imageRelPath(m.genre!, m.art_id!)).sort();
      assert.deepEqual(files, kept, 'images/ holds exactly the manifest\'s files');
    }
    const text = rejected[0]!.toString('utf8');
    assert.match(text, /\ttruncated|undecodable/, `faulty images were rejected:\n${text}`);
    assert.ok(rejected[0]!.equals(rejected[1]!), `rejected.tsv differs between runs:\n${text}\n---\n${rejected[1]!.toString('utf8')}`);
  } finally {
    await sim.close();
  }
});
