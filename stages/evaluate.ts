/**
 * Stage `evaluate`: scores the trained model (`models/<train.run>/`) on the test split with deterministic crops
 * (`eval.crops`: centre only, or ten: centre + four corners, each mirrored; softmax averaged) and writes
 * `DATA_DIR/eval/metrics.json` (`EvalMetrics`, schemas/metrics.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { EvalMetricsSchema, writeEvalMetrics } from '../schemas/metrics.ts';
import { selectBackend } from '../train/backends.ts';
import { classificationMetrics } from '../train/metrics.ts';
import { fileLoader } from '../train/model-io.ts';
import '../train/models.ts'; // registers the SeededDropout layer class for deserialisation
import { predictSplit } from '../train/predict.ts';
import { readMean } from '../schemas/mean.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit } from '../schemas/shards/read.ts';
import { modelDir, readTrainRecord } from '../schemas/model.ts';

/** The `evaluate` stage: `models/<train.run>/` and the test shards → `eval/metrics.json`. */
export const evaluateStage: StageImplementation = {
  name: 'evaluate',
  async run(ctx: StageContext) {
    const t0 = performance.now();
    const dir = ctx.path(modelDir(ctx.config.train.run));
    const recPath = join(dir, 'config.json');
    if (!existsSync(recPath)) throw new UserError(`evaluate: ${recPath} not found (run \`covers make train\`)`);
    const rec = readTrainRecord(dir);
    const backend = await selectBackend(ctx.config.train.backend, (l) => ctx.log.info(l));
    const model = await tfl.loadLayersModel(fileLoader(dir));
    const test = await readSplit(ctx.path(splitDir('test')));
    if (test.labelNames.join('\n') !== rec.labelNames.join('\n')) {
      throw new UserError(`evaluate: the test shards' genres (${test.labelNames.join(', ')}) differ from the model's (${rec.labelNames.join(', ')}); retrain`);
    }
    if (test.size !== rec.imageSize) throw new UserError(`evaluate: test images are ${test.size}×${test.size}, the model was trained on ${rec.imageSize}×${rec.imageSize} shards; retrain`);
    const mean = rec.subtractMean ? readMean(ctx.path('shards/mean.arrow'), test.size) : null;
    const crops = ctx.config.eval.crops;
    const perBatch = Math.max(1, Math.floor(rec.config.train.batchSize / crops));
    const progress = ctx.progress('test images', test.n);
    const { predicted } = await predictSplit(model, test, rec.crop, mean, crops, perBatch, (n) => progress.tick(n));
    progress.stop();
    model.dispose();
    const metrics = EvalMetricsSchema.parse(
      classificationMetrics(predicted, test.labels, test.labelNames, {
        model: 'convnet', split: 'test', crops, backend: backend.name, seconds: (performance.now() - t0) / 1000,
        details: { run: ctx.config.train.run, architecture: rec.architecture.name, crop: rec.crop },
      }),
    );
    ctx.log.info(`test accuracy ${(metrics.accuracy * 100).toFixed(1)}% (95% CI ${metrics.accuracyInterval95.map((v) => (v * 100).toFixed(1)).join('–')}%) on ${metrics.n} images, ${crops} crop(s)`);
    writeEvalMetrics(ctx.out('eval/metrics.json'), metrics);
  },
};
