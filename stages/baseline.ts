/**
 * Stage `baseline`: the study's random forest on downsampled pixels (`baseline.trees` trees on `baseline.pixels`²
 * grayscale pixels, scikit-learn's `RandomForestClassifier` defaults: bootstrap samples of size n, `sqrt` features per
 * split, Gini, grown until leaves are pure), trained on the training split and scored on the test split, written to
 * `DATA_DIR/eval/baseline.json` (`EvalMetrics`, schemas/metrics.ts). The forest is train/random-forest.ts.
 */
import { UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { EvalMetricsSchema, writeEvalMetrics } from '../schemas/metrics.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { forestParams, forestThreads, pixelFeatures } from '../train/baseline.ts';
import { classificationMetrics } from '../train/metrics.ts';
import { fitForest, predict } from '../train/random-forest.ts';

/** The `baseline` stage: `shards` → `eval/baseline.json`. */
export const baselineStage: StageImplementation = {
  name: 'baseline',
  async run(ctx: StageContext) {
    const t0 = performance.now();
    const b = ctx.config.baseline;
    const trainDir = ctx.path(splitDir('train'));
    const testDir = ctx.path(splitDir('test'));
    const train = await pixelFeatures(trainDir, b.pixels, b.grayscale);
    const test = await pixelFeatures(testDir, b.pixels, b.grayscale);
    if (train.n === 0) throw new UserError(`baseline: the training split in ${trainDir} has no images`);
    if (test.n === 0) throw new UserError(`baseline: the test split in ${testDir} has no images`);
    const params = forestParams(b, ctx.config.seed);
    ctx.log.info(`random forest: ${b.trees} trees on ${train.n} training images × ${train.d} features (maxFeatures ${b.maxFeatures}, bootstrap ${b.maxSamples ?? 'n'}, minSamplesSplit ${b.minSamplesSplit})`);
    const t1 = performance.now();
    const progress = ctx.progress('trees', b.trees);
    const forest = await fitForest(
      { x: train.x, n: train.n, d: train.d, y: train.labels, classes: train.labelNames.length },
      params,
      { threads: forestThreads(b), signal: ctx.signal, onTree: (built) => progress.update(built) },
    );
    progress.stop();
    if (forest.fallback) ctx.log.warn(`random forest: worker threads failed, trained on the main thread instead (${forest.fallback})`);
    const trainSeconds = (performance.now() - t1) / 1000;
    const predicted = predict(forest, test.x);
    const nodes = forest.trees.reduce((a, t) => a + t.nodes, 0) / forest.trees.length;
    const depth = forest.trees.reduce((a, t) => a + t.depth, 0) / forest.trees.length;
    const metrics = EvalMetricsSchema.parse(
      classificationMetrics(predicted, test.labels, test.labelNames, {
        model: 'random-forest', split: 'test', crops: null, backend: 'train/random-forest.ts (scikit-learn algorithm)', seconds: (performance.now() - t0) / 1000,
        details: {
          trees: b.trees, pixels: b.pixels, grayscale: b.grayscale, features: train.d, trainImages: train.n,
          maxFeatures: b.maxFeatures, featuresPerSplit: forest.maxFeatures, maxSamples: b.maxSamples, minSamplesSplit: b.minSamplesSplit,
          seed: ctx.config.seed, threads: forest.threads, trainSeconds, meanNodes: nodes, meanDepth: depth,
        },
      }),
    );
    ctx.log.info(`baseline test accuracy ${(metrics.accuracy * 100).toFixed(1)}% on ${metrics.n} images (${trainSeconds.toFixed(1)} s to train on ${forest.threads} thread(s), ${nodes.toFixed(0)} nodes/tree)`);
    writeEvalMetrics(ctx.out('eval/baseline.json'), metrics);
  },
};
