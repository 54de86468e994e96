/**
 * Data-parallel training and inference across worker threads (`train.threads`).
 *
 * Each thread (rank) holds a replica of the model on its own CPU backend (wasm or cpu): rank 0 is the calling
 * thread, ranks 1…T−1 are workers (train/replica-worker.ts). A training step:
 * 1. the batch `[N, crop, crop, 3]` and its labels go to shared memory; rank r takes rows {@link sliceRows}`(N, T, r)`
 *    ({@link speedSlices} with {@link Balance} `speed`);
 * 2. every rank computes the gradient of its rows' share of the batch's mean cross-entropy
 *    (Σ over its rows / N; rank 0 adds the per-step penalty, e.g. weight decay, once) and writes it, all variables
 *    flattened in order and read straight from the wasm heap ({@link copyValues}), to its own region of a shared buffer;
 * 3. all-reduce and update in one pass, each rank on its own chunk of the parameters ({@link chunkRange}): rank r
 *    sums chunk r of the T gradient regions (rank order, float64, one rounding to float32) and applies the optimizer's
 *    update to that chunk of the shared weights and optimizer state (train/optimizer.ts `updateChunk`: tfjs's
 *    Nesterov and Adam arithmetic, bit for bit);
 * 4. every rank copies the shared weights (and batch norm's moving statistics, from rank 0) into its replica. The
 *    optimizer state lives in shared memory while the pool trains: {@link ReplicaPool.sync} puts the calling thread's
 *    weights and optimizer state there, {@link ReplicaPool.storeOptimizerState} writes the state back into its
 *    optimizer (before a snapshot).
 *
 * So the update is that of the whole batch; the thread count changes only the order of float additions (the
 * per-row losses summed per slice, then the slices). Batch normalisation uses the whole batch's statistics
 * (train/sync-batch-norm.ts). Dropout masks are drawn for the whole batch and cut per slice
 * ({@link setDropoutStep} `rows`). Coordination is by `postMessage`, one round trip per phase.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ModelSpec } from '../schemas/model-params.ts';
import type { FineTuneOptions } from './fine-tune.ts';
import { setDropoutStep } from './models.ts';
import { batchNormChannels, Collective, CollectiveAborted, collectiveLength, synchroniseBatchNorm } from './sync-batch-norm.ts';
import { nextPowers, paramCount, readOptimizerState, slotCount, updateChunk, writeOptimizerState, type OptimizerConfig } from './optimizer.ts';
import { startTsWorker } from './ts-worker.ts';

/**
 * How a replica gets its model: built from a spec or, when fine-tuning, from the pretrained file with the same
 * settings (train/fine-tune.ts buildFineTuneModel: the same frozen layers, frozen batch norm and gradient scales) —
 * for training; the weights come with {@link ReplicaPool.sync} — or loaded (inference).
 */
export type ReplicaModel =
  | { kind: 'build'; spec: ModelSpec; crop: number; classes: number; seed: number }
  | { kind: 'fineTune'; fineTune: FineTuneOptions; classes: number; seed: number }
  | { kind: 'load'; dir: string };

/** Shared buffers of a pool. */
export interface ReplicaBuffers {
  /** Batch images, `[maxRows, crop, crop, 3]` float32. */
  x: SharedArrayBuffer;
  /** Batch labels, `[maxRows]` int32. */
  labels: SharedArrayBuffer;
  /** Per-rank gradients, `[T, P]` float32 (P: trainable parameters). Empty for inference pools. */
  grads: SharedArrayBuffer;
  /** The weights after the last update, `[P]` float32 (variables flattened in order). Empty for inference pools. */
  weights: SharedArrayBuffer;
  /** The optimizer's state, `[2, P]` float32 (Nesterov uses the first row; train/optimizer.ts `slotCount`). */
  slots: SharedArrayBuffer;
  /**
   * Non-trainable variables (batch norm's moving statistics) as the calling thread has them after a sync or a step,
   * `[Q]` float32: a rank with no rows in a batch (a last batch smaller than the thread count) did not update them.
   */
  state: SharedArrayBuffer;
  /** The batch-norm statistics' all-reduce (train/sync-batch-norm.ts), or null for models without batch norm. */
  batchNorm: { buffer: SharedArrayBuffer; maxLength: number } | null;
  /** Model outputs of a forward pass, `[maxRows, classes]` float32. */
  out: SharedArrayBuffer;
}

