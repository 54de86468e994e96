/**
 * The names of the learning-rate schedules (`train.schedule`), their option types and defaults: configuration
 * vocabulary, apart from the schedules themselves (train/schedule.ts) so that the config schema (pipeline/config.ts)
 * declares `train.schedule`, `train.plateau` and `train.cosine` from the same list without importing train/.
 */

/** The schedules of `train.schedule`. */
export const SCHEDULES = ['plateau', 'cosine', 'study', 'constant'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

/** Options of the `plateau` schedule (`train.plateau`). */
export interface PlateauOptions {
  /** Multiplier of the learning rate at each drop, in (0, 1). */
  factor: number;
  /** Epochs in a row without an improvement of the validation loss before a drop. */
  patience: number;
  /** Smallest decrease of the validation loss (nats, absolute) that counts as an improvement. */
  minDelta: number;
  /** Epochs after a drop during which no epoch counts towards `patience`. */
  cooldown: number;
  /** The learning rate never drops below this. */
  minLearningRate: number;
}

/** Options of the `cosine` schedule (`train.cosine`). */
export interface CosineOptions {
  /** Epochs of linear warm-up (0 = none). */
  warmupEpochs: number;
  /** Learning rate the cosine decays towards (reached after the last epoch). */
  minLearningRate: number;
}

/** Defaults of `train.plateau` (pipeline/config.ts). */
export const DEFAULT_PLATEAU: PlateauOptions = { factor: 0.1, patience: 5, minDelta: 0.001, cooldown: 2, minLearningRate: 1e-6 };
/** Defaults of `train.cosine` (pipeline/config.ts). */
export const DEFAULT_COSINE: CosineOptions = { warmupEpochs: 3, minLearningRate: 0 };
