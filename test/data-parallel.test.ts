/** Data-parallel training across worker threads (train/data-parallel.ts) on tiny synthetic shards, wasm backend. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { balanceReport, chunkRange, ReplicaPool, sliceRows, speedSlices, startInferencePool, updateSecondsPerRow } from '../train/data-parallel.ts';
import { disposeOptimizer, makeOptimizer, type OptimizerConfig } from '../train/optimizer.ts';
import { fileSaver } from '../train/model-io.ts';
import { predictSplit } from '../train/predict.ts';
import { resolveModelSpec } from '../schemas/model-params.ts';
import { buildModel } from '../train/models.ts';
import { trainModel, type TrainOptions } from '../train/train-loop.ts';
import { assertSameTraining, maxRelDiff, tinyShards, weightsOf } from './helpers/training.ts';

// Dense layer with dropout 0.5 (the default): masks must not depend on how the batch is split.
const SPEC = resolveModelSpec('ConvNet', 'num_conv_layers=2:lc0_num_filters=8:lc0_filter_size=3:lc0_mp=True:lc1_num_filters=8:lc1_stride=2:ld0_num_units=16');

const S = tinyShards('dp-test-', { size: 16, perClass: { train: 24, validation: 8, test: 8 }, seed: 11 });

function options(over: Partial<TrainOptions>): TrainOptions {
  return {
    train: S.train, validation: S.validation, mean: S.mean, spec: SPEC,
    crop: 12, mirror: true, optimizer: 'nesterov', learningRate: 0.01, momentum: 0.9, adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    batchSize: 10, epochs: 4, schedule: 'study', patience: 1, snapshotEvery: 1, seed: 3, snapshotDir: join(S.dir, 'snap-default'), log: () => {},
    ...over,
  };
}

test('sliceRows splits a batch into contiguous slices covering every row once; chunkRange likewise', () => {
  for (const n of [0, 1, 5, 10, 33]) {
    for (const t of [1, 2, 3, 7]) {
      let next = 0;
      for (let r = 0; r < t; r++) {
        const [off, count] = sliceRows(n, t, r);
        assert.equal(off, next, `n=${n} t=${t} rank ${r}`);
        assert.ok(count === Math.floor(n / t) || count === Math.ceil(n / t));
        next += count;
        assert.deepEqual(chunkRange(n, t, r), [off, off + count]);
      }
      assert.equal(next, n);
    }
  }
});

test('speedSlices splits a batch by speed: contiguous, every row once, at least one row each, equal when speeds are', () => {
  assert.deepEqual(speedSlices(32, [0.07, 0.07]), [[0, 16], [16, 16]]);
  // Rank 1 takes 1.25× as long per row: 32 rows → 17.8 and 14.2, rounded to 18 and 14.
  assert.deepEqual(speedSlices(32, [0.06, 0.075]), [[0, 18], [18, 14]]);
  assert.deepEqual(speedSlices(10, [1, 1000, 1]), [[0, 5], [5, 1], [6, 4]], 'a very slow rank keeps one row; the remainder tie goes to the lower rank');
  for (const n of [3, 7, 33, 100]) {
    for (const spr of [[1, 2], [0.3, 0.1, 0.2], [5, 5, 5, 1]]) {
      const sl = speedSlices(n, spr);
      let next = 0;
      for (const [off, count] of sl) {
        assert.equal(off, next);
        assert.ok(count >= 1 || n < spr.length, `n=${n} ${spr}: ${JSON.stringify(sl)}`);
        next += count;
      }
      assert.equal(next, n);
    }
  }
  assert.deepEqual(speedSlices(1, [1, 2]), [[0, 1], [1, 0]], 'fewer rows than ranks: as sliceRows');
  assert.deepEqual(speedSlices(8, [1, NaN]), [[0, 4], [4, 4]], 'no figure for a rank yet: equal');
  assert.deepEqual(updateSecondsPerRow(null, [1600, 2000], [16, 16]), [0.1, 0.125]);
  assert.deepEqual(updateSecondsPerRow([0.1, 0.125], [1800, 1000], [18, 0]), [0.1, 0.125], 'a rank without rows keeps its figure');
  assert.deepEqual(updateSecondsPerRow([0.1, 0.12], [3000, 1000], [10, 10]), [0.2, 0.11]);
  assert.deepEqual(balanceReport([1000, 1500], [16, 16]), { rank: 1, ratio: 1.5 });
  assert.deepEqual(balanceReport([1800, 1200, 1200], [18, 12, 12]), { rank: 0, ratio: 1 }, 'per row, not per step');
  assert.equal(balanceReport([1000, 0], [16, 0]), null, 'a rank without rows: nothing to compare');
});

test('training on 2 and 3 threads equals 1 thread up to float summation order (dropout, learning-rate drop, validation)', async () => {
  const logs: string[] = [];
  // Learning rate 0.03, patience 1: the rate drops after epoch 3 (weights restored, fresh optimizer, replicas re-synced).
  const one = await trainModel(options({ snapshotDir: join(S.dir, 's1'), threads: 1, learningRate: 0.03 }));
  const two = await trainModel(options({ snapshotDir: join(S.dir, 's2'), threads: 2, learningRate: 0.03, log: (l) => logs.push(l) }));
  const three = await trainModel(options({ snapshotDir: join(S.dir, 's3'), threads: 3, learningRate: 0.03 }));
  assert.ok(logs.some((l) => /threads: 2 \(data-parallel/.test(l)), logs.join('\n'));
  for (const [name, r] of [['2', two], ['3', three]] as const) {
    assert.equal(r.metrics.length, one.metrics.length);
    r.metrics.forEach((m, i) => {
      const e = one.metrics[i]!;
      assert.ok(Math.abs(m.trainLoss - e.trainLoss) < 1e-4 * Math.max(1, e.trainLoss), `${name} threads, epoch ${i + 1}: train loss ${m.trainLoss} vs ${e.trainLoss}`);
      assert.ok(Math.abs(m.validationLoss! - e.validationLoss!) < 1e-4 * Math.max(1, e.validationLoss!), `validation loss ${m.validationLoss} vs ${e.validationLoss}`);
      assert.equal(m.trainAccuracy, e.trainAccuracy);
      assert.equal(m.validationAccuracy, e.validationAccuracy);
      assert.equal(m.learningRate, e.learningRate);
    });
    const d = maxRelDiff(weightsOf(r.model), weightsOf(one.model));
    assert.ok(d < 1e-4, `${name} threads: weights differ from 1 thread by ${d} (relative to each tensor's largest)`);
  }
  assert.ok(one.metrics.some((m) => m.learningRate < 0.03), `a learning-rate drop: ${one.metrics.map((m) => m.learningRate)}`);
  for (const r of [one, two, three]) r.model.dispose();
});

test('with weight decay, 2 threads equal 1 thread up to float summation order (the penalty is added once per step)', async () => {
  const logs: string[] = [];
  const wd = { weightDecay: 0.05, schedule: 'constant' as const, epochs: 3 };
  const one = await trainModel(options({ snapshotDir: join(S.dir, 'wd1'), threads: 1, ...wd }));
  const two = await trainModel(options({ snapshotDir: join(S.dir, 'wd2'), threads: 2, ...wd, log: (l) => logs.push(l) }));
  const none = await trainModel(options({ snapshotDir: join(S.dir, 'wd0'), threads: 2, ...wd, weightDecay: 0 }));
  assert.ok(logs.some((l) => /threads: 2 \(data-parallel/.test(l)), `the decayed run is data-parallel:\n${logs.join('\n')}`);
  const d = assertSameTraining(two, one, 'weight decay, 2 threads');
  // The penalty really acts on 2 threads (added once: twice would shrink further, never would match \`none\`).
  assert.ok(maxRelDiff(weightsOf(none.model), weightsOf(one.model)) > 100 * Math.max(d, 1e-7), 'decay changes the weights');
  for (const r of [one, two, none]) r.model.dispose();
});

test('Adam on 2 threads equals 1 thread up to float summation order across epochs (its state goes back to the optimizer and returns)', async () => {
  const adam = { optimizer: 'adam' as const, learningRate: 0.005, schedule: 'constant' as const, epochs: 3 };
  const one = await trainModel(options({ snapshotDir: join(S.dir, 'adam1'), threads: 1, ...adam }));
  const two = await trainModel(options({ snapshotDir: join(S.dir, 'adam2'), threads: 2, ...adam }));
  assertSameTraining(two, one, 'Adam, 2 threads');
  for (const r of [one, two]) r.model.dispose();
});

test('with train.balance = speed, 2 threads still equal 1 thread up to float summation order', async () => {
  const logs: string[] = [];
  const one = await trainModel(options({ snapshotDir: join(S.dir, 'b1'), threads: 1, epochs: 2 }));
  const two = await trainModel(options({ snapshotDir: join(S.dir, 'b2'), threads: 2, epochs: 2, balance: 'speed', log: (l) => logs.push(l) }));
  assert.ok(logs.some((l) => l.includes('threads: 2 (data-parallel, wasm on each; batches split by measured speed)')), logs.join('\n'));
  assertSameTraining(two, one, 'balance=speed, 2 threads');
  for (const r of [one, two]) r.model.dispose();
});

test('a 2-thread run stopped after 2 epochs and resumed equals an uninterrupted 2-thread run exactly', async () => {
  const full = await trainModel(options({ snapshotDir: join(S.dir, 'r-full'), threads: 2, epochs: 4, patience: 3 }));
  const part = await trainModel(options({ snapshotDir: join(S.dir, 'r-part'), threads: 2, epochs: 4, patience: 3, stopAfter: 2 }));
  part.model.dispose();
  const resumed = await trainModel(options({ snapshotDir: join(S.dir, 'r-part'), threads: 2, epochs: 4, patience: 3 }));
  const strip = (ms: typeof full.metrics) => ms.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
  assert.deepEqual(strip(resumed.metrics), strip(full.metrics));
  assert.deepEqual(weightsOf(resumed.model).map((w) => Array.from(w)), weightsOf(full.model).map((w) => Array.from(w)));
  full.model.dispose();
  resumed.model.dispose();
});

for (const kind of ['nesterov', 'adam'] as const) {
  test(`replicas stay equal to the calling thread across steps and a re-sync (${kind}): their forward passes match it bit for bit`, async () => {
    const classes = 3;
    const { model, logits } = buildModel(SPEC, 12, classes, 5);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const config: OptimizerConfig = kind === 'adam'
      ? { kind, learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }
      : { kind, learningRate: 0.05, momentum: 0.9 };
    const optimizer = makeOptimizer(config);
    const pool = await ReplicaPool.start({ threads: 2, backend: 'wasm', vars, crop: 12, classes, maxRows: 9, model: { kind: 'build', spec: SPEC, crop: 12, classes, seed: 99 } });
    try {
      await pool.sync(vars, optimizer, config);
      const x = new Float32Array(9 * 12 * 12 * 3).map((_, i) => Math.sin(i * 0.37));
      const labels = Int32Array.from({ length: 9 }, (_, i) => i % classes);
      const before = tf.memory().numTensors;
      for (let s = 0; s < 3; s++) await pool.step(logits, vars, x, labels, s);
      assert.equal(tf.memory().numTensors, before, 'no tensors leak per step (the optimizer state is in shared memory)');
      await pool.storeOptimizerState(vars, optimizer);
      await pool.sync(vars, optimizer, config); // as at an epoch boundary: optimizer state mid-run
      for (let s = 3; s < 6; s++) await pool.step(logits, vars, x, labels, s);
      const balance = pool.takeBalanceReport(0);
      assert.ok(balance && balance.ratio >= 1 && (balance.rank === 0 || balance.rank === 1), `balance report ${JSON.stringify(balance)}`);
      assert.equal(pool.takeBalanceReport(0), null, 'the sums restart after a report');
      const got = Float32Array.from(await pool.forward(logits, x, 9, 'logits'));
      const own = logits.predict(tf.tensor4d(x, [9, 12, 12, 3])) as tf.Tensor;
      assert.deepEqual(Array.from(got), Array.from(own.dataSync()), 'rows computed by the worker equal this thread\'s');
      own.dispose();
    } finally {
      await pool.close();
      model.dispose();
      disposeOptimizer(optimizer);
    }
  });
}

test('evaluation on 2 threads (workers load the saved model) predicts what 1 thread predicts', async () => {
  const { model } = buildModel(SPEC, 12, 3, 8);
  const saved = join(S.dir, 'saved-model');
  await model.save(fileSaver(saved));
  const test = S.test;
  const one = await predictSplit(model, test, 12, S.mean, 10, 2);
  const logs: string[] = [];
  const pool = await startInferencePool(saved, 12, 3, 2 * 10, 2, (l) => logs.push(l));
  assert.ok(pool, logs.join('\n'));
  try {
    const two = await predictSplit(model, test, 12, S.mean, 10, 2, undefined, pool);
    assert.deepEqual(Array.from(two.predicted), Array.from(one.predicted));
    const c = maxRelDiff([two.probabilities], [one.probabilities]);
    assert.ok(c < 1e-5, `probabilities differ by ${c}`);
  } finally {
    await pool.close();
    model.dispose();
  }
});
