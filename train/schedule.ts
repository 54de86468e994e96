/**
 * Learning-rate schedules (`train.schedule`) and the choice of the best checkpoint, as pure functions of the
 * validation metrics, so the training loop (train/train-loop.ts) only applies their decisions and a snapshot can save
 * their state ({@link ScheduleState}, plain JSON).
 *
 * - `plateau` (the default): monitors the validation *loss* (smoother than accuracy on small validation sets). An
 *   epoch improves on the best loss seen when it is lower by more than `minDelta` (nats, absolute); after `patience`
 *   epochs in a row without such an improvement the learning rate is multiplied by `factor` (not below
 *   `minLearningRate`), then `cooldown` epochs pass before the count starts again. The weights are never rolled back
 *   and the optimizer keeps its state (moments, momentum). This is Keras' `ReduceLROnPlateau` (and PyTorch's with
 *   `threshold_mode='abs'` and patience − 1: PyTorch counts the epochs it tolerates, we count the epochs until the drop).
 * - `cosine`: a linear warm-up from `learningRate / warmupEpochs` to `learningRate` over `warmupEpochs` epochs, then a
 *   half cosine from `learningRate` towards `minLearningRate` over the remaining epochs (SGDR without restarts,
 *   Loshchilov & Hutter 2017), set once per epoch.
 * - `study`: the 2015 study's adaptive learning rate (yanirs/bandcamp-deep-learning, `adapt_learning_rate=True`): after
 *   `train.patience` epochs without a better validation *accuracy*, the learning rate is divided by 10, the best
 *   weights are restored and the optimizer starts afresh; training stops when the rate falls below 1e-10. Kept to
 *   reproduce the study's runs; on small, noisy validation sets it freezes the model on an early epoch.
 * - `constant`: the learning rate never changes.
 *
 * Best checkpoint: `study` keeps the weights of the epoch with the best validation accuracy (the first of equals);
 * the other schedules keep the epoch with the lowest validation loss, ties broken by the higher validation accuracy.
 * The training loop restores the best checkpoint when training ends. Without a validation split no schedule can
 * monitor anything: `plateau` and `study` keep the learning rate, and the last weights are kept.
 */
import { fmtLearningRate as fmt } from '../util/format.ts';

// The schedule names, their option types and defaults are configuration vocabulary (schemas/schedule-names.ts).
import { type CosineOptions, type PlateauOptions, type ScheduleName } from '../schemas/schedule-names.ts';
export { DEFAULT_COSINE, DEFAULT_PLATEAU, SCHEDULES, type CosineOptions, type PlateauOptions, type ScheduleName } from '../schemas/schedule-names.ts';

/** Learning rate below which the `study` schedule stops training (the study). */
export const STUDY_MIN_LEARNING_RATE = 1e-10;

/** Everything a schedule needs to know. */
export interface ScheduleOptions {
  name: ScheduleName;
  /** Base (initial, peak for `cosine`) learning rate. */
  learningRate: number;
  /** Epochs of the run. */
  epochs: number;
  /** `study`: epochs without a better validation accuracy before the rate is divided by 10 (`train.patience`). */
  patience: number;
  plateau: PlateauOptions;
  cosine: CosineOptions;
}

/** A schedule's state between epochs (saved in snapshots; plain JSON, no Infinity). */
export interface ScheduleState {
  /** The learning rate of the next epoch. */
  learningRate: number;
  /** Validation accuracy of the best checkpoint; −1 before the first. */
  bestAccuracy: number;
  /** Validation loss of the best checkpoint; null before the first (and for `study`, which ranks by accuracy). */
  bestLoss: number | null;
  /** Epoch of the best checkpoint; 0 before the first. */
  bestEpoch: number;
  /** `study`: epochs since the best accuracy; `plateau`: epochs since the last improvement of the loss. */
  sinceBest: number;
  /** `plateau`: the lowest validation loss that counted as an improvement; null before the first epoch. */
  monitorBest: number | null;
  /** `plateau`: cooldown epochs left. */
  cooldown: number;
}

/** What the training loop does after an epoch. */
export interface ScheduleDecision {
  /** This epoch's weights are the new best checkpoint: keep a copy. */
  newBest: boolean;
  /** The learning rate of the next epoch when it changes (already in the state), else null. */
  learningRate: number | null;
  /** Why the learning rate changed (a log line), or null. */
  reason: string | null;
  /** `study`: restore the best checkpoint and start the optimizer afresh. */
  restoreBest: boolean;
  /** Why training stops now, or null. */
  stop: string | null;
}

/** Validation metrics of one epoch (centre crops); loss in nats. */
export interface ValidationMetrics {
  loss: number;
  accuracy: number;
}

/** Rounds away float noise: 1e-6, not 1.0000000000000002e-6. */
const tidy = (x: number) => Number(x.toPrecision(12));

