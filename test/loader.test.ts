/** Shard reading (schemas/shards/read.ts), crops/mirroring/mean (train/augment.ts) and the batch loader (train/loader.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { evalCrops, fillBatch, INPUT_SCALE, planEpoch, planEval } from '../train/augment.ts';
import { Rng } from '../util/rng.ts';
import { BatchLoader } from '../train/loader.ts';
import { readMean } from '../schemas/mean.ts';
import { readSplit } from '../schemas/shards/read.ts';
import { syntheticImage, writeTestShards } from '../dataset/synthetic-shards.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'loader-test-'));
  writeTestShards(dir, { size: 12, perClass: { train: 5, validation: 2, test: 2 }, seed: 3 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('readSplit streams every record batch of every shard, in order, with labels', async () => {
  const d = await readSplit(join(dir, 'shards', 'train'));
  assert.equal(d.n, 15);
  assert.equal(d.size, 12);
  assert.deepEqual(d.labelNames, ['ambient', 'metal', 'jazz']);
  assert.deepEqual([...d.labels.slice(0, 6)], [0, 1, 2, 0, 1, 2]);
  // Same bytes as the generator produced (same seed, same order).
  const rng = new Rng(3);
  const first = syntheticImage(0, 12, rng, 40);
  assert.deepEqual(d.images.subarray(0, first.length), first);
  const mean = readMean(join(dir, 'shards', 'mean.arrow'), 12);
  assert.equal(mean.length, 12 * 12 * 3);
  await assert.rejects(readSplit(join(dir, 'shards', 'nope')), /split "nope" not found/);
  assert.throws(() => readMean(join(dir, 'shards', 'mean.arrow'), 16), /expected 16×16×3/);
});

test('fillBatch crops, mirrors and subtracts the mean at the source pixel', () => {
  const size = 4;
  const img = new Uint8Array(size * size * 3).map((_, i) => i);
  const mean = new Float32Array(size * size * 3).fill(1);
  const out = new Float32Array(2 * 2 * 2 * 3);
  fillBatch(out, img, size, 2, { indices: Int32Array.of(0, 0), oy: Int32Array.of(1, 1), ox: Int32Array.of(2, 2), mirror: Uint8Array.of(0, 1) }, mean);
  const px = (y: number, x: number) => [0, 1, 2].map((c) => ((y * size + x) * 3 + c - 1) * INPUT_SCALE);
  const close = (a: number[], b: number[]) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-6, `${a} vs ${b}`));
  close([...out.subarray(0, 6)], [...px(1, 2), ...px(1, 3)]);
  close([...out.subarray(12, 18)], [...px(1, 3), ...px(1, 2)]);
  assert.deepEqual(evalCrops(256, 224, 1), [[16, 16, 0]]);
  const ten = evalCrops(256, 224, 10);
  assert.equal(ten.length, 10);
  assert.equal(new Set(ten.map((c) => c.join())).size, 10);
});

test('epoch plans are seeded, cover every record once, and differ between epochs', () => {
  const a = planEpoch(new Rng(5), 10, 4, 16, 12, true);
  const b = planEpoch(new Rng(5), 10, 4, 16, 12, true);
  assert.deepEqual(a, b);
  assert.deepEqual(a.map((p) => p.indices.length), [4, 4, 2]);
  assert.deepEqual([...a.flatMap((p) => [...p.indices])].sort((x, y) => x - y), [...Array(10).keys()]);
  const rng = new Rng(5);
  planEpoch(rng, 10, 4, 16, 12, true);
  const second = planEpoch(rng, 10, 4, 16, 12, true);
  assert.notDeepEqual(second.map((p) => [...p.indices]), a.map((p) => [...p.indices]));
  assert.ok(a.every((p) => [...p.oy, ...p.ox].every((o) => o >= 0 && o <= 4)));
  const ev = planEval(3, 2, 16, 12, 10);
  assert.deepEqual(ev.map((p) => p.indices.length), [20, 10]);
});

test('the loader builds the same batches in a worker as on the main thread, prefetching ahead', async () => {
  const d = await readSplit(join(dir, 'shards', 'train'));
  const mean = readMean(join(dir, 'shards', 'mean.arrow'), 12);
  const plans = planEpoch(new Rng(9), d.n, 4, 12, 8, true);
  const collect = async (worker: boolean) => {
    const l = new BatchLoader(d, { crop: 8, mean, worker, prefetch: 3 });
    const xs: Float32Array[] = [];
    const ys: number[] = [];
    for await (const b of l.batches(plans)) { xs.push(b.x.slice()); ys.push(...b.labels); } // x is reused: copy it
    const { mode, allocated } = l;
    await l.close();
    return { xs, ys, mode, allocated };
  };
  const w = await collect(true);
  const m = await collect(false);
  assert.equal(w.mode, 'worker thread');
  assert.equal(w.xs.length, 4);
  // 4 batches of 4 and prefetch 3: at most prefetch + 1 buffers are ever needed (the rest reuse them).
  assert.ok(w.allocated <= 4 && m.allocated <= 4, `allocated ${w.allocated} (worker), ${m.allocated} (main thread)`);
  assert.deepEqual(w.xs, m.xs);
  assert.deepEqual(w.ys, m.ys);
  assert.deepEqual(w.ys, plans.flatMap((p) => [...p.indices].map((i) => d.labels[i]!)));
});

test('the loader reuses the buffers of batches its consumer is done with, and they hold the right batch', async () => {
  const d = await readSplit(join(dir, 'shards', 'train'));
  const mean = readMean(join(dir, 'shards', 'mean.arrow'), 12);
  // Several epochs of 1-image batches (same length every time) plus a short last batch.
  const plans = [...planEpoch(new Rng(4), d.n, 1, 12, 8, true), ...planEpoch(new Rng(5), d.n, 3, 12, 8, true)];
  for (const worker of [true, false]) {
    const l = new BatchLoader(d, { crop: 8, mean, worker, prefetch: 2 });
    try {
      let i = 0;
      for await (const b of l.batches(plans)) {
        const expected = new Float32Array(b.x.length);
        fillBatch(expected, d.images, d.size, 8, plans[i++]!, mean);
        assert.deepEqual(b.x, expected, `batch ${i} (${worker ? 'worker' : 'main thread'})`);
      }
      assert.equal(i, plans.length);
      assert.ok(plans.length > 10 && l.allocated <= 2 * 3 + 2, `${plans.length} batches, ${l.allocated} buffers allocated`);
    } finally {
      await l.close();
    }
  }
});