/** What a worker receives as `workerData`. */
export interface ReplicaInit {
  rank: number;
  threads: number;
  backend: 'wasm' | 'cpu';
  model: ReplicaModel;
  crop: number;
  classes: number;
  buffers: ReplicaBuffers;
}

/** Messages to a worker. */
export type ReplicaRequest =
  | {
    /** Load the shared weights; take this optimizer (its state is in the shared slots). */
    op: 'sync'; optimizer: OptimizerConfig;
    /** Adam's running β1ᵗ, β2ᵗ as the calling thread has them. */
    adamPowers: [number, number] | null;
  }
  /** Compute the gradient of rows `offset … offset+count` of a batch of `rows`. */
  | { op: 'step'; rows: number; step: number; offset: number; count: number }
  /** All-reduce and update the rank's chunk (train/optimizer.ts `updateChunk`). */
  | { op: 'update' }
  /**
   * Copy the shared weights, and the non-trainable state when there is any, into the replica (no reply: the next
   * request waits for it).
   */
  | { op: 'load' }
  | { op: 'forward'; rows: number; output: 'model' | 'logits' };

/** Replies of a worker. */
export type ReplicaReply =
  | { op: 'ready'; params: number; state: number }
  | { op: 'synced' }
  /** `ms`: how long the rank's gradient took, waits for the other ranks left out (for {@link Balance} `speed`). */
  | { op: 'grads'; loss: number; correct: number; ms: number }
  | { op: 'updated' }
  | { op: 'forward' }
  | { op: 'error'; message: string };

/**
 * `train.threads` when unset: `COVERS_THREADS` when set to a positive integer (e.g. to leave cores to other work
 * in `covers demo`, which takes no config), else the threads Node reports available (`os.availableParallelism()`).
 */
export function defaultThreads(): number {
  const env = Number(process.env.COVERS_THREADS);
  if (Number.isInteger(env) && env >= 1) return env;
  return Math.max(1, availableParallelism());
}

/**
 * Rows of a batch of `n` that rank `rank` of `threads` takes: contiguous, sizes differing by at most one, the
 * larger first. Ranks may get 0 rows (a batch smaller than the thread count).
 * @returns `[offset, count]`.
 */
export function sliceRows(n: number, threads: number, rank: number): [number, number] {
  const base = Math.floor(n / threads);
  const extra = n % threads;
  const offset = rank * base + Math.min(rank, extra);
  return [offset, base + (rank < extra ? 1 : 0)];
}

/**
 * How {@link ReplicaPool.step} splits a batch across the ranks (`train.balance`): `rows`, equal slices
 * ({@link sliceRows}: the float summation order depends only on the thread count, so resuming is exact); `speed`,
 * slices in proportion to each rank's measured speed ({@link speedSlices}: no rank waits long for a slower one on
 * cores of unequal speed, but the summation order then depends on timing).
 */
export type Balance = 'rows' | 'speed';

/**
 * Slices of a batch of `n` rows in proportion to each rank's speed, `1 / secondsPerRow[r]`: contiguous, in rank
 * order, each rank at least one row when `n` ≥ T (so the ranks with rows are always 0 … min(n, T)−1, as with
 * {@link sliceRows}); the rows left by rounding down go to the largest remainders (ties: the lower rank). Falls back
 * to {@link sliceRows} when `n` < T or a speed is not a positive finite number.
 * @returns `[offset, count]` per rank.
 */
