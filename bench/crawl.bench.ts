/**
 * Crawl benchmark: `discover → label → select → download` against the simulator with politeness off (albums/s,
 * compared with plain `fetch` of the same cover URLs at the same concurrency, which has no crawl, labels, validation
 * or bookkeeping), and CPU time per parsed album page (µs, `process.cpuUsage` around `parseAlbumPage` on the real
 * 2026 album fixture, compared with `cheerio.load` alone on the same HTML).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cheerio from 'cheerio';
import pLimit from 'p-limit';
import { resolveConfig } from '../pipeline/config.ts';
import { memoryLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import { parseAlbumPage } from '../bandcamp/parse.ts';
import { manifestFormat } from '../schemas/manifest.ts';
import { startSimulator } from '../simulator/server.ts';
import { discoverStage, downloadStage, labelStage, selectStage } from '../stages/index.ts';
import type { BenchModule, BenchResult } from './lib.ts';

const GENRES = ['ambient', 'jazz', 'metal'];

function cpuMicros(fn: () => void, n: number): number {
  fn(); // warm-up
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / n;
}

const bench: BenchModule = {
  title: 'Crawl (discover, label, select, download) against the simulator',
  async run(ctx) {
    const perGenre = ctx.quick ? 30 : 200;
    const sim = await startSimulator({ genres: GENRES, perGenre: perGenre * 3, overlap: 0.1, seed: 1 });
    const results: BenchResult[] = [];
    try {
      const config = resolveConfig({
        genres: GENRES,
        perGenre,
        bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
        crawl: { maxRequestsPerMinute: 1e9, maxConcurrency: 8, oversample: 1.5 },
        download: { concurrency: 8 },
      });
      const dataDir = join(ctx.tmpDir, 'data');
      const t0 = performance.now();
      await make({ targets: ['download'], config, dataDir, stages: [discoverStage, labelStage, selectStage, downloadStage], log: memoryLogger('quiet') });
      const s = (performance.now() - t0) / 1000;
      const albums = perGenre * GENRES.length;
      const manifest = manifestFormat.read(join(dataDir, 'manifest.tsv'));
      const limit = pLimit(8);
      const t1 = performance.now();
      await Promise.all(manifest.map((m) => limit(async () => (await fetch(m.url!)).arrayBuffer())));
      const raw = (performance.now() - t1) / 1000;
      results.push({
        name: `crawl + download ${albums} albums (3 genres, ${sim.log.length} simulator requests), politeness off`,
        value: albums / s,
        unit: 'albums/s',
        baseline: { name: 'plain fetch of the same covers, concurrency 8', value: manifest.length / raw },
        notes: `tags mode (1 tralbum_details per album), oversample 1.5, sharp validation, ${s.toFixed(1)} s wall`,
      });

      const html = readFileSync(join(import.meta.dirname, '..', 'test', 'fixtures', 'bandcamp', 'album_page__macbenson__coming-of-age__2026-05-25.html'), 'utf8');
      const n = ctx.quick ? 20 : 200;
      const parse = cpuMicros(() => parseAlbumPage(html), n);
      const load = cpuMicros(() => cheerio.load(html), n);
      results.push({
        name: `CPU time per parsed album page (217 KB real fixture, ${n} parses)`,
        value: parse,
        unit: 'µs',
        baseline: { name: 'cheerio.load alone', value: load },
        ratio: load / parse,
        notes: 'process.cpuUsage (user + system)',
      });
    } finally {
      await sim.close();
    }
    return results;
  },
};

export default bench;
