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
import { planEpoch, planEval, type BatchPlan } from './augment.ts';
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

/** The model being trained and the views of its variables the loop needs. */
interface Trainee {
  model: tfl.LayersModel;
  /** The model up to its logits (dropout masks are set on it per step). */
  logits: tfl.LayersModel;
  /** Trained by the optimizer. */
  trainable: tf.Variable[];
  /** Not trained (batch-norm moving statistics); snapshots and the best checkpoint keep them too. */
  nonTrainable: tf.Variable[];
  /** `trainable` then `nonTrainable`: what snapshots and the best checkpoint hold. */
  vars: tf.Variable[];
  /** The weights weight decay applies to (train/regularization.ts). */
  decayed: tf.Tensor[];
  /** Per-variable gradient scales (`train.pretrainedLearningRateScale`), or null: every gradient as it is. */
  gradientScales: number[] | null;
  /** Classes (the model's outputs). */
  classes: number;
}

/** What changes as the run goes: the schedule's and PRNG's state, the optimizer, the best checkpoint. */
interface RunState {
  readonly sched: ScheduleOptions;
  state: TrainState;
  rng: Rng;
  optimizer: tf.Optimizer;
  /** Copies of `vars` at the best epoch so far, or null. */
  best: tf.Tensor[] | null;
}

/** One epoch's training figures (validation apart). */
interface EpochTotals {
  /** Σ per-batch mean cross-entropy × batch rows. */
  lossSum: number;
  correct: number;
  /** Seconds of the epoch's training steps: see {@link trainEpoch}. */
  stepSeconds: number;
}

/**
 * Builds the model `o` trains: `o.spec` from scratch, or the pretrained network of `o.fineTune` (logging what it froze).
 * @throws Error when the pretrained network's input size is not `o.crop`.
 */
async function buildTrainee(o: TrainOptions): Promise<Trainee> {
  const classes = o.train.labelNames.length;
  const tuned = o.fineTune ? await buildFineTuneModel(o.fineTune, classes, o.seed) : null;
  const { model, logits } = tuned ?? buildModel(o.spec, o.crop, classes, o.seed);
  if (tuned) {
    if (tuned.inputSize !== o.crop) throw new Error(`fine-tuning: crop ${o.crop} differs from the network's input size ${tuned.inputSize}`);
    o.log(`fine-tuning ${o.fineTune!.file}: ${tuned.inputSize}×${tuned.inputSize} input, ${tuned.frozen.length} imported layer(s) frozen, imported layers' learning rate × ${o.fineTune!.learningRateScale}`);
  }
  const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const nonTrainable = model.nonTrainableWeights.map((w) => w.read() as tf.Variable);
  return {
    model, logits, trainable, nonTrainable, vars: [...trainable, ...nonTrainable], decayed: decayedWeights(model),
    gradientScales: tuned?.gradientScales ?? null, classes,
  };
}

/** The schedule's options from `o` (the configuration's plateau and cosine defaults where `o` leaves them out). */
function scheduleOptions(o: TrainOptions): ScheduleOptions {
  return {
    name: o.schedule, learningRate: o.learningRate, epochs: o.epochs, patience: o.patience,
    plateau: o.plateau ?? DEFAULT_PLATEAU, cosine: o.cosine ?? DEFAULT_COSINE,
  };
}

/** A fresh run's state: epoch 0, the schedule's initial rate, the PRNG seeded from `o.seed`, a new optimizer. */
function freshRun(o: TrainOptions): RunState {
  const sched = scheduleOptions(o);
  const rng = new Rng(o.seed ^ 0x5eed);
  const state: TrainState = {
    ...initialScheduleState(sched), epoch: 0, rngState: rng.state, step: 0, metrics: [], done: false, stopReason: null,
  };
  return { sched, state, rng, optimizer: makeOptimizer(o, state.learningRate), best: null };
}

/**
 * Puts the snapshot in `o.resumeFrom` (else `o.snapshotDir`), when there is one to resume from, into `run` and the
 * model's variables: weights, optimizer slots, best checkpoint, schedule and PRNG state. A run that ended only
 * because it had done its epochs goes on to `o.epochs`.
 * @throws UserError when the snapshot does not fit the model, or as {@link resumableSnapshot}.
 */