export function speedSlices(n: number, secondsPerRow: readonly number[]): [number, number][] {
  const t = secondsPerRow.length;
  const equal = () => Array.from({ length: t }, (_, r) => sliceRows(n, t, r));
  if (n < t || secondsPerRow.some((v) => !(v > 0 && Number.isFinite(v)))) return equal();
  const speed = secondsPerRow.map((v) => 1 / v);
  const total = speed.reduce((a, b) => a + b, 0);
  const share = speed.map((v) => ((n - t) * v) / total); // rows beyond the first one each
  const counts = share.map((e) => 1 + Math.floor(e));
  const byRemainder = share.map((e, r) => ({ r, rest: e - Math.floor(e) })).sort((a, b) => b.rest - a.rest || a.r - b.r);
  let left = n - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i++, left--) counts[byRemainder[i]!.r]!++; // left < t: each floor dropped less than 1
  let at = 0;
  return counts.map((c) => {
    const slice: [number, number] = [at, c];
    at += c;
    return slice;
  });
}

/**
 * Folds one step's timings into per-rank seconds per row (an exponential moving average, weight ½ on the new step;
 * the first step's values as they are). Ranks without rows keep their figure.
 */
export function updateSecondsPerRow(prev: readonly number[] | null, ms: readonly number[], counts: readonly number[]): number[] {
  return ms.map((m, r) => {
    const sample = counts[r]! > 0 ? m / 1000 / counts[r]! : NaN;
    const old = prev?.[r];
    if (!Number.isFinite(sample)) return old ?? NaN;
    return old !== undefined && Number.isFinite(old) ? (old + sample) / 2 : sample;
  });
}

/**
 * The slowest rank by gradient time per row and how much slower it was than the fastest (`ratio` ≥ 1), from each
 * rank's summed milliseconds and rows; null without rows on every rank.
 */
export function balanceReport(ms: readonly number[], rows: readonly number[]): { rank: number; ratio: number } | null {
  if (rows.length < 2 || rows.some((r) => r <= 0)) return null;
  const perRow = ms.map((m, r) => m / rows[r]!);
  const slowest = perRow.indexOf(Math.max(...perRow));
  return { rank: slowest, ratio: perRow[slowest]! / Math.min(...perRow) };
}

/** Element range `[from, to)` of chunk `rank` of `p` elements split `threads` ways (the all-reduce's chunks). */
export function chunkRange(p: number, threads: number, rank: number): [number, number] {
  const [from, count] = sliceRows(p, threads, rank);
  return [from, from + count];
}

/** A loss term added once per step (not per row), e.g. the weight-decay penalty; built inside the gradient tape. */
export type StepPenalty = () => tf.Scalar | null;

/**
 * One rank's part of a training step: the gradient of Σ (cross-entropy of its rows) / `total` (plus `penalty()`,
 * which exactly one rank adds) with respect to `vars`, written flattened (variables in order) to `out`; a variable
 * the rank's loss does not reach gets zeros.
 * @param x the whole batch `[total, crop, crop, 3]` float32; this rank's rows are `offset … offset+count`.
 * @param scales per variable of `vars`, a factor for its gradient (fine-tuning's train.pretrainedLearningRateScale,
 *   as train/fine-tune.ts minimizeScaled applies on one thread; the reduction is linear, so scaling each rank's part
 *   scales the sum), or null: every gradient as it is.
 * @returns the rank's share of the batch's mean cross-entropy (without the penalty) and its correct predictions.
 */
