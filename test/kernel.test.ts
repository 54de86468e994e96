/** The wasm Conv2DBackpropFilter kernel (train/wasm-kernels.ts) against the cpu backend's gradients. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../train/backends.ts';
import { missingWasmKernels } from '../train/wasm-kernels.ts';

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

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
}

test('wasm has every kernel a convnet needs to train (with ours registered)', async () => {
  await selectBackend('wasm');
  assert.deepEqual(missingWasmKernels(), []);
});

test('wasm Conv2DBackpropFilter matches the cpu backend on random shapes, strides 1/2/4, same/valid padding', async () => {
  const expected: { dw: Float32Array; dx: Float32Array }[] = [];
  await selectBackend('cpu');
  CASES.forEach((k, i) => expected.push(grads(k, 100 + i)));
  await selectBackend('wasm');
  const before = tf.memory().numTensors;
  CASES.forEach((k, i) => {
    const got = grads(k, 100 + i);
    const exp = expected[i]!;
    assert.equal(got.dw.length, exp.dw.length, `case ${JSON.stringify(k)}`);
    let maxErr = 0;
    let scale = 1e-6;
    for (let j = 0; j < exp.dw.length; j++) {
      maxErr = Math.max(maxErr, Math.abs(got.dw[j]! - exp.dw[j]!));
      scale = Math.max(scale, Math.abs(exp.dw[j]!));
    }
    assert.ok(maxErr <= 1e-4 * scale + 1e-5, `dw differs by ${maxErr} (scale ${scale}) for ${JSON.stringify(k)}`);
    let dxErr = 0;
    for (let j = 0; j < exp.dx.length; j++) dxErr = Math.max(dxErr, Math.abs(got.dx[j]! - exp.dx[j]!));
    assert.ok(dxErr < 1e-3, `dx differs by ${dxErr} for ${JSON.stringify(k)}`);
  });
  assert.equal(tf.memory().numTensors, before, 'the kernel leaks no tensors');
});
