/**
 * `DATA_DIR/models/<train.run>/`, written by `train`, read by `evaluate` and `report`:
 * - `model.json` + `weights.bin`: the model in the TensorFlow.js layers format (train/model-io.ts);
 * - `config.json`: {@link TrainRecord}, what the model was trained with;
 * - `metrics.jsonl`: one `EpochMetrics` (schemas/metrics.ts) per epoch.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/fsutil.ts';
import { EpochMetricsSchema, type EpochMetrics } from './metrics.ts';

export { metricsPath, modelDir } from './paths.ts';

/** The configuration keys that decide a run's training seeds (a structural subset of the resolved config). */
export interface RepeatConfig {
  seed: number;
  train: { seed: number | null; repeats: number };
}

/** One trained model of a run, as listed under `repeats` in `models/<run>/config.json`. */
export type RepeatRecord = {
  seed: number;
  /** Directory of the model, relative to `models/<run>/` (`.` for the first). */
  dir: string;
  stopReason: string;
  bestEpoch: number;
  bestValidationAccuracy: number | null;
  /** Mean training cross-entropy of the last epoch, in nats. */
  finalTrainLoss: number | null;
};

/** The training seeds of a run: `s … s + train.repeats − 1`, s = `train.seed` (or `seed` when null). */
export function repeatSeeds(config: RepeatConfig): number[] {
  const first = config.train.seed ?? config.seed;
  return Array.from({ length: config.train.repeats }, (_, k) => first + k);
}

/** Where the model of training seed `seed` lives, relative to `models/<run>/`: `.` for the first, else `seed-<seed>`. */
export function repeatDir(config: RepeatConfig, seed: number): string {
  return seed === repeatSeeds(config)[0] ? '.' : `seed-${seed}`;
}


/** `config.json` of a run: what `evaluate` needs to score the model (other fields are kept as written). */
export const TrainRecordSchema = z.looseObject({
  /** The settings the model was trained with: the keys the `train` stage declares (`seed`, `image.size`, the `train` section), as resolved. */
  config: z.looseObject({ seed: z.number().int().optional(), train: z.looseObject({ batchSize: z.number().int().min(1) }) }),
  /** The resolved architecture: its name, parameters and layer lists (schemas/model-params.ts). */
  architecture: z.looseObject({ name: z.string() }),
  /** The TensorFlow.js backend that trained it. */
  backend: z.string(),
  /** Genre names in label order. */
  labelNames: z.array(z.string()),
  /** S, the side of the shard images, pixels. */
  imageSize: z.number().int().min(1),
  /** Side of the training crops, pixels. */
  crop: z.number().int().min(1),
  /** Whether the per-pixel mean is subtracted from the input. */
  subtractMean: z.boolean(),
  /** Every seed's model, {@link RepeatRecord} (absent in runs trained before `train.repeats`). */
  repeats: z.array(z.looseObject({ seed: z.number().int(), dir: z.string() })).optional(),
});
export type TrainRecord = z.infer<typeof TrainRecordSchema>;

/** Writes `config.json` into a run directory (absolute), pretty-printed. */
export function writeTrainRecord(dir: string, record: TrainRecord): void {
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(record, null, 2) + '\n');
}

/**
 * Reads `config.json` of a run directory (absolute).
 * @throws Error naming the file when it is not JSON or lacks a field `evaluate` needs.
 */
export function readTrainRecord(dir: string): TrainRecord {
  const path = join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const parsed = TrainRecordSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${path}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
  return parsed.data;
}

/** Writes `metrics.jsonl` into a run directory (absolute): one validated {@link EpochMetrics} per line. */
export function writeEpochMetrics(dir: string, epochs: readonly EpochMetrics[]): void {
  writeFileAtomic(join(dir, 'metrics.jsonl'), epochs.map((m) => JSON.stringify(EpochMetricsSchema.parse(m))).join('\n') + '\n');
}

/**
 * Reads `metrics.jsonl` (an absolute path): one {@link EpochMetrics} per line, in epoch order; bad lines are skipped
 * with a warning naming the line; of an epoch recorded twice (a resumed run), the last record wins.
 * @throws the fs error when the file cannot be read.
 */
export function readEpochMetrics(path: string): { epochs: EpochMetrics[]; warnings: string[] } {
  const epochs: EpochMetrics[] = [];
  const warnings: string[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const parsed = EpochMetricsSchema.safeParse(JSON.parse(line));
        if (parsed.success) epochs.push(parsed.data);
        else warnings.push(`line ${i + 1}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      } catch (e) {
        warnings.push(`line ${i + 1}: not JSON (${(e as Error).message})`);
      }
    });
  // A resumed run may append an epoch again: the last record of an epoch wins.
  const byEpoch = new Map(epochs.map((e) => [e.epoch, e]));
  return { epochs: [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch), warnings };
}
