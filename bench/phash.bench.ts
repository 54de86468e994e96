/**
 * Benchmark: near-duplicate detection (issue 24).
 *
 * 1. What perceptual hashing adds to `download`'s CPU time: `checkImage` (full decode with sharp + sha256) without and
 *    with the hash (dataset/phash.ts, from the pixels the check decoded), on real covers as Bandcamp serves them at
 *    the study's format (350×350 JPEG, made from `shared/covers` with sharp); CPU time of this process
 *    (`process.cpuUsage`, which counts libvips' and V8's threads too). The two are interleaved cover by cover, which
 *    one goes first alternating, after a warm-up round: an earlier version timed all covers without the hash, then all
 *    with it, and the second block paid for freeing the first block's decoded pixels on V8's and libvips' threads
 *    (+15–22% where blocks in alternating order read +3–8%, same code, same load). Beside it, the hash alone (greySample + the
 *    64 DCT coefficients on the decoded pixels, the only work the hash adds to the check). For the record, the npm
 *    package `sharp-phash` (a second decode and its full 32×32 DCT) on the same covers, one round.
 *    And the target as the issue words it, the `download` stage's CPU time: the stage run on the real covers (the
 *    simulator serving them in a child process, so its CPU is not counted) with `dedupe.near=off` and `group`,
 *    alternating, each time on a fresh copy of the same `select` output; the stage's CPU includes the HTTP client,
 *    the check, the files and the bookkeeping, and with `group` the hash and the search among kept covers.
 * 2. The pairwise search at 10,000 covers (`nearPairs`, every pair, popcount on two uint32 words): synthetic hashes
 *    (uniform random, 10% planted near copies with 0–10 flipped bits), `dedupe.maxDistance` 10.
 * 3. Multi-index hashing (`MultiIndex`, 4 × 16-bit blocks) against every pair at 100,000 synthetic hashes (the pairwise
 *    time at 100,000 is extrapolated from 30,000 by n², it is quadratic), with the same answer checked.
 * Quick mode: 150 covers, 2,000 / 10,000 hashes.
 */
import { spawn } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import sharp, { type OutputInfo } from 'sharp';
import sharpPhashModule from 'sharp-phash';
import { median, type BenchContext, type BenchModule, type BenchResult } from './lib.ts';
import { checkImage } from '../stages/download.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { make } from '../pipeline/runner.ts';
import { memoryLogger } from '../util/log.ts';
import { discoverStage, downloadStage, labelStage, selectStage } from '../stages/index.ts';
import { MultiIndex, nearPairs, packHashes } from '../dataset/near-dup.ts';
import { SplitRng } from '../dataset/split.ts';
import { phashOfRaw, type PHash } from '../dataset/phash.ts';

/** sharp-phash is CommonJS (`module.exports = phash`); its types declare an ES default export. */
const sharpPhash = sharpPhashModule as unknown as (image: Buffer) => Promise<string>;

