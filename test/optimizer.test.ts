/**
 * train/optimizer.ts: the data-parallel update (`updateChunk`) is tfjs-core's optimizer step bit for bit, on the wasm
 * and cpu backends, and optimizer state goes to flat arrays and back without loss.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../train/backends.ts';
import {
  disposeOptimizer, makeOptimizer, nextPowers, readOptimizerState, slotCount, updateChunk, writeOptimizerState,
  type OptimizerConfig,
} from '../train/optimizer.ts';
import { Rng } from '../util/rng.ts';

const CONFIGS: OptimizerConfig[] = [
  { kind: 'nesterov', learningRate: 0.01, momentum: 0.9 },
  { kind: 'nesterov', learningRate: 0.3, momentum: 0.37 },
  { kind: 'adam', learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  { kind: 'adam', learningRate: 0.05, beta1: 0.8, beta2: 0.95, epsilon: 1e-3 },
];

/** Values over many magnitudes, both signs, some zeros and subnormal-range ones. */
function values(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(10);
    out[i] = k === 0 ? 0 : k === 1 ? (rng.next() - 0.5) * 1e-39 : (rng.next() - 0.5) * 10 ** (rng.int(12) - 8);
  }
  return out;
}

/** Bit patterns, so that −0 ≠ 0 and NaN = NaN. */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

for (const backend of ['wasm', 'cpu'] as const) {
  for (const c of CONFIGS) {
    test(`updateChunk equals ${c.kind} (${JSON.stringify(c)}) applyGradients bit for bit on ${backend}, over 4 steps of 1, 2 and 3 gradient regions`, async () => {
      await selectBackend(backend);
      const rng = new Rng(7);
      const shapes = [[5, 3], [17], [2, 2, 3]];
      const vars = shapes.map((s, i) => tf.variable(tf.tensor(values(rng, s.reduce((a, b) => a * b, 1)), s, 'float32'), true, `opt-test-${backend}-${c.kind}-${c.learningRate}-${i}`));
      const p = vars.reduce((n, v) => n + v.size, 0);
      const opt = makeOptimizer(c);
      const weights = new Float32Array(p);
      let at = 0;
      for (const v of vars) {
        weights.set(v.dataSync() as Float32Array, at);
        at += v.size;
      }
      const slots = new Float32Array(slotCount(c.kind) * p);
      let powers = (await readOptimizerState(opt, c.kind, vars, new Float32Array(slotCount(c.kind) * p))).powers; // tfjs's own start
      try {
        for (let step = 0; step < 4; step++) {
          // Three ranks' gradients; tfjs gets their sum rounded once to float32, as the all-reduce makes it.
          const threads = [1, 2, 3, 2][step]!;
          const grads = new Float32Array(threads * p);
          for (let r = 0; r < threads; r++) grads.set(values(rng, p), r * p);
          const summed = new Float32Array(p).map((_, i) => {
            let s = grads[i]!;
            for (let r = 1; r < threads; r++) s += grads[r * p + i]!;
            return s;
          });
          tf.tidy(() => {
            let o = 0;
            opt.applyGradients(vars.map((v) => {
              const g = tf.tensor(summed.subarray(o, o + v.size), v.shape, 'float32');
              o += v.size;
              return { name: v.name, tensor: g };
            }));
          });
          // Two chunks, as two ranks would do them.
          updateChunk(c, powers, grads, threads, weights, slots, 0, 11);
          updateChunk(c, powers, grads, threads, weights, slots, 11, p);
          powers = nextPowers(c, powers);
          const theirs = new Float32Array(p);
          at = 0;
          for (const v of vars) {
            theirs.set(v.dataSync() as Float32Array, at);
            at += v.size;
          }
          assert.deepEqual(bits(weights), bits(theirs), `weights after step ${step + 1}`);
          const state = new Float32Array(slots.length);
          const read = await readOptimizerState(opt, c.kind, vars, state);
          assert.deepEqual(bits(slots), bits(state), `optimizer slots after step ${step + 1}`);
          assert.equal(read.iterations, step + 1);
          assert.deepEqual(read.powers, powers, 'Adam\'s running powers');
        }
      } finally {
        disposeOptimizer(opt);
        for (const v of vars) v.dispose();
      }
    });
  }
}

test('writeOptimizerState puts flat state into an optimizer that then steps exactly as updateChunk does, without leaking tensors', async () => {
  await selectBackend('wasm');
  for (const c of CONFIGS) {
    const rng = new Rng(3);
    const vars = [tf.variable(tf.tensor(values(rng, 6), [2, 3]), true, `ws-${c.kind}-${c.learningRate}-a`), tf.variable(tf.tensor(values(rng, 4), [4]), true, `ws-${c.kind}-${c.learningRate}-b`)];
    const p = 10;
    const slots = values(rng, slotCount(c.kind) * p).map(Math.abs); // Adam's second moments are ≥ 0
    const powers: [number, number] | null = c.kind === 'adam' ? [Math.fround(0.5), Math.fround(0.7)] : null;
    const opt = makeOptimizer(c);
    try {
      await writeOptimizerState(opt, c.kind, vars, slots, 41, powers);
      const before = tf.memory().numTensors;
      await writeOptimizerState(opt, c.kind, vars, slots, 41, powers); // again: the first call's slot variables go
      assert.equal(tf.memory().numTensors, before, 'replacing the state frees the old slots');
      const back = new Float32Array(slots.length);
      const r = await readOptimizerState(opt, c.kind, vars, back);
      assert.deepEqual(bits(back), bits(slots));
      assert.equal(r.iterations, 41);
      assert.deepEqual(r.powers, powers);
      const weights = new Float32Array(p);
      weights.set(vars[0]!.dataSync() as Float32Array, 0);
      weights.set(vars[1]!.dataSync() as Float32Array, 6);
      const g = values(rng, p);
      tf.tidy(() => opt.applyGradients([
        { name: vars[0]!.name, tensor: tf.tensor(g.subarray(0, 6), [2, 3]) },
        { name: vars[1]!.name, tensor: tf.tensor(g.subarray(6), [4]) },
      ]));
      updateChunk(c, powers, g, 1, weights, slots, 0, p);
      assert.deepEqual(bits(weights), bits(Float32Array.from([...vars[0]!.dataSync(), ...vars[1]!.dataSync()])), `${c.kind}: the step after writing`);
    } finally {
      disposeOptimizer(opt);
      for (const v of vars) v.dispose();
    }
  }
});

test('readOptimizerState rejects an optimizer whose slots belong to another model', async () => {
  await selectBackend('wasm');
  const c: OptimizerConfig = { kind: 'nesterov', learningRate: 0.1, momentum: 0.9 };
  const a = tf.variable(tf.zeros([3]), true, 'other-model-a');
  const b = tf.variable(tf.zeros([2]), true, 'other-model-b');
  const opt = makeOptimizer(c);
  try {
    tf.tidy(() => opt.applyGradients([{ name: a.name, tensor: tf.ones([3]) }]));
    await assert.rejects(readOptimizerState(opt, c.kind, [a, b], new Float32Array(5)), /holds 1 slot tensors, the model needs 2/);
  } finally {
    disposeOptimizer(opt);
    a.dispose();
    b.dispose();
  }
});
