/**
 * The parts of `inspect`: which covers are shown, accuracy by group, size classes, filter pictures, and saliency maps
 * and penultimate activations of small untrained models (cpu backend).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Prediction } from '../schemas/predictions.ts';
import { accuracyByGroup, pickConfusions, pickExamples, pickSaliencyRows, sampleRows, sizeClasses } from '../train/inspect-select.ts';
import { filterChange, filterGrid, heatOverlay, resizeMap } from '../train/visualise.ts';
import * as tf from '@tensorflow/tfjs-core';
import type { ModelSpec } from '../schemas/model-params.ts';
import { selectBackend } from '../train/backends.ts';
import { buildModel } from '../train/models.ts';
import { firstConvKernel, penultimate, planSaliency, saliencyMaps } from '../train/saliency.ts';

const p = (row: number, label: number, predicted: number, confidence: number, itemId: number | null = row): Prediction => ({ row, itemId, artId: null, label, predicted, confidence, trueProbability: label === predicted ? confidence : 0.1 });
const PS = [p(0, 0, 0, 0.9), p(1, 0, 0, 0.6), p(2, 0, 1, 0.8), p(3, 0, 1, 0.5), p(4, 1, 1, 0.7), p(5, 1, 0, 0.4), p(6, 0, 2, 0.95)];

describe('inspect: covers shown', () => {
  it('picks the most confident right and wrong covers per genre', () => {
    assert.deepEqual(pickExamples(PS, 3, 2), [
      { label: 0, right: [0, 1], wrong: [6, 2] },
      { label: 1, right: [4], wrong: [5] },
      { label: 2, right: [], wrong: [] },
    ]);
  });
  it('lists confusion cells by count, each with its most confident covers', () => {
    assert.deepEqual(pickConfusions(PS, 1), [
      { label: 0, predicted: 1, count: 2, rows: [2] },
      { label: 0, predicted: 2, count: 1, rows: [6] },
      { label: 1, predicted: 0, count: 1, rows: [5] },
    ]);
  });
  it('draws saliency for right covers first, then wrong ones', () => {
    assert.deepEqual(pickSaliencyRows(PS, 2, 3), [0, 1, 6, 4, 5]);
  });
  it('samples at most max rows, seeded and sorted', () => {
    assert.deepEqual(sampleRows(4, 10, 1), [0, 1, 2, 3]);
    const s = sampleRows(100, 10, 1);
    assert.equal(s.length, 10);
    assert.deepEqual(s, [...s].sort((a, b) => a - b));
    assert.deepEqual(sampleRows(100, 10, 1), s);
    assert.notDeepEqual(sampleRows(100, 10, 2), s);
  });
});

describe('inspect: accuracy by group', () => {
  it('counts correct predictions per group and leaves out rows without one', () => {
    const g = accuracyByGroup(PS, (x) => (x.row === 6 ? null : x.row % 2 ? 'odd' : 'even'));
    assert.deepEqual(g, [{ value: 'even', n: 3, correct: 2 }, { value: 'odd', n: 3, correct: 1 }]);
  });
  it('names exact sizes when few, classes of the longer side when many', () => {
    const few = sizeClasses(new Map([[1, { width: 350, height: 350 }], [2, { width: 640, height: 640 }], [3, { width: null, height: 10 }]]));
    assert.deepEqual([...few.values()], ['350×350', '640×640', null]);
    const many = new Map(Array.from({ length: 12 }, (_, i) => [i, { width: 100 + 200 * i, height: 90 }] as const));
    const c = sizeClasses(many);
    assert.equal(c.get(0), '< 300 px');
    assert.equal(c.get(1), '300–599 px');
    assert.equal(c.get(4), '600–999 px');
    assert.equal(c.get(5), '1000–1999 px');
    assert.equal(c.get(11), '≥ 2000 px');
  });
});

describe('inspect: pictures', () => {
  it('scales each filter to its own range in the grid', () => {
    // Two 1×1 RGB filters: [1, 2, 3] and [−5, 0, 5] (layout [kh, kw, cin, F]: channel-major, filter last).
    const kernel = Float32Array.from([1, -5, 2, 0, 3, 5]);
    const g = filterGrid(kernel, [1, 1, 3, 2], 1);
    assert.deepEqual([g.width, g.height], [2 * (1 + 2) + 2, 1 * (1 + 2) + 2]);
    const px = (x: number, y: number) => [...g.pixels.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3)];
    assert.deepEqual(px(2, 2), [0, 128, 255]);
    assert.deepEqual(px(5, 2), [0, 128, 255]);
    assert.deepEqual(px(0, 0), [255, 255, 255], 'gaps are white');
  });
  it('measures how far filters moved from their initialisation', () => {
    assert.equal(filterChange(Float32Array.from([2, 0, 0, 1]), Float32Array.from([1, 0, 0, 1]), 2), 0.5);
  });
  it('resamples a heat map and blends it only where it is hot', () => {
    const up = resizeMap(Float32Array.from([0, 1, 0, 1]), 2, 2, 4);
    assert.deepEqual([...up.subarray(0, 4)].map((v) => Math.round(v * 100) / 100), [0, 0.25, 0.75, 1]);
    const cover = new Uint8Array(2 * 2 * 3).fill(100);
    const o = heatOverlay(cover, 2, Float32Array.from([0, 1, 0, 1]), 2, 2, 2);
    assert.deepEqual([...o.pixels.subarray(0, 3)], [100, 100, 100], 'cold pixels show the cover');
    assert.notDeepEqual([...o.pixels.subarray(3, 6)], [100, 100, 100], 'hot pixels are coloured');
  });
});

describe('inspect: saliency and activations of a built model', () => {
  const spec = (convs: number): ModelSpec => ({
    architecture: 'ConvNet',
    convs: Array.from({ length: convs }, () => ({ filters: 4, kernelSize: [3, 3] as [number, number], strides: [1, 1] as [number, number], padding: 'same' as const, pool: null })),
    denses: [{ units: 8, dropout: 0 }],
    params: {},
  });

  it('maps each image to [0, 1] on the last conv layer (HiResCAM, Grad-CAM) or the input (no conv layer)', async () => {
    await selectBackend('cpu');
    const x = Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => Math.sin(i));
    for (const [convs, cam, method, grid] of [[2, 'hires-cam', 'hires-cam', [8, 8]], [2, 'grad-cam', 'grad-cam', [8, 8]], [0, 'hires-cam', 'gradient', [8, 8]]] as const) {
      const { model } = buildModel(spec(convs), 8, 3, 1);
      const plan = planSaliency(model, 8, cam);
      assert.equal(plan.method, method);
      assert.deepEqual(plan.grid, grid);
      assert.equal(plan.layer, convs ? 'conv1' : null);
      const maps = saliencyMaps(model, plan, x, 2, 8, [0, 2]);
      assert.equal(maps.length, 2 * 64);
      for (const m of [maps.subarray(0, 64), maps.subarray(64)]) {
        const hi = Math.max(...m);
        assert.ok(Math.min(...m) >= 0 && (hi === 1 || hi === 0), `${method}: scaled to [0, 1] by its maximum (${hi})`);
      }
      const { features, dims, probabilities } = penultimate(model, x, 2, 8);
      assert.equal(dims, 8);
      assert.equal(features.length, 16);
      const ref = model.predict(tf.tensor4d(x, [2, 8, 8, 3])) as tf.Tensor;
      const want = ref.dataSync();
      probabilities.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, 'the softmax of the head equals model.predict'));
      ref.dispose();
      const k = firstConvKernel(model);
      assert.deepEqual(k?.shape ?? null, convs ? [3, 3, 3, 4] : null);
      model.dispose();
    }
  });
});
