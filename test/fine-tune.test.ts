/**
 * Fine-tuning (`train.init = pretrained`, train/fine-tune.ts): a network we pretrain ourselves on other synthetic
 * shards and save as a tfjs layers model.json is fine-tuned on new shards of the same genres.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resolveModelSpec } from '../schemas/model-params.ts';
import { fileLoader, fileSaver } from '../train/model-io.ts';
import { buildFineTuneModel, freezeBatchNorm, type FineTuneOptions } from '../train/fine-tune.ts';
import { trainModel, type TrainOptions } from '../train/train-loop.ts';
import { inputPreprocessing } from '../model-import/preprocess.ts';
import '../model-import/layers.ts';
import { tinyShards } from './helpers/training.ts';

const PARAMS = 'num_conv_layers=1:lc0_num_filters=8:lc0_mp=True:lc0_bn=True:ld0_num_units=16:ld0_bn=True';
const CROP = 12;
// Pretraining data: more images, another seed; the fine-tuning data: few images.
const A = tinyShards('ft-pre-', { size: 16, perClass: { train: 40, validation: 4, test: 4 }, seed: 11 });
const B = tinyShards('ft-new-', { size: 16, perClass: { train: 6, validation: 12, test: 4 }, seed: 12 }, null);

function options(data: typeof B, over: Partial<TrainOptions>): TrainOptions {
  return {
    train: data.train, validation: data.validation, mean: null, spec: resolveModelSpec('ConvNet', PARAMS), crop: CROP, mirror: false,
    optimizer: 'nesterov', learningRate: 0.01, momentum: 0.9, adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, batchSize: 8, epochs: 3,
    schedule: 'constant', patience: 3, snapshotEvery: 10, seed: 1, snapshotDir: join(data.dir, 'snap'), log: () => {}, workerLoader: false, ...over,
  };
}

// The pretraining below sees raw 0–255 pixels (no mean): the matching preprocessing is RGB, scale 1, mean 0, std 1.
const RAW = inputPreprocessing('caffe', { channelOrder: 'rgb', mean: [0, 0, 0] });
// Another preprocessing, for the save/load check: [0, 1] pixels.
const PREP = inputPreprocessing('imagenet', { mean: [0, 0, 0], std: [1, 1, 1] });

/** Pretrains from scratch on A (once) and saves the model as a tfjs layers model.json; returns its path. */
let pretraining: Promise<string> | null = null;
function pretrain(): Promise<string> {
  pretraining ??= (async () => {
    const r = await trainModel(options(A, { epochs: 6, snapshotDir: join(A.dir, 'snap'), learningRate: 0.02 }));
    const dir = join(A.dir, 'pretrained');
    await r.model.save(fileSaver(dir));
    r.model.dispose();
    return join(dir, 'model.json');
  })();
  return pretraining;
}

async function fineTune(over: Partial<FineTuneOptions> = {}): Promise<FineTuneOptions> {
  return { file: await pretrain(), preprocessing: RAW, freeze: 'none', learningRateScale: 1, ...over };
}

test('fine-tuning the pretrained network reaches a lower validation loss within 3 epochs than the same network from scratch', async () => {
  const scratch = await trainModel(options(B, { snapshotDir: join(B.dir, 'scratch') }));
  const tuned = await trainModel(options(B, { snapshotDir: join(B.dir, 'tuned'), fineTune: await fineTune({ learningRateScale: 0.1 }) }));
  const best = (r: typeof scratch) => Math.min(...r.metrics.map((m) => m.validationLoss!));
  assert.ok(best(tuned) < best(scratch), `fine-tuned ${best(tuned)} vs scratch ${best(scratch)}`);
  scratch.model.dispose();
  tuned.model.dispose();
});

