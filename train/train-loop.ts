/**
 * The training loop: seeded epochs of shuffled, randomly cropped and mirrored batches, Nesterov momentum or Adam,
 * the study's adaptive learning rate, snapshots and exact resumption.
 *
 * Adaptive learning rate (the study's experiment runner): after each epoch the validation accuracy (centre crops)
 * is compared with the best so far; after `patience` epochs without improvement the learning rate is divided by 10,
 * the best weights are restored and the optimizer starts afresh (its slots belonged to the abandoned trajectory);
 * training stops when the learning rate falls below 1e-10. At the end the best weights are kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InterruptedError, UserError } from '../util/errors.ts';
import type { EpochMetrics } from '../schemas/metrics.ts';
import { planEpoch, planEval } from './augment.ts';
import { Rng } from '../util/rng.ts';
import { fmtLearningRate } from '../util/format.ts';
import { BatchLoader } from './loader.ts';
import type { ModelSpec } from './model-params.ts';
import { readSnapshot, writeSnapshot, type TensorGroups } from './model-io.ts';
import { buildModel, setDropoutStep } from './models.ts';
import type { SplitData } from '../schemas/shards/read.ts';

/** Learning rate below which training stops (the study). */
export const MIN_LEARNING_RATE = 1e-10;

/** Options of {@link trainModel}. */
export interface TrainOptions {
  train: SplitData;
  /** Validation split (adaptive learning rate, best weights), or null. */
  validation: SplitData | null;
  /** Per-pixel mean `[S, S, 3]` or null. */
  mean: Float32Array | null;
  spec: ModelSpec;
  crop: number;
  mirror: boolean;
  optimizer: 'nesterov' | 'adam';
  learningRate: number;
  momentum: number;
  adam: { beta1: number; beta2: number; epsilon: number };
  batchSize: number;
  epochs: number;
  patience: number;
  snapshotEvery: number;
  seed: number;
  /** Where snapshots are written (and resumed from when one exists). */
  snapshotDir: string;
  /** Resume from this snapshot directory instead (`train.resumeFrom`); it must hold a snapshot. */
  resumeFrom?: string | null;
  log: (line: string) => void;
  signal?: AbortSignal;
  /**
   * Called once before the first epoch (after resuming from a snapshot, if any) with the epochs already completed
   * and whether training is already finished (a resumed finished run trains no further epochs).
   */
  onStart?: (s: { epoch: number; done: boolean }) => void;
  /** Called after each epoch with its metrics; `last` is true when training ends with this epoch. */
  onEpoch?: (m: EpochMetrics, last: boolean) => void;
  /** Stop (as if killed) after this many epochs of this call; for tests of resumption. */
  stopAfter?: number;
  /** Build batches in a worker thread (default true). */
  workerLoader?: boolean;
}

/** Schedule and PRNG state saved in snapshots. */
export interface TrainState {
  /** Epochs completed. */
  epoch: number;
  learningRate: number;
  bestAccuracy: number;
  bestEpoch: number;
  sinceBest: number;
  rngState: number;
  /** Training steps done (dropout masks are drawn per step). */
  step: number;
  metrics: EpochMetrics[];
  done: boolean;
  stopReason: string | null;
}

/** The result of {@link trainModel}. */
export interface TrainResult {
  model: tfl.LayersModel;
  metrics: EpochMetrics[];
  state: TrainState;
  /** Why training ended: `epochs`, `learning rate below 1e-10`, or `stopAfter`. */
  stopReason: string;
  loaderMode: string;
}

function makeOptimizer(o: TrainOptions, lr: number): tf.Optimizer {
  return o.optimizer === 'adam' ? tf.train.adam(lr, o.adam.beta1, o.adam.beta2, o.adam.epsilon) : tf.train.momentum(lr, o.momentum, true);
}

/** Mean cross-entropy and accuracy of `logits` on a split (centre crops), in batches. */
export async function evaluateLoss(logits: tfl.LayersModel, data: SplitData, crop: number, mean: Float32Array | null, batchSize: number, loader?: BatchLoader): Promise<{ loss: number; accuracy: number }> {
  const l = loader ?? new BatchLoader(data, { crop, mean, worker: false });
  let lossSum = 0;
  let correct = 0;
  for await (const b of l.batches(planEval(data.n, batchSize, data.size, crop, 1))) {
    const [ls, c] = tf.tidy(() => {
      const x = tf.tensor4d(b.x, [b.labels.length, crop, crop, 3]);
      const y = tf.tensor1d(b.labels, 'int32');
      const out = logits.apply(x, { training: false }) as tf.Tensor2D;
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(y, out.shape[1]), out, undefined, undefined, tf.Reduction.SUM);
      return [loss, tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), y), 'int32'))];
    });
    lossSum += (await ls.data())[0]!;
    correct += (await c.data())[0]!;
    ls.dispose();
    c.dispose();
  }
  if (!loader) await l.close();
  return { loss: lossSum / data.n, accuracy: correct / data.n };
}

