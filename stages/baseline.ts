/**
 * Stage `baseline`: the study's random forest on downsampled pixels (`baseline.trees` trees on
 * `baseline.pixels`² grayscale pixels), trained on the training split and scored on the test split, written to
 * `DATA_DIR/eval/baseline.json` (`EvalMetrics`, schemas/metrics.ts). See train/baseline.ts for the library's limits.
 */
import { writeFileAtomic } from '../pipeline/fsutil.ts';
import type { Stage, StageContext } from '../pipeline/stage.ts';
import { EvalMetricsSchema } from '../schemas/metrics.ts';
import { pixelFeatures, trainForest } from '../train/baseline.ts';
import { classificationMetrics } from '../train/metrics.ts';

export const baselineStage: Stage = {
  name: 'baseline',
  description: 'Random forest on downsampled pixels (the study baseline) → eval/baseline.json',
  deps: ['shards'],
  params: ['seed', 'baseline'],
  outputs: ['eval/baseline.json'],
  version: 1,
  async run(ctx: StageContext) {
    const t0 = performance.now();
    const b = ctx.config.baseline;
    const shards = ctx.path('shards');
    const train = await pixelFeatures(shards, 'train', b.pixels, b.grayscale);
    const test = await pixelFeatures(shards, 'test', b.pixels, b.grayscale);
    const features = train.rows[0]?.length ?? 0;
    ctx.log.info(`random forest: ${b.trees} trees on ${train.rows.length} training images × ${features} features (maxFeatures ${b.maxFeatures}, maxSamples ${b.maxSamples ?? 'all'})`);
    const t1 = performance.now();
    const rf = trainForest(train, { trees: b.trees, seed: ctx.config.seed, maxFeatures: b.maxFeatures, maxSamples: b.maxSamples });
    const trainSeconds = (performance.now() - t1) / 1000;
    const predicted = rf.predict(test.rows);
    const metrics = EvalMetricsSchema.parse(
      classificationMetrics(predicted, test.labels, test.labelNames, {
        model: 'random-forest', split: 'test', crops: null, backend: 'ml-random-forest', seconds: (performance.now() - t0) / 1000,
        details: { trees: b.trees, pixels: b.pixels, grayscale: b.grayscale, features, maxFeatures: b.maxFeatures, maxSamples: b.maxSamples, trainSeconds },
      }),
    );
    ctx.log.info(`baseline test accuracy ${(metrics.accuracy * 100).toFixed(1)}% on ${metrics.n} images (${trainSeconds.toFixed(1)} s to train)`);
    writeFileAtomic(ctx.out('eval/baseline.json'), JSON.stringify(metrics, null, 2) + '\n');
  },
};
