/**
 * Benchmark: preprocessing throughput (decode → 256×256 RGB bytes) on the real covers, against Pillow doing the same
 * job on the same images with the same number of processes (2), in the same run; and the peak RSS of the `shards`
 * stage (preprocess + write shards) over many images.
 *
 * - sharp: `preprocessImage` (dataset/preprocess.ts) with `shards.concurrency` pipelines in flight in one Node
 *   process (libuv runs them on both cores; PITFALLS.md #4). Best of 3 passes over the images (page cache warm).
 * - Pillow: bench/pillow_preprocess.py, a pool of 2 processes: open, `draft('RGB', (256, 256))`, convert to RGB,
 *   resize to 256×256, `tobytes()`. Best of 3 runs, timing only the work after the pool has started.
 * - Peak RSS: a child process runs the real `shards` stage over N images (the 1,050 covers reused by symlinks: 10,000,
 *   quick: 1,000; `BENCH_RSS_IMAGES` overrides) and reports `process.resourceUsage().maxRSS`. This module is that child when run as
 *   `node --import tsx bench/preprocess.bench.ts --rss-child DATA_DIR N`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { orderedMap, preprocessImage } from '../dataset/preprocess.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SIZE = 256;
const PROCESSES = 2;

function coverPaths(sharedDir: string): string[] {
  const dir = join(sharedDir, 'covers');
  return readFileSync(join(dir, 'labels.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => join(dir, l.split('\t')[0]!));
}

async function sharpRate(paths: readonly string[], concurrency: number, passes: number): Promise<number> {
  let best = Infinity;
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    let bytes = 0;
    for await (const img of orderedMap(paths, concurrency, (path) => preprocessImage(path, { size: SIZE, fit: 'cover', maxPixels: 50_000_000 }))) bytes += img.length;
    best = Math.min(best, performance.now() - t0);
    if (bytes !== paths.length * SIZE * SIZE * 3) throw new Error(`sharp produced ${bytes} bytes`);
  }
  return paths.length / (best / 1000);
}

function pillowRate(listFile: string, passes: number): number | null {
  let best = Infinity;
  for (let p = 0; p < passes; p++) {
    const run = spawnSync('python3', [join(here, 'pillow_preprocess.py'), listFile, String(SIZE), String(PROCESSES)], { encoding: 'utf8', timeout: 600_000 });
    if (run.status !== 0) return null;
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as { images: number; seconds: number };
    best = Math.min(best, out.seconds / out.images);
  }
  return 1 / best;
}

/** The child: builds a data directory of `n` images and runs the `shards` stage; prints `{maxRssMB, seconds}`. */
async function rssChild(dataDir: string, n: number, sharedDir: string): Promise<void> {
  const { resolveConfig } = await import('../pipeline/config.ts');
  const { runStageOnce } = await import('../pipeline/context.ts');
  const { createLogger } = await import('../pipeline/log.ts');
  const { shardsStage } = await import('../stages/shards.ts');
  const { splitsFormat } = await import('../schemas/splits.ts');
  const covers = coverPaths(sharedDir);
  const genres = ['rock', 'jazz', 'metal', 'pop'];
  const rows = [];
  for (let i = 0; i < n; i++) {
    const genre = genres[i % genres.length]!;
    const path = `images/${genre}/a${1_000_000 + i}.jpg`;
    mkdirSync(join(dataDir, 'images', genre), { recursive: true });
    symlinkSync(covers[i % covers.length]!, join(dataDir, path));
    const split = i % 10 === 8 ? 'validation' : i % 10 === 9 ? 'test' : 'train';
    rows.push({ item_id: 2_000_000 + i, genre, label: i % genres.length, art_id: 1_000_000 + i, split, order: i, sha256: '', path });
  }
  splitsFormat.write(join(dataDir, 'splits.arrow'), rows);
  const config = resolveConfig({ genres });
  const t0 = performance.now();
  await runStageOnce(shardsStage, { config, dataDir, log: createLogger({ level: 'quiet' }) });
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`${JSON.stringify({ maxRssMB: process.resourceUsage().maxRSS / 1024, seconds, images: n })}\n`);
}

const bench: BenchModule = {
  title: 'Preprocess (sharp) vs Pillow, and shards peak RSS',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const all = coverPaths(ctx.sharedDir);
    const paths = ctx.quick ? all.filter((_, i) => i % 5 === 0) : all;
    const passes = ctx.quick ? 1 : 3;
    const listFile = join(ctx.tmpDir, 'covers.txt');
    writeFileSync(listFile, `${paths.join('\n')}\n`);
    const { defaultConfig } = await import('../pipeline/config.ts');
    const concurrency = defaultConfig().shards.concurrency;
    ctx.log(`sharp: ${paths.length} images, ${concurrency} pipelines in flight, best of ${passes}`);
    await sharpRate(paths.slice(0, 50), concurrency, 1); // warm-up: load libvips, fill the page cache
    const sharpIps = await sharpRate(paths, concurrency, passes);
    ctx.log(`sharp: ${sharpIps.toFixed(0)} images/s; Pillow: ${PROCESSES} processes`);
    const pillowIps = pillowRate(listFile, passes);
    ctx.log(pillowIps === null ? 'Pillow baseline unavailable (python3 with Pillow not found)' : `Pillow: ${pillowIps.toFixed(0)} images/s`);
    const results: BenchResult[] = [
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB`,
        value: sharpIps,
        unit: 'images/s',
        ...(pillowIps === null ? {} : { baseline: { name: `Pillow, ${PROCESSES} processes (draft + convert + resize)`, value: pillowIps }, ratio: sharpIps / pillowIps, met: sharpIps / pillowIps >= 1.5 }),
        target: '≥ 1.5× Pillow',
        notes: `sharp ${concurrency} pipelines in flight in one process (2 cores), cover fit, cubic kernel, shrink-on-load; best of ${passes}`,
      },
    ];
    const n = process.env.BENCH_RSS_IMAGES ? Number(process.env.BENCH_RSS_IMAGES) : ctx.quick ? 1000 : 10_000;
    const dataDir = join(ctx.tmpDir, 'rss');
    mkdirSync(dataDir, { recursive: true });
    ctx.log(`peak RSS: shards stage over ${n} images (child process)`);
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--rss-child', dataDir, String(n), ctx.sharedDir], {
      encoding: 'utf8', cwd: resolve(here, '..'), timeout: 1_200_000, maxBuffer: 64 * 1024 * 1024,
    });
    if (child.status !== 0) throw new Error(`peak RSS child failed:\n${child.stderr}`);
    const rss = JSON.parse(child.stdout.trim().split('\n').pop()!) as { maxRssMB: number; seconds: number };
    ctx.log(`peak RSS ${rss.maxRssMB.toFixed(0)} MB, ${(n / rss.seconds).toFixed(0)} images/s end to end`);
    results.push({
      name: `peak RSS of the shards stage over ${n} images (preprocess + write)`,
      value: rss.maxRssMB,
      unit: 'MB',
      target: '< 600 MB',
      met: rss.maxRssMB < 600,
      notes: `${(n / rss.seconds).toFixed(0)} images/s end to end, default config (256×256, 4 in flight, 64-row record batches, 256 MB shards)`,
    });
    return results;
  },
};
export default bench;

const argv = process.argv;
const at = argv.indexOf('--rss-child');
if (at >= 0 && resolve(argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  await rssChild(argv[at + 1]!, Number(argv[at + 2]), argv[at + 3]!);
}