/** CPU milliseconds (user + system, all threads of this process) of `f`. */
async function cpuMs(f: () => Promise<void>): Promise<number> {
  const t = process.cpuUsage();
  await f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

/** `n` uniform random hashes, then `planted` near copies of random ones (0–10 bits flipped). */
function syntheticHashes(n: number, planted: number, seed: number): Uint32Array {
  const rng = new SplitRng(seed, 'bench-hashes');
  const hs: PHash[] = [];
  for (let k = 0; k < n - planted; k++) hs.push({ hi: rng.nextUint32(), lo: rng.nextUint32() });
  for (let k = 0; k < planted; k++) {
    let { hi, lo } = hs[rng.below(n - planted)]!;
    for (let f = rng.below(11); f > 0; f--) {
      const b = rng.below(64);
      if (b < 32) hi ^= 1 << b;
      else lo ^= 1 << (b - 32);
    }
    hs.push({ hi: hi >>> 0, lo: lo >>> 0 });
  }
  return packHashes(hs);
}

/** The simulator serving `catalog` in a child process (its CPU is not this process's); resolves with its origins. */
async function simulatorChild(catalog: string): Promise<{ origin: string; imageOrigin: string; stop: () => void }> {
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
  const child = spawn(process.execPath, [join(repo, 'bin', 'covers.js'), 'simulate', '--catalog', catalog, '--port', '0', '--image-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  let origin = '';
  let imageOrigin = '';
  for await (const line of lines) {
    const m = /^(listening|images) on (http:\/\/\S+)/.exec(line);
    if (m?.[1] === 'listening') origin = m[2]!;
    if (m?.[1] === 'images') {
      imageOrigin = m[2]!;
      break;
    }
  }
  child.stdout!.resume(); // anything it prints later is drained, so the pipe never fills
  if (!origin || !imageOrigin) throw new Error(`the simulator (${catalog}) ended before it listened`);
  return { origin, imageOrigin, stop: () => child.kill() };
}

/**
 * CPU milliseconds of this process for the `download` stage on the real covers, `dedupe.near` off and `group`, in
 * `rounds` alternating pairs, each on a fresh copy of one `select` output; and the covers kept per run.
 */
async function downloadStageCpu(ctx: BenchContext, rounds: number): Promise<{ off: number[]; group: number[]; covers: number }> {
  const sim = await simulatorChild(join(ctx.sharedDir, 'covers'));
  try {
    const base = {
      genres: ['country', 'electronic', 'hip-hop-rap', 'jazz', 'metal', 'pop', 'rock'],
      perGenre: ctx.quick ? 20 : 130,
      bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
      crawl: { maxRequestsPerMinute: 1e9, maxConcurrency: 8 },
    };
    const stages = [discoverStage, labelStage, selectStage, downloadStage];
    const selected = join(ctx.tmpDir, 'selected');
    await make({ targets: ['select'], config: resolveConfig(base), dataDir: selected, stages, log: memoryLogger('quiet') });
    const out = { off: [] as number[], group: [] as number[], covers: 0 };
    // One unmeasured run first: the simulator encodes each cover on its first request, and JIT warm-up.
    for (let r = -1; r < rounds; r++) {
      for (const near of (r % 2 === 0 ? ['off', 'group'] : ['group', 'off']) as ('off' | 'group')[]) {
        const dir = join(ctx.tmpDir, `download-${r}-${near}`);
        cpSync(selected, dir, { recursive: true });
        const config = resolveConfig({ ...base, dedupe: { near } });
        const ms = await cpuMs(async () => {
          await make({ targets: ['download'], config, dataDir: dir, stages, log: memoryLogger('quiet') });
        });
        if (r >= 0) out[near].push(ms);
        out.covers = readFileSync(join(dir, 'manifest.tsv'), 'utf8').trim().split('\n').length - 1;
      }
    }
    return out;
  } finally {
    sim.stop();
  }
}

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const lines = readFileSync(join(ctx.sharedDir, 'covers', 'labels.tsv'), 'utf8').trim().split('\n').slice(1);
  const picked = lines.filter((_, k) => k % (ctx.quick ? 7 : 2) === 0);
  const covers: Buffer[] = [];
  for (const l of picked) covers.push(await sharp(join(ctx.sharedDir, 'covers', l.split('\t')[0]!)).resize(350, 350, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer());
  ctx.log(`${covers.length} covers at 350×350`);
  const load0 = loadavg()[0]!;
  // Warm-up round (JIT, libvips caches), then `rounds` rounds interleaved cover by cover.
  for (const c of covers) {
    await checkImage(c, 50_000_000, false);
    await checkImage(c, 50_000_000, true);
  }
  const rounds = ctx.quick ? 2 : 6;
  let plain = 0;
  let hashed = 0;
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let p = 0;
    let h = 0;
    for (let i = 0; i < covers.length; i++) {
      for (const withHash of (i + r) % 2 === 0 ? [false, true] : [true, false]) {
        const ms = await cpuMs(async () => {
          await checkImage(covers[i]!, 50_000_000, withHash);
        });
        if (withHash) h += ms;
        else p += ms;
      }
    }
    perRound.push(h / p - 1);
    plain += p;
    hashed += h;
  }
  // The hash alone, on the pixels the check decodes (main thread only; what the check with the hash adds).
  const decoded: { data: Buffer; info: OutputInfo }[] = [];
  for (const c of covers) decoded.push(await sharp(c).raw().toBuffer({ resolveWithObject: true }));
  let alone = 0;
  for (let r = 0; r < rounds; r++) {
    alone += await cpuMs(async () => {
      for (const { data, info } of decoded) phashOfRaw(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, info.channels);
    });
  }
  const library = await cpuMs(async () => {
    for (const c of covers) await sharpPhash(c);
  });
  const load1 = loadavg()[0]!;
  const per = (ms: number) => ms / (rounds * covers.length);
  const added = per(hashed) / per(plain) - 1;
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`;
  const loadNote = `1-minute load average ${load0.toFixed(1)} → ${load1.toFixed(1)} on ${cpus().length} cores (other work may share them)`;
  results.push({
    name: 'download check with the perceptual hash, CPU per 350×350 cover',
    value: per(hashed),
    unit: 'ms',
    baseline: { name: 'the check without it', value: per(plain) },
    target: 'hashing adds < 10% to download\'s CPU time',
    met: added < 0.1,
    notes: `${pct(added)} CPU (all threads); ${covers.length} real covers × ${rounds} rounds after a warm-up, with and without the hash interleaved cover by cover (which first alternating); per round ${perRound.map(pct).join(', ')}; ${loadNote}. For the record, sharp-phash (a second decode + full DCT) alone: ${(library / covers.length).toFixed(2)} ms per cover, +${((100 * library) / covers.length / per(plain)).toFixed(0)}% of the check`,
  });
  results.push({
    name: 'the hash alone (grey sample + 64 DCT coefficients) on the check\'s decoded pixels, CPU per cover',
    value: per(alone),
    unit: 'ms',
    baseline: { name: 'the check without it', value: per(plain) },
    notes: `${pct(per(alone) / per(plain))} of the check: the work the hash adds, timed without the decode around it (main thread, same covers, ${rounds} rounds)`,
  });

  const stage = await downloadStageCpu(ctx, ctx.quick ? 1 : 7);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  // The median of the per-pair ratios (each pair run back to back, order alternating): one run slowed by a burst of
  // the machine's other load moves it less than it moves a ratio of sums (3 runs each read +16%, −3% and +7.5%).
  const stageAdded = median(stage.group.map((g, i) => g / stage.off[i]!)) - 1;
  results.push({
    name: `download stage with dedupe.near=group, CPU per cover (${stage.covers} real covers)`,
    value: sum(stage.group) / (stage.group.length * stage.covers),
    unit: 'ms',
    baseline: { name: 'dedupe.near=off (no hashing)', value: sum(stage.off) / (stage.off.length * stage.covers) },
    ratio: 1 / (1 + stageAdded),
    target: 'hashing adds < 10% to download\'s CPU time',
    met: stageAdded < 0.1,
    notes: `${pct(stageAdded)} CPU of the stage's process (median of the per-pair ratios; the simulator runs in a child process, not counted); ${stage.off.length} runs each, in back-to-back pairs, order alternating, each on a fresh copy of one select output; per run off ${stage.off.map((x) => (x / 1000).toFixed(2)).join(', ')} s, group ${stage.group.map((x) => (x / 1000).toFixed(2)).join(', ')} s; 1-minute load average ${loadavg()[0]!.toFixed(1)} at the end`,
  });

  const n10 = ctx.quick ? 2000 : 10_000;
  const h10 = syntheticHashes(n10, n10 / 10, 1);
  let t = performance.now();
  const p10 = nearPairs(h10, 10);
  const s10 = (performance.now() - t) / 1000;
  results.push({
    name: `every pair of ${n10.toLocaleString('en')} hashes within 10 bits (nearPairs)`,
    value: s10,
    unit: 's',
    target: '< 60 s for 10,000 covers',
    met: s10 < 60,
    notes: `${(n10 * (n10 - 1) / 2).toExponential(2)} pairs compared, ${p10.length} found`,
  });

  const nBig = ctx.quick ? 10_000 : 100_000;
  const nMid = ctx.quick ? 5_000 : 30_000;
  const hBig = syntheticHashes(nBig, nBig / 10, 2);
  t = performance.now();
  const mih = new MultiIndex(hBig).pairs(10);
  const sMih = (performance.now() - t) / 1000;
  t = performance.now();
  nearPairs(syntheticHashes(nMid, nMid / 10, 3), 10);
  const sMid = (performance.now() - t) / 1000;
  const sBrute = sMid * (nBig / nMid) ** 2;
  // The answer is the same: checked on a subset small enough to compare all pairs.
  const hCheck = hBig.subarray(0, 2 * Math.min(nBig, 20_000));
  const same = JSON.stringify(new MultiIndex(hCheck).pairs(10)) === JSON.stringify(nearPairs(hCheck, 10));
  results.push({
    name: `multi-index hashing, ${nBig.toLocaleString('en')} hashes within 10 bits`,
    value: sMih,
    unit: 's',
    baseline: { name: `every pair (from ${nMid.toLocaleString('en')} × (n/${nMid.toLocaleString('en')})²)`, value: sBrute },
    notes: `${mih.length} pairs; same pairs as every-pair search on the first 20,000: ${same ? 'yes' : 'NO'}. 1,000,000 hashes: every pair ≈ ${(sBrute * 100 / 3600).toFixed(1)} h (n²); multi-index ≈ 10× the candidates per query of 100,000 (16-bit blocks hold 10× more each) and 10× the queries, ≈ ${(sMih * 100 / 60).toFixed(0)} min at this rate on uniform hashes — real covers' hashes are not uniform (more share a block), so measure before relying on it`,
  });
  return results;
}

const bench: BenchModule = { title: 'Near-duplicate detection: perceptual hashing and search (issue 24)', run };
export default bench;