export function sliceGradients(
  logits: tfl.LayersModel, vars: readonly tf.Variable[], x: Float32Array, labels: Int32Array, offset: number, count: number, total: number,
  crop: number, classes: number, step: number, out: Float32Array, penalty: StepPenalty | null = null, scales: readonly number[] | null = null,
): { loss: number; correct: number } {
  setDropoutStep(logits, step, { offset, total });
  if (count === 0 && !penalty) {
    out.fill(0);
    return { loss: 0, correct: 0 };
  }
  const px = crop * crop * 3;
  let hits: tf.Scalar | null = null;
  let share: tf.Scalar | null = null;
  const { value, grads } = tf.tidy(() => {
    const xs = tf.tensor4d(x.subarray(offset * px, (offset + count) * px), [count, crop, crop, 3]);
    const y = tf.tensor1d(labels.subarray(offset, offset + count), 'int32');
    return tf.variableGrads(() => {
      let ce: tf.Scalar = tf.scalar(0);
      if (count > 0) {
        const o = logits.apply(xs, { training: true }) as tf.Tensor2D;
        hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(o, 1), y), 'int32'))) as tf.Scalar;
        const sum = tf.losses.softmaxCrossEntropy(tf.oneHot(y, classes), o, undefined, undefined, tf.Reduction.SUM);
        ce = tf.div(sum, total) as tf.Scalar;
      }
      const p = penalty?.() ?? null;
      if (!p) return ce;
      share = tf.keep(ce);
      return tf.add(ce, p) as tf.Scalar;
    }, vars as tf.Variable[]);
  });
  let at = 0;
  for (const [i, v] of vars.entries()) {
    const g = grads[v.name];
    if (g) {
      copyValues(g, out, at);
      g.dispose();
      const scale = scales?.[i] ?? 1;
      if (scale !== 1) for (let k = at; k < at + v.size; k++) out[k] = Math.fround(out[k]! * scale);
    } else {
      out.fill(0, at, at + v.size);
    }
    at += v.size;
  }
  const loss = ((share as tf.Scalar | null) ?? value).dataSync()[0]!;
  value.dispose();
  (share as tf.Scalar | null)?.dispose();
  const correct = hits ? (hits as tf.Scalar).dataSync()[0]! : 0;
  (hits as tf.Scalar | null)?.dispose();
  return { loss, correct };
}

/**
 * Runs one rank's part of a training step (`compute`, e.g. {@link sliceGradients}) and times it in milliseconds,
 * leaving out the waits at synchronised batch norm's barrier (else a fast rank that waited for a slow one would look
 * as slow, for {@link Balance} `speed` and {@link ReplicaPool.takeBalanceReport}). First tells `collective` which
 * ranks take part: both splits give rows to ranks 0 … min(rows, threads)−1.
 */
export function timedGradient<T extends object>(collective: Collective | null, threads: number, rows: number, compute: () => T): T & { ms: number } {
  collective?.begin(Math.min(threads, rows));
  const waited = collective?.waitedMs ?? 0;
  const t0 = performance.now();
  const r = compute();
  return { ...r, ms: performance.now() - t0 - ((collective?.waitedMs ?? 0) - waited) };
}

/** Copies `vars` (in order) into `out` `[Σ sizes]` float32, flattened ({@link copyValues}); the inverse of {@link loadWeights}. */
function storeAll(vars: readonly tf.Variable[], out: Float32Array): void {
  let at = 0;
  for (const v of vars) {
    copyValues(v, out, at);
    at += v.size;
  }
}

/**
 * Sets `vars` (in order) to the values of `weights` `[P]` float32: one new tensor per variable, assigned (the old
 * values are freed; a tensor that shares them, e.g. a checkpoint's clone, keeps its own).
 */
export function loadWeights(vars: readonly tf.Variable[], weights: Float32Array): void {
  let at = 0;
  for (const v of vars) {
    const t = tf.tensor(weights.subarray(at, at + v.size), v.shape, 'float32');
    v.assign(t);
    t.dispose();
    at += v.size;
  }
}

/** The wasm backend's view of a tensor's values in its heap (tfjs-backend-wasm 4.22 `BackendWasm`). */
interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/**
 * Copies the float32 values of `t` into `out` from element `at`: straight from the wasm heap when the active
 * backend is wasm (one copy: 2.5 ms for a 4608 × 2048 dense layer's gradient here, against 145–310 ms through
 * `dataSync()`, which first copies them to a fresh array), else through `dataSync()`.
 */
