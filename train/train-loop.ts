/**
 * The training loop: seeded epochs of shuffled, randomly cropped and mirrored batches, Nesterov momentum or Adam,
 * optional L2 weight decay (train/regularization.ts), a learning-rate schedule, snapshots and exact resumption.
 *
 * The schedule (train/schedule.ts: `plateau`, `cosine`, `study`, `constant`) decides from the validation loss and
 * accuracy (centre crops) after each epoch; every learning-rate change is logged with its reason. A `plateau` or
 * `cosine` change keeps the weights and the optimizer's state; a `study` drop restores the best weights and starts the
 * optimizer afresh (its slots belonged to the abandoned trajectory). When training ends the best checkpoint is kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { InterruptedError, UserError } from '../util/errors.ts';
import type { EpochMetrics } from '../schemas/metrics.ts';
import { planEpoch, planEval } from './augment.ts';
import { Rng } from '../util/rng.ts';
import { fmtLearningRate } from '../util/format.ts';
import { BatchLoader } from './loader.ts';
import type { ModelSpec } from '../schemas/model-params.ts';
import { readSnapshot, writeSnapshot, type Snapshot, type TensorGroups } from './model-io.ts';
import { buildModel, setDropoutStep } from './models.ts';
import { buildFineTuneModel, minimizeScaled, type FineTuneOptions } from './fine-tune.ts';
import { ReplicaPool } from './data-parallel.ts';
import { disposeOptimizer, makeOptimizer as makeOptimizerOf, type OptimizerConfig } from './optimizer.ts';
import { decayedWeights, l2Penalty } from './regularization.ts';
import {
  afterEpoch, beforeEpoch, DEFAULT_COSINE, DEFAULT_PLATEAU, initialScheduleState,
  type CosineOptions, type PlateauOptions, type ScheduleName, type ScheduleOptions, type ScheduleState,
} from './schedule.ts';
import type { SplitData } from '../schemas/shards/read.ts';
import type { Config } from '../pipeline/config-core.ts';

/**
 * The `train` settings the loop reads, as the configuration resolves them: pipeline/config.ts documents each key and
 * holds its one default (the `train` stage hands its declared slice of the configuration through). Callers outside the
 * pipeline (tests, benchmarks) may leave out `plateau` and `cosine` (the loop then uses {@link DEFAULT_PLATEAU} and
 * {@link DEFAULT_COSINE}, the configuration's defaults too), `weightDecay` (none) and `balance` (`rows`).
 */
export type TrainSettings = Pick<Config['train'], 'crop' | 'mirror' | 'optimizer' | 'learningRate' | 'momentum' | 'adam' | 'batchSize' | 'epochs' | 'schedule' | 'patience' | 'snapshotEvery'>
  & Partial<Pick<Config['train'], 'plateau' | 'cosine' | 'weightDecay' | 'balance'>>;

/** Options of {@link trainModel}: the `train` settings, the data, and what the stage decides for this model. */
export interface TrainOptions extends TrainSettings {
  train: SplitData;
  /** Validation split (adaptive learning rate, best weights), or null. */
  validation: SplitData | null;
  /** Per-pixel mean `[S, S, 3]` or null. */
  mean: Float32Array | null;
  spec: ModelSpec;
  /** The training seed (initial weights, shuffles, crops, mirrors, dropout masks). */
  seed: number;
  /** Where snapshots are written (and resumed from when one exists). */
  snapshotDir: string;
  /** Resume from this snapshot directory instead (`train.resumeFrom`); it must hold a snapshot. */
  resumeFrom?: string | null;
  log: (line: string) => void;
  signal?: AbortSignal;
  /**
   * Threads for data-parallel training and validation (train/data-parallel.ts; default 1). Used on the CPU
   * backends (wasm, cpu); GPU backends train on one thread.
   */
  threads?: number;
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
  /**
   * Fine-tune this pretrained network instead of building `spec` (`train.init = pretrained`, train/fine-tune.ts):
   * `crop` must be its input size and `mean` null (the model applies the network's own preprocessing). Trains on one
   * thread (`threads` is ignored, and the log says so).
   */
  fineTune?: FineTuneOptions | null;
}

/** Schedule and PRNG state saved in snapshots. */
export interface TrainState extends ScheduleState {
  /** Epochs completed. */
  epoch: number;
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
  /** Why training ended: `epochs`, `learning rate below 1e-10` (`study`), or `stopAfter`. */
  stopReason: string;
  loaderMode: string;
}

function makeOptimizer(o: TrainOptions, lr: number): tf.Optimizer {
  return makeOptimizerOf(optimizerConfig(o, lr));
}

