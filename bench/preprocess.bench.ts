/**
 * Benchmark: preprocessing throughput (decode → 256×256 RGB bytes) on the real covers, against Pillow doing the same
 * job on the same images with the same number of processes (2), in the same run; and the peak RSS of the `shards`
 * stage (preprocess + write shards) over many images.
 *
 * - ours: `preprocessImage` (dataset/preprocess.ts) with `shards.concurrency` images in flight in one Node process
 *   (native work on libuv's thread pool, both cores; PITFALLS.md #4), once with `decoder: 'fast'` (the native JPEG
 *   path, dataset/native/fastjpeg.c) and once with `decoder: 'sharp'` (libvips for every image).
 * - Pillow: bench/pillow_preprocess.py, a pool of 2 processes: open, `draft('RGB', (256, 256))`, convert to RGB,
 *   resize to 256×256, `tobytes()`; only the work after the pool has started and warmed up is timed.
 * - The machine is shared: the three are run interleaved (fast, sharp, Pillow; 5 rounds, quick: 1) after a warm-up of
 *   each, and each figure is the median of its rounds, so that other load hits all of them alike.
 * - Peak RSS: a child process runs the real `shards` stage (decoder `fast`) over N images (the 1,050 covers reused by
 *   symlinks: 10,000, quick: 1,000; `BENCH_RSS_IMAGES` overrides) and reports `process.resourceUsage().maxRSS`. This
 *   module is that child when run as `node --import tsx bench/preprocess.bench.ts --rss-child DATA_DIR N SHARED DECODER`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { fastJpeg, orderedMap, preprocessCounts, preprocessImage, type Decoder } from '../dataset/preprocess.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SIZE = 256;
const PROCESSES = 2;

function coverPaths(sharedDir: string): string[] {
  const dir = join(sharedDir, 'covers');
  return readFileSync(join(dir, 'labels.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => join(dir, l.split('\t')[0]!));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One pass of ours over `paths`: images/s (wall clock) and CPU ms per image (all threads of this process). */
async function oursPass(paths: readonly string[], concurrency: number, decoder: Decoder): Promise<{ ips: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  for await (const img of orderedMap(paths, concurrency, (path) => preprocessImage(path, { size: SIZE, fit: 'cover', maxPixels: 50_000_000, decoder }))) bytes += img.length;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (bytes !== paths.length * SIZE * SIZE * 3) throw new Error(`${decoder} produced ${bytes} bytes`);
  return { ips: paths.length / (ms / 1000), cpuMs: (cpu.user + cpu.system) / 1000 / paths.length };
}

/** One Pillow run (its own warm-up inside): images/s and CPU ms per image, or null when python3 with Pillow is missing. */
function pillowPass(listFile: string): { ips: number; cpuMs: number } | null {
  const run = spawnSync('python3', [join(here, 'pillow_preprocess.py'), listFile, String(SIZE), String(PROCESSES)], { encoding: 'utf8', timeout: 600_000 });
  if (run.status !== 0) return null;
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as { images: number; seconds: number; cpu_seconds: number };
  if (out.images !== Number(readFileSync(listFile, 'utf8').trim().split('\n').length)) throw new Error(`Pillow processed ${out.images} images`);
  return { ips: out.images / out.seconds, cpuMs: (out.cpu_seconds * 1000) / out.images };
}

/** The child: builds a data directory of `n` images and runs the `shards` stage; prints `{maxRssMB, seconds}`. */
async function rssChild(dataDir: string, n: number, sharedDir: string, decoder: Decoder): Promise<void> {
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
  const config = resolveConfig({ genres, shards: { decoder } });
  const t0 = performance.now();
  await runStageOnce(shardsStage, { config, dataDir, log: createLogger({ level: 'quiet' }) });
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`${JSON.stringify({ maxRssMB: process.resourceUsage().maxRSS / 1024, seconds, images: n, ...preprocessCounts })}\n`);
}

