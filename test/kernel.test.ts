/** The wasm gradient kernels (train/wasm-kernels.ts: Conv2DBackpropFilter, Conv2DBackpropInput, BatchMatMul with transposed operands) against the cpu backend's. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../train/backends.ts';
import { fastWasmGradients, matMulPlan, missingWasmKernels } from '../train/wasm-kernels.ts';
import { values } from './helpers/training.ts';

interface Case { b: number; h: number; w: number; c: number; fh: number; fw: number; o: number; stride: number; pad: 'same' | 'valid' }

/** dL/dw and dL/dx for L = Σ conv(x, w) · r (r fixed random), on the active backend. */
function grads(k: Case, seed: number): { dw: Float32Array; dx: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(k.b * k.h * k.w * k.c, seed), [k.b, k.h, k.w, k.c]);
    const w = tf.tensor4d(values(k.fh * k.fw * k.c * k.o, seed + 1), [k.fh, k.fw, k.c, k.o]);
    const y0 = tf.conv2d(x, w, k.stride, k.pad);
    const r = tf.tensor(values(y0.size, seed + 2), y0.shape);
    const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, k.stride, k.pad), r)));
    const [dx, dw] = g([x, w]);
    return { dw: dw!.dataSync() as Float32Array, dx: dx!.dataSync() as Float32Array };
  });
}

const CASES: Case[] = [];
{
  let s = 7;
  const rnd = (n: number) => { s = (s * 1103515245 + 12345) % 2 ** 31; return s % n; };
  for (const stride of [1, 2, 4]) {
    for (const pad of ['same', 'valid'] as const) {
      for (const f of [1, 3, 5]) {
        const h = f + 2 + rnd(12);
        CASES.push({ b: 1 + rnd(3), h, w: f + 1 + rnd(12), c: 1 + rnd(4), fh: f, fw: f === 1 ? 1 : f - (rnd(2) * 2), o: 1 + rnd(5), stride, pad });
      }
    }
  }
  CASES.push({ b: 2, h: 27, w: 27, c: 3, fh: 11, fw: 11, o: 8, stride: 4, pad: 'same' }); // AlexNet-like first layer
  CASES.push({ b: 3, h: 13, w: 13, c: 16, fh: 3, fw: 3, o: 24, stride: 1, pad: 'same' }); // AlexNet-like later layers
  CASES.push({ b: 2, h: 12, w: 9, c: 5, fh: 5, fw: 3, o: 7, stride: 3, pad: 'valid' }); // stride not dividing the size
  CASES.push({ b: 1, h: 10, w: 11, c: 2, fh: 4, fw: 2, o: 3, stride: 2, pad: 'same' }); // even filters: asymmetric padding
}

/** Largest absolute difference and largest expected magnitude. */
function compare(got: Float32Array, exp: Float32Array): { err: number; scale: number } {
  assert.equal(got.length, exp.length);
  let err = 0;
  let scale = 1e-6;
  for (let j = 0; j < exp.length; j++) {
    err = Math.max(err, Math.abs(got[j]! - exp[j]!));
    scale = Math.max(scale, Math.abs(exp[j]!));
  }
  return { err, scale };
}

test('wasm has every kernel a convnet needs to train (with ours registered)', async () => {
  await selectBackend('wasm');
  assert.deepEqual(missingWasmKernels(), []);
});

test('wasm Conv2DBackpropFilter and our Conv2DBackpropInput match the cpu backend on random shapes, strides 1–4, same/valid padding', async () => {
  const expected: { dw: Float32Array; dx: Float32Array }[] = [];
  await selectBackend('cpu');
  CASES.forEach((k, i) => expected.push(grads(k, 100 + i)));
  await selectBackend('wasm');
  assert.ok(fastWasmGradients(), 'the fast kernels are registered by default');
  const before = tf.memory().numTensors;
  CASES.forEach((k, i) => {
    const got = grads(k, 100 + i);
    const exp = expected[i]!;
    const w = compare(got.dw, exp.dw);
    assert.ok(w.err <= 1e-4 * w.scale + 1e-5, `dw differs by ${w.err} (scale ${w.scale}) for ${JSON.stringify(k)}`);
    const x = compare(got.dx, exp.dx);
    assert.ok(x.err <= 1e-4 * x.scale + 1e-5, `dx differs by ${x.err} (scale ${x.scale}) for ${JSON.stringify(k)}`);
  });
  assert.equal(tf.memory().numTensors, before, 'the kernels leak no tensors');
});

test('matMulPlan moves only the small operands', () => {
  // A dense layer's input gradient dx = dy·Wᵀ (16 rows, 4608 → 2048): (W·dyᵀ)ᵀ, never a transposed W.
  assert.equal(matMulPlan(16, 2048, 4608, false, true), 'swapped');
  // Its weight gradient dW = xᵀ·dy: transpose the small x.
  assert.equal(matMulPlan(4608, 16, 2048, true, false), 'direct');
  assert.equal(matMulPlan(16, 300, 200, true, true), 'swapped');
  assert.equal(matMulPlan(5, 7, 3, false, true), 'direct');
});

test('wasm matMul with transposed operands (dense layer gradients) matches the cpu backend', async () => {
  const shapes: [number[], number[], boolean, boolean][] = [
    [[7, 5], [7, 3], true, false], [[32, 300], [32, 17], true, false], [[2, 6, 4], [2, 6, 5], true, false],
    [[5, 7], [3, 7], false, true], [[6, 4], [5, 6], true, true], [[4, 6], [6, 5], false, false],
    // Planned as (b·aᵀ)ᵀ / (b·a)ᵀ (see matMulPlan): dx = dy·Wᵀ of a dense layer, both operands transposed, batched.
    [[16, 300], [200, 300], false, true], [[300, 16], [200, 300], true, true], [[2, 3, 40], [2, 30, 40], false, true],
  ];
  for (const [sa, sb, ta, tb] of shapes.slice(6)) {
    const m = ta ? sa.at(-1)! : sa.at(-2)!;
    assert.equal(matMulPlan(m, ta ? sa.at(-2)! : sa.at(-1)!, tb ? sb.at(-2)! : sb.at(-1)!, ta, tb), 'swapped', `${sa} × ${sb} takes the swapped plan`);
  }
  const run = () => shapes.map(([sa, sb, ta, tb], i) => tf.tidy(() => {
    const a = tf.tensor(values(sa.reduce((x, y) => x * y), 40 + i), sa);
    const b = tf.tensor(values(sb.reduce((x, y) => x * y), 80 + i), sb);
    return tf.matMul(a, b, ta, tb).dataSync() as Float32Array;
  }));
  await selectBackend('cpu');
  const exp = run();
  await selectBackend('wasm');
  const before = tf.memory().numTensors;
  const got = run();
  got.forEach((g, i) => {
    const c = compare(g, exp[i]!);
    assert.ok(c.err <= 1e-5 * c.scale + 1e-6, `matMul ${JSON.stringify(shapes[i])} differs by ${c.err}`);
  });
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
});
