/** L2 weight decay (`train.weightDecay`, train/regularization.ts). */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveModelSpec } from '../schemas/model-params.ts';
import { buildModel } from '../train/models.ts';
import { decayedWeights, l2Penalty } from '../train/regularization.ts';
import { trainModel, type TrainOptions } from '../train/train-loop.ts';
import { tinyShards } from './helpers/training.ts';

const PARAMS = 'num_conv_layers=1:lc0_num_filters=6:lc0_mp=True:lc0_bn=True:ld0_num_units=12';
const S = tinyShards('wd-test-', { size: 16, perClass: { train: 16, validation: 6, test: 6 }, seed: 2 });

test('the penalty is λ/2 · Σ‖W‖² over the conv and dense kernels only (no biases, no batch-norm parameters)', () => {
  const { model } = buildModel(resolveModelSpec('ConvNet', PARAMS), 12, 3, 1);
  const kernels = decayedWeights(model);
  assert.deepEqual(kernels.map((k) => k.name.replace(/_\d+$/, '').split('/').slice(-2).join('/')), ['conv0/kernel', 'dense0/kernel', 'logits/kernel']);
  const sum = kernels.reduce((a, k) => a + Array.from(k.dataSync()).reduce((s, v) => s + v * v, 0), 0);
  const p = l2Penalty(kernels, 0.3)!;
  assert.ok(Math.abs(p.dataSync()[0]! - 0.15 * sum) < 1e-4 * sum);
  p.dispose();
  assert.equal(l2Penalty(kernels, 0), null);
  model.dispose();
});

test('weight decay shrinks the kernels; the logged training loss is the cross-entropy alone', async () => {
  const o = (weightDecay: number): TrainOptions => ({
    train: S.train, validation: S.validation, mean: S.mean, spec: resolveModelSpec('ConvNet', PARAMS), crop: 12, mirror: true, optimizer: 'adam', learningRate: 0.01,
    momentum: 0.9, adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, batchSize: 8, epochs: 3, schedule: 'constant', patience: 3,
    weightDecay, snapshotEvery: 10, seed: 1, snapshotDir: join(S.dir, `wd-${weightDecay}`), log: () => {}, workerLoader: false,
  });
  const norm = (r: Awaited<ReturnType<typeof trainModel>>) => tf.tidy(() => decayedWeights(r.model).reduce((a, k) => a + tf.sum(tf.square(k)).dataSync()[0]!, 0));
  const plain = await trainModel(o(0));
  const decayed = await trainModel(o(0.5));
  assert.ok(norm(decayed) < 0.7 * norm(plain), `Σ‖W‖² ${norm(decayed)} with decay vs ${norm(plain)} without`);
  // λ/2·Σ‖W‖² alone is above 1 nat here; the logged loss stays a cross-entropy of 3 classes (below ln 3 + a little).
  assert.ok(0.25 * norm(decayed) > 1, `penalty ${0.25 * norm(decayed)}`);
  assert.ok(decayed.metrics.every((m) => m.trainLoss < 1.3), decayed.metrics.map((m) => m.trainLoss).join(', '));
  plain.model.dispose();
  decayed.model.dispose();
});
