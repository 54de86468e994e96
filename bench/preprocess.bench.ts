/**
 * Benchmark: preprocessing throughput (decode → 256×256 RGB bytes) on the real covers, against Pillow doing the same
 * job on the same images with the same number of processes (2), in the same run; and the peak RSS of the `shards`
 * stage (preprocess + write shards) over many images.
 *
 * - ours: `preprocessImage` (dataset/preprocess.ts) with `shards.concurrency` images in flight in one Node process
 *   (native work on libuv's thread pool of UV_THREADPOOL_SIZE threads, 4 by default; PITFALLS.md #4), once with
 *   `decoder: 'fast'` (the native JPEG path, dataset/native/fastjpeg.c, which reads each file in its pool task; what
 *   the default `auto` gives where the addon built) and once with `decoder: 'sharp'` (libvips for every image).
 *   CPU ms/image counts every thread of the process (main thread included); "cores" is CPU time / wall time.
 * - Pillow: bench/pillow_preprocess.py, a pool of 2 processes: open, `draft('RGB', (256, 256))`, convert to RGB,
 *   resize to 256×256, `tobytes()`; only the work after the pool has started and warmed up is timed. Its CPU
 *   ms/image is the workers' CPU inside `work()` (a lower bound: pool pickling and start-up left out); the notes
 *   also give its whole-run CPU (an upper bound).
 * - The machine is shared: the three are run interleaved (fast, sharp, Pillow; 5 rounds, quick: 1) after a warm-up of
 *   each, and each figure is the median of its rounds, so that other load hits all of them alike. The load averages
 *   (`/proc/loadavg`, as `uptime` shows them) before and after go into the notes: under load, a process with more
 *   runnable threads (ours: up to 4 pool threads; Pillow: 2 processes) also gets a larger share of the CPU.
 * - Peak RSS: a child process runs the real `shards` stage (decoder `fast`) over N images (the 1,050 covers reused by
 *   symlinks: 10,000, quick: 1,000; `BENCH_RSS_IMAGES` overrides) and reports its peak RSS (`peakRssKB()`: VmHWM). This
 *   module is that child when run as `node --import tsx bench/preprocess.bench.ts --rss-child DATA_DIR N SHARED DECODER`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peakRssKB, type BenchContext, type BenchModule, type BenchResult } from './lib.ts';
import { fastJpeg, orderedMap, preprocessCounts, preprocessImage, type Decoder } from '../dataset/preprocess.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SIZE = 256;
const PROCESSES = 2;

function coverPaths(sharedDir: string): string[] {
  const dir = join(sharedDir, 'covers');
  return readFileSync(join(dir, 'labels.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => join(dir, l.split('\t')[0]!));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Pass {
  /** images per second, wall clock */
  ips: number;
  /** CPU ms per image */
  cpuMs: number;
  /** CPU time / wall time */
  cores: number;
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(', ');

/** One pass of ours over `paths`: images/s (wall clock) and CPU ms per image (all threads of this process). */
async function oursPass(paths: readonly string[], concurrency: number, decoder: Decoder): Promise<Pass> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  for await (const img of orderedMap(paths, concurrency, (path) => preprocessImage(path, { size: SIZE, fit: 'cover', maxPixels: 50_000_000, decoder }))) bytes += img.length;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (bytes !== paths.length * SIZE * SIZE * 3) throw new Error(`${decoder} produced ${bytes} bytes`);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { ips: paths.length / (ms / 1000), cpuMs: cpuMs / paths.length, cores: cpuMs / ms };
}

/** One Pillow run (its own warm-up inside): images/s and CPU ms per image, or null when python3 with Pillow is missing. */
function pillowPass(listFile: string): (Pass & { cpuTotalMs: number }) | null {
  const run = spawnSync('python3', [join(here, 'pillow_preprocess.py'), listFile, String(SIZE), String(PROCESSES)], { encoding: 'utf8', timeout: 600_000 });
  if (run.status !== 0) return null;
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as { images: number; seconds: number; cpu_seconds: number; cpu_total_seconds: number };
  if (out.images !== Number(readFileSync(listFile, 'utf8').trim().split('\n').length)) throw new Error(`Pillow processed ${out.images} images`);
  return { ips: out.images / out.seconds, cpuMs: (out.cpu_seconds * 1000) / out.images, cores: out.cpu_seconds / out.seconds, cpuTotalMs: (out.cpu_total_seconds * 1000) / out.images };
}

/** The child: builds a data directory of `n` images and runs the `shards` stage; prints `{maxRssMB, seconds}`. */
async function rssChild(dataDir: string, n: number, sharedDir: string, decoder: Decoder): Promise<void> {
  const { resolveConfig } = await import('../pipeline/config.ts');
  const { runStageOnce } = await import('../pipeline/context.ts');
  const { createLogger } = await import('../util/log.ts');
  const { shardsStage } = await import('../stages/index.ts');
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
  process.stdout.write(`${JSON.stringify({ maxRssMB: peakRssKB() / 1024, seconds, images: n, ...preprocessCounts })}\n`);
}