function copyValues(t: tf.Tensor, out: Float32Array, at: number): void {
  const b = tf.backend() as unknown as Partial<HeapBackend>;
  if (tf.getBackend() === 'wasm' && typeof b.typedArrayFromHeap === 'function' && t.dtype === 'float32') {
    out.set(b.typedArrayFromHeap(t), at);
  } else {
    out.set(t.dataSync() as Float32Array, at);
  }
}

/** Forward pass of rows `offset … offset+count` of `x`, outputs written to `out` at the same rows. */
export function sliceForward(model: tfl.LayersModel, x: Float32Array, offset: number, count: number, crop: number, classes: number, out: Float32Array): void {
  if (count === 0) return;
  const px = crop * crop * 3;
  const values = tf.tidy(() => {
    const xs = tf.tensor4d(x.subarray(offset * px, (offset + count) * px), [count, crop, crop, 3]);
    return (model.predict(xs) as tf.Tensor2D).dataSync() as Float32Array;
  });
  out.set(values, offset * classes);
}

/** Options of {@link ReplicaPool.start}. */
export interface ReplicaPoolOptions {
  /** Threads in all, including the calling one (≥ 2 to start workers). */
  threads: number;
  /** The CPU backend every replica uses (the calling thread's). */
  backend: 'wasm' | 'cpu';
  /** How training steps split a batch (default `rows`). */
  balance?: Balance;
  model: ReplicaModel;
  crop: number;
  classes: number;
  /** Largest batch, in rows (images × crops for inference). */
  maxRows: number;
  /** Trainable variables of the calling thread's model (empty for inference): sizes the gradient buffers. */
  vars: readonly tf.Variable[];
  /** Its non-trainable variables (batch norm's moving statistics): {@link ReplicaPool.sync} sends them, nothing trains them. */
  state?: readonly tf.Variable[];
  /** Per variable of `vars`, its gradient's scale on this thread (fine-tuning; {@link sliceGradients}), or null. */
  gradientScales?: readonly number[] | null;
  /**
   * The calling thread's model when training: while the pool lives, the batch-norm layers of every replica,
   * this one included, normalise by the whole batch's statistics (train/sync-batch-norm.ts).
   */
  replica?: tfl.LayersModel;
}

interface Pending {
  resolve: (r: ReplicaReply) => void;
  reject: (e: Error) => void;
}

/**
 * Worker replicas of a model plus the calling thread as rank 0 (see the module comment). `close()` when done.
 * Not reentrant: one operation at a time.
 */
export class ReplicaPool {
  private readonly workers: Worker[] = [];
  private readonly queues: Pending[][] = [];
  private failure: Error | null = null;
  readonly x: Float32Array;
  readonly labels: Int32Array;
  readonly grads: Float32Array;
  readonly weights: Float32Array;
  readonly slots: Float32Array;
  /** Non-trainable values for the workers (`buffers.state`). */
  readonly state: Float32Array;
  readonly out: Float32Array;
  readonly params: number;
  /** The optimizer since the last sync, Adam's powers and the step count (tfjs's `iterations`) as the update left them. */
  private optimizer: OptimizerConfig | null = null;
  private powers: [number, number] | null = null;
  private iterations = 0;
  /** Rank 0's end of the batch-norm all-reduce, and what puts the replica's own batch norm back. */
  private collective: Collective | null = null;
  private restoreBatchNorm: (() => void) | null = null;
  /** Each rank's measured seconds per training row, for {@link Balance} `speed` (null before the first step). */
  private secondsPerRow: number[] | null = null;
  /** Each rank's gradient milliseconds and rows since the last {@link takeBalanceReport}. */
  private timeSums: { ms: number[]; rows: number[] };