test('train.freeze=body leaves every imported weight (batch-norm statistics included) bit-identical; the new layer learns', async () => {
  await pretrain();
  const original = await tfl.loadLayersModel(fileLoader(join(A.dir, 'pretrained')));
  // All but the replaced last layer (`logits`).
  const before = new Map(original.weights.filter((w) => !w.originalName.startsWith('logits/')).map((w) => [w.originalName, Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex')]));
  original.dispose();
  const r = await trainModel(options(B, { snapshotDir: join(B.dir, 'frozen'), fineTune: await fineTune({ freeze: 'body' }) }));
  let compared = 0;
  for (const w of r.model.weights) {
    const was = before.get(w.originalName);
    if (!was) continue;
    compared++;
    assert.equal(Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex'), was, `${w.originalName} changed`);
  }
  assert.equal(compared, before.size, 'every imported weight is in the fine-tuned model');
  assert.ok(before.size >= 8, `${before.size} imported weights`);
  assert.equal(r.model.trainableWeights.length, 2, 'only the new layer (kernel, bias) trains');
  assert.ok(r.metrics[r.metrics.length - 1]!.trainLoss < r.metrics[0]!.trainLoss);
  r.model.dispose();
});

test('a frozen batch-norm layer uses and keeps its moving statistics in training mode (tfjs-layers alone would not)', () => {
  const make = () => {
    const bn = tfl.layers.batchNormalization({ axis: -1, movingMeanInitializer: 'ones', movingVarianceInitializer: 'ones' });
    bn.build([null, 2]);
    return bn;
  };
  const x = tf.tensor2d([[5, -3], [7, 1], [9, 5]]);
  // tfjs-layers 4.22 as is: trainable=false changes nothing in training mode (batch statistics, moving mean updated).
  const plain = make();
  plain.trainable = false;
  const yPlain = plain.apply(x, { training: true }) as tf.Tensor;
  assert.ok(Math.abs(tf.mean(yPlain).dataSync()[0]!) < 1e-5, 'batch statistics: the output is centred');
  assert.notDeepEqual(Array.from(plain.getWeights()[2]!.dataSync()), [1, 1], 'the moving mean moved');
  // Frozen: (x − 1) / √(1 + ε) with γ 1, β 0, and the moving statistics unchanged.
  const frozen = make();
  freezeBatchNorm(frozen);
  const y = frozen.apply(x, { training: true }) as tf.Tensor;
  const want = [[4, -4], [6, 0], [8, 4]].flat().map((v) => v / Math.sqrt(1 + 1e-3));
  Array.from(y.dataSync()).forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `${v} vs ${want[i]}`));
  assert.deepEqual(Array.from(frozen.getWeights()[2]!.dataSync()), [1, 1]);
  assert.deepEqual(Array.from(frozen.getWeights()[3]!.dataSync()), [1, 1]);
  assert.equal(frozen.trainable, false);
});

test('train.freeze naming a layer freezes it and the layers before it; an unknown name is an error naming the key', async () => {
  const m = await buildFineTuneModel(await fineTune({ freeze: 'conv0_bn' }), 3, 1);
  assert.deepEqual(m.frozen.slice(-1), ['conv0_bn']);
  assert.ok(!m.frozen.includes('dense0'));
  assert.equal(m.gradientScales.length, m.model.trainableWeights.length);
  m.model.dispose();
  await assert.rejects(buildFineTuneModel(await fineTune({ freeze: 'nope' }), 3, 1), /train\.freeze: the network has no layer 'nope'/);
});

test('the imported layers get the gradient scale, the new layer 1; the preprocessing is the first layer and survives a save', async () => {
  const m = await buildFineTuneModel(await fineTune({ learningRateScale: 0.1, preprocessing: PREP }), 3, 1);
  const scales = m.model.trainableWeights.map((w, i) => [w.originalName, m.gradientScales[i]] as const);
  assert.deepEqual(scales.filter(([n]) => n.startsWith('fine_tune_logits/')).map(([, s]) => s), [1, 1]);
  assert.ok(scales.filter(([n]) => !n.startsWith('fine_tune_logits/')).every(([, s]) => s === 0.1));
  const dir = join(B.dir, 'saved');
  await m.model.save(fileSaver(dir));
  const back = await tfl.loadLayersModel(fileLoader(dir));
  const x = tf.randomUniform([2, CROP, CROP, 3], 0, 255, 'float32', 3);
  const a = (m.model.predict(x) as tf.Tensor).dataSync();
  const b = (back.predict(x) as tf.Tensor).dataSync();
  Array.from(a).forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-6));
  m.model.dispose();
  back.dispose();
});

