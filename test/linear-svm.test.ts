/** The linear-SVM baseline (train/linear-svm.ts) against scikit-learn's LinearSVC on the same data. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runSklearnSvc, writeForestDataset, type LabelledSet } from '../bench/baseline.bench.ts';
import { Rng } from '../util/rng.ts';
import { fitLinearSvm, minMaxScale, predictLinearSvm } from '../train/linear-svm.ts';

/** Class k raises features 3k .. 3k+2 by up to `signal` on top of uniform noise in [20, 180): linearly learnable, not perfectly. */
function synthetic(n: number, d: number, classes: number, seed: number, signal = 120): LabelledSet {
  const rng = new Rng(seed);
  const x = new Uint8Array(n * d);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(classes);
    y[i] = k;
    for (let f = 0; f < d; f++) x[i * d + f] = 20 + Math.floor(rng.next() * 160) + (Math.floor(f / 3) === k ? Math.floor(rng.next() * signal) : 0);
  }
  return { x, y, n, d };
}

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

test('minMaxScale maps each training feature onto [0, 1] and the others by the same map; a constant feature becomes 0', () => {
  const fit = Uint8Array.from([10, 5, 7, 30, 5, 7, 20, 5, 7]);
  const [a, b] = minMaxScale(fit, 3, Uint8Array.from([40, 9, 7]));
  assert.deepEqual(Array.from(a!), [0, 0, 0, 1, 0, 0, 0.5, 0, 0]);
  assert.deepEqual(Array.from(b!), [1.5, 0, 0]);
});

test('learns a linearly separable-ish set and predicts as scikit-learn LinearSVC does', (t) => {
  const classes = 4;
  const train = synthetic(300, 30, classes, 1);
  const testSet = synthetic(300, 30, classes, 2);
  const [xs, xt] = minMaxScale(train.x, train.d, testSet.x);
  const svm = fitLinearSvm(xs!, train.y, train.n, train.d, classes, { seed: 0 });
  assert.ok(svm.converged.every(Boolean), `converged in ${svm.iterations.join(', ')} passes`);
  const p = predictLinearSvm(svm, xt!);
  const acc = p.reduce((a, v, i) => a + (v === testSet.y[i] ? 1 : 0), 0) / testSet.n;
  assert.ok(acc > 0.6, `test accuracy ${acc} (chance 0.25)`);
  // Another coordinate order converges to the same optimum (up to the tolerance): the same predictions, nearly.
  const other = predictLinearSvm(fitLinearSvm(xs!, train.y, train.n, train.d, classes, { seed: 9 }), xt!);
  assert.ok(other.filter((v, i) => v === p[i]).length >= testSet.n * 0.98);
  const dir = mkdtempSync(join(tmpdir(), 'svm-test-'));
  dirs.push(dir);
  writeForestDataset(dir, train, testSet, classes);
  const s = runSklearnSvc(dir, { seed: 0 });
  if ('missing' in s) return t.skip(`scikit-learn unavailable: ${s.missing}`);
  const agree = s.predicted.filter((v, i) => v === p[i]).length / testSet.n;
  assert.ok(agree >= 0.97, `agrees with scikit-learn on ${(agree * 100).toFixed(1)}% of test samples`);
  assert.ok(Math.abs(acc - s.accuracy) <= 0.02, `accuracy ${acc} vs scikit-learn ${s.accuracy}`);
});

test('bad input is named', () => {
  assert.throws(() => fitLinearSvm(new Float32Array(6), [0, 1], 2, 4, 2), /x has 6 values and y 2 labels for n = 2, d = 4/);
  assert.throws(() => fitLinearSvm(new Float32Array(4), [0, 2], 2, 2, 2), /label 2 of sample 1 is not in 0..1/);
  assert.throws(() => fitLinearSvm(new Float32Array(4), [0, 1], 2, 2, 2, { C: 0 }), /must be positive/);
});
