/** Backend selection (train/backends.ts) when the optional packages (tfjs-node, tfjs-node-gpu, webgpu) are absent. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../train/backends.ts';

test('auto falls back past the missing optional backends to wasm and says why', async () => {
  const lines: string[] = [];
  const sel = await selectBackend('auto', (l) => lines.push(l));
  // Here tfjs-node(-gpu) and webgpu cannot load; on a machine where they do, auto picks them instead.
  assert.equal(sel.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(sel.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow', 'webgpu']);
  assert.match(sel.skipped[0]!.reason, /@tensorflow\/tfjs-node-gpu did not load/);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /backend wasm .*chosen by auto; skipped tensorflow-gpu \(.+\), tensorflow \(.+\), webgpu \(.+\)/);
});

test('an explicitly requested backend that cannot load is an error saying why; cpu always works', async () => {
  await assert.rejects(selectBackend('tensorflow'), /train\.backend=tensorflow: @tensorflow\/tfjs-node did not load/);
  const cpu = await selectBackend('cpu');
  assert.equal(cpu.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
});
