/**
 * Same pixels on every machine: the fast decoder's SSE2 resampler and its scalar twin (what ARM, or any machine
 * without SSE2, runs) sum in the same order and round halves the same way, so a build with the SIMD path disabled
 * (dataset/native/build-variant.sh nosimd: FASTJPEG_NO_SIMD, no auto-vectorisation) writes byte-identical shards.
 * The variant is built into a temporary directory and loaded by the decode workers through COVERS_FASTJPEG_ADDON.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { splitStage } from '../stages/index.ts';
import { shardsStage } from '../stages/index.ts';
import { FASTJPEG_ADDON_PATH, fastJpeg, type FastJpegAddon } from '../dataset/preprocess.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { buildTestDataset } from './helpers/dataset.ts';

const root = mkdtempSync(join(tmpdir(), 'shards-simd-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Every shard file's bytes, by split-relative path. */
function shardBytes(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const split of SPLIT_NAMES) {
    for (const f of readdirSync(join(dir, 'shards', split)).filter((n) => n.endsWith('.arrow'))) out.set(`${split}/${f}`, readFileSync(join(dir, 'shards', split, f)));
  }
  return out;
}

test('a build with the SIMD path disabled writes byte-identical shards', { skip: fastJpeg() ? false : 'fastjpeg addon not built' }, async () => {
  const variant = join(root, 'nosimd', 'fastjpeg.node');
  const build = spawnSync(join(import.meta.dirname, '..', 'dataset', 'native', 'build-variant.sh'), ['nosimd', variant], { encoding: 'utf8' });
  assert.equal(build.status, 0, `building the no-SIMD addon: ${build.stderr}`);
  const scalar = createRequire(import.meta.url)(variant) as FastJpegAddon;
  assert.equal(scalar.simd, 'none');
  if (process.arch === 'x64') assert.equal(fastJpeg()!.simd, 'sse2', 'the default build on x86-64 uses SSE2');

  // 3 genres × 6 real covers (300×300 progressive and 640×640 baseline among them), two sizes: an odd one too.
  const genres = ['rock', 'jazz', 'metal'];
  for (const size of [256, 61]) {
    const runs: Map<string, Buffer>[] = [];
    for (const addon of [FASTJPEG_ADDON_PATH, variant]) {
      const dir = join(root, `${size}-${runs.length}`);
      await buildTestDataset(dir, { genres, perGenre: 6 });
      const config = resolveConfig({ genres, seed: 5, image: { size }, train: { crop: size }, shards: { decoder: 'fast', concurrency: 4 } });
      const saved = process.env.COVERS_FASTJPEG_ADDON;
      process.env.COVERS_FASTJPEG_ADDON = addon; // read by the decode workers this stage starts
      try {
        for (const stage of [splitStage, shardsStage]) await runStageOnce(stage, { config, dataDir: dir, log: createLogger({ level: 'quiet' }) });
      } finally {
        if (saved === undefined) delete process.env.COVERS_FASTJPEG_ADDON;
        else process.env.COVERS_FASTJPEG_ADDON = saved;
      }
      runs.push(shardBytes(dir));
    }
    const [simd, none] = runs as [Map<string, Buffer>, Map<string, Buffer>];
    assert.ok(simd.size >= 3);
    assert.deepEqual([...none.keys()], [...simd.keys()]);
    for (const [f, bytes] of simd) assert.ok(bytes.equals(none.get(f)!), `${size}×${size}: ${f} differs between the SSE2 and the scalar build`);
  }
});

test('the SSE2 and scalar builds give identical pixels on many real covers (addon calls, no shards)', { skip: fastJpeg() ? false : 'fastjpeg addon not built' }, async () => {
  const variant = join(root, 'nosimd2', 'fastjpeg.node');
  assert.equal(spawnSync(join(import.meta.dirname, '..', 'dataset', 'native', 'build-variant.sh'), ['nosimd', variant]).status, 0);
  const scalar = createRequire(import.meta.url)(variant) as FastJpegAddon;
  const simd = fastJpeg()!;
  const { listCovers } = await import('./helpers/dataset.ts');
  const covers = listCovers().filter((_, i, all) => i % Math.max(1, Math.floor(all.length / 150)) === 0); // up to 150 covers over every genre
  const run = (fj: FastJpegAddon, path: string, size: number, fit: number) =>
    new Promise<Buffer>((resolve, reject) => {
      const out = Buffer.alloc(size * size * 3);
      fj.decode(path, out, size, fit, 50_000_000, (err, fallback, rejected) => (err ? reject(err) : fallback || rejected ? reject(new Error(`${path}: ${fallback || rejected}`)) : resolve(out)));
    });
  let compared = 0;
  for (const c of covers) {
    for (const [size, fit] of [[224, 0], [97, 1]] as const) {
      const a = await run(simd, c.path, size, fit).catch(() => null);
      if (!a) continue; // a cover the fast path declines (e.g. CMYK) is sharp's job in both builds
      const b = await run(scalar, c.path, size, fit);
      assert.ok(a.equals(b), `${c.path} at ${size}, fit ${fit}: the builds differ`);
      compared++;
    }
  }
  // Most of the 2 × covers decodes (the fast path declines a few, e.g. CMYK): > 200 with the shared set's 150 covers,
  // > 30 with the 30 committed ones.
  assert.ok(compared > covers.length, `compared ${compared} of ${covers.length * 2}`);
});
