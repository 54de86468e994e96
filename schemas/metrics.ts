/**
 * Training and evaluation outputs, declared once (zod), written by `train`, `evaluate` and `baseline`, read by
 * `report`:
 * - `DATA_DIR/models/<run>/metrics.jsonl`: one {@link EpochMetrics} per line;
 * - `DATA_DIR/eval/metrics.json` (the convnet on the test split) and `DATA_DIR/eval/baseline.json` (the random
 *   forest): {@link EvalMetrics}.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../util/fsutil.ts';

/** One epoch of training. Losses are mean cross-entropy (nats); accuracies in [0, 1]. */
export const EpochMetricsSchema = z.object({
  epoch: z.number().int().min(1),
  trainLoss: z.number(),
  trainAccuracy: z.number().min(0).max(1).nullable(),
  validationLoss: z.number().nullable(),
  validationAccuracy: z.number().min(0).max(1).nullable(),
  learningRate: z.number(),
  /** Wall time of the epoch, in seconds. */
  seconds: z.number().min(0),
  /**
   * Training images per second of the epoch's training steps (train/train-loop.ts `trainEpoch`: waits for the loader,
   * the all-reduce and weight copies count; validation, snapshots and handing the weights to the threads and back once
   * per epoch do not).
   */
  imagesPerSecond: z.number().min(0),
  /**
   * Why the schedule changed the learning rate after this epoch (train/schedule.ts), when it did; absent in files
   * written before schedules existed and for `cosine`, whose rate follows its formula every epoch.
   */
  scheduleEvent: z.string().nullable().optional(),
});
export type EpochMetrics = z.infer<typeof EpochMetricsSchema>;

/** The checkpoint a training run keeps (see {@link keptCheckpoint}). */
export interface KeptCheckpoint {
  epoch: number;
  /** What ranked it: the lowest validation loss, or (schedule `study`) the highest validation accuracy. */
  by: 'lowest validation loss' | 'highest validation accuracy';
  validationLoss: number | null;
  validationAccuracy: number | null;
}

/**
 * The checkpoint training keeps and restores at the end, from its epoch records (train/schedule.ts decides it the same
 * way while training): the epoch with the lowest validation loss (ties: the higher validation accuracy, then the
 * earlier epoch), or under the `study` schedule the first epoch with the highest validation accuracy; null without a
 * validation split (the last weights are kept).
 */
export function keptCheckpoint(epochs: readonly EpochMetrics[], schedule: string): KeptCheckpoint | null {
  let best: EpochMetrics | null = null;
  for (const e of epochs) {
    if (e.validationLoss === null || e.validationAccuracy === null) continue;
    const better = best === null || (schedule === 'study'
      ? e.validationAccuracy > best.validationAccuracy!
      : e.validationLoss < best.validationLoss! || (e.validationLoss === best.validationLoss && e.validationAccuracy > best.validationAccuracy!));
    if (better) best = e;
  }
  if (!best) return null;
  return { epoch: best.epoch, by: schedule === 'study' ? 'highest validation accuracy' : 'lowest validation loss', validationLoss: best.validationLoss, validationAccuracy: best.validationAccuracy };
}

/**
 * One wording of the kept checkpoint for the log and the report: `epoch 14, the lowest validation loss (0.9317;
 * validation accuracy 70.0%)`; `the last epoch's weights (no validation split)` for null.
 */
export function describeKeptCheckpoint(k: KeptCheckpoint | null): string {
  if (!k) return "the last epoch's weights (no validation split)";
  const loss = k.validationLoss !== null ? `validation loss ${k.validationLoss.toFixed(4)}` : null;
  const acc = k.validationAccuracy !== null ? `validation accuracy ${(100 * k.validationAccuracy).toFixed(1)}%` : null;
  const [first, second] = k.by === 'lowest validation loss' ? [loss, acc] : [acc, loss];
  return `epoch ${k.epoch}, the ${k.by} (${[first, second].filter(Boolean).join('; ')})`;
}

