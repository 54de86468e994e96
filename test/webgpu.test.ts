/**
 * The webgpu backend (train/backends.ts) on SwiftShader, the software Vulkan driver of Debian's chromium package:
 * `auto` skips it (a CPU adapter), `train.backend=webgpu` trains and evaluates the demo-sized model, and each layer
 * type's gradients match the cpu backend's within the tolerances stated below. Skipped, with the reason, where
 * chromium's ICD or the Vulkan loader is missing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, vulkanLoaderPresent } from '../train/backends.ts';
import { resolveModelSpec } from '../schemas/model-params.ts';
import { buildModel } from '../train/models.ts';
import { predictSplit } from '../train/predict.ts';
import { readMean } from '../schemas/mean.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit, type SplitData } from '../schemas/shards/read.ts';
import { trainModel, type TrainOptions } from '../train/train-loop.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';
import { values } from './helpers/training.ts';

/** SwiftShader's Vulkan ICD as Debian's chromium package installs it. */
const ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const skip = !existsSync(ICD)
  ? `chromium's SwiftShader ICD (${ICD}) is missing: apt-get install chromium`
  : !vulkanLoaderPresent()
    ? 'no Vulkan loader (libvulkan.so.1): apt-get install libvulkan1'
    : false;
// For this test file's process only (node --test runs each file in its own process), before Dawn starts.
process.env.VK_ICD_FILENAMES = ICD;
process.env.XDG_RUNTIME_DIR ??= tmpdir(); // Mesa's loader complains without it

/** The demo's model (cli/demo.ts): 3 convs with pools, one dense layer with dropout, at 64×64. */
const DEMO_SPEC = resolveModelSpec('ConvNet', 'num_conv_layers=3:num_dense_layers=1:lc0_num_filters=16:lc0_filter_size=5:lc0_stride=1:lc0_mp=True:lc1_num_filters=32:lc1_filter_size=3:lc1_mp=True:lc2_num_filters=64:lc2_filter_size=3:lc2_mp=True:ld0_num_units=64');

let dir: string;
let train: SplitData;
let validation: SplitData;
let testSplit: SplitData;
let mean: Float32Array;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'webgpu-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Largest absolute difference relative to the largest expected magnitude. */
function relErr(got: Float32Array, exp: Float32Array): number {
  assert.equal(got.length, exp.length);
  let err = 0;
  let scale = 1e-6;
  for (let i = 0; i < exp.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - exp[i]!));
    scale = Math.max(scale, Math.abs(exp[i]!));
  }
  return err / scale;
}

/**
 * One case per layer type the models use: the gradients of Σ f(inputs)·r (r fixed random) with respect to every
 * input. Tolerance: relative to the largest expected magnitude (float32 sums in a different order on the GPU).
 */
const LAYERS: { name: string; tol: number; shapes: number[][]; f: (...xs: tf.Tensor[]) => tf.Tensor }[] = [
  { name: 'conv 5×5 same, stride 1 (+ bias, ReLU)', tol: 1e-4, shapes: [[2, 12, 12, 3], [5, 5, 3, 8], [8]], f: (x, w, b) => tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'), b!)) },
  { name: 'conv 11×11 same, stride 4', tol: 1e-4, shapes: [[2, 27, 27, 3], [11, 11, 3, 6]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 4, 'same') },
  { name: 'conv 3×3 valid, stride 2', tol: 1e-4, shapes: [[2, 9, 9, 4], [3, 3, 4, 5]], f: (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid') },
  { name: 'max-pool 3×3 stride 2', tol: 1e-5, shapes: [[2, 9, 9, 4]], f: (x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'valid') },
  { name: 'dense (+ bias, ReLU)', tol: 1e-4, shapes: [[6, 40], [40, 16], [16]], f: (x, w, b) => tf.relu(tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b!)) },
  { name: 'dropout 0.5 (seeded)', tol: 1e-6, shapes: [[6, 16]], f: (x) => tf.dropout(x, 0.5, undefined, 42) },
  { name: 'softmax cross-entropy', tol: 1e-5, shapes: [[6, 5]], f: (x) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0], 'int32'), 5), x, undefined, undefined, tf.Reduction.NONE) },
];

/** Reads tensors and disposes them (webgpu in Node reads asynchronously only: no OffscreenCanvas for dataSync). */
async function read(ts: tf.Tensor[]): Promise<Float32Array[]> {
  const out = await Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(ts);
  return out;
}

async function layerGrads(k: (typeof LAYERS)[number], seed: number): Promise<Float32Array[]> {
  return read(tf.tidy(() => {
    const xs = k.shapes.map((s, i) => tf.tensor(values(s.reduce((a, b) => a * b), seed + i), s));
    const y0 = k.f(...xs);
    const r = tf.tensor(values(y0.size, seed + 99), y0.shape);
    const g = tf.grads((...ins: tf.Tensor[]) => tf.sum(tf.mul(k.f(...ins), r)));
    return g(xs);
  }));
}