/** Disposes an optimizer, including the learning-rate scalar that MomentumOptimizer.dispose() leaves (tfjs-core 4.22). */
function disposeOptimizer(opt: tf.Optimizer): void {
  opt.dispose();
  const c = (opt as unknown as { c?: tf.Tensor }).c;
  if (c instanceof tf.Tensor && !c.isDisposed) c.dispose();
}

function cloneAll(vars: readonly tf.Tensor[]): tf.Tensor[] {
  return vars.map((v) => tf.keep(tf.clone(v)));
}

/**
 * Trains a model, resuming from a snapshot when `snapshotDir` (or `resumeFrom`) holds one.
 * @throws UserError when the loss becomes NaN or infinite (divergence: lower `train.learningRate`), when
 *   `resumeFrom` holds no snapshot, or when a snapshot does not fit the model.
 * @throws Error `aborted` when `signal` aborts (the last snapshot stays).
 */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  const classes = o.train.labelNames.length;
  const { model, logits } = buildModel(o.spec, o.crop, classes, o.seed);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const rng = new Rng(o.seed ^ 0x5eed);
  let state: TrainState = {
    epoch: 0, learningRate: o.learningRate, bestAccuracy: -1, bestEpoch: 0, sinceBest: 0, rngState: rng.state, step: 0, metrics: [], done: false, stopReason: null,
  };
  let best: tf.Tensor[] | null = null;
  let optimizer = makeOptimizer(o, state.learningRate);

  const resumeDir = o.resumeFrom ?? o.snapshotDir;
  const snap = readSnapshot<TrainState>(resumeDir);
  if (o.resumeFrom && !snap) throw new UserError(`train.resumeFrom: no snapshot (snapshot.json) in ${o.resumeFrom}`);
  if (snap) {
    const g = snap.groups;
    const w = g.weights ?? [];
    if (w.length !== vars.length || w.some((t, i) => t.tensor.shape.join() !== vars[i]!.shape.join())) {
      Object.values(g).flat().forEach((t) => t.tensor.dispose());
      throw new UserError(`snapshot in ${resumeDir} does not fit this model (${o.spec.architecture} ${JSON.stringify(o.spec.params)}); remove it or change train.run`);
    }
    state = snap.state;
    w.forEach((t, i) => vars[i]!.assign(t.tensor));
    best = g.best ? g.best.map((t) => tf.keep(t.tensor)) : null;
    disposeOptimizer(optimizer);
    optimizer = makeOptimizer(o, state.learningRate);
    if (g.optimizer?.length) await optimizer.setWeights(g.optimizer);
    for (const t of [...w, ...(g.optimizer ?? [])]) t.tensor.dispose();
    rng.state = state.rngState;
    o.log(`resumed from ${resumeDir} after epoch ${state.epoch} (learning rate ${fmtLearningRate(state.learningRate)})`);
  }

  const loader = new BatchLoader(o.train, { crop: o.crop, mean: o.mean, worker: o.workerLoader ?? true, prefetch: 2 });
  const valLoader = o.validation ? new BatchLoader(o.validation, { crop: o.crop, mean: o.mean, worker: false }) : null;
  o.log(`loader: ${loader.mode}`);

  const snapshot = async () => {
    state.rngState = rng.state;
    const groups: TensorGroups = {
      weights: vars.map((v, i) => ({ name: `w${i}`, tensor: v })),
      optimizer: await optimizer.getWeights(),
    };
    if (best) groups.best = best.map((t, i) => ({ name: `b${i}`, tensor: t }));
    try {
      await writeSnapshot(o.snapshotDir, state, groups);
    } finally {
      // getWeights() makes a fresh scalar for the iteration count; the slots themselves are the optimizer's variables.
      for (const t of groups.optimizer!) if (!(t.tensor instanceof tf.Variable)) t.tensor.dispose();
    }
  };

  o.onStart?.({ epoch: state.epoch, done: state.done || state.epoch >= o.epochs });
  let epochsThisCall = 0;
  let stopReason = state.stopReason ?? '';
  try {
    while (!state.done && state.epoch < o.epochs) {
      if (o.stopAfter !== undefined && epochsThisCall >= o.stopAfter) {
        stopReason = 'stopAfter';
        break;
      }
      const epoch = state.epoch + 1;
      const t0 = performance.now();
      const plans = planEpoch(rng, o.train.n, o.batchSize, o.train.size, o.crop, o.mirror);
      let lossSum = 0;
      let correct = 0;
      let batchNo = 0;
      for await (const b of loader.batches(plans)) {
        if (o.signal?.aborted) throw new InterruptedError();
        batchNo++;
        setDropoutStep(logits, state.step++);
        const n = b.labels.length;
        let hits: tf.Scalar | null = null;
        const cost = tf.tidy(() => {
          const x = tf.tensor4d(b.x, [n, o.crop, o.crop, 3]);
          const y = tf.tensor1d(b.labels, 'int32');
          return optimizer.minimize(() => {
            const out = logits.apply(x, { training: true }) as tf.Tensor2D;
            hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), y), 'int32'))) as tf.Scalar;
            return tf.losses.softmaxCrossEntropy(tf.oneHot(y, classes), out) as tf.Scalar;
          }, true, vars) as tf.Scalar;
        });
        const loss = (await cost.data())[0]!;
        cost.dispose();
        correct += (await hits!.data())[0]!;
        (hits as tf.Scalar | null)?.dispose();
        if (!Number.isFinite(loss)) {
          throw new UserError(
            `training diverged: loss ${loss} at epoch ${epoch}, batch ${batchNo} (learning rate ${fmtLearningRate(state.learningRate)}); lower train.learningRate or check the inputs`,
          );
        }
        lossSum += loss * n;
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      let valLoss: number | null = null;
      let valAcc: number | null = null;
      if (o.validation) {
        const v = await evaluateLoss(logits, o.validation, o.crop, o.mean, o.batchSize, valLoader!);
        valLoss = v.loss;
        valAcc = v.accuracy;
      }
      const m: EpochMetrics = {
        epoch,
        trainLoss: lossSum / o.train.n,
        trainAccuracy: correct / o.train.n,
        validationLoss: valLoss,
        validationAccuracy: valAcc,
        learningRate: state.learningRate,
        seconds: (performance.now() - t0) / 1000,
        imagesPerSecond: o.train.n / trainSeconds,
      };
      state.metrics.push(m);
      state.epoch = epoch;
      o.log(
        `epoch ${epoch}/${o.epochs}: train loss ${m.trainLoss.toFixed(4)} acc ${m.trainAccuracy!.toFixed(3)}` +
          (valAcc !== null ? `, validation loss ${valLoss!.toFixed(4)} acc ${valAcc.toFixed(3)}` : '') +
          `, lr ${fmtLearningRate(state.learningRate)}, ${m.imagesPerSecond.toFixed(0)} images/s`,
      );
      if (valAcc !== null) {
        if (valAcc > state.bestAccuracy) {
          state.bestAccuracy = valAcc;
          state.bestEpoch = epoch;
          state.sinceBest = 0;
          best?.forEach((t) => t.dispose());
          best = cloneAll(vars);
        } else if (++state.sinceBest >= o.patience) {
          state.learningRate = Number((state.learningRate / 10).toPrecision(12)); // 1e-6, not 1.0000000000000002e-6
          state.sinceBest = 0;
          if (best) vars.forEach((v, i) => v.assign(best![i]!));
          disposeOptimizer(optimizer);
          optimizer = makeOptimizer(o, state.learningRate);
          o.log(`no better validation accuracy for ${o.patience} epochs: learning rate → ${fmtLearningRate(state.learningRate)}, weights of epoch ${state.bestEpoch} restored`);
          if (state.learningRate < MIN_LEARNING_RATE) {
            state.done = true;
            state.stopReason = `learning rate below ${MIN_LEARNING_RATE}`;
          }
        }
      }
      if (state.epoch >= o.epochs && !state.done) {
        state.done = true;
        state.stopReason = 'epochs';
      }
      o.onEpoch?.(m, state.done);
      epochsThisCall++;
      if (state.done || epoch % o.snapshotEvery === 0) await snapshot();
    }
  } finally {
    await loader.close();
    await valLoader?.close();
  }
  if (state.done) stopReason = state.stopReason ?? 'epochs';
  if (state.done && best) vars.forEach((v, i) => v.assign(best![i]!));
  best?.forEach((t) => t.dispose());
  disposeOptimizer(optimizer);
  return { model, metrics: state.metrics, state, stopReason, loaderMode: loader.mode };
}
