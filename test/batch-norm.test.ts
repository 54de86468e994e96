/**
 * Batch normalisation as a model parameter (`lcI_bn`, `ldI_bn`): parsing, the built layers, training and snapshots,
 * and synchronised across data-parallel threads (train/sync-batch-norm.ts).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { ModelParamsError, resolveModelSpec } from '../schemas/model-params.ts';
import { buildModel } from '../train/models.ts';
import { ReplicaPool } from '../train/data-parallel.ts';
import { disposeOptimizer, makeOptimizer } from '../train/optimizer.ts';
import { Collective } from '../train/sync-batch-norm.ts';
import { trainModel, type TrainOptions } from '../train/train-loop.ts';
import { assertSameTraining, tinyShards } from './helpers/training.ts';

const PARAMS = 'num_conv_layers=2:lc0_num_filters=8:lc0_filter_size=3:lc0_mp=True:lc0_bn=True:lc1_num_filters=8:lc1_stride=2:ld0_num_units=16:ld0_bn=True';

const S = tinyShards('bn-test-', { size: 16, perClass: { train: 24, validation: 8, test: 8 }, seed: 11 });

test('lcI_bn / ldI_bn parse to batchNorm (default False) and reject non-booleans', () => {
  const spec = resolveModelSpec('ConvNet', PARAMS);
  assert.deepEqual(spec.convs.map((c) => c.batchNorm === true), [true, false]);
  assert.deepEqual(spec.denses.map((d) => d.batchNorm === true), [true]);
  assert.ok(!('batchNorm' in spec.convs[1]!), 'absent when off: specs without batch norm are unchanged');
  assert.throws(() => resolveModelSpec('ConvNet', 'num_conv_layers=1:lc0_num_filters=8:lc0_bn=yes:ld0_num_units=4'), (e: Error) => e instanceof ModelParamsError && /lc0_bn = "yes": expected True or False/.test(e.message));
});

test('a batch-normalised layer has no bias, a BatchNormalization layer and then a ReLU', () => {
  const { model } = buildModel(resolveModelSpec('ConvNet', PARAMS), 12, 3, 1);
  const names = model.layers.map((l) => l.name);
  assert.deepEqual(names.filter((n) => /conv0|dense0/.test(n)), ['conv0', 'conv0_bn', 'conv0_relu', 'dense0', 'dense0_bn', 'dense0_relu']);
  assert.equal(model.getLayer('conv0').weights.length, 1, 'conv0: kernel only');
  assert.equal(model.getLayer('conv1').weights.length, 2, 'conv1 (no bn): kernel and bias');
  // gamma and beta are trained; the moving mean and variance are not.
  assert.deepEqual(model.getLayer('conv0_bn').trainableWeights.map((w) => w.originalName.split('/').pop()), ['gamma', 'beta']);
  assert.deepEqual(model.getLayer('conv0_bn').nonTrainableWeights.map((w) => w.originalName.split('/').pop()), ['moving_mean', 'moving_variance']);
  model.dispose();
});

function options(over: Partial<TrainOptions>): TrainOptions {
  return {
    train: S.train, validation: S.validation, mean: S.mean, spec: resolveModelSpec('ConvNet', PARAMS),
    crop: 12, mirror: true, optimizer: 'adam', learningRate: 0.01, momentum: 0.9, adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    batchSize: 8, epochs: 3, schedule: 'plateau', patience: 3, snapshotEvery: 1, seed: 4, snapshotDir: join(S.dir, 'snap'), log: () => {}, workerLoader: false,
    ...over,
  };
}

test('training updates the moving statistics, learns, and a resumed run equals an uninterrupted one (statistics included)', async () => {
  const full = await trainModel(options({ snapshotDir: join(S.dir, 'full') }));
  const stats = (m: typeof full.model) => m.getLayer('conv0_bn').nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
  const [movingMean, movingVar] = stats(full.model);
  assert.ok(movingMean!.some((v) => v !== 0), 'moving mean left zero');
  assert.ok(movingVar!.some((v) => v !== 1), 'moving variance left one');
  assert.ok(full.metrics[full.metrics.length - 1]!.validationAccuracy! > 0.6, `validation accuracy ${full.metrics.map((m) => m.validationAccuracy).join(', ')}`);
  const part = await trainModel(options({ snapshotDir: join(S.dir, 'part'), stopAfter: 1 }));
  part.model.dispose();
  const resumed = await trainModel(options({ snapshotDir: join(S.dir, 'part') }));
  assert.deepEqual(stats(resumed.model), stats(full.model));
  assert.deepEqual(resumed.model.getWeights().map((w) => Array.from(w.dataSync())), full.model.getWeights().map((w) => Array.from(w.dataSync())));
  full.model.dispose();
  resumed.model.dispose();
});

test('on 2 and 3 threads batch norm uses the whole batch\'s statistics: training equals 1 thread up to float summation order (moving statistics included)', async () => {
  // Batch 7 of 72 images: the last batch has 2 rows, fewer than 3 threads (the third takes no part in it).
  const over = { batchSize: 7, epochs: 2, optimizer: 'nesterov' as const, learningRate: 0.02 };
  const one = await trainModel(options({ snapshotDir: join(S.dir, 't1'), threads: 1, ...over }));
  for (const threads of [2, 3]) {
    const logs: string[] = [];
    const r = await trainModel(options({ snapshotDir: join(S.dir, `t${threads}`), threads, ...over, log: (l) => logs.push(l) }));
    assert.ok(logs.some((l) => l.includes(`threads: ${threads} (data-parallel, wasm on each; batch norm synchronised across them)`)), logs.join('\n'));
    assertSameTraining(r, one, `batch norm, ${threads} threads`); // weights include the moving statistics
    r.metrics.forEach((m, i) => {
      const e = one.metrics[i]!;
      assert.ok(Math.abs(m.validationLoss! - e.validationLoss!) < 1e-4 * Math.max(1, e.validationLoss!), `${threads} threads, epoch ${i + 1}: validation loss ${m.validationLoss} vs ${e.validationLoss}`);
    });
    r.model.dispose();
  }
  one.model.dispose();
});

test('a 2-thread batch-norm run stopped after an epoch and resumed equals an uninterrupted 2-thread run exactly', async () => {
  const full = await trainModel(options({ snapshotDir: join(S.dir, 'dp-full'), threads: 2 }));
  const part = await trainModel(options({ snapshotDir: join(S.dir, 'dp-part'), threads: 2, stopAfter: 1 }));
  part.model.dispose();
  const resumed = await trainModel(options({ snapshotDir: join(S.dir, 'dp-part'), threads: 2 }));
  assert.deepEqual(resumed.model.getWeights().map((w) => Array.from(w.dataSync())), full.model.getWeights().map((w) => Array.from(w.dataSync())));
  full.model.dispose();
  resumed.model.dispose();
});

test('the statistics\' all-reduce gives up on a rank that does not arrive, and after an abort, with a clear error', () => {
  const c = new Collective(Collective.buffer(2, 3), 2, 0, 3, 50);
  assert.throws(() => c.allReduceSum(Float64Array.of(1, 2)), /the other training threads did not arrive within 0.05 s/);
  assert.ok(c.waitedMs >= 45, `the wait is counted (left out of gradient timings): ${c.waitedMs} ms`);
  const alone = new Collective(Collective.buffer(3, 2), 3, 0, 2);
  alone.begin(1); // only rank 0 has rows
  assert.deepEqual(Array.from(alone.allReduceSum(Float64Array.of(1.5, -2))), [1.5, -2]);
  assert.equal(alone.waitedMs, 0, 'nobody to wait for');
  assert.throws(() => alone.allReduceSum(Float64Array.of(1, 2, 3)), /all-reduce of 3 values, at most 2/);
  alone.abort();
  assert.throws(() => alone.allReduceSum(Float64Array.of(1, 2)), /another training thread failed/);
});

test('data-parallel steps with synchronised batch norm leak no tensors, and closing the pool puts tfjs-layers\' own batch norm back', async () => {
  const spec = resolveModelSpec('ConvNet', PARAMS);
  const { model, logits } = buildModel(spec, 12, 3, 5);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const state = model.nonTrainableWeights.map((w) => w.read() as tf.Variable);
  const config = { kind: 'nesterov' as const, learningRate: 0.05, momentum: 0.9 };
  const optimizer = makeOptimizer(config);
  const layer = model.getLayer('conv0_bn') as unknown as { call: unknown };
  const own = layer.call;
  const pool = await ReplicaPool.start({ threads: 2, backend: 'wasm', vars, state, replica: model, crop: 12, classes: 3, maxRows: 9, model: { kind: 'build', spec, crop: 12, classes: 3, seed: 99 } });
  try {
    assert.notEqual(layer.call, own, 'synchronised while the pool lives');
    await pool.sync(vars, optimizer, config);
    const x = new Float32Array(9 * 12 * 12 * 3).map((_, i) => Math.sin(i * 0.37));
    const labels = Int32Array.from({ length: 9 }, (_, i) => i % 3);
    await pool.step(logits, vars, x, labels, 0);
    const before = tf.memory().numTensors;
    for (let s = 1; s < 4; s++) await pool.step(logits, vars, x, labels, s);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    await pool.close();
    disposeOptimizer(optimizer);
  }
  assert.equal(layer.call, own);
  model.dispose();
});
