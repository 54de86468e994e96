/**
 * Benchmark: the linear-SVM baseline (train/linear-svm.ts) against scikit-learn's `LinearSVC` (liblinear, the
 * library the study used; bench/sklearn_linear_svc.py) on the same pixels, in the same run: fit seconds and test
 * accuracy. Both scale each feature to [0, 1] on the training set first.
 *
 * Data: as bench/baseline.bench.ts (the real covers of `shared/covers`, split by cover, seeded crops box-averaged to
 * 50×50 grayscale), at the size of the real-cover run (728 training images) and at 2,000 (the study's 8,000 is left
 * to a quieter machine: `BENCH_SVM_SIZES=728,8000`). Quick mode: 728 only. Runs alternate ours / scikit-learn / ours
 * so that load from other processes hits both alike.
 */
import { join } from 'node:path';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { decodeCovers, makeSet, runSklearnSvc, splitCovers, writeForestDataset, type LabelledSet } from './baseline.bench.ts';
import { Rng } from '../util/rng.ts';
import { fitLinearSvm, minMaxScale, predictLinearSvm } from '../train/linear-svm.ts';

function ours(train: LabelledSet, test: LabelledSet, classes: number): { seconds: number; accuracy: number; iterations: number; converged: boolean } {
  const t0 = performance.now();
  const [xs, xt] = minMaxScale(train.x, train.d, test.x);
  const svm = fitLinearSvm(xs!, train.y, train.n, train.d, classes, { seed: 0 });
  const seconds = (performance.now() - t0) / 1000;
  const p = predictLinearSvm(svm, xt!);
  let ok = 0;
  for (let i = 0; i < test.n; i++) if (p[i] === test.y[i]) ok++;
  return { seconds, accuracy: ok / test.n, iterations: Math.max(...svm.iterations), converged: svm.converged.every(Boolean) };
}

const bench: BenchModule = {
  title: 'Linear-SVM baseline (ours vs scikit-learn LinearSVC)',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const { images, labels, genres } = await decodeCovers(ctx.sharedDir);
    const rng = new Rng(2015);
    const { trainCovers, testCovers } = splitCovers(labels, genres.length, rng);
    const results: BenchResult[] = [];
    const sizes = process.env.BENCH_SVM_SIZES ? process.env.BENCH_SVM_SIZES.split(',').map(Number) : ctx.quick ? [728] : [728, 2000];
    for (const nTrain of sizes) {
      const nTest = Math.round(nTrain / 4);
      const train = makeSet(images, labels, trainCovers, nTrain, rng);
      const test = makeSet(images, labels, testCovers, nTest, rng);
      const dir = join(ctx.tmpDir, `svm-${nTrain}`);
      writeForestDataset(dir, train, test, genres.length);
      const shape = `${nTrain.toLocaleString('en')} × ${train.d.toLocaleString('en')} pixels scaled to [0, 1] (${genres.length} genres)`;
      const a = ours(train, test, genres.length);
      ctx.log(`ours: ${shape}: ${a.seconds.toFixed(2)} s, accuracy ${(a.accuracy * 100).toFixed(1)}%, ${a.iterations} passes${a.converged ? '' : ' (max_iter reached)'}`);
      const s = runSklearnSvc(dir, { seed: 0 });
      if ('missing' in s) ctx.log(`scikit-learn unavailable: ${s.missing}`);
      else ctx.log(`scikit-learn ${s.sklearn} LinearSVC: ${s.fit_seconds.toFixed(2)} s, accuracy ${(s.accuracy * 100).toFixed(1)}%, ${s.n_iter} passes${s.converged ? '' : ' (max_iter reached)'}`);
      const b = ours(train, test, genres.length);
      const seconds = Math.min(a.seconds, b.seconds);
      results.push(
        {
          name: `fit the linear SVM, ${shape}, 1 thread (best of 2)`,
          value: seconds,
          unit: 's',
          ...('missing' in s ? {} : { baseline: { name: `scikit-learn ${s.sklearn} LinearSVC (liblinear), MinMaxScaler included`, value: s.fit_seconds } }),
          notes: `ours ${a.iterations} passes${a.converged ? '' : ' (max_iter reached)'}${'missing' in s ? '' : `, scikit-learn ${s.n_iter}${s.converged ? '' : ' (max_iter reached)'}`}`,
        },
        {
          name: `test accuracy of that SVM (${nTest} crops of ${testCovers.length} held-out covers, chance ${(100 / genres.length).toFixed(1)}%)`,
          value: a.accuracy * 100,
          unit: '%',
          ...('missing' in s ? {} : { baseline: { name: 'scikit-learn, same data', value: s.accuracy * 100 }, target: 'within 3 points of scikit-learn', met: Math.abs(a.accuracy - s.accuracy) * 100 <= 3 }),
        },
      );
    }
    return results;
  },
};

export default bench;