/** Accuracy of a classifier on a split, with its 95% Wilson score interval. */
export const EvalMetricsSchema = z.object({
  /** `convnet` or `random-forest`. */
  model: z.string(),
  split: z.string(),
  /** Test images scored. */
  n: z.number().int().min(0),
  accuracy: z.number().min(0).max(1),
  /** 95% Wilson score interval of the accuracy, [low, high]. */
  accuracyInterval95: z.tuple([z.number(), z.number()]),
  /** 1 / number of classes. */
  chance: z.number(),
  labels: z.array(z.string()),
  /** Accuracy per class (recall), in label order; null for a class without test images. */
  perClassAccuracy: z.array(z.number().nullable()),
  /** `confusionMatrix[true][predicted]` counts; rows = true genre, in label order. */
  confusionMatrix: z.array(z.array(z.number().int().min(0))),
  /** Crops averaged per image (1 or 10); null for the baseline. */
  crops: z.number().int().nullable(),
  /** TensorFlow.js backend, or the library used. */
  backend: z.string(),
  /** Wall time, in seconds. */
  seconds: z.number().min(0),
  /** Free-form details (model run, parameters). */
  details: z.record(z.string(), z.unknown()).default({}),
  /**
   * With `train.repeats` > 1: every seed's accuracy and their mean ± sample standard deviation. The other fields
   * describe the first seed's model (`seed`). Absent for a single model.
   */
  repeats: z.lazy(() => RepeatsSchema).optional(),
});
export type EvalMetrics = z.infer<typeof EvalMetricsSchema>;

/** One seed's test accuracy (see {@link RepeatsSchema}). */
export const SeedAccuracySchema = z.object({
  seed: z.number().int(),
  n: z.number().int().min(0),
  accuracy: z.number().min(0).max(1),
  /** 95% Wilson score interval, [low, high]. */
  accuracyInterval95: z.tuple([z.number(), z.number()]),
});
export type SeedAccuracy = z.infer<typeof SeedAccuracySchema>;

/** Accuracies of N models trained with seeds seed … seed + N − 1 on the same split. */
export const RepeatsSchema = z.object({
  seeds: z.array(SeedAccuracySchema).min(1),
  /** Mean accuracy over the seeds. */
  mean: z.number().min(0).max(1),
  /** Sample standard deviation (n − 1 in the denominator) of the accuracies; 0 for one seed. */
  std: z.number().min(0),
});
export type Repeats = z.infer<typeof RepeatsSchema>;

/** The mean and sample standard deviation (n − 1) of per-seed accuracies. */
export function summariseRepeats(seeds: readonly SeedAccuracy[]): Repeats {
  const n = seeds.length;
  const mean = seeds.reduce((a, s) => a + s.accuracy, 0) / n;
  const variance = n > 1 ? seeds.reduce((a, s) => a + (s.accuracy - mean) ** 2, 0) / (n - 1) : 0;
  return { seeds: [...seeds], mean, std: Math.sqrt(variance) };
}

/**
 * The 95% Wilson score interval of a binomial proportion.
 * @param successes correct predictions; @param n trials.
 * @returns [low, high] in [0, 1]; [0, 1] when n is 0.
 */
export function wilsonInterval(successes: number, n: number, z95 = 1.959963984540054): [number, number] {
  if (n === 0) return [0, 1];
  const p = successes / n;
  const denom = 1 + (z95 * z95) / n;
  const centre = (p + (z95 * z95) / (2 * n)) / denom;
  const half = (z95 * Math.sqrt((p * (1 - p)) / n + (z95 * z95) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Where the baselines' {@link EvalMetrics} go (schemas/paths.ts). */
export { FOREST_OUTPUT, LINEAR_SVM_OUTPUT, PRETRAINED_FOREST_OUTPUT, PRETRAINED_LINEAR_SVM_OUTPUT } from './paths.ts';

/**
 * Writes `eval/metrics.json` or `eval/baseline.json`: the metrics, validated, pretty-printed.
 * @throws ZodError when `metrics` is not {@link EvalMetrics}.
 */
export function writeEvalMetrics(path: string, metrics: EvalMetrics): void {
  writeFileAtomic(path, JSON.stringify(EvalMetricsSchema.parse(metrics), null, 2) + '\n');
}

/**
 * Reads `eval/metrics.json` or `eval/baseline.json`.
 * @throws Error when the file is not JSON, not {@link EvalMetrics}, or its confusion matrix is not k×k for k labels.
 */
export function readEvalMetrics(path: string): EvalMetrics {
  const parsed = EvalMetricsSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; '));
  const m = parsed.data;
  const k = m.labels.length;
  if (m.confusionMatrix.length !== k || m.confusionMatrix.some((r) => r.length !== k)) {
    throw new Error(`confusionMatrix is not ${k}×${k} for ${k} labels`);
  }
  return m;
}