async function resumeRun(o: TrainOptions, t: Trainee, run: RunState): Promise<void> {
  const resumeDir = o.resumeFrom ?? o.snapshotDir;
  const snap = resumableSnapshot(readSnapshot<TrainState>(resumeDir), resumeDir, o);
  if (!snap) return;
  const g = snap.groups;
  const w = g.weights ?? [];
  if (w.length !== t.vars.length || w.some((x, i) => x.tensor.shape.join() !== t.vars[i]!.shape.join())) {
    Object.values(g).flat().forEach((x) => x.tensor.dispose());
    throw new UserError(`snapshot in ${resumeDir} does not fit this model (${o.spec.architecture} ${JSON.stringify(o.spec.params)}); remove it or change train.run`);
  }
  run.state = { ...initialScheduleState(run.sched), ...snap.state };
  w.forEach((x, i) => t.vars[i]!.assign(x.tensor));
  run.best = g.best ? g.best.map((x) => tf.keep(x.tensor)) : null;
  disposeOptimizer(run.optimizer);
  run.optimizer = makeOptimizer(o, run.state.learningRate);
  if (g.optimizer?.length) await run.optimizer.setWeights(g.optimizer);
  for (const x of [...w, ...(g.optimizer ?? [])]) x.tensor.dispose();
  run.rng.state = run.state.rngState;
  o.log(`resumed from ${resumeDir} after epoch ${run.state.epoch} (learning rate ${fmtLearningRate(run.state.learningRate)})`);
  if (run.state.done && run.state.stopReason === 'epochs' && run.state.epoch < o.epochs) {
    // Its last epoch's weights, optimizer slots, schedule and PRNG state are in the snapshot (the best checkpoint is
    // put into the model only after it).
    run.state = { ...run.state, done: false, stopReason: null };
    o.log(`continuing the finished ${run.state.epoch}-epoch run to train.epochs = ${o.epochs}`);
  }
}

/** Writes the run's snapshot to `o.snapshotDir`: the variables, the optimizer's slots, the best checkpoint, the state. */
async function writeRunSnapshot(o: TrainOptions, t: Trainee, run: RunState): Promise<void> {
  run.state.rngState = run.rng.state;
  const groups: TensorGroups = {
    weights: t.vars.map((v, i) => ({ name: `w${i}`, tensor: v })),
    optimizer: await run.optimizer.getWeights(),
  };
  if (run.best) groups.best = run.best.map((x, i) => ({ name: `b${i}`, tensor: x }));
  try {
    await writeSnapshot(o.snapshotDir, run.state, groups);
  } finally {
    // getWeights() makes a fresh scalar for the iteration count; the slots themselves are the optimizer's variables.
    for (const x of groups.optimizer!) if (!(x.tensor instanceof tf.Variable)) x.tensor.dispose();
  }
}

/**
 * One training step on this thread: minimises the batch's mean cross-entropy (plus the weight-decay penalty) of
 * `x` `[n, crop, crop, 3]` float32 against `labels` `[n]`.
 * @returns the batch's mean cross-entropy (without the penalty) and its correct predictions.
 */
async function localStep(o: TrainOptions, t: Trainee, run: RunState, x: Float32Array, labels: Int32Array): Promise<{ loss: number; correct: number }> {
  const n = labels.length;
  setDropoutStep(t.logits, run.state.step++);
  let hits: tf.Scalar | null = null;
  let dataLoss: tf.Scalar | null = null;
  const cost = tf.tidy(() => {
    const xs = tf.tensor4d(x, [n, o.crop, o.crop, 3]);
    const y = tf.tensor1d(labels, 'int32');
    return minimizeScaled(run.optimizer, () => {
      const out = t.logits.apply(xs, { training: true }) as tf.Tensor2D;
      hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), y), 'int32'))) as tf.Scalar;
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(y, t.classes), out) as tf.Scalar;
      const penalty = l2Penalty(t.decayed, o.weightDecay ?? 0);
      if (!penalty) return ce;
      dataLoss = tf.keep(ce);
      return tf.add(ce, penalty) as tf.Scalar;
    }, t.trainable, t.gradientScales);
  });
  // The logged training loss is the cross-entropy alone (without the weight-decay penalty).
  const loss = (await (dataLoss ?? cost).data())[0]!;
  cost.dispose();
  (dataLoss as tf.Scalar | null)?.dispose();
  const correct = (await hits!.data())[0]!;
  (hits as tf.Scalar | null)?.dispose();
  return { loss, correct };
}

