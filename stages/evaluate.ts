/**
 * Stage `evaluate`: scores the trained model (`models/<train.run>/`) on the test split with deterministic crops
 * (`eval.crops`: centre only, or ten: centre + four corners, each mirrored; softmax averaged) and writes
 * `DATA_DIR/eval/metrics.json` (`EvalMetrics`, schemas/metrics.ts). With `train.repeats` > 1 it scores every seed's
 * model (`repeats` in `models/<run>/config.json`) and adds each accuracy and their mean ± standard deviation
 * (`repeats`); the other fields stay the first seed's. The first seed's per-image predictions go to
 * `eval/predictions.arrow` (schemas/predictions.ts), for `inspect`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { EvalMetricsSchema, summariseRepeats, writeEvalMetrics, type SeedAccuracy } from '../schemas/metrics.ts';
import { selectBackend } from '../train/backends.ts';
import { classificationMetrics } from '../train/metrics.ts';
import { fileLoader } from '../train/model-io.ts';
import '../train/models.ts'; // registers the SeededDropout layer class for deserialisation
import '../model-import/layers.ts'; // registers the imported networks' layer classes (fine-tuned models)
import '../model-import/preprocess.ts'; // registers InputPreprocess (fine-tuned models)
import { predictSplit } from '../train/predict.ts';
import { defaultThreads, startInferencePool } from '../train/data-parallel.ts';
import { readMean } from '../schemas/mean.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit, readSplitIds } from '../schemas/shards/read.ts';
import { predictionRows, PREDICTIONS_OUTPUT, writePredictions } from '../schemas/predictions.ts';
import { modelDir, readTrainRecord } from '../schemas/model.ts';

/**
 * The log line of one model's inference: `covers` test covers × `crops` crops in `seconds` (from the first batch to
 * the last prediction: building the crops, the forward passes and averaging count; loading the model and starting the
 * threads do not), as crop images per second, the figure bench/stage-train.bench.ts compares with PyTorch's.
 */
export function inferenceLine(covers: number, crops: number, seconds: number): string {
  const rate = (covers * crops) / seconds;
  return `inference: ${covers} test covers × ${crops} crop(s) in ${seconds.toFixed(1)} s, ${rate.toFixed(rate < 10 ? 2 : 1)} crop images/s (loading the model and starting threads not counted)`;
}

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
    const test = await readSplit(ctx.path(splitDir('test')));
    if (test.labelNames.join('\n') !== rec.labelNames.join('\n')) {
      throw new UserError(`evaluate: the test shards' genres (${test.labelNames.join(', ')}) differ from the model's (${rec.labelNames.join(', ')}); retrain`);
    }
    if (test.size !== rec.imageSize) throw new UserError(`evaluate: test images are ${test.size}×${test.size}, the model was trained on ${rec.imageSize}×${rec.imageSize} shards; retrain`);
    const mean = rec.subtractMean ? readMean(ctx.path('shards/mean.arrow'), test.size) : null;
    const crops = ctx.config.eval.crops;
    const perBatch = Math.max(1, Math.floor(rec.config.train.batchSize / crops));
    const repeats = rec.repeats ?? [{ seed: rec.config.seed ?? 0, dir: '.' }];
    const progress = ctx.progress(repeats.length > 1 ? `test images × ${repeats.length} seeds` : 'test images', test.n * repeats.length);
    const perSeed: (SeedAccuracy & { predicted: Int32Array; probabilities: Float32Array })[] = [];
    for (const r of repeats) {
      const model = await tfl.loadLayersModel(fileLoader(join(dir, r.dir)));
      const pool = await startInferencePool(join(dir, r.dir), rec.crop, test.labelNames.length, perBatch * crops, ctx.config.train.threads ?? defaultThreads(), (l) => ctx.log.info(l));
      let predicted: Int32Array;
      let probabilities: Float32Array;
      const t1 = performance.now();
      try {
        ({ predicted, probabilities } = await predictSplit(model, test, rec.crop, mean, crops, perBatch, (n) => progress.tick(n), pool));
      } finally {
        await pool?.close();
      }
      ctx.log.info(inferenceLine(test.n, crops, (performance.now() - t1) / 1000));
      model.dispose();
      const m = classificationMetrics(predicted, test.labels, test.labelNames, { model: 'convnet', split: 'test', crops, backend: backend.name, seconds: 0, details: {} });
      perSeed.push({ seed: r.seed, n: m.n, accuracy: m.accuracy, accuracyInterval95: m.accuracyInterval95, predicted, probabilities });
      if (repeats.length > 1) ctx.log.info(`seed ${r.seed}: test accuracy ${(m.accuracy * 100).toFixed(1)}%`);
    }
    progress.stop();
    const { predicted } = perSeed[0]!;
    const metrics = EvalMetricsSchema.parse(
      classificationMetrics(predicted, test.labels, test.labelNames, {
        model: 'convnet', split: 'test', crops, backend: backend.name, seconds: (performance.now() - t0) / 1000,
        details: { run: ctx.config.train.run, architecture: rec.architecture.name, crop: rec.crop, seed: perSeed[0]!.seed },
      }),
    );
    if (perSeed.length > 1) metrics.repeats = summariseRepeats(perSeed.map(({ predicted: _p, probabilities: _q, ...s }) => s));
    ctx.log.info(`test accuracy ${(metrics.accuracy * 100).toFixed(1)}% (95% CI ${metrics.accuracyInterval95.map((v) => (v * 100).toFixed(1)).join('–')}%) on ${metrics.n} images, ${crops} crop(s)`);
    if (metrics.repeats) ctx.log.info(`over ${perSeed.length} seeds: ${(metrics.repeats.mean * 100).toFixed(1)}% ± ${(metrics.repeats.std * 100).toFixed(1)}% (mean ± standard deviation)`);
    writeEvalMetrics(ctx.out('eval/metrics.json'), metrics);
    // The first seed's per-image predictions, for `inspect` (right and wrong covers, accuracy per source).
    writePredictions(ctx.out(PREDICTIONS_OUTPUT), predictionRows(perSeed[0]!.probabilities, test.labels, await readSplitIds(ctx.path(splitDir('test')))), test.labelNames);
  },
};