const bench: BenchModule = {
  title: 'Preprocess (sharp) vs Pillow, and shards peak RSS',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const all = coverPaths(ctx.sharedDir);
    const paths = ctx.quick ? all.filter((_, i) => i % 5 === 0) : all;
    const rounds = ctx.quick ? 1 : 5;
    const listFile = join(ctx.tmpDir, 'covers.txt');
    writeFileSync(listFile, `${paths.join('\n')}\n`);
    const { defaultConfig } = await import('../pipeline/config.ts');
    const concurrency = defaultConfig().shards.concurrency;
    if (!fastJpeg()) ctx.log('WARNING: dataset/native/fastjpeg.node is not built (npm run build:native): "fast" falls back to sharp');
    ctx.log(`${paths.length} images; ours: ${concurrency} in flight in one process; Pillow: ${PROCESSES} processes; ${rounds} interleaved rounds, medians`);
    // Warm-up (libvips and the addon loaded, page cache filled); Pillow warms up inside each run.
    await oursPass(paths.slice(0, 100), concurrency, 'fast');
    await oursPass(paths.slice(0, 100), concurrency, 'sharp');
    const fast: { ips: number; cpuMs: number }[] = [];
    const viaSharp: { ips: number; cpuMs: number }[] = [];
    const pillow: { ips: number; cpuMs: number }[] = [];
    const before = { ...preprocessCounts };
    for (let r = 0; r < rounds; r++) {
      fast.push(await oursPass(paths, concurrency, 'fast'));
      viaSharp.push(await oursPass(paths, concurrency, 'sharp'));
      const p = pillowPass(listFile);
      if (p !== null) pillow.push(p);
      ctx.log(`round ${r + 1}: fast ${fast[r]!.ips.toFixed(0)}, sharp ${viaSharp[r]!.ips.toFixed(0)}, Pillow ${p === null ? 'unavailable' : p.ips.toFixed(0)} images/s; CPU ms/image fast ${fast[r]!.cpuMs.toFixed(2)}, sharp ${viaSharp[r]!.cpuMs.toFixed(2)}, Pillow ${p === null ? '-' : p.cpuMs.toFixed(2)}`);
    }
    const fastShare = (preprocessCounts.fast - before.fast) / (rounds * paths.length);
    const fastIps = median(fast.map((f) => f.ips));
    const sharpIps = median(viaSharp.map((f) => f.ips));
    const pillowIps = pillow.length ? median(pillow.map((p) => p.ips)) : null;
    const pillowCpu = pillow.length ? ` (Pillow ${median(pillow.map((p) => p.cpuMs)).toFixed(2)}, inside work() only)` : '';
    const vs = (v: number) => (pillowIps === null ? {} : { baseline: { name: `Pillow, ${PROCESSES} processes (draft + convert + resize)`, value: pillowIps }, ratio: v / pillowIps, met: v / pillowIps >= 1.5 });
    const results: BenchResult[] = [
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB, decoder fast`,
        value: fastIps,
        unit: 'images/s',
        ...vs(fastIps),
        target: '≥ 1.5× Pillow',
        notes: `native libjpeg-turbo DCT-scaled decode + cubic resample (dataset/native/fastjpeg.c) for ${(100 * fastShare).toFixed(1)}% of the images, sharp for the rest; ${concurrency} in flight in one process (2 cores); ${median(fast.map((f) => f.cpuMs)).toFixed(2)} CPU ms/image${pillowCpu}; median of ${rounds} interleaved rounds`,
      },
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB, decoder sharp`,
        value: sharpIps,
        unit: 'images/s',
        ...vs(sharpIps),
        target: '≥ 1.5× Pillow',
        notes: `sharp (libvips) for every image, cover fit, cubic kernel, shrink-on-load; ${concurrency} in flight in one process (2 cores); ${median(viaSharp.map((f) => f.cpuMs)).toFixed(2)} CPU ms/image${pillowCpu}; median of ${rounds} interleaved rounds`,
      },
    ];
    const n = process.env.BENCH_RSS_IMAGES ? Number(process.env.BENCH_RSS_IMAGES) : ctx.quick ? 1000 : 10_000;
    const dataDir = join(ctx.tmpDir, 'rss');
    mkdirSync(dataDir, { recursive: true });
    ctx.log(`peak RSS: shards stage (decoder fast) over ${n} images (child process)`);
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--rss-child', dataDir, String(n), ctx.sharedDir, 'fast'], {
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
      notes: `${(n / rss.seconds).toFixed(0)} images/s end to end, default config but shards.decoder fast (256×256, 4 in flight, 64-row record batches, 256 MB shards)`,
    });
    return results;
  },
};
export default bench;

const argv = process.argv;
const at = argv.indexOf('--rss-child');
if (at >= 0 && resolve(argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  await rssChild(argv[at + 1]!, Number(argv[at + 2]), argv[at + 3]!, (argv[at + 4] ?? 'fast') as Decoder);
}