/**
 * Trains one epoch over `plans`' batches, on the pool's threads or this one.
 *
 * `stepSeconds` counts the training steps alone: from asking for each batch (a wait for the loader counts) to the end
 * of its update, all-reduce and weight copies included. It leaves out what an epoch does once besides: handing the
 * weights and optimizer state to the threads before the first step and back after the last, validation, snapshots.
 * @throws UserError on divergence; InterruptedError when `o.signal` aborts.
 */
async function trainEpoch(
  o: TrainOptions, t: Trainee, run: RunState, epoch: number, loader: BatchLoader, pool: ReplicaPool | null, plans: BatchPlan[],
): Promise<EpochTotals> {
  let lossSum = 0;
  let correct = 0;
  let batchNo = 0;
  let stepMs = 0;
  let asked = performance.now();
  for await (const b of loader.batches(plans)) {
    if (o.signal?.aborted) throw new InterruptedError();
    batchNo++;
    const r = pool
      ? await pool.step(t.logits, t.trainable, b.x, b.labels, run.state.step++, () => l2Penalty(t.decayed, o.weightDecay ?? 0))
      : await localStep(o, t, run, b.x, b.labels);
    if (!Number.isFinite(r.loss)) throw diverged(r.loss, epoch, batchNo, run.state.learningRate);
    lossSum += r.loss * b.labels.length;
    correct += r.correct;
    const now = performance.now();
    stepMs += now - asked;
    asked = now;
  }
  return { lossSum, correct, stepSeconds: stepMs / 1000 };
}

/**
 * Logs, once per run, that the pool's threads were unequal enough this epoch for `train.balance=speed` to help.
 * @returns whether it has said so (now or before).
 */
function hintBalance(o: TrainOptions, pool: ReplicaPool | null, hinted: boolean): boolean {
  const balance = pool?.takeBalanceReport();
  if (hinted || !balance || balance.ratio < UNEQUAL_THREADS || (o.balance ?? 'rows') !== 'rows') return hinted;
  o.log(
    `threads: thread ${balance.rank + 1} of ${o.threads} took ${((balance.ratio - 1) * 100).toFixed(0)}% longer per image than the fastest this epoch, ` +
      'and each step waits for it; train.balance=speed splits batches by measured speed (a resumed run then agrees only to rounding)',
  );
  return true;
}

/** The epoch's log line: losses, accuracies, learning rate, and the training rate with what it leaves out. */
function epochLine(o: TrainOptions, m: EpochMetrics, stepSeconds: number): string {
  return `epoch ${m.epoch}/${o.epochs}: train loss ${m.trainLoss.toFixed(4)} acc ${m.trainAccuracy!.toFixed(3)}` +
    (m.validationAccuracy !== null ? `, validation loss ${m.validationLoss!.toFixed(4)} acc ${m.validationAccuracy.toFixed(3)}` : '') +
    `, lr ${fmtLearningRate(m.learningRate)}, ${m.imagesPerSecond.toFixed(m.imagesPerSecond < 10 ? 2 : m.imagesPerSecond < 100 ? 1 : 0)} images/s ` +
    `(${stepSeconds.toFixed(stepSeconds < 10 ? 2 : 1)} s of training steps; validation and snapshots not counted)`;
}

/**
 * Acts on the schedule's decision after an epoch: keeps a copy of the weights as the new best checkpoint, changes
 * the learning rate (a `study` drop restores the best weights and starts the optimizer afresh), marks the run done.
 */