  private constructor(readonly opts: ReplicaPoolOptions, readonly buffers: ReplicaBuffers) {
    this.params = paramCount(opts.vars);
    this.x = new Float32Array(buffers.x);
    this.labels = new Int32Array(buffers.labels);
    this.grads = new Float32Array(buffers.grads);
    this.weights = new Float32Array(buffers.weights);
    this.slots = new Float32Array(buffers.slots);
    this.state = new Float32Array(buffers.state);
    this.out = new Float32Array(buffers.out);
    this.timeSums = { ms: new Array<number>(opts.threads).fill(0), rows: new Array<number>(opts.threads).fill(0) };
  }

  /**
   * How unequal the threads were since the last call (see {@link balanceReport}; rank 0 is this thread), from the
   * training steps' gradient times; null before any step, or when a rank computed for less than `minMs` in all
   * (too little to judge). Resets the sums.
   */
  takeBalanceReport(minMs = 2000): { rank: number; ratio: number } | null {
    const r = Math.min(...this.timeSums.ms) >= minMs ? balanceReport(this.timeSums.ms, this.timeSums.rows) : null;
    this.timeSums.ms.fill(0);
    this.timeSums.rows.fill(0);
    return r;
  }

  /** Threads in all (workers + the calling thread). */
  get threads(): number {
    return this.opts.threads;
  }

  /**
   * Starts `threads − 1` workers and waits until each has its backend and model.
   * @throws Error when a worker cannot start or its model does not match (the message names the rank and why);
   *   workers already started are stopped.
   */
  static async start(opts: ReplicaPoolOptions): Promise<ReplicaPool> {
    const p = paramCount(opts.vars);
    const q = paramCount(opts.state ?? []);
    const px = opts.crop * opts.crop * 3;
    const channels = opts.replica ? batchNormChannels(opts.replica) : 0;
    const buffers: ReplicaBuffers = {
      x: new SharedArrayBuffer(opts.maxRows * px * 4),
      labels: new SharedArrayBuffer(opts.maxRows * 4),
      grads: new SharedArrayBuffer(opts.threads * p * 4),
      weights: new SharedArrayBuffer(p * 4),
      slots: new SharedArrayBuffer(slotCount('adam') * p * 4),
      state: new SharedArrayBuffer(q * 4),
      batchNorm: channels > 0 ? { buffer: Collective.buffer(opts.threads, collectiveLength(channels)), maxLength: collectiveLength(channels) } : null,
      out: new SharedArrayBuffer(opts.maxRows * opts.classes * 4),
    };
    const pool = new ReplicaPool(opts, buffers);
    try {
      const ready: Promise<ReplicaReply>[] = [];
      for (let rank = 1; rank < opts.threads; rank++) {
        const init: ReplicaInit = { rank, threads: opts.threads, backend: opts.backend, model: opts.model, crop: opts.crop, classes: opts.classes, buffers };
        const w = startTsWorker(new URL('./replica-worker.ts', import.meta.url), init);
        const q: Pending[] = [];
        pool.workers.push(w);
        pool.queues.push(q);
        ready.push(new Promise((resolve, reject) => q.push({ resolve, reject })));
        w.on('message', (m: ReplicaReply) => {
          const next = q.shift();
          if (!next) return;
          if (m.op === 'error') next.reject(new Error(`training thread ${rank}: ${m.message}`));
          else next.resolve(m);
        });
        w.on('error', (e) => pool.fail(new Error(`training thread ${rank} failed: ${e.message}`)));
        w.on('exit', (code) => { if (q.length) pool.fail(new Error(`training thread ${rank} exited (code ${code})`)); });
      }
      const replies = await Promise.all(ready);
      for (const [i, r] of replies.entries()) {
        if (r.op === 'ready' && opts.vars.length && (r.params !== p || r.state !== q)) {
          throw new Error(`training thread ${i + 1}: its model has ${r.params} parameters and ${r.state} other values, this thread's ${p} and ${q}`);
        }
      }
      const bn = buffers.batchNorm;
      if (bn && opts.replica) {
        pool.collective = new Collective(bn.buffer, opts.threads, 0, bn.maxLength);
        pool.restoreBatchNorm = synchroniseBatchNorm(opts.replica, pool.collective);
      }
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const q of this.queues) for (const p of q.splice(0)) p.reject(e);
  }

