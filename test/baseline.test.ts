/** The random-forest baseline: train/random-forest.ts, train/baseline.ts and the `baseline` stage. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runSklearn, writeForestDataset } from '../bench/baseline.bench.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { memoryLogger } from '../util/log.ts';
import { EvalMetricsSchema, wilsonInterval } from '../schemas/metrics.ts';
import { baselineStage } from '../stages/index.ts';
import { Rng } from '../util/rng.ts';
import { pixelFeatures } from '../train/baseline.ts';
import { fitForest, fitForestSync, leafOf, predict, predictProba, resolveMaxFeatures, type Forest, type ForestData } from '../train/random-forest.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

/**
 * A learnable uint8 set: `classes` classes, `d` features; class k raises features k·4 .. k·4+3 by `signal` on top of
 * uniform noise in [0, 200), so a forest can learn it but not perfectly.
 */
function synthetic(n: number, d: number, classes: number, seed: number, signal = 45): ForestData & { y: Uint8Array } {
  const rng = new Rng(seed);
  const x = new Uint8Array(n * d);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(classes);
    y[i] = k;
    for (let f = 0; f < d; f++) x[i * d + f] = Math.floor(rng.next() * 200) + (f >> 2 === k ? Math.floor(rng.next() * signal) + 10 : 0);
  }
  return { x, n, d, y, classes };
}

function accuracy(forest: Forest, data: ForestData): number {
  const p = predict(forest, data.x);
  let ok = 0;
  for (let i = 0; i < data.n; i++) if (p[i] === data.y[i]) ok++;
  return ok / data.n;
}

function sameTrees(a: Forest, b: Forest): boolean {
  return a.trees.length === b.trees.length && a.trees.every((t, i) => {
    const u = b.trees[i]!;
    return t.nodes === u.nodes && Buffer.from(t.feature.buffer).equals(Buffer.from(u.feature.buffer)) && Buffer.from(t.threshold.buffer).equals(Buffer.from(u.threshold.buffer)) && Buffer.from(t.value.buffer).equals(Buffer.from(u.value.buffer));
  });
}