function applyDecision(o: TrainOptions, t: Trainee, run: RunState, m: EpochMetrics): void {
  const { state } = run;
  const v = m.validationAccuracy !== null ? { loss: m.validationLoss!, accuracy: m.validationAccuracy } : null;
  const d = afterEpoch(run.sched, state, m.epoch, v);
  if (d.newBest) {
    run.best?.forEach((x) => x.dispose());
    run.best = cloneAll(t.vars);
  }
  if (d.learningRate !== null) {
    if (d.restoreBest) {
      if (run.best) t.vars.forEach((x, i) => x.assign(run.best![i]!));
      disposeOptimizer(run.optimizer);
      run.optimizer = makeOptimizer(o, state.learningRate);
    } else setLearningRate(run.optimizer, state.learningRate);
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
}

/** The loaders of the training split (a worker thread unless `o.workerLoader` is false) and of the validation split. */
function openLoaders(o: TrainOptions): { loader: BatchLoader; valLoader: BatchLoader | null } {
  return {
    loader: new BatchLoader(o.train, { crop: o.crop, mean: o.mean, worker: o.workerLoader ?? true, prefetch: 2 }),
    valLoader: o.validation ? new BatchLoader(o.validation, { crop: o.crop, mean: o.mean, worker: false }) : null,
  };
}

/**
 * Runs epoch `state.epoch + 1`: the schedule's rate for it, the training steps, validation, the schedule's decision,
 * the log line and `onEpoch`, and a snapshot when due.
 * @returns the epoch's metrics and whether the balance hint has been given.
 */
async function runEpoch(
  o: TrainOptions, t: Trainee, run: RunState, loaders: { loader: BatchLoader; valLoader: BatchLoader | null }, pool: ReplicaPool | null,
  balanceHinted: boolean,
): Promise<{ metrics: EpochMetrics; balanceHinted: boolean }> {
  const { state } = run;
  const epoch = state.epoch + 1;
  const change = beforeEpoch(run.sched, state, epoch);
  if (change) {
    setLearningRate(run.optimizer, change.learningRate);
    o.log(`learning rate → ${fmtLearningRate(change.learningRate)} (${change.reason})`);
  }
  const t0 = performance.now();
  // Weights, optimizer or learning rate may have changed since the last epoch (resume, restore, new rate).
  await pool?.sync(t.trainable, run.optimizer, optimizerConfig(o, state.learningRate));
  const plans = planEpoch(run.rng, o.train.n, o.batchSize, o.train.size, o.crop, o.mirror);
  const totals = await trainEpoch(o, t, run, epoch, loaders.loader, pool, plans);
  // The replicas' optimizer state goes back to this thread's optimizer (snapshots, a rate change, a restart).
  await pool?.storeOptimizerState(t.trainable, run.optimizer);
  const hinted = hintBalance(o, pool, balanceHinted);
  const v = o.validation ? await evaluateLoss(t.logits, o.validation, o.crop, o.mean, o.batchSize, loaders.valLoader!, pool) : null;
  const m: EpochMetrics = {
    epoch,
    trainLoss: totals.lossSum / o.train.n,
    trainAccuracy: totals.correct / o.train.n,
    validationLoss: v?.loss ?? null,
    validationAccuracy: v?.accuracy ?? null,
    learningRate: state.learningRate,
    seconds: (performance.now() - t0) / 1000,
    imagesPerSecond: o.train.n / totals.stepSeconds,
  };
  state.metrics.push(m);
  state.epoch = epoch;
  o.log(epochLine(o, m, totals.stepSeconds));
  applyDecision(o, t, run, m);
  o.onEpoch?.(m, state.done);
  if (state.done || epoch % o.snapshotEvery === 0) await writeRunSnapshot(o, t, run);
  return { metrics: m, balanceHinted: hinted };
}

/**
 * Trains a model, resuming from a snapshot when `snapshotDir` (or `resumeFrom`) holds one.
 * @throws UserError when the loss becomes NaN or infinite (divergence: lower `train.learningRate`), when
 *   `resumeFrom` holds no snapshot, or when a snapshot does not fit the model.
 * @throws Error `aborted` when `signal` aborts (the last snapshot stays).
 */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  const t = await buildTrainee(o);
  const run = freshRun(o);
  await resumeRun(o, t, run);
  const loaders = openLoaders(o);
  o.log(`loader: ${loaders.loader.mode}`);
  const pool = await startPool(o, t.trainable, t.nonTrainable, t.classes, t.model, t.gradientScales);
  o.onStart?.({ epoch: run.state.epoch, done: run.state.done || run.state.epoch >= o.epochs });
  let epochsThisCall = 0;
  let balanceHinted = false; // said once per run
  let stopReason = run.state.stopReason ?? '';
  try {
    while (!run.state.done && run.state.epoch < o.epochs) {
      if (o.stopAfter !== undefined && epochsThisCall >= o.stopAfter) {
        stopReason = 'stopAfter';
        break;
      }
      ({ balanceHinted } = await runEpoch(o, t, run, loaders, pool, balanceHinted));
      epochsThisCall++;
    }
  } finally {
    await loaders.loader.close();
    await loaders.valLoader?.close();
    await pool?.close();
  }
  const { state } = run;
  if (state.done) stopReason = state.stopReason ?? 'epochs';
  if (state.done && run.best) t.vars.forEach((v, i) => v.assign(run.best![i]!));
  run.best?.forEach((x) => x.dispose());
  disposeOptimizer(run.optimizer);
  return { model: t.model, metrics: state.metrics, state, stopReason, loaderMode: loaders.loader.mode };
}