/** The state before the first epoch. */
export function initialScheduleState(o: ScheduleOptions): ScheduleState {
  return {
    learningRate: epochLearningRate(o, 1) ?? o.learningRate,
    bestAccuracy: -1, bestLoss: null, bestEpoch: 0, sinceBest: 0, monitorBest: null, cooldown: 0,
  };
}

/**
 * The learning rate of epoch `epoch` (1-based) for schedules that fix it per epoch (`cosine`), else null.
 * `cosine`: epoch e ≤ W trains at `lr·e/W`; epoch e > W at `min + (lr − min)·(1 + cos(π·(e − W − 1)/(E − W)))/2`.
 */
export function epochLearningRate(o: ScheduleOptions, epoch: number): number | null {
  if (o.name !== 'cosine') return null;
  const w = Math.min(o.cosine.warmupEpochs, o.epochs);
  if (epoch <= w) return tidy((o.learningRate * epoch) / w);
  const span = Math.max(1, o.epochs - w);
  const p = Math.min(1, (epoch - w - 1) / span);
  const min = Math.min(o.cosine.minLearningRate, o.learningRate);
  return tidy(min + ((o.learningRate - min) * (1 + Math.cos(Math.PI * p))) / 2);
}

/**
 * Before epoch `epoch`: sets the state's learning rate to the epoch's (`cosine`).
 * @returns the change and its reason, or null when the rate stays.
 */
export function beforeEpoch(o: ScheduleOptions, s: ScheduleState, epoch: number): { learningRate: number; reason: string } | null {
  const lr = epochLearningRate(o, epoch);
  if (lr === null || lr === s.learningRate) return null;
  s.learningRate = lr;
  const w = Math.min(o.cosine.warmupEpochs, o.epochs);
  const reason = epoch <= w ? `cosine schedule: linear warm-up, epoch ${epoch} of ${w}` : `cosine schedule: epoch ${epoch} of ${o.epochs}`;
  return { learningRate: lr, reason };
}

/**
 * After epoch `epoch`: updates the state from its validation metrics (null without a validation split) and says what
 * to do (see the module comment). Mutates `s`.
 */
export function afterEpoch(o: ScheduleOptions, s: ScheduleState, epoch: number, v: ValidationMetrics | null): ScheduleDecision {
  const d: ScheduleDecision = { newBest: false, learningRate: null, reason: null, restoreBest: false, stop: null };
  if (v === null) return d;
  if (o.name === 'study') return studyStep(o, s, epoch, v, d);
  if (s.bestLoss === null || v.loss < s.bestLoss || (v.loss === s.bestLoss && v.accuracy > s.bestAccuracy)) {
    s.bestLoss = v.loss;
    s.bestAccuracy = v.accuracy;
    s.bestEpoch = epoch;
    d.newBest = true;
  }
  if (o.name !== 'plateau') return d;
  const p = o.plateau;
  if (s.monitorBest === null || v.loss < s.monitorBest - p.minDelta) {
    s.monitorBest = v.loss;
    s.sinceBest = 0;
  } else s.sinceBest++;
  if (s.cooldown > 0) {
    s.cooldown--;
    s.sinceBest = 0;
  }
  if (s.sinceBest >= p.patience) {
    s.sinceBest = 0;
    const next = tidy(Math.max(s.learningRate * p.factor, p.minLearningRate));
    if (next < s.learningRate) {
      d.reason = `plateau: validation loss not below ${s.monitorBest.toFixed(4)} − ${p.minDelta} for ${p.patience} epochs: learning rate ${fmt(s.learningRate)} → ${fmt(next)}`;
      s.learningRate = next;
      d.learningRate = next;
      s.cooldown = p.cooldown;
    }
  }
  return d;
}

/** The study's rule, as the training loop applied it before `train.schedule` existed (kept exactly). */
function studyStep(o: ScheduleOptions, s: ScheduleState, epoch: number, v: ValidationMetrics, d: ScheduleDecision): ScheduleDecision {
  if (v.accuracy > s.bestAccuracy) {
    s.bestAccuracy = v.accuracy;
    s.bestEpoch = epoch;
    s.sinceBest = 0;
    d.newBest = true;
  } else if (++s.sinceBest >= o.patience) {
    s.learningRate = tidy(s.learningRate / 10);
    s.sinceBest = 0;
    d.learningRate = s.learningRate;
    d.restoreBest = true;
    d.reason = `no better validation accuracy for ${o.patience} epochs: learning rate → ${fmt(s.learningRate)}, weights of epoch ${s.bestEpoch} restored`;
    if (s.learningRate < STUDY_MIN_LEARNING_RATE) d.stop = `learning rate below ${STUDY_MIN_LEARNING_RATE}`;
  }
  return d;
}