const bench: BenchModule = {
  title: 'Preprocess (fast / sharp) vs Pillow, and shards peak RSS',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const all = coverPaths(ctx.sharedDir);
    const paths = ctx.quick ? all.filter((_, i) => i % 5 === 0) : all;
    const rounds = ctx.quick ? 1 : 5;
    const listFile = join(ctx.tmpDir, 'covers.txt');
    writeFileSync(listFile, `${paths.join('\n')}\n`);
    const { defaultConfig } = await import('../pipeline/config.ts');
    const concurrency = defaultConfig().shards.concurrency;
    if (!fastJpeg()) ctx.log('WARNING: dataset/native/fastjpeg.node is not built (npm run build:native): "fast" falls back to sharp');
    const pool = process.env.UV_THREADPOOL_SIZE ?? '4 (default)';
    ctx.log(`${paths.length} images; ours: ${concurrency} in flight in one process, UV_THREADPOOL_SIZE ${pool}; Pillow: ${PROCESSES} processes; ${rounds} interleaved rounds, medians`);
    const loadBefore = loadavg();
    ctx.log(`load average before: ${loadBefore}`);
    // Warm-up (libvips and the addon loaded, page cache filled); Pillow warms up inside each run.
    await oursPass(paths.slice(0, 100), concurrency, 'fast');
    await oursPass(paths.slice(0, 100), concurrency, 'sharp');
    const fast: Pass[] = [];
    const viaSharp: Pass[] = [];
    const pillow: (Pass & { cpuTotalMs: number })[] = [];
    const before = { ...preprocessCounts };
    for (let r = 0; r < rounds; r++) {
      fast.push(await oursPass(paths, concurrency, 'fast'));
      viaSharp.push(await oursPass(paths, concurrency, 'sharp'));
      const p = pillowPass(listFile);
      if (p !== null) pillow.push(p);
      const f = fast[r]!, v = viaSharp[r]!;
      ctx.log(`round ${r + 1}: fast ${f.ips.toFixed(0)}, sharp ${v.ips.toFixed(0)}, Pillow ${p === null ? 'unavailable' : p.ips.toFixed(0)} images/s${p === null ? '' : ` (fast/Pillow ${(f.ips / p.ips).toFixed(2)}×)`}; CPU ms/image fast ${f.cpuMs.toFixed(2)}, sharp ${v.cpuMs.toFixed(2)}, Pillow ${p === null ? '-' : `${p.cpuMs.toFixed(2)} in work() / ${p.cpuTotalMs.toFixed(2)} whole run`}; cores fast ${f.cores.toFixed(2)}, sharp ${v.cores.toFixed(2)}, Pillow ${p === null ? '-' : p.cores.toFixed(2)}; load ${loadavg()}`);
    }
    const fastShare = (preprocessCounts.fast - before.fast) / (rounds * paths.length);
    const fastIps = median(fast.map((f) => f.ips));
    const sharpIps = median(viaSharp.map((f) => f.ips));
    const pillowIps = pillow.length ? median(pillow.map((p) => p.ips)) : null;
    const loadAfter = loadavg();
    const m = (xs: Pass[], k: keyof Pass) => median(xs.map((x) => x[k])).toFixed(2);
    const pillowCpu = pillow.length
      ? ` (Pillow ${m(pillow, 'cpuMs')} inside work(), ${median(pillow.map((p) => p.cpuTotalMs)).toFixed(2)} whole run; ${m(pillow, 'cores')} cores)`
      : '';
    const perRound = pillow.length === rounds ? `; per-round ratios to Pillow ${fast.map((f, r) => (f.ips / pillow[r]!.ips).toFixed(2)).join(', ')}` : '';
    const machine = `load average ${loadBefore} before, ${loadAfter} after (2 cores, other work may share them); UV_THREADPOOL_SIZE ${pool}`;
    const vs = (v: number) => (pillowIps === null ? {} : { baseline: { name: `Pillow, ${PROCESSES} processes (draft + convert + resize)`, value: pillowIps }, ratio: v / pillowIps, met: v / pillowIps >= 1.5 });
    const results: BenchResult[] = [
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB, decoder fast (= default auto with the addon built)`,
        value: fastIps,
        unit: 'images/s',
        ...vs(fastIps),
        target: '≥ 1.5× Pillow',
        notes: `native libjpeg-turbo DCT-scaled decode + cubic resample, file read in the pool task (dataset/native/fastjpeg.c) for ${(100 * fastShare).toFixed(1)}% of the images, sharp for the rest; ${concurrency} in flight in one process; ${m(fast, 'cpuMs')} CPU ms/image, ${m(fast, 'cores')} cores${pillowCpu}; median of ${rounds} interleaved rounds${perRound}; ${machine}`,
      },
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB, decoder sharp`,
        value: sharpIps,
        unit: 'images/s',
        ...vs(sharpIps),
        met: undefined, // the fallback path, for reference: the target applies to the default (fast) path
        notes: `the fallback, for reference (the target applies to the default path above): sharp (libvips) for every image, cover fit, cubic kernel, shrink-on-load; ${concurrency} in flight in one process; ${m(viaSharp, 'cpuMs')} CPU ms/image, ${m(viaSharp, 'cores')} cores${pillowCpu}; median of ${rounds} interleaved rounds; ${machine}`,
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
      notes: `${(n / rss.seconds).toFixed(0)} images/s end to end, default config but shards.decoder fast (256×256, ${concurrency} in flight, 64-row record batches, 256 MB shards)`,
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
