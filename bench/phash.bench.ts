/**
 * Benchmark: near-duplicate detection (issue 24).
 *
 * 1. What perceptual hashing adds to `download`'s CPU time: `checkImage` (full decode with sharp + sha256) without and
 *    with the hash (dataset/phash.ts, from the pixels the check decoded), on real covers as Bandcamp serves them at
 *    the study's format (350×350 JPEG, made from `shared/covers` with sharp), rounds interleaved; CPU time of this
 *    process (`process.cpuUsage`, which counts libvips' threads too). For the record, the npm package `sharp-phash`
 *    (a second decode and its full 32×32 DCT) on the same covers.
 * 2. The pairwise search at 10,000 covers (`nearPairs`, every pair, popcount on two uint32 words): synthetic hashes
 *    (uniform random, 10% planted near copies with 0–10 flipped bits), `dedupe.maxDistance` 10.
 * 3. Multi-index hashing (`MultiIndex`, 4 × 16-bit blocks) against every pair at 100,000 synthetic hashes (the pairwise
 *    time at 100,000 is extrapolated from 30,000 by n², it is quadratic), with the same answer checked.
 * Quick mode: 150 covers, 2,000 / 10,000 hashes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import sharpPhashModule from 'sharp-phash';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { checkImage } from '../stages/download.ts';
import { MultiIndex, nearPairs, packHashes } from '../dataset/near-dup.ts';
import { SplitRng } from '../dataset/split.ts';
import type { PHash } from '../dataset/phash.ts';

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

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const lines = readFileSync(join(ctx.sharedDir, 'covers', 'labels.tsv'), 'utf8').trim().split('\n').slice(1);
  const picked = lines.filter((_, k) => k % (ctx.quick ? 7 : 2) === 0);
  const covers: Buffer[] = [];
  for (const l of picked) covers.push(await sharp(join(ctx.sharedDir, 'covers', l.split('\t')[0]!)).resize(350, 350, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer());
  ctx.log(`${covers.length} covers at 350×350`);
  let plain = 0;
  let hashed = 0;
  let library = 0;
  const rounds = 3;
  for (let r = 0; r < rounds; r++) {
    plain += await cpuMs(async () => {
      for (const c of covers) await checkImage(c, 50_000_000, false);
    });
    hashed += await cpuMs(async () => {
      for (const c of covers) await checkImage(c, 50_000_000, true);
    });
    library += await cpuMs(async () => {
      for (const c of covers) await sharpPhash(c);
    });
  }
  const per = (ms: number) => ms / (rounds * covers.length);
  const added = per(hashed) / per(plain) - 1;
  results.push({
    name: 'download check with the perceptual hash, CPU per 350×350 cover',
    value: per(hashed),
    unit: 'ms',
    baseline: { name: 'the check without it', value: per(plain) },
    target: 'hashing adds < 10% to download\'s CPU time',
    met: added < 0.1,
    notes: `+${(100 * added).toFixed(1)}% CPU; ${covers.length} real covers × ${rounds} interleaved rounds. For the record, sharp-phash (a second decode + full DCT) alone: ${per(library).toFixed(2)} ms per cover, +${((100 * per(library)) / per(plain)).toFixed(0)}% of the check`,
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