test('a fine-tuning run stopped after an epoch and resumed from its snapshot ends with the uninterrupted run\'s weights, bit for bit', async () => {
  const ft = await fineTune({ freeze: 'conv0', learningRateScale: 0.1 });
  const whole = await trainModel(options(B, { snapshotDir: join(B.dir, 'whole'), fineTune: ft, epochs: 2, snapshotEvery: 1 }));
  const cut = await trainModel(options(B, { snapshotDir: join(B.dir, 'cut'), fineTune: ft, epochs: 2, snapshotEvery: 1, stopAfter: 1 }));
  assert.equal(cut.stopReason, 'stopAfter');
  cut.model.dispose();
  const resumed = await trainModel(options(B, { snapshotDir: join(B.dir, 'cut'), fineTune: ft, epochs: 2, snapshotEvery: 1 }));
  assert.equal(resumed.metrics.length, 2);
  const hex = (m: tfl.LayersModel) => m.weights.map((w) => Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex'));
  assert.deepEqual(hex(resumed.model), hex(whole.model));
  whole.model.dispose();
  resumed.model.dispose();
});

// train.threads > 1: the data-parallel replicas import the same network with the same settings (train/data-parallel.ts).
const hexOf = (m: tfl.LayersModel) => m.weights.map((w) => Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex'));

test('fine-tuning on 2 threads tracks the 1-thread run (imported batch norm synchronised, gradient scales applied on every thread)', async () => {
  const ft = await fineTune({ learningRateScale: 0.1 });
  const lines: string[] = [];
  const one = await trainModel(options(B, { snapshotDir: join(B.dir, 't1'), fineTune: ft, epochs: 2, threads: 1 }));
  const two = await trainModel(options(B, { snapshotDir: join(B.dir, 't2'), fineTune: ft, epochs: 2, threads: 2, log: (l) => lines.push(l) }));
  assert.ok(lines.some((l) => /^threads: 2 \(data-parallel, wasm on each; batch norm synchronised across them\)/.test(l)), lines.join('\n'));
  // Not bit-equal: two threads sum the batch's per-row gradients (and batch-norm statistics) in another order.
  // (The imported ConvNet's own dropout is nested in the fine-tuned model: its masks follow the step on every thread.)
  for (const [i, m] of one.metrics.entries()) {
    const n = two.metrics[i]!;
    assert.ok(Math.abs(m.trainLoss - n.trainLoss) < 1e-4 * Math.max(1, m.trainLoss), `epoch ${i + 1} train loss ${m.trainLoss} vs ${n.trainLoss}`);
    assert.ok(Math.abs(m.validationLoss! - n.validationLoss!) < 1e-4 * Math.max(1, m.validationLoss!), `epoch ${i + 1} validation loss ${m.validationLoss} vs ${n.validationLoss}`);
  }
  let worst = 0;
  const a = one.model.weights.map((w) => w.read().dataSync() as Float32Array);
  const b = two.model.weights.map((w) => w.read().dataSync() as Float32Array);
  a.forEach((w, i) => w.forEach((v, k) => { worst = Math.max(worst, Math.abs(v - b[i]![k]!)); }));
  assert.ok(worst < 1e-4, `largest weight difference ${worst}`);
  one.model.dispose();
  two.model.dispose();
});

test('freeze=body on 2 threads leaves every imported weight bit-identical; a 2-thread run stopped and resumed equals the uninterrupted one bit for bit', async () => {
  await pretrain();
  const original = await tfl.loadLayersModel(fileLoader(join(A.dir, 'pretrained')));
  const before = new Map(original.weights.filter((w) => !w.originalName.startsWith('logits/')).map((w) => [w.originalName, Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex')]));
  original.dispose();
  const ft = await fineTune({ freeze: 'body' });
  const whole = await trainModel(options(B, { snapshotDir: join(B.dir, 'p-whole'), fineTune: ft, epochs: 2, snapshotEvery: 1, threads: 2 }));
  let compared = 0;
  for (const w of whole.model.weights) {
    const was = before.get(w.originalName);
    if (!was) continue;
    compared++;
    assert.equal(Buffer.from((w.read().dataSync() as Float32Array).buffer).toString('hex'), was, `${w.originalName} changed`);
  }
  assert.equal(compared, before.size);
  assert.ok(whole.metrics[1]!.trainLoss < whole.metrics[0]!.trainLoss, 'the new layer learns');
  const cut = await trainModel(options(B, { snapshotDir: join(B.dir, 'p-cut'), fineTune: ft, epochs: 2, snapshotEvery: 1, stopAfter: 1, threads: 2 }));
  assert.equal(cut.stopReason, 'stopAfter');
  cut.model.dispose();
  const resumed = await trainModel(options(B, { snapshotDir: join(B.dir, 'p-cut'), fineTune: ft, epochs: 2, snapshotEvery: 1, threads: 2 }));
  assert.deepEqual(hexOf(resumed.model), hexOf(whole.model));
  whole.model.dispose();
  resumed.model.dispose();
});
