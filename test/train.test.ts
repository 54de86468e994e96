/** The training loop (train/train-loop.ts) on tiny synthetic shards, wasm backend. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../train/backends.ts';
import { resolveModelSpec } from '../schemas/model-params.ts';
import { readMean } from '../schemas/mean.ts';
import { readSplit, type SplitData } from '../schemas/shards/read.ts';
import { trainModel, type TrainOptions } from '../train/train-loop.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

let dir: string;
let train: SplitData;
let validation: SplitData;
let mean: Float32Array;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'train-test-'));
  writeTestShards(dir, { size: 16, perClass: { train: 24, validation: 8, test: 8 }, seed: 11 });
  train = await readSplit(join(dir, 'shards', 'train'));
  validation = await readSplit(join(dir, 'shards', 'validation'));
  mean = readMean(join(dir, 'shards', 'mean.arrow'), 16);
  await selectBackend('wasm');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function options(over: Partial<TrainOptions>): TrainOptions {
  return {
    train, validation, mean,
    spec: resolveModelSpec('ConvNet', 'num_conv_layers=2:lc0_num_filters=8:lc0_filter_size=3:lc0_mp=True:lc1_num_filters=8:lc1_stride=2:ld0_num_units=16'),
    crop: 12, mirror: true, optimizer: 'nesterov', learningRate: 0.01, momentum: 0.9, adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    batchSize: 8, epochs: 4, schedule: 'study', patience: 3, snapshotEvery: 1, seed: 3, snapshotDir: join(dir, 'snap-default'), log: () => {},
    ...over,
  };
}

test('loss decreases and accuracy is well above chance on class-dependent images; no tensor leak across epochs', async () => {
  const counts: number[] = [];
  // patience 10: no learning-rate drop, whose fresh optimizer (no slots yet) would lower the count seen by onEpoch.
  const r = await trainModel(options({ epochs: 5, patience: 10, snapshotDir: join(dir, 'snap-learn'), onEpoch: () => counts.push(tf.memory().numTensors) }));
  const losses = r.metrics.map((m) => m.trainLoss);
  assert.ok(losses[losses.length - 1]! < losses[0]! * 0.7, `loss should fall: ${losses.map((l) => l.toFixed(3)).join(' → ')}`);
  const acc = r.metrics[r.metrics.length - 1]!.validationAccuracy!;
  assert.ok(acc > 0.8, `validation accuracy ${acc} (chance 1/3)`);
  assert.equal(new Set(counts.slice(1)).size, 1, `tensor count stays flat across epochs: ${counts.join(', ')}`);
  r.model.dispose();
});

test('a run stopped after 2 epochs and resumed from its snapshot equals an uninterrupted run', async () => {
  const full = await trainModel(options({ snapshotDir: join(dir, 'snap-full') }));
  const fullWeights = full.model.getWeights().map((w) => Array.from(w.dataSync()));
  full.model.dispose();
  const part = await trainModel(options({ snapshotDir: join(dir, 'snap-part'), stopAfter: 2 }));
  assert.equal(part.stopReason, 'stopAfter');
  assert.equal(part.metrics.length, 2);
  part.model.dispose();
  const starts: { epoch: number; done: boolean }[] = [];
  const ends: [number, boolean][] = [];
  const resumed = await trainModel(options({ snapshotDir: join(dir, 'snap-part'), onStart: (st) => starts.push(st), onEpoch: (m, last) => ends.push([m.epoch, last]) }));
  assert.equal(resumed.metrics.length, 4);
  // The stage's progress covers the epochs still to train and stops with the last one.
  assert.deepEqual(starts, [{ epoch: 2, done: false }]);
  assert.deepEqual(ends, [[3, false], [4, true]]);
  const strip = (ms: typeof full.metrics) => ms.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
  assert.deepEqual(strip(resumed.metrics), strip(full.metrics));
  const resumedWeights = resumed.model.getWeights().map((w) => Array.from(w.dataSync()));
  assert.deepEqual(resumedWeights, fullWeights);
  resumed.model.dispose();
  starts.length = 0;
  const again = await trainModel(options({ snapshotDir: join(dir, 'snap-part'), onStart: (st) => starts.push(st), onEpoch: () => assert.fail('a finished run trains no epoch') }));
  assert.deepEqual(starts, [{ epoch: 4, done: true }]);
  again.model.dispose();
});

test('divergence stops with a clear message', async () => {
  await assert.rejects(
    trainModel(options({ learningRate: 1e6, momentum: 0.99, epochs: 3, snapshotDir: join(dir, 'snap-nan') })),
    /training diverged: loss (NaN|Infinity) at epoch \d+, batch \d+/,
  );
});