  /**
   * Sends one request to every worker (`req`, or `req(rank)` per worker) and waits for all replies (while `local`
   * runs on this thread).
   */
  private async all<T>(req: ReplicaRequest | ((rank: number) => ReplicaRequest), local: () => T): Promise<[T, ReplicaReply[]]> {
    if (this.failure) throw this.failure;
    const replies = this.workers.map((w, i) => {
      const p = new Promise<ReplicaReply>((resolve, reject) => this.queues[i]!.push({ resolve, reject }));
      w.postMessage(typeof req === 'function' ? req(i + 1) : req);
      return p;
    });
    let mine: { value: T } | { error: unknown };
    try {
      mine = { value: local() };
    } catch (e) {
      this.collective?.abort(); // workers waiting for this thread's batch-norm statistics stop waiting
      mine = { error: e };
    }
    // Always wait for the workers, so that no reply is left to a later request.
    const settled = await Promise.allSettled(replies);
    const bad = settled.find((s) => s.status === 'rejected');
    // A worker's own error says more than this thread's "another training thread failed".
    if ('error' in mine) throw mine.error instanceof CollectiveAborted && bad ? (bad as PromiseRejectedResult).reason : mine.error;
    if (bad) throw (bad as PromiseRejectedResult).reason;
    return [mine.value, settled.map((s) => (s as PromiseFulfilledResult<ReplicaReply>).value)];
  }

  /**
   * Gives every replica this thread's weights and `optimizer`'s state (after a resume, a restore of the best weights,
   * a new optimizer or learning rate): both go to shared memory, where the steps update them. Call before the first
   * step and whenever they change outside {@link step}.
   * @throws Error when the optimizer's state does not fit `vars`.
   */
  async sync(vars: readonly tf.Variable[], optimizer: tf.Optimizer, config: OptimizerConfig): Promise<void> {
    storeAll(vars, this.weights);
    storeAll(this.opts.state ?? [], this.state);
    const { iterations, powers } = await readOptimizerState(optimizer, config.kind, vars, this.slots);
    this.optimizer = config;
    this.powers = powers;
    this.iterations = iterations;
    await this.all({ op: 'sync', optimizer: config, adamPowers: powers }, () => undefined);
  }

  /**
   * Writes the optimizer state of the steps since the last {@link sync} (slots, Adam's powers, the step count) into
   * `optimizer`, the one given to sync, so that its `getWeights()` (a snapshot) holds what the replicas hold.
   */
  async storeOptimizerState(vars: readonly tf.Variable[], optimizer: tf.Optimizer): Promise<void> {
    if (!this.optimizer) throw new Error('storeOptimizerState before sync');
    await writeOptimizerState(optimizer, this.optimizer.kind, vars, this.slots, this.iterations, this.powers);
  }

