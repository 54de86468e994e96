/**
 * Benchmark: preprocessing throughput (decode → 256×256 RGB bytes) on the real covers, against Pillow doing the same
 * job on the same images with the same number of processes (2), in the same run; and the peak RSS of the `shards`
 * stage (preprocess + write shards) over many images.
 *
 * - ours, as the `shards` stage runs it: the decode pool (dataset/decode-pool.ts), one worker process per core (2
 *   here), `shards.concurrency` images in flight over them, each image through `preprocessImage` in a worker and back
 *   through shared memory; CPU ms/image counts the parent and the workers (from /proc/<pid>/stat). The pool is
 *   started (warmUp) before the timed pass; its start-up, paid once per stage run, is a figure of its own. The
 *   target applies to this figure. The in-process passes below give the cost of the isolation.
 * - ours in-process: `preprocessImage` (dataset/preprocess.ts) with `shards.concurrency` images in flight in one Node process
 *   (native work on libuv's thread pool of UV_THREADPOOL_SIZE threads, 4 by default; docs/PITFALLS.md #4), once with
 *   `decoder: 'fast'` (the native JPEG path, dataset/native/fastjpeg.c, which reads each file in its pool task; what
 *   the default `auto` gives where the addon built) and once with `decoder: 'sharp'` (libvips for every image).
 *   CPU ms/image counts every thread of the process (main thread included); "cores" is CPU time / wall time.
 * - Pillow: bench/pillow_preprocess.py, a pool of 2 processes: open, `draft('RGB', (256, 256))`, convert to RGB,
 *   resize to 256×256, `tobytes()`; only the work after the pool has started and warmed up is timed. Its CPU
 *   ms/image is the workers' CPU inside `work()` (a lower bound: pool pickling and start-up left out); the notes
 *   also give its whole-run CPU (an upper bound).
 * - The machine is shared: the four are run interleaved (pool, fast, sharp, Pillow; 5 rounds, quick: 1) after a warm-up of
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
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { peakRssKB, type BenchContext, type BenchModule, type BenchResult } from './lib.ts';
import { fastJpeg, orderedMap, preprocessCounts, preprocessImage, type Decoder } from '../dataset/preprocess.ts';
import { DecodePool } from '../dataset/decode-pool.ts';

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

/** CPU seconds (user + system) of process `pid` so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The decode pool as the `shards` stage sizes it for `concurrency` (dataset/decode-pool.ts, stages/shards.ts). */
function stagePool(concurrency: number): DecodePool {
  const workers = Math.max(1, Math.min(availableParallelism(), concurrency));
  return new DecodePool({
    preprocess: { size: SIZE, fit: 'cover', maxPixels: 50_000_000, decoder: 'fast' },
    workers,
    inFlightPerWorker: Math.ceil(concurrency / workers),
    timeoutMs: 30_000,
  });
}