/** The optimizer of `o` at learning rate `lr`, as data-parallel replicas build it too. */
function optimizerConfig(o: TrainOptions, lr: number): OptimizerConfig {
  return o.optimizer === 'adam'
    ? { kind: 'adam', learningRate: lr, beta1: o.adam.beta1, beta2: o.adam.beta2, epsilon: o.adam.epsilon }
    : { kind: 'nesterov', learningRate: lr, momentum: o.momentum };
}

/** Mean cross-entropy and accuracy of `logits` on a split (centre crops), in batches. */
export async function evaluateLoss(
  logits: tfl.LayersModel, data: SplitData, crop: number, mean: Float32Array | null, batchSize: number, loader?: BatchLoader, pool?: ReplicaPool | null,
): Promise<{ loss: number; accuracy: number }> {
  const l = loader ?? new BatchLoader(data, { crop, mean, worker: false });
  let lossSum = 0;
  let correct = 0;
  for await (const b of l.batches(planEval(data.n, batchSize, data.size, crop, 1))) {
    const n = b.labels.length;
    const logitsOut = pool ? await pool.forward(logits, b.x, n, 'logits') : null;
    const [ls, c] = tf.tidy(() => {
      const y = tf.tensor1d(b.labels, 'int32');
      const out = logitsOut
        ? tf.tensor2d(logitsOut, [n, logitsOut.length / n])
        : (logits.apply(tf.tensor4d(b.x, [n, crop, crop, 3]), { training: false }) as tf.Tensor2D);
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

/**
 * Sets the learning rate of an optimizer made by {@link makeOptimizer}, keeping its slots: MomentumOptimizer keeps
 * −rate in a scalar (`setLearningRate`), AdamOptimizer reads its `learningRate` field at every step (tfjs-core 4.22).
 * (`instanceof` cannot tell them apart: tfjs optimizers answer it by duck typing.)
 */
function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

function diverged(loss: number, epoch: number, batchNo: number, lr: number): UserError {
  return new UserError(
    `training diverged: loss ${loss} at epoch ${epoch}, batch ${batchNo} (learning rate ${fmtLearningRate(lr)}); lower train.learningRate or check the inputs`,
  );
}

/**
 * Starts the data-parallel replicas for `o.threads` > 1 on a CPU backend, or returns null (and says why).
 * Batch normalisation is synchronised across the replicas (train/sync-batch-norm.ts); `state` (its moving
 * statistics) is sent with the weights.
 */
async function startPool(
  o: TrainOptions, trainable: tf.Variable[], state: tf.Variable[], classes: number, model: tfl.LayersModel, gradientScales: readonly number[] | null,
): Promise<ReplicaPool | null> {
  const threads = o.threads ?? 1;
  if (threads <= 1) return null;
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') {
    o.log(`threads: 1 (train.threads = ${threads} applies to the CPU backends; ${backend} trains on one thread)`);
    return null;
  }
  let pool: ReplicaPool;
  try {
    pool = await ReplicaPool.start({
      threads, backend, balance: o.balance ?? 'rows', vars: trainable, state, replica: model, crop: o.crop, classes, maxRows: Math.max(o.batchSize, 1),
      // Fine-tuning: each worker imports the same file with the same settings (frozen layers, frozen batch norm,
      // gradient scales); the weights, the new layer's included, come with sync.
      model: o.fineTune ? { kind: 'fineTune', fineTune: o.fineTune, classes, seed: o.seed } : { kind: 'build', spec: o.spec, crop: o.crop, classes, seed: o.seed },
      gradientScales,
    });
  } catch (e) {
    o.log(`threads: 1 (the ${threads - 1} worker thread(s) did not start: ${(e as Error).message})`);
    return null;
  }
  const notes = [...(o.balance === 'speed' ? ['batches split by measured speed'] : []), ...(state.length ? ['batch norm synchronised across them'] : [])];
  o.log(`threads: ${threads} (data-parallel, ${backend} on each${notes.map((n) => `; ${n}`).join('')})`);
  return pool;
}

/** Threads this much slower per image than the fastest, over an epoch, make the log suggest `train.balance=speed`. */
const UNEQUAL_THREADS = 1.15;

/**
 * The snapshot to resume from, or null to start at epoch 0: `snap` unless it is past `o.epochs` (a run cannot be
 * wound back to fewer epochs, so it starts over and says so; its tensors are disposed).
 * @throws UserError when `o.resumeFrom` names a directory without a snapshot, or one past `o.epochs`.
 */
function resumableSnapshot(snap: Snapshot<TrainState> | null, dir: string, o: TrainOptions): Snapshot<TrainState> | null {
  if (o.resumeFrom && !snap) throw new UserError(`train.resumeFrom: no snapshot (snapshot.json) in ${o.resumeFrom}`);
  if (!snap || snap.state.epoch <= o.epochs) return snap;
  Object.values(snap.groups).flat().forEach((t) => t.tensor.dispose());
  const why = `the snapshot in ${dir} is after epoch ${snap.state.epoch}, past train.epochs = ${o.epochs}`;
  if (o.resumeFrom) throw new UserError(`train.resumeFrom: ${why}; raise train.epochs or resume from another snapshot`);
  o.log(`${why}: training starts over from epoch 0`);
  return null;
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
  const tuned = o.fineTune ? await buildFineTuneModel(o.fineTune, classes, o.seed) : null;
  const { model, logits } = tuned ?? buildModel(o.spec, o.crop, classes, o.seed);
  // Per-variable gradient scales (train.pretrainedLearningRateScale), or null: every gradient as it is.
  const gradientScales = tuned?.gradientScales ?? null;
  if (tuned) {
    if (tuned.inputSize !== o.crop) throw new Error(`fine-tuning: crop ${o.crop} differs from the network's input size ${tuned.inputSize}`);
    o.log(`fine-tuning ${o.fineTune!.file}: ${tuned.inputSize}×${tuned.inputSize} input, ${tuned.frozen.length} imported layer(s) frozen, imported layers' learning rate × ${o.fineTune!.learningRateScale}`);
  }
  // Trained by the optimizer; `vars` adds the non-trainable state (batch-norm moving statistics), which snapshots
  // and the best checkpoint keep too. Without batch norm both lists are the same.
  const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const nonTrainable = model.nonTrainableWeights.map((w) => w.read() as tf.Variable);
  const vars = [...trainable, ...nonTrainable];
  const decayed = decayedWeights(model);
  const sched: ScheduleOptions = {
    name: o.schedule, learningRate: o.learningRate, epochs: o.epochs, patience: o.patience,
    plateau: o.plateau ?? DEFAULT_PLATEAU, cosine: o.cosine ?? DEFAULT_COSINE,
  };
  const rng = new Rng(o.seed ^ 0x5eed);
  let state: TrainState = {
    ...initialScheduleState(sched), epoch: 0, rngState: rng.state, step: 0, metrics: [], done: false, stopReason: null,
  };
  let best: tf.Tensor[] | null = null;
  let optimizer = makeOptimizer(o, state.learningRate);

  const resumeDir = o.resumeFrom ?? o.snapshotDir;
  const snap = resumableSnapshot(readSnapshot<TrainState>(resumeDir), resumeDir, o);
  if (snap) {
    const g = snap.groups;
    const w = g.weights ?? [];
    if (w.length !== vars.length || w.some((t, i) => t.tensor.shape.join() !== vars[i]!.shape.join())) {
      Object.values(g).flat().forEach((t) => t.tensor.dispose());
      throw new UserError(`snapshot in ${resumeDir} does not fit this model (${o.spec.architecture} ${JSON.stringify(o.spec.params)}); remove it or change train.run`);
    }
    state = { ...initialScheduleState(sched), ...snap.state };
    w.forEach((t, i) => vars[i]!.assign(t.tensor));
    best = g.best ? g.best.map((t) => tf.keep(t.tensor)) : null;
    disposeOptimizer(optimizer);
    optimizer = makeOptimizer(o, state.learningRate);
    if (g.optimizer?.length) await optimizer.setWeights(g.optimizer);
    for (const t of [...w, ...(g.optimizer ?? [])]) t.tensor.dispose();
    rng.state = state.rngState;
    o.log(`resumed from ${resumeDir} after epoch ${state.epoch} (learning rate ${fmtLearningRate(state.learningRate)})`);
    if (state.done && state.stopReason === 'epochs' && state.epoch < o.epochs) {
      // A run that ended only because it had done its epochs goes on: its last epoch's weights, optimizer slots,
      // schedule and PRNG state are in the snapshot (the best checkpoint is put into the model only after it).
      state = { ...state, done: false, stopReason: null };
      o.log(`continuing the finished ${state.epoch}-epoch run to train.epochs = ${o.epochs}`);
    }
  }

  const loader = new BatchLoader(o.train, { crop: o.crop, mean: o.mean, worker: o.workerLoader ?? true, prefetch: 2 });
  const valLoader = o.validation ? new BatchLoader(o.validation, { crop: o.crop, mean: o.mean, worker: false }) : null;
  o.log(`loader: ${loader.mode}`);
  const pool = await startPool(o, trainable, nonTrainable, classes, model, gradientScales);

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
  let balanceHinted = false; // said once per run
  let stopReason = state.stopReason ?? '';
  try {
    while (!state.done && state.epoch < o.epochs) {
      if (o.stopAfter !== undefined && epochsThisCall >= o.stopAfter) {
        stopReason = 'stopAfter';
        break;
      }
      const epoch = state.epoch + 1;
      const change = beforeEpoch(sched, state, epoch);
      if (change) {
        setLearningRate(optimizer, change.learningRate);
        o.log(`learning rate → ${fmtLearningRate(change.learningRate)} (${change.reason})`);
      }
      const t0 = performance.now();
      // Weights, optimizer or learning rate may have changed since the last epoch (resume, restore, new rate).
      await pool?.sync(trainable, optimizer, optimizerConfig(o, state.learningRate));
      const plans = planEpoch(rng, o.train.n, o.batchSize, o.train.size, o.crop, o.mirror);
      let lossSum = 0;
      let correct = 0;
      let batchNo = 0;
      for await (const b of loader.batches(plans)) {
        if (o.signal?.aborted) throw new InterruptedError();
        batchNo++;
        const n = b.labels.length;
        if (pool) {
          const r = await pool.step(logits, trainable, b.x, b.labels, state.step++, () => l2Penalty(decayed, o.weightDecay ?? 0));
          if (!Number.isFinite(r.loss)) throw diverged(r.loss, epoch, batchNo, state.learningRate);
          lossSum += r.loss * n;
          correct += r.correct;
          continue;
        }
        setDropoutStep(logits, state.step++);
        let hits: tf.Scalar | null = null;
        let dataLoss: tf.Scalar | null = null;
        const cost = tf.tidy(() => {
          const x = tf.tensor4d(b.x, [n, o.crop, o.crop, 3]);
          const y = tf.tensor1d(b.labels, 'int32');
          return minimizeScaled(optimizer, () => {
            const out = logits.apply(x, { training: true }) as tf.Tensor2D;
            hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), y), 'int32'))) as tf.Scalar;
            const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(y, classes), out) as tf.Scalar;
            const penalty = l2Penalty(decayed, o.weightDecay ?? 0);
            if (!penalty) return ce;
            dataLoss = tf.keep(ce);
            return tf.add(ce, penalty) as tf.Scalar;
          }, trainable, gradientScales);
        });
        // The logged training loss is the cross-entropy alone (without the weight-decay penalty).
        const loss = (await (dataLoss ?? cost).data())[0]!;
        cost.dispose();
        (dataLoss as tf.Scalar | null)?.dispose();
        correct += (await hits!.data())[0]!;
        (hits as tf.Scalar | null)?.dispose();
        if (!Number.isFinite(loss)) throw diverged(loss, epoch, batchNo, state.learningRate);
        lossSum += loss * n;
      }
      // The replicas' optimizer state goes back to this thread's optimizer (snapshots, a rate change, a restart).
      await pool?.storeOptimizerState(trainable, optimizer);
      const balance = pool?.takeBalanceReport();
      if (balance && balance.ratio >= UNEQUAL_THREADS && (o.balance ?? 'rows') === 'rows' && !balanceHinted) {
        balanceHinted = true;
        o.log(
          `threads: thread ${balance.rank + 1} of ${o.threads} took ${((balance.ratio - 1) * 100).toFixed(0)}% longer per image than the fastest this epoch, ` +
            'and each step waits for it; train.balance=speed splits batches by measured speed (a resumed run then agrees only to rounding)',
        );
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      let valLoss: number | null = null;
      let valAcc: number | null = null;
      if (o.validation) {
        const v = await evaluateLoss(logits, o.validation, o.crop, o.mean, o.batchSize, valLoader!, pool);
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
      const d = afterEpoch(sched, state, epoch, valAcc !== null ? { loss: valLoss!, accuracy: valAcc } : null);
      if (d.newBest) {
        best?.forEach((t) => t.dispose());
        best = cloneAll(vars);
      }
      if (d.learningRate !== null) {
        if (d.restoreBest) {
          if (best) vars.forEach((v, i) => v.assign(best![i]!));
          disposeOptimizer(optimizer);
          optimizer = makeOptimizer(o, state.learningRate);
        } else setLearningRate(optimizer, state.learningRate);
        m.scheduleEvent = d.reason;
        o.log(d.reason!);
      }
      if (d.stop) {
        state.done = true;
        state.stopReason = d.stop;
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
    await pool?.close();
  }
  if (state.done) stopReason = state.stopReason ?? 'epochs';
  if (state.done && best) vars.forEach((v, i) => v.assign(best![i]!));
  best?.forEach((t) => t.dispose());
  disposeOptimizer(optimizer);
  return { model, metrics: state.metrics, state, stopReason, loaderMode: loader.mode };
}
