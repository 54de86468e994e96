/** The study's model parameter strings (schemas/model-params.ts) and the model builder (train/models.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../train/backends.ts';
import { ModelParamsError, parseModelParams, resolveModelSpec } from '../schemas/model-params.ts';
import { buildModel } from '../train/models.ts';

test('parses values: integers, decimals, True/False, sizes', () => {
  assert.deepEqual(parseModelParams('a=1:b=0.5:c=True:d=False:e=(5,5):f=3x2:g=valid'), { a: 1, b: 0.5, c: true, d: false, e: [5, 5], f: [3, 2], g: 'valid' });
  assert.deepEqual(parseModelParams(''), {});
  assert.throws(() => parseModelParams('a=1:oops'), /"oops" is not key=value/);
  assert.throws(() => parseModelParams('a=1:a=2'), /given twice/);
});

test('the study AlexNet string resolves to its layers, overriding the defaults', () => {
  const s = resolveModelSpec('ConvNet',
    'num_conv_layers=5:num_dense_layers=2:lc0_num_filters=48:lc0_filter_size=11:lc0_stride=4:lc0_mp=True:lm0_pool_size=3:lm0_stride=2:' +
    'lc1_num_filters=128:lc1_filter_size=5:lc2_num_filters=192:lc3_num_filters=192:lc4_num_filters=128:ld0_num_units=2048:ld1_num_units=2048:ld1_dropout=0.3');
  assert.equal(s.convs.length, 5);
  assert.deepEqual(s.convs[0], { filters: 48, kernelSize: [11, 11], strides: [4, 4], padding: 'same', pool: { poolSize: [3, 3], strides: [2, 2] } });
  assert.equal(s.convs[1]!.pool, null);
  assert.deepEqual(s.denses, [{ units: 2048, dropout: 0.5 }, { units: 2048, dropout: 0.3 }]);
  const alex = resolveModelSpec('AlexNet', 'ld0_num_units=512:ld0_hd=False');
  assert.deepEqual(alex.denses[0], { units: 512, dropout: 0 });
  assert.equal(alex.convs[4]!.pool!.poolSize[0], 3);
  const vgg = resolveModelSpec('VggNet', 'reduction_factor=8');
  assert.equal(vgg.convs.length, 13);
  assert.equal(vgg.convs[0]!.filters, 8);
  assert.equal(vgg.denses[0]!.units, 512);
  assert.equal(vgg.convs.filter((c) => c.pool).length, 5);
  assert.equal(resolveModelSpec('SingleLayerMlp', 'num_units=64').denses[0]!.units, 64);
  assert.equal(resolveModelSpec('LasagneMnistConvExample', '').convs[1]!.filters, 32);
});

test('unknown keys are errors that list the valid keys', () => {
  const bad = (arch: Parameters<typeof resolveModelSpec>[0], text: string, re: RegExp) =>
    assert.throws(() => resolveModelSpec(arch, text), (e: Error) => e instanceof ModelParamsError && re.test(e.message) && /valid keys/.test(e.message));
  bad('ConvNet', 'num_conv_layers=1:lc0_num_filters=4:lc0_colour=3', /unknown key lc0_colour.*lcI_num_filters/);
  bad('ConvNet', 'num_conv_layers=1:lc0_num_filters=4:lc1_num_filters=3', /unknown key lc1_num_filters.*I = 0\.\.0/);
  bad('AlexNet', 'reduction_factor=2', /unknown key reduction_factor/);
  bad('SingleLayerMlp', 'lc0_num_filters=3', /valid keys: num_units/);
  assert.throws(() => resolveModelSpec('ConvNet', 'num_conv_layers=1'), /lc0_num_filters is required/);
  assert.throws(() => resolveModelSpec('ConvNet', 'lc0_num_filters=4:lc0_mp=yes'), /expected True or False/);
  assert.throws(() => resolveModelSpec('ConvNet', 'lc0_num_filters=4:ld0_num_units=3:ld0_dropout=1.5'), /rate in \[0, 1\)/);
});

test('built models have the specified shapes and are seeded', async () => {
  await selectBackend('cpu');
  const spec = resolveModelSpec('AlexNet', '');
  const { model } = buildModel(spec, 224, 10, 1);
  assert.deepEqual(model.getLayer('conv0').outputShape, [null, 56, 56, 48]);
  assert.deepEqual(model.getLayer('pool0').outputShape, [null, 27, 27, 48]);
  assert.deepEqual(model.getLayer('pool4').outputShape, [null, 6, 6, 128]);
  assert.deepEqual(model.outputShape, [null, 10]);
  model.dispose();
  const small = resolveModelSpec('ConvNet', 'lc0_num_filters=4:ld0_num_units=8');
  const a = buildModel(small, 8, 3, 7).model;
  const b = buildModel(small, 8, 3, 7).model;
  const c = buildModel(small, 8, 3, 8).model;
  const w = (m: typeof a) => Array.from(m.getWeights()[0]!.dataSync());
  assert.deepEqual(w(a), w(b));
  assert.notDeepEqual(w(a), w(c));
  const p = tf.tidy(() => Array.from((a.predict(tf.zeros([2, 8, 8, 3])) as tf.Tensor).dataSync()));
  assert.ok(Math.abs(p[0]! + p[1]! + p[2]! - 1) < 1e-5, 'softmax output');
  [a, b, c].forEach((m) => m.dispose());
  assert.throws(() => buildModel(resolveModelSpec('AlexNet', ''), 16, 3, 1), /leaves an empty/);
});