/** One pass through a started pool: images/s (wall clock), CPU ms per image of this process and the workers. */
async function poolPass(pool: DecodePool, paths: readonly string[], concurrency: number): Promise<Pass> {
  const pids = pool.workerPids();
  const w0 = pids.reduce((a, pid) => a + procCpuSeconds(pid), 0);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  for await (const d of orderedMap(paths, concurrency, (path) => pool.decode(path))) {
    bytes += d.image.length;
    d.release();
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const w1 = pids.reduce((a, pid) => a + procCpuSeconds(pid), 0);
  if (pool.workerPids().join() !== pids.join()) throw new Error('a decode worker restarted during the pass');
  if (bytes !== paths.length * SIZE * SIZE * 3) throw new Error(`pool produced ${bytes} bytes`);
  const cpuMs = (cpu.user + cpu.system) / 1000 + (w1 - w0) * 1000;
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
  // The decode workers are this process's children: their peak RSS (VmHWM), polled while they live.
  const workerPeakKB = new Map<number, number>();
  const poll = () => {
    try {
      for (const pid of readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
        const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (m) workerPeakKB.set(Number(pid), Math.max(workerPeakKB.get(Number(pid)) ?? 0, Number(m[1])));
      }
    } catch {
      /* a worker exited between the two reads */
    }
  };
  const timer = setInterval(poll, 100);
  const t0 = performance.now();
  await runStageOnce(shardsStage, { config, dataDir, log: createLogger({ level: 'quiet' }) });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  const workersMB = [...workerPeakKB.values()].reduce((a, b) => a + b, 0) / 1024;
  process.stdout.write(`${JSON.stringify({ maxRssMB: peakRssKB() / 1024 + workersMB, stageMB: peakRssKB() / 1024, workersMB, workers: workerPeakKB.size, seconds, images: n, ...preprocessCounts })}\n`);
}

const bench: BenchModule = {
  title: 'Preprocess (decode pool / in-process fast / sharp) vs Pillow, and shards peak RSS',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const all = coverPaths(ctx.sharedDir);
    const paths = ctx.quick ? all.filter((_, i) => i % 5 === 0) : all;
    const rounds = ctx.quick ? 1 : 5;
    const listFile = join(ctx.tmpDir, 'covers.txt');
    writeFileSync(listFile, `${paths.join('\n')}\n`);
    const { defaultConfig } = await import('../pipeline/config-core.ts');
    const concurrency = defaultConfig().shards.concurrency;
    if (!fastJpeg()) ctx.log('WARNING: dataset/native/fastjpeg.node is not built (npm run build:native): "fast" falls back to sharp');
    const uvPool = process.env.UV_THREADPOOL_SIZE ?? '4 (default)';
    ctx.log(`${paths.length} images; ours: ${concurrency} in flight in the decode pool and in one process, UV_THREADPOOL_SIZE ${uvPool}; Pillow: ${PROCESSES} processes; ${rounds} interleaved rounds, medians`);
    const loadBefore = loadavg();
    ctx.log(`load average before: ${loadBefore}`);
    // Warm-up (libvips and the addon loaded, page cache filled); Pillow warms up inside each run.
    const starts: number[] = [];
    const pool = stagePool(concurrency);
    const s0 = performance.now();
    await pool.warmUp();
    starts.push(performance.now() - s0);
    await poolPass(pool, paths.slice(0, 100), concurrency);
    await oursPass(paths.slice(0, 100), concurrency, 'fast');
    await oursPass(paths.slice(0, 100), concurrency, 'sharp');
    const pooled: Pass[] = [];
    const fast: Pass[] = [];
    const viaSharp: Pass[] = [];
    const pillow: (Pass & { cpuTotalMs: number })[] = [];
    const before = { ...preprocessCounts };
    for (let r = 0; r < rounds; r++) {
      pooled.push(await poolPass(pool, paths, concurrency));
      fast.push(await oursPass(paths, concurrency, 'fast'));
      viaSharp.push(await oursPass(paths, concurrency, 'sharp'));
      const p = pillowPass(listFile);
      if (p !== null) pillow.push(p);
      const f = fast[r]!, v = viaSharp[r]!, q = pooled[r]!;
      ctx.log(`round ${r + 1}: pool ${q.ips.toFixed(0)} (${q.cpuMs.toFixed(2)} CPU ms/image${p === null ? '' : `, pool/Pillow ${(q.ips / p.ips).toFixed(2)}×`}), fast ${f.ips.toFixed(0)}, sharp ${v.ips.toFixed(0)}, Pillow ${p === null ? 'unavailable' : p.ips.toFixed(0)} images/s${p === null ? '' : ` (fast/Pillow ${(f.ips / p.ips).toFixed(2)}×)`}; CPU ms/image fast ${f.cpuMs.toFixed(2)}, sharp ${v.cpuMs.toFixed(2)}, Pillow ${p === null ? '-' : `${p.cpuMs.toFixed(2)} in work() / ${p.cpuTotalMs.toFixed(2)} whole run`}; cores fast ${f.cores.toFixed(2)}, sharp ${v.cores.toFixed(2)}, Pillow ${p === null ? '-' : p.cores.toFixed(2)}; load ${loadavg()}`);
    }
    await pool.close();
    // Start-up of a fresh pool (what each stage run pays once), 3 times.
    for (let i = 0; i < 3; i++) {
      const p2 = stagePool(concurrency);
      const t0 = performance.now();
      await p2.warmUp();
      starts.push(performance.now() - t0);
      await p2.close();
    }
    const fastShare = (preprocessCounts.fast - before.fast) / (2 * rounds * paths.length);
    const poolIps = median(pooled.map((f) => f.ips));
    const fastIps = median(fast.map((f) => f.ips));
    const sharpIps = median(viaSharp.map((f) => f.ips));
    const pillowIps = pillow.length ? median(pillow.map((p) => p.ips)) : null;
    const loadAfter = loadavg();
    const m = (xs: Pass[], k: keyof Pass) => median(xs.map((x) => x[k])).toFixed(2);
    const pillowCpu = pillow.length
      ? ` (Pillow ${m(pillow, 'cpuMs')} inside work(), ${median(pillow.map((p) => p.cpuTotalMs)).toFixed(2)} whole run; ${m(pillow, 'cores')} cores)`
      : '';
    const perRound = (xs: Pass[]) => (pillow.length === rounds ? `; per-round ratios to Pillow ${xs.map((f, r) => (f.ips / pillow[r]!.ips).toFixed(2)).join(', ')}` : '');
    const machine = `load average ${loadBefore} before, ${loadAfter} after (2 cores, other work may share them); UV_THREADPOOL_SIZE ${uvPool}`;
    const vs = (v: number) => (pillowIps === null ? {} : { baseline: { name: `Pillow, ${PROCESSES} processes (draft + convert + resize)`, value: pillowIps }, ratio: v / pillowIps, met: v / pillowIps >= 1.5 });
    const workers = pool.workerPids().length || Math.min(availableParallelism(), concurrency);
    const results: BenchResult[] = [
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB as the shards stage does: decoder fast (= default auto with the addon built) in the decode pool's worker processes`,
        value: poolIps,
        unit: 'images/s',
        ...vs(poolIps),
        target: '≥ 1.5× Pillow',
        notes: `dataset/decode-pool.ts: ${workers} worker processes, ${concurrency} images in flight over them, images decoded straight into shared memory and read in place; ${m(pooled, 'cpuMs')} CPU ms/image (parent + workers), ${m(pooled, 'cores')} cores${pillowCpu}; isolation: ${(poolIps / fastIps).toFixed(2)}× the in-process images/s below (wall clock: on a loaded machine more processes also get more CPU) and ${(median(pooled.map((x) => x.cpuMs)) / median(fast.map((x) => x.cpuMs))).toFixed(2)}× its CPU per image (the cost); median of ${rounds} interleaved rounds${perRound(pooled)}; ${machine}`,
      },
      {
        name: 'start-up of the decode pool (once per shards run)',
        value: median(starts),
        unit: 'ms',
        notes: `${workers} worker processes (Node + tsx + sharp + the addon) until all are ready; median of ${starts.length} (${starts.map((x) => x.toFixed(0)).join(', ')} ms)`,
      },
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB, decoder fast, in-process (no isolation)`,
        value: fastIps,
        unit: 'images/s',
        ...vs(fastIps),
        met: undefined, // for reference: the stage decodes in the pool (figure above)
        notes: `for reference: what the pool costs. native libjpeg-turbo DCT-scaled decode + cubic resample, file read in the pool task (dataset/native/fastjpeg.c) for ${(100 * fastShare).toFixed(1)}% of the images, sharp for the rest; ${concurrency} in flight in one process; ${m(fast, 'cpuMs')} CPU ms/image, ${m(fast, 'cores')} cores${pillowCpu}; median of ${rounds} interleaved rounds${perRound(fast)}; ${machine}`,
      },
      {
        name: `preprocess ${paths.length} real covers to ${SIZE}×${SIZE} RGB, decoder sharp`,
        value: sharpIps,
        unit: 'images/s',
        ...vs(sharpIps),
        met: undefined, // the fallback path, for reference: the target applies to the default (fast) path
        notes: `the fallback, for reference (the target applies to the default path above): sharp (libvips) for every image, cover fit, cubic kernel, shrink-on-load; ${concurrency} in flight in one process (no isolation); ${m(viaSharp, 'cpuMs')} CPU ms/image, ${m(viaSharp, 'cores')} cores${pillowCpu}; median of ${rounds} interleaved rounds; ${machine}`,
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
    const rss = JSON.parse(child.stdout.trim().split('\n').pop()!) as { maxRssMB: number; stageMB: number; workersMB: number; workers: number; seconds: number };
    ctx.log(`peak RSS ${rss.maxRssMB.toFixed(0)} MB, ${(n / rss.seconds).toFixed(0)} images/s end to end`);
    results.push({
      name: `peak RSS of the shards stage over ${n} images (preprocess + write), stage process + decode workers`,
      value: rss.maxRssMB,
      unit: 'MB',
      target: '< 600 MB',
      met: rss.maxRssMB < 600,
      notes: `the stage's process ${rss.stageMB.toFixed(0)} MB + its ${rss.workers} decode workers ${rss.workersMB.toFixed(0)} MB (sum of each one's peak: an upper bound); ${(n / rss.seconds).toFixed(0)} images/s end to end, default config but shards.decoder fast (256×256, ${concurrency} in flight, 64-row record batches, 256 MB shards)`,
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