  /**
   * One training step on the whole batch (see the module comment): this thread's replica (`logits`, `vars`) computes
   * rank 0's slice and takes the updated weights like every worker. The optimizer is the one given to {@link sync};
   * its state advances in shared memory ({@link storeOptimizerState} writes it back).
   * @param x `[n, crop, crop, 3]` float32; `labels` `[n]`.
   * @param penalty a term added to the loss once per step (the weight decay's `λ/2 · Σ‖W‖²`): this thread adds it to
   *   its slice, so the reduced gradient is that of the whole batch's mean cross-entropy plus the penalty.
   * @returns the batch's mean cross-entropy (without the penalty) and its correct predictions.
   * @throws Error before {@link sync}, or when a worker fails.
   */
  async step(
    logits: tfl.LayersModel, vars: readonly tf.Variable[], x: Float32Array, labels: Int32Array, step: number,
    penalty: StepPenalty | null = null,
  ): Promise<{ loss: number; correct: number }> {
    const c = this.optimizer;
    if (!c) throw new Error('step before sync');
    const n = labels.length;
    const o = this.opts;
    this.x.set(x);
    this.labels.set(labels);
    const slices = o.balance === 'speed' && this.secondsPerRow
      ? speedSlices(n, this.secondsPerRow)
      : Array.from({ length: o.threads }, (_, r) => sliceRows(n, o.threads, r));
    const [offset, count] = slices[0]!;
    const [mine, replies] = await this.all((r) => ({ op: 'step', rows: n, step, offset: slices[r]![0], count: slices[r]![1] }), () =>
      timedGradient(this.collective, o.threads, n, () =>
        sliceGradients(logits, vars, this.x, this.labels, offset, count, n, o.crop, o.classes, step, this.grads.subarray(0, this.params), penalty, o.gradientScales ?? null)));
    let loss = mine.loss;
    let correct = mine.correct;
    const ms = [mine.ms];
    for (const r of replies) {
      if (r.op !== 'grads') throw new Error(`training thread: unexpected reply ${r.op}`);
      loss += r.loss;
      correct += r.correct;
      ms.push(r.ms);
    }
    if (o.balance === 'speed') this.secondsPerRow = updateSecondsPerRow(this.secondsPerRow, ms, slices.map((sl) => sl[1]));
    ms.forEach((m, r) => {
      this.timeSums.ms[r]! += m;
      this.timeSums.rows[r]! += slices[r]![1];
    });
    const [from, to] = chunkRange(this.params, o.threads, 0);
    await this.all({ op: 'update' }, () => updateChunk(c, this.powers, this.grads, o.threads, this.weights, this.slots, from, to));
    this.powers = nextPowers(c, this.powers);
    this.iterations++;
    // No reply: a worker handles its messages in order, so it loads before its next step or forward pass.
    if (this.failure) throw this.failure;
    storeAll(this.opts.state ?? [], this.state); // the workers load it with the weights
    for (const w of this.workers) w.postMessage({ op: 'load' } satisfies ReplicaRequest);
    loadWeights(vars, this.weights);
    return { loss, correct };
  }

  /**
   * Forward pass of `n` rows of `x` split across the threads; `model` is this thread's replica.
   * @param output `model` (the replica's model outputs, e.g. softmax probabilities) or `logits` (training pools).
   * @returns outputs `[n, classes]` (a view of shared memory, valid until the next call).
   */
  async forward(model: tfl.LayersModel, x: Float32Array, n: number, output: 'model' | 'logits'): Promise<Float32Array> {
    const o = this.opts;
    this.x.set(x.subarray(0, n * o.crop * o.crop * 3));
    const [offset, count] = sliceRows(n, o.threads, 0);
    await this.all({ op: 'forward', rows: n, output }, () => sliceForward(model, this.x, offset, count, o.crop, o.classes, this.out));
    return this.out.subarray(0, n * o.classes);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    this.restoreBatchNorm?.();
    this.restoreBatchNorm = null;
    const ws = this.workers.splice(0);
    this.fail(new Error('replica pool closed'));
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/**
 * A pool for inference with a saved model (the evaluate stage): `threads − 1` workers load the model from `dir`
 * (train/model-io.ts layout). Returns null, saying why in `log`, for one thread, a GPU backend, or workers that
 * do not start (inference then runs on the calling thread alone).
 */
export async function startInferencePool(
  dir: string, crop: number, classes: number, maxRows: number, threads: number, log: (line: string) => void,
): Promise<ReplicaPool | null> {
  if (threads <= 1) return null;
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') {
    log(`threads: 1 (train.threads applies to the CPU backends; ${backend} runs on one thread)`);
    return null;
  }
  try {
    const pool = await ReplicaPool.start({ threads, backend, vars: [], crop, classes, maxRows, model: { kind: 'load', dir } });
    log(`threads: ${threads} (data-parallel inference, ${backend} on each)`);
    return pool;
  } catch (e) {
    log(`threads: 1 (the worker threads did not start: ${(e as Error).message})`);
    return null;
  }
}