test('auto never picks the software (SwiftShader) adapter: it says why and keeps wasm', { skip }, async () => {
  const lines: string[] = [];
  // As on a machine with a GPU device node (injected; gpuDeviceNodes() is checked in train-backends.test.ts), auto
  // loads Dawn, which finds only SwiftShader here, and refuses it.
  const sel = await selectBackend('auto', (l) => lines.push(l), { hasGpuDevice: () => true });
  assert.equal(sel.name, 'wasm');
  const w = sel.skipped.find((s) => s.name === 'webgpu');
  assert.ok(w, lines.join('\n'));
  assert.match(w.reason, /software adapter \(.*swiftshader.*\).*CPU\/fallback adapter/i);
});

test('webgpu gradients of each layer type match the cpu backend within the stated tolerance', { skip }, async () => {
  await selectBackend('cpu');
  const expected: Float32Array[][] = [];
  for (const [i, k] of LAYERS.entries()) expected.push(await layerGrads(k, 10 * i + 1));
  const sel = await selectBackend('webgpu');
  assert.match(sel.details, /swiftshader/i);
  assert.match(sel.details, /software, on the CPU/);
  for (const [i, k] of LAYERS.entries()) {
    const got = await layerGrads(k, 10 * i + 1);
    got.forEach((g, j) => {
      const e = relErr(g, expected[i]![j]!);
      assert.ok(e <= k.tol, `${k.name}, input ${j}: relative error ${e.toExponential(2)} > ${k.tol}`);
    });
  }
});

function options(over: Partial<TrainOptions>): TrainOptions {
  return {
    train, validation, mean, spec: DEMO_SPEC,
    crop: 64, mirror: true, optimizer: 'adam', learningRate: 0.001, momentum: 0.9, adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    batchSize: 9, epochs: 1, schedule: 'study', patience: 4, snapshotEvery: 5, seed: 0, snapshotDir: join(dir, 'snap'), log: () => {},
    ...over,
  };
}

test('train.backend=webgpu trains and evaluates the demo-sized model; a step matches the cpu backend', { skip }, async () => {
  // SwiftShader compiles a compute pipeline per kernel and shape (tens of seconds in all), so every pass here has
  // the same 9 rows and the compiled pipelines are reused: one step of 9, validation and test of 9 (centre crops).
  writeTestShards(dir, { size: 72, perClass: { train: 3, validation: 3, test: 3 }, seed: 5 });
  train = await readSplit(join(dir, splitDir('train')));
  validation = await readSplit(join(dir, splitDir('validation')));
  testSplit = await readSplit(join(dir, splitDir('test')));
  mean = readMean(join(dir, 'shards', 'mean.arrow'), 72);

  // One Adam step of the whole demo model (conv, pool, dense, dropout, softmax) on webgpu and on wasm (whose
  // kernels test/kernel.test.ts checks against cpu; the cpu backend itself takes minutes for this step).
  const step = async (backend: 'wasm' | 'webgpu') => {
    await selectBackend(backend);
    const { model, logits } = buildModel(DEMO_SPEC, 64, 3, 0);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const opt = tf.train.adam(0.001);
    const x = tf.tensor4d(values(9 * 64 * 64 * 3, 3), [9, 64, 64, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2], 'int32'), 3);
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, logits.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!;
    const out = { loss: (await loss.data())[0]!, weights: await Promise.all(vars.map((v) => v.data() as Promise<Float32Array>)) };
    tf.dispose([loss, x, y]);
    opt.dispose();
    model.dispose();
    return out;
  };
  const cpu = await step('wasm');
  const gpu = await step('webgpu');
  assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-4 * Math.abs(cpu.loss), `loss ${gpu.loss} vs ${cpu.loss}`);
  // Adam divides by √v: weights whose gradient is ~0 move by up to the learning rate on sign noise alone.
  gpu.weights.forEach((w, i) => {
    let err = 0;
    for (let j = 0; j < w.length; j++) err = Math.max(err, Math.abs(w[j]! - cpu.weights[i]![j]!));
    assert.ok(err <= 2e-3, `weight tensor ${i} after one step differs by ${err} (learning rate 0.001)`);
  });

  const logs: string[] = [];
  const r = await trainModel(options({ log: (l) => logs.push(l), threads: 2 }));
  assert.equal(tf.getBackend(), 'webgpu');
  assert.ok(logs.some((l) => /threads: 1 \(.*webgpu trains on one thread\)/.test(l)), logs.join('\n'));
  assert.equal(r.metrics.length, 1);
  for (const m of r.metrics) assert.ok(Number.isFinite(m.trainLoss) && Number.isFinite(m.validationLoss!), JSON.stringify(m));
  const { predicted, probabilities } = await predictSplit(r.model, testSplit, 64, mean, 1, 9);
  assert.equal(predicted.length, testSplit.n);
  for (let i = 0; i < testSplit.n; i++) {
    let s = 0;
    for (let c = 0; c < 3; c++) s += probabilities[i * 3 + c]!;
    assert.ok(Math.abs(s - 1) < 1e-4, `probabilities of image ${i} sum to ${s}`);
  }
  r.model.dispose();
});
