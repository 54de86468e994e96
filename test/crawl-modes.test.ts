import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveConfig, type ConfigInput } from '../pipeline/config.ts';
import { memoryLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import { candidatesFormat } from '../schemas/candidates.ts';
import { labelsFormat } from '../schemas/labels.ts';
import { manifestFormat } from '../schemas/manifest.ts';
import { startSimulator, type Simulator } from '../simulator/server.ts';
import { STAGES } from '../stages/index.ts';

const GENRES = ['folk', 'jazz', 'punk'];
let sim: Simulator;
let tmp: string;

before(async () => {
  sim = await startSimulator({ genres: GENRES, perGenre: 25, overlap: 0.3, seed: 5 });
  tmp = mkdtempSync(join(tmpdir(), 'covers-modes-'));
});
after(async () => {
  await sim.close();
  rmSync(tmp, { recursive: true, force: true });
});

const config = (over: ConfigInput) =>
  resolveConfig({
    genres: GENRES,
    perGenre: 10,
    bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
    crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 2, pageSize: 10, oversample: 3 },
    ...over,
  });

test('label.mode=listing drops albums listed under two chosen genres, without any tag request', async () => {
  const dir = join(tmp, 'listing');
  const start = sim.log.length;
  await make({ targets: ['label'], config: config({ label: { mode: 'listing' } }), dataDir: dir, stages: STAGES, log: memoryLogger() });
  assert.equal(sim.log.slice(start).filter((e) => e.path.startsWith('/api/mobile')).length, 0, 'no tralbum_details requests');
  const listings = new Map<number, Set<string>>();
  for (const c of candidatesFormat.read(join(dir, 'candidates.arrow'))) {
    listings.set(c.item_id!, (listings.get(c.item_id!) ?? new Set()).add(c.genre!));
  }
  const labels = labelsFormat.read(join(dir, 'labels.arrow'));
  assert.ok(labels.some((l) => !l.exclusive) && labels.some((l) => l.exclusive), 'the overlap gives both kinds');
  for (const l of labels) {
    const listed = listings.get(l.item_id!)!;
    assert.equal(l.exclusive, listed.size === 1, `item ${l.item_id} listed under ${[...listed]}`);
    if (!l.exclusive) assert.match(l.reason!, /^multi-genre:/);
  }
});

test('a genre short of perGenre fails naming the genre and the counts, unless select.allowShort', async () => {
  const dir = join(tmp, 'short');
  const want = config({ perGenre: 40 });
  await assert.rejects(make({ targets: ['download'], config: want, dataDir: dir, stages: STAGES, log: memoryLogger() }), (e: Error) => {
    assert.match(e.message, /download: not enough images/);
    assert.match(e.message, /genre "folk": \d+ of 40 images \(\d+ candidates, \d+ exclusive/);
    assert.match(e.message, /select\.allowShort=true/);
    return true;
  });
  const log = memoryLogger();
  await make({ targets: ['download'], config: config({ perGenre: 40, select: { allowShort: true } }), dataDir: dir, stages: STAGES, log });
  const rows = manifestFormat.read(join(dir, 'manifest.tsv'));
  for (const g of GENRES) {
    const n = rows.filter((r) => r.genre === g).length;
    assert.ok(n > 0 && n < 40, `${g}: ${n} images`);
  }
  assert.ok(log.lines.some((l) => /short \(select\.allowShort\): genre "folk"/.test(l)));
});

test('an unreachable image origin stops download early with the reason, not after every retry', async () => {
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const dir = join(tmp, 'unreachable');
  const t0 = Date.now();
  await assert.rejects(
    make({
      targets: ['download'],
      config: config({ bandcamp: { origin: sim.origin, imageOrigin: `http://127.0.0.1:${port}` }, download: { retries: 1, concurrency: 4 }, crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 2, pageSize: 10, oversample: 3, backoff: { initialMs: 50, maxMs: 200 } } }),
      dataDir: dir,
      stages: STAGES,
      log: memoryLogger(),
    }),
    /http:\/\/127\.0\.0\.1:\d+\/img\/a\d+_\d+\.jpg: connection refused: nothing is listening on http:\/\/127\.0\.0\.1:\d+ \(a loopback address\).*bandcamp\.imageOrigin/,
  );
  assert.ok(Date.now() - t0 < 20_000, 'stops after the first failures');
});