describe('random forest', () => {
  const trainSet = synthetic(500, 40, 4, 1);
  const testSet = synthetic(400, 40, 4, 2);

  test('learns a learnable set: test accuracy far above chance, training set fitted', () => {
    const forest = fitForestSync(trainSet, { trees: 30, seed: 3 });
    const acc = accuracy(forest, testSet);
    assert.ok(acc > 0.6, `test accuracy ${acc} (chance 0.25)`);
    assert.ok(accuracy(forest, trainSet) > 0.99, 'trees grown until pure fit their training set');
    const proba = predictProba(forest, testSet.x.subarray(0, 40 * 3));
    for (let r = 0; r < 3; r++) assert.ok(Math.abs(proba.subarray(r * 4, r * 4 + 4).reduce((a, b) => a + b, 0) - 1) < 1e-5, 'probabilities sum to 1');
  });

  test('deterministic by seed, and the same whatever the thread count', async () => {
    const a = fitForestSync(trainSet, { trees: 6, seed: 7 });
    const b = fitForestSync(trainSet, { trees: 6, seed: 7 });
    assert.ok(sameTrees(a, b), 'same seed → same trees');
    const threaded = await fitForest(trainSet, { trees: 6, seed: 7 }, { threads: 2 });
    assert.equal(threaded.threads, 2);
    assert.equal(threaded.fallback, undefined, 'worker threads ran');
    assert.ok(sameTrees(a, threaded), '2 worker threads → the same trees');
    assert.ok(!sameTrees(a, fitForestSync(trainSet, { trees: 6, seed: 8 })), 'another seed → other trees');
  });

  test('an abort stops the fit, on the calling thread and on workers', async () => {
    for (const threads of [1, 2]) {
      const ac = new AbortController();
      await assert.rejects(fitForest(trainSet, { trees: 40 }, { threads, signal: ac.signal, onTree: (built) => built === 2 && ac.abort() }), { name: 'AbortError' }, `threads ${threads}`);
    }
  });

  test('a pure node stops; thresholds are midpoints; minSamplesSplit and maxDepth stop growth', () => {
    const one = fitForestSync({ x: Uint8Array.from([1, 2, 3, 4, 5, 6]), n: 6, d: 1, y: [1, 1, 1, 1, 1, 1], classes: 2 }, { trees: 2 });
    for (const t of one.trees) {
      assert.equal(t.nodes, 1, 'a pure root is a leaf');
      assert.deepEqual(Array.from(t.value), [0, 1]);
    }
    // Two features, the second separates perfectly; without bootstrap every tree is root + two pure leaves.
    const x = Uint8Array.from([7, 10, 7, 12, 7, 20, 7, 30]);
    const sep = fitForestSync({ x, n: 4, d: 2, y: [0, 0, 1, 1], classes: 2 }, { trees: 3, bootstrap: false, maxFeatures: 'all' });
    for (const t of sep.trees) {
      assert.equal(t.nodes, 3);
      assert.equal(t.feature[0], 1, 'the constant feature is never used');
      assert.equal(t.threshold[0], 16, 'midpoint of 12 and 20');
      assert.deepEqual([t.feature[1], t.feature[2]], [-1, -1]);
    }
    assert.deepEqual(Array.from(predict(sep, Uint8Array.from([0, 16, 0, 17]))), [0, 1], '16 goes left, 17 right');
    const stump = fitForestSync(trainSet, { trees: 2, minSamplesSplit: 10_000 });
    assert.ok(stump.trees.every((t) => t.nodes === 1), 'no node has minSamplesSplit samples');
    const shallow = fitForestSync(trainSet, { trees: 2, maxDepth: 2 });
    assert.ok(shallow.trees.every((t) => t.depth <= 2 && t.nodes <= 7));
  });

  test('maxFeatures: sqrt by default, features drawn per split, constants skipped as scikit-learn does', () => {
    assert.equal(resolveMaxFeatures('sqrt', 2500), 50);
    assert.equal(resolveMaxFeatures('log2', 2500), 11);
    assert.equal(resolveMaxFeatures('all', 2500), 2500);
    assert.equal(resolveMaxFeatures(0.02, 2500), 50);
    assert.equal(resolveMaxFeatures(0.0001, 2500), 1);
    assert.throws(() => resolveMaxFeatures(1.5, 10), /share in \(0, 1\]/);
    assert.equal(fitForestSync(trainSet, { trees: 1 }).maxFeatures, 6, '⌊√40⌋');
    // 10 features; only feature 0 separates the classes, the others are noise.
    const rng = new Rng(5);
    const n = 200;
    const x = new Uint8Array(n * 10);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      for (let f = 0; f < 10; f++) x[i * 10 + f] = f === 0 ? 100 * y[i]! + rng.int(50) : rng.int(256);
    }
    const roots = (mf: 'all' | 'sqrt' | number) => fitForestSync({ x, n, d: 10, y, classes: 2 }, { trees: 200, maxFeatures: mf, seed: 1 }).trees.map((t) => t.feature[0]!);
    assert.ok(roots('all').every((f) => f === 0), 'trying all features always finds the separating one');
    const share = (r: number[]) => r.filter((f) => f === 0).length / r.length;
    const s1 = share(roots(0.1));
    assert.ok(s1 > 0.03 && s1 < 0.2, `one feature per split: the separating one is the root in ${s1} of trees (expected 0.1)`);
    const s3 = share(roots('sqrt'));
    assert.ok(s3 > 0.2 && s3 < 0.42, `3 features per split: root share ${s3} (expected 0.3)`);
    // All features but one constant: the search goes on past constant features until it finds a usable one.
    const cx = new Uint8Array(n * 10).fill(9);
    for (let i = 0; i < n; i++) cx[i * 10 + 4] = 100 * y[i]! + rng.int(50);
    const cf = fitForestSync({ x: cx, n, d: 10, y, classes: 2 }, { trees: 20, maxFeatures: 0.1 });
    assert.ok(cf.trees.every((t) => t.feature[0] === 4 && t.nodes === 3));
  });

  test('bootstrap: each tree sees a sample of size n drawn with replacement', () => {
    // With one tree on distinct values and labels = index parity, every distinct sample ends in its own leaf:
    // the leaves count the distinct samples drawn, about (1 − 1/e)·n.
    const n = 1000;
    const x = new Uint8Array(n * 2);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x[i * 2] = i & 255;
      x[i * 2 + 1] = i >> 8;
      y[i] = (i * 7919) % 3 === 0 ? 1 : 0;
    }
    const forest = fitForestSync({ x, n, d: 2, y, classes: 2 }, { trees: 1, maxFeatures: 'all' });
    const leaves = (forest.trees[0]!.nodes + 1) / 2;
    assert.ok(leaves < n * 0.7, `${leaves} leaves: not every sample was drawn`);
    const all = fitForestSync({ x, n, d: 2, y, classes: 2 }, { trees: 1, maxFeatures: 'all', bootstrap: false });
    assert.ok((all.trees[0]!.nodes + 1) / 2 > leaves, 'without bootstrap the tree sees every sample');
    const leaf = leafOf(forest.trees[0]!, x, 2, 0);
    assert.equal(forest.trees[0]!.feature[leaf], -1);
  });

  test('bad input names the problem', () => {
    assert.throws(() => fitForestSync({ x: new Uint8Array(6), n: 3, d: 2, y: [0, 1, 2], classes: 2 }), /label 2 of sample 2 is not in 0\.\.1/);
    assert.throws(() => fitForestSync({ x: new Uint8Array(5), n: 3, d: 2, y: [0, 1, 0], classes: 2 }), /x has 5 values, expected n × d = 3 × 2/);
    assert.throws(() => fitForestSync(trainSet, { trees: 0 }), /trees must be an integer ≥ 1/);
    assert.throws(() => predict(fitForestSync(trainSet, { trees: 1 }), new Uint8Array(41)), /not rows of 40 features/);
  });

  test('agrees with scikit-learn RandomForestClassifier on the same data', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-sklearn-'));
    try {
      const tr = synthetic(800, 40, 4, 11, 30);
      const te = synthetic(1000, 40, 4, 12, 30);
      writeForestDataset(dir, { x: tr.x, y: tr.y, n: tr.n, d: tr.d }, { x: te.x, y: te.y, n: te.n, d: te.d }, 4);
      const sk = runSklearn(dir, { trees: 50, seed: 0, jobs: 1 });
      if ('missing' in sk) return t.skip(`scikit-learn unavailable: ${sk.missing}`);
      const forest = fitForestSync(tr, { trees: 50, seed: 0 });
      const ours = accuracy(forest, te);
      const nodes = forest.trees.reduce((a, u) => a + u.nodes, 0) / forest.trees.length;
      t.diagnostic(`accuracy: ours ${ours}, scikit-learn ${sk.sklearn} ${sk.accuracy}; nodes/tree: ours ${nodes}, scikit-learn ${sk.mean_nodes}`);
      assert.ok(Math.abs(ours - sk.accuracy) < 0.05, `ours ${ours}, scikit-learn ${sk.accuracy}`);
      assert.ok(Math.abs(nodes / sk.mean_nodes - 1) < 0.05, `same tree sizes: ours ${nodes} nodes/tree, scikit-learn ${sk.mean_nodes}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('baseline stage', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'baseline-'));
    writeTestShards(dir, { size: 16, perClass: { train: 15, validation: 2, test: 6 }, seed: 8 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('pixel features are the downsampled grayscale image, in order', async () => {
    const f = await pixelFeatures(join(dir, 'shards', 'test'), 4, true);
    assert.equal(f.n, 18);
    assert.equal(f.d, 16);
    assert.equal(f.x.length, 18 * 16);
    assert.deepEqual(Array.from(f.labels.slice(0, 3)), [0, 1, 2]);
    // Class 0 is reddish (200,40,40), class 1 greenish: luminance differs accordingly.
    const avg = (r: number) => f.x.subarray(r * 16, (r + 1) * 16).reduce((a, b) => a + b, 0) / 16;
    assert.ok(avg(1) > avg(0), 'green is brighter than red in luminance');
    const rgb = await pixelFeatures(join(dir, 'shards', 'test'), 4, false);
    assert.equal(rgb.d, 48);
  });

  test('defaults are the study\'s forest', () => {
    const b = resolveConfig({}).baseline;
    assert.deepEqual({ trees: b.trees, pixels: b.pixels, grayscale: b.grayscale, maxFeatures: b.maxFeatures, maxSamples: b.maxSamples, minSamplesSplit: b.minSamplesSplit }, { trees: 100, pixels: 50, grayscale: true, maxFeatures: 'sqrt', maxSamples: null, minSamplesSplit: 2 });
  });

  test('trains on train, scores test, and writes EvalMetrics with a Wilson interval and a full confusion matrix', async () => {
    const config = resolveConfig({ image: { size: 16 }, train: { crop: 16 }, baseline: { trees: 10, pixels: 8 } });
    await runStageOnce(baselineStage, { config, dataDir: dir, log: memoryLogger() });
    const m = EvalMetricsSchema.parse(JSON.parse(readFileSync(join(dir, 'eval', 'baseline.json'), 'utf8')));
    assert.equal(m.model, 'random-forest');
    assert.equal(m.split, 'test');
    assert.equal(m.n, 18);
    assert.equal(m.crops, null);
    assert.equal(m.details.features, 64);
    assert.equal(m.details.featuresPerSplit, 8);
    assert.equal(m.confusionMatrix.flat().reduce((a, b) => a + b, 0), m.n);
    const correct = m.confusionMatrix.reduce((a, row, i) => a + row[i]!, 0);
    assert.equal(m.accuracy, correct / m.n);
    assert.deepEqual(m.accuracyInterval95, wilsonInterval(correct, m.n));
    assert.ok(m.accuracyInterval95[0] <= m.accuracy && m.accuracy <= m.accuracyInterval95[1]);
    assert.ok(m.accuracy > 0.6, `accuracy ${m.accuracy} on colour-coded classes (chance ${m.chance})`);
  });
});
