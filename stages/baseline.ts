/**
 * Stage `baseline`: the study's baselines on downsampled pixels (`baseline.pixels`² grayscale pixels by default),
 * trained on the training split and scored on the test split (`baseline.model`):
 * - `forest`: the random forest (`baseline.trees` trees, scikit-learn's `RandomForestClassifier` defaults: bootstrap
 *   samples of size n, `sqrt` features per split, Gini, grown until leaves are pure; train/random-forest.ts) →
 *   `DATA_DIR/eval/baseline.json`;
 * - `linear-svm`: a linear SVM on the pixels scaled to [0, 1] per feature (scikit-learn's `LinearSVC` defaults;
 *   train/linear-svm.ts) → `DATA_DIR/eval/baseline-linear-svm.json`;
 * - `both`.
 * Each file is an `EvalMetrics` (schemas/metrics.ts). With `train.repeats` = N > 1 each model is fitted N times with
 * seeds `seed … seed + N − 1` (the forest's bootstrap and feature draws, the SVM's coordinate order) and `repeats`
 * holds every accuracy and their mean ± standard deviation; the other fields are the first seed's.
 */
import { InterruptedError, UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { existsSync } from 'node:fs';
import { EvalMetricsSchema, FOREST_OUTPUT, LINEAR_SVM_OUTPUT, PRETRAINED_FOREST_OUTPUT, PRETRAINED_LINEAR_SVM_OUTPUT, summariseRepeats, writeEvalMetrics, type EvalMetrics } from '../schemas/metrics.ts';
import { repeatSeeds } from '../schemas/model.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { featuresSplitDir, readFeatureSplit, type FeatureSplit } from '../schemas/features.ts';
import { forestParams, forestThreads, pixelFeatures, quantizeFeatures, type PixelFeatures } from '../train/baseline.ts';
import { fitLinearSvm, minMaxScale, predictLinearSvm } from '../train/linear-svm.ts';
import { classificationMetrics } from '../train/metrics.ts';
import { fitForest, predict } from '../train/random-forest.ts';


/** The `baseline` stage: `shards` (and `features/`) → `eval/baseline*.json`. */
export const baselineStage: StageImplementation = {
  name: 'baseline',
  async run(ctx: StageContext) {
    const b = ctx.config.baseline;
    const seeds = repeatSeeds(ctx.config);
    for (const source of ['pixels', 'pretrained'] as const) {
      if (b.features !== 'both' && b.features !== source) continue;
      const t0 = performance.now();
      const [train, test] = source === 'pixels' ? await pixelSets(ctx) : pretrainedSets(ctx);
      const featureSeconds = (performance.now() - t0) / 1000;
      if (b.model !== 'linear-svm') {
        const m = await repeated(ctx, seeds, (seed) => forest(ctx, train, test, seed, featureSeconds));
        writeEvalMetrics(ctx.out(source === 'pixels' ? FOREST_OUTPUT : PRETRAINED_FOREST_OUTPUT), m);
      }
      if (b.model !== 'forest') {
        const m = await repeated(ctx, seeds, async (seed) => linearSvm(ctx, train, test, seed, featureSeconds));
        writeEvalMetrics(ctx.out(source === 'pixels' ? LINEAR_SVM_OUTPUT : PRETRAINED_LINEAR_SVM_OUTPUT), m);
      }
    }
  },
};

/** The study's downsampled pixels of the training and test splits. */
async function pixelSets(ctx: StageContext): Promise<[PixelFeatures, PixelFeatures]> {
  const b = ctx.config.baseline;
  const trainDir = ctx.path(splitDir('train'));
  const testDir = ctx.path(splitDir('test'));
  const train = await pixelFeatures(trainDir, b.pixels, b.grayscale);
  const test = await pixelFeatures(testDir, b.pixels, b.grayscale);
  if (train.n === 0) throw new UserError(`baseline: the training split in ${trainDir} has no images`);
  if (test.n === 0) throw new UserError(`baseline: the test split in ${testDir} has no images`);
  return [train, test];
}

/**
 * The `features` target's vectors of the training and test splits, quantised per feature to 8 bits over the
 * training range ({@link quantizeFeatures}).
 * @throws UserError when `features/` is missing (run `covers make features`) or empty.
 */
function pretrainedSets(ctx: StageContext): [PixelFeatures, PixelFeatures] {
  const [train, test] = (['train', 'test'] as const).map((split) => {
    const dir = ctx.path(featuresSplitDir(split));
    if (!existsSync(dir)) throw new UserError(`baseline: baseline.features=${ctx.config.baseline.features} needs ${dir}; run \`covers make features\` (with pretrained.model) first`);
    const f = readFeatureSplit(dir);
    if (f.rows === 0) throw new UserError(`baseline: the ${split} features in ${dir} have no rows`);
    return f;
  }) as [FeatureSplit, FeatureSplit];
  if (train.meta.dim !== test.meta.dim) throw new UserError(`baseline: train features have ${train.meta.dim} values per row, test ${test.meta.dim}; rebuild features`);
  const d = train.meta.dim;
  const [xTrain, xTest] = quantizeFeatures(train.features, d, test.features);
  ctx.log.info(`baseline on ${train.meta.model}'s '${train.meta.layer}' features (${d} per image, quantised to 8 bits over the training range)`);
  return [
    { x: xTrain!, n: train.rows, d, labels: train.labels, labelNames: train.meta.labelNames, source: `pretrained: ${train.meta.model} at ${train.meta.layer}` },
    { x: xTest!, n: test.rows, d, labels: test.labels, labelNames: test.meta.labelNames, source: `pretrained: ${test.meta.model} at ${test.meta.layer}` },
  ];
}

/** Fits one model per seed; the first seed's metrics with `repeats` added when there are several. */
async function repeated(ctx: StageContext, seeds: number[], fit: (seed: number) => Promise<EvalMetrics>): Promise<EvalMetrics> {
  const all: EvalMetrics[] = [];
  for (const seed of seeds) all.push(await fit(seed));
  const first = all[0]!;
  if (all.length > 1) {
    first.repeats = summariseRepeats(all.map((m, i) => ({ seed: seeds[i]!, n: m.n, accuracy: m.accuracy, accuracyInterval95: m.accuracyInterval95 })));
    ctx.log.info(`${first.model} over ${all.length} seeds: ${(first.repeats.mean * 100).toFixed(1)}% ± ${(first.repeats.std * 100).toFixed(1)}% (mean ± standard deviation)`);
  }
  return EvalMetricsSchema.parse(first);
}

async function forest(ctx: StageContext, train: PixelFeatures, test: PixelFeatures, seed: number, featureSeconds: number): Promise<EvalMetrics> {
  const b = ctx.config.baseline;
  const params = forestParams(b, seed);
  ctx.log.info(`random forest (seed ${seed}): ${b.trees} trees on ${train.n} training images × ${train.d} features (maxFeatures ${b.maxFeatures}, bootstrap ${b.maxSamples ?? 'n'}, minSamplesSplit ${b.minSamplesSplit})`);
  const t1 = performance.now();
  const progress = ctx.progress('trees', b.trees);
  const f = await fitForest(
    { x: train.x, n: train.n, d: train.d, y: train.labels, classes: train.labelNames.length },
    params,
    { threads: forestThreads(b), signal: ctx.signal, onTree: (built) => progress.update(built) },
  );
  progress.stop();
  if (f.fallback) ctx.log.warn(`random forest: worker threads failed, trained on the main thread instead (${f.fallback})`);
  const trainSeconds = (performance.now() - t1) / 1000;
  const predicted = predict(f, test.x);
  const nodes = f.trees.reduce((a, t) => a + t.nodes, 0) / f.trees.length;
  const depth = f.trees.reduce((a, t) => a + t.depth, 0) / f.trees.length;
  const metrics = classificationMetrics(predicted, test.labels, test.labelNames, {
    model: 'random-forest', split: 'test', crops: null, backend: 'train/random-forest.ts (scikit-learn algorithm)', seconds: featureSeconds + (performance.now() - t1) / 1000,
    details: {
      trees: b.trees, pixels: b.pixels, grayscale: b.grayscale, features: train.d, source: train.source ?? 'pixels', trainImages: train.n,
      maxFeatures: b.maxFeatures, featuresPerSplit: f.maxFeatures, maxSamples: b.maxSamples, minSamplesSplit: b.minSamplesSplit,
      seed, threads: f.threads, trainSeconds, meanNodes: nodes, meanDepth: depth,
    },
  });
  ctx.log.info(`baseline test accuracy ${(metrics.accuracy * 100).toFixed(1)}% on ${metrics.n} images (${trainSeconds.toFixed(1)} s to train on ${f.threads} thread(s), ${nodes.toFixed(0)} nodes/tree)`);
  return metrics;
}

function linearSvm(ctx: StageContext, train: PixelFeatures, test: PixelFeatures, seed: number, featureSeconds: number): EvalMetrics {
  const b = ctx.config.baseline;
  if (ctx.signal?.aborted) throw new InterruptedError();
  const t1 = performance.now();
  const [xs, xt] = minMaxScale(train.x, train.d, test.x);
  const svm = fitLinearSvm(xs!, train.labels, train.n, train.d, train.labelNames.length, { C: b.svmC, maxIter: b.svmMaxIter, seed });
  const trainSeconds = (performance.now() - t1) / 1000;
  if (!svm.converged.every(Boolean)) ctx.log.warn(`linear SVM (seed ${seed}): not converged within baseline.svmMaxIter = ${b.svmMaxIter} passes for ${svm.converged.filter((c) => !c).length} class(es) (scikit-learn would warn too)`);
  const predicted = predictLinearSvm(svm, xt!);
  const metrics = classificationMetrics(predicted, test.labels, test.labelNames, {
    model: 'linear-svm', split: 'test', crops: null, backend: 'train/linear-svm.ts (liblinear algorithm)', seconds: featureSeconds + (performance.now() - t1) / 1000,
    details: {
      C: b.svmC, maxIter: b.svmMaxIter, pixels: b.pixels, grayscale: b.grayscale, features: train.d, source: train.source ?? 'pixels', trainImages: train.n, scaling: 'min-max to [0, 1] per feature (training split)',
      seed, trainSeconds, passes: svm.iterations, converged: svm.converged.every(Boolean),
    },
  });
  ctx.log.info(`linear SVM test accuracy ${(metrics.accuracy * 100).toFixed(1)}% on ${metrics.n} images (${trainSeconds.toFixed(1)} s to train, ${Math.max(...svm.iterations)} passes)`);
  return metrics;
}
