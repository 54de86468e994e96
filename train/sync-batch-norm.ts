/**
 * Synchronised batch normalisation for data-parallel training (train/data-parallel.ts).
 *
 * A replica holds a slice of each batch; tfjs-layers' BatchNormalization would normalise by its slice's statistics,
 * which differ from the whole batch's, so the result would depend on the thread count. While a pool trains, every
 * replica's BatchNormalization layers (training mode only) instead normalise by the whole batch's per-channel mean
 * and (biased) variance, summed over all ranks' rows in shared memory, and back-propagate through those shared
 * statistics (the gradient of the whole batch's loss, as on one thread):
 *
 * forward:  μ = Σx / N,  σ² = Σ(x − μ)² / N  (two all-reduces: the two-pass variance `tf.moments` computes),
 *           x̂ = (x − μ) / √(σ² + ε),  y = γ·x̂ + β;
 * backward: dx = γ / √(σ² + ε) · (dy − Σdy / N − x̂ · Σ(dy·x̂) / N)  (one all-reduce of Σdy and Σdy·x̂),
 *           dγ = Σ(dy·x̂), dβ = Σdy over the rank's own rows (the pool sums the ranks' parameter gradients).
 *
 * N counts the rows of all ranks (times height × width for convolutions). The moving mean and variance are updated
 * as tfjs-layers does (`moving ← moving − (moving − batch value)·(1 − momentum)`) from the shared statistics, so
 * they stay equal on every replica. Inference mode is tfjs-layers' own code (moving statistics).
 *
 * The all-reduce ({@link Collective}) is a barrier in shared memory (`Atomics.wait`): the ranks run the same layers
 * in the same order, so the k-th call of every rank belongs to the same layer and step. Ranks with no rows in a batch
 * (a last batch smaller than the thread count) run no forward pass and take no part ({@link Collective.begin}).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { leafLayers } from './models.ts';

/** Thrown by a {@link Collective} call after another rank aborted (its own error says why). */
export class CollectiveAborted extends Error {
  constructor() {
    super('another training thread failed');
  }
}

/** Control words of a {@link Collective}'s buffer: arrivals, generation, abort flag. */
const ARRIVED = 0;
const GENERATION = 1;
const ABORTED = 2;
const CONTROL_BYTES = 16;

/**
 * Sum-all-reduce of float64 vectors across the ranks of a pool, in shared memory. Every rank makes the same sequence
 * of calls; each call returns the element-wise sum over the ranks taking part, added in rank order (so every rank gets
 * the same bits). Layout: 4 int32 control words, then `[2, T, maxLength]` float64 (two alternating sets, so a rank
 * that is one call ahead does not overwrite values another is still reading).
 */
export class Collective {
  private readonly control: Int32Array;
  private readonly data: Float64Array;
  private active: number;
  private calls = 0;
  /** Milliseconds this rank has spent waiting for the others, in all (so gradient timings can leave it out). */
  waitedMs = 0;

  /**
   * @param buffer from {@link Collective.buffer} with the same `threads` and `maxLength`.
   * @param timeoutMs how long a rank waits for the others at one call before it gives up (a rank that failed).
   */
  constructor(buffer: SharedArrayBuffer, readonly threads: number, readonly rank: number, readonly maxLength: number, private readonly timeoutMs = 120_000) {
    this.control = new Int32Array(buffer, 0, CONTROL_BYTES / 4);
    this.data = new Float64Array(buffer, CONTROL_BYTES, 2 * threads * maxLength);
    this.active = threads;
  }

  /** A buffer for `threads` ranks and vectors of up to `maxLength` values. */
  static buffer(threads: number, maxLength: number): SharedArrayBuffer {
    return new SharedArrayBuffer(CONTROL_BYTES + 2 * threads * maxLength * 8);
  }

  /** Sets how many ranks (0 … active−1, those with rows) take part in the calls of the next step. */
  begin(active: number): void {
    this.active = active;
  }

  /** Makes every waiting and later call throw (a rank failed: the others must not wait for it). */
  abort(): void {
    Atomics.store(this.control, ABORTED, 1);
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
  }

  /**
   * The element-wise sum of `v` over the ranks taking part.
   * @throws Error when `v` is longer than `maxLength`, when another rank aborted, or after `timeoutMs` without the
   *   others (the message says which).
   */
  allReduceSum(v: Float64Array): Float64Array {
    if (this.rank >= this.active) throw new Error(`rank ${this.rank} has no rows in this step`);
    if (v.length > this.maxLength) throw new Error(`all-reduce of ${v.length} values, at most ${this.maxLength}`);
    const set = this.calls++ & 1;
    const at = (r: number) => (set * this.threads + r) * this.maxLength;
    this.data.set(v, at(this.rank));
    this.barrier();
    const out = new Float64Array(v.length);
    for (let r = 0; r < this.active; r++) {
      const o = at(r);
      for (let i = 0; i < v.length; i++) out[i] += this.data[o + i]!;
    }
    return out;
  }

  private barrier(): void {
    const c = this.control;
    if (Atomics.load(c, ABORTED)) throw new CollectiveAborted();
    const generation = Atomics.load(c, GENERATION);
    if (Atomics.add(c, ARRIVED, 1) === this.active - 1) {
      Atomics.store(c, ARRIVED, 0);
      Atomics.add(c, GENERATION, 1);
      Atomics.notify(c, GENERATION);
      return;
    }
    const start = performance.now();
    const deadline = start + this.timeoutMs;
    try {
      while (Atomics.load(c, GENERATION) === generation) {
        const left = deadline - performance.now();
        if (left <= 0 || Atomics.wait(c, GENERATION, generation, left) === 'timed-out') {
          throw new Error(`batch-norm statistics: the other training threads did not arrive within ${this.timeoutMs / 1000} s`);
        }
      }
    } finally {
      this.waitedMs += performance.now() - start;
    }
    if (Atomics.load(c, ABORTED)) throw new CollectiveAborted();
  }
}

/** What we use of tfjs-layers 4.22's BatchNormalization layer (`layers/normalization.js`). */
interface BatchNormLayer {
  name: string;
  getClassName(): string;
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tfl.LayerVariable;
  beta: tfl.LayerVariable;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/**
 * The trainable BatchNormalization layers of `model`, those of nested models included (a fine-tuned network holds
 * the imported one as a layer). A frozen one (train/fine-tune.ts freezeBatchNorm: not trainable, always run as in
 * inference) has no batch statistics to share.
 */
function batchNormLayers(model: tfl.LayersModel): BatchNormLayer[] {
  return leafLayers(model).filter((l) => l.getClassName() === 'BatchNormalization' && l.trainable) as unknown as BatchNormLayer[];
}

/** The largest channel count of `model`'s BatchNormalization layers, or 0 when it has none. */
export function batchNormChannels(model: tfl.LayersModel): number {
  return Math.max(0, ...batchNormLayers(model).map((l) => l.gamma.shape[0]!));
}

/** Values each all-reduce of a model with at most `channels` batch-norm channels sends: 2 per channel + the count. */
export function collectiveLength(channels: number): number {
  return 2 * channels + 1;
}

/**
 * Makes `model`'s BatchNormalization layers normalise by the statistics of all ranks' rows in training mode (see
 * the module comment), through `collective`.
 * @returns a function that puts tfjs-layers' own training-mode code back.
 * @throws Error for a layer other than ours (`center`, `scale`, channels last), which this does not implement.
 */
export function synchroniseBatchNorm(model: tfl.LayersModel, collective: Collective): () => void {
  const layers = batchNormLayers(model);
  const restore: (() => void)[] = [];
  for (const layer of layers) {
    if (!layer.center || !layer.scale) throw new Error(`${layer.name}: synchronised batch norm needs center and scale`);
    const own = layer.call;
    layer.call = function (inputs, kwargs) {
      if (!kwargs['training']) return own.call(this, inputs, kwargs);
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const axis = layer.axis >= 0 ? layer.axis : layer.axis + x.rank;
      if (axis !== x.rank - 1) throw new Error(`${layer.name}: synchronised batch norm needs the channels last (axis ${layer.axis})`);
      return tf.tidy(() => sharedBatchNorm(layer, x, collective));
    };
    restore.push(() => {
      layer.call = own;
    });
  }
  return () => {
    for (const r of restore) r();
  };
}

/** A float64 vector of `n` followed by the values of `ts` (each `[C]`). */
function packed(n: number, ...ts: tf.Tensor[]): Float64Array {
  const parts = ts.map((t) => t.dataSync() as Float32Array);
  const out = new Float64Array(1 + parts.reduce((s, p) => s + p.length, 0));
  out[0] = n;
  let at = 1;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Training-mode batch norm of `x` `[…, C]` with the statistics of all ranks' rows (module comment). */
function sharedBatchNorm(layer: BatchNormLayer, x: tf.Tensor, collective: Collective): tf.Tensor {
  const c = x.shape[x.rank - 1]!;
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const rows = x.size / c;
  let mean: tf.Tensor1D | null = null;
  let variance: tf.Tensor1D | null = null;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, gamma, beta, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const s1 = collective.allReduceSum(packed(rows, tf.sum(xs, axes)));
    const total = s1[0]!;
    mean = tf.keep(tf.tensor1d(Float32Array.from(s1.subarray(1), (s) => s / total)));
    const centred = tf.sub(xs, mean);
    const s2 = collective.allReduceSum(packed(rows, tf.sum(tf.square(centred), axes)));
    variance = tf.keep(tf.tensor1d(Float32Array.from(s2.subarray(1), (s) => s / total)));
    const invStd = tf.rsqrt(tf.add(variance, layer.epsilon));
    const xHat = tf.mul(centred, invStd);
    save([xHat, invStd, gamma]);
    return {
      value: tf.add(tf.mul(xHat, gamma), beta),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dBeta = tf.sum(dy, axes);
        const dGamma = tf.sum(tf.mul(dy, xh), axes);
        const s = collective.allReduceSum(packed(rows, dBeta, dGamma));
        const n = s[0]!;
        const meanDy = tf.tensor1d(Float32Array.from(s.subarray(1, 1 + c), (v) => v / n));
        const meanDyXh = tf.tensor1d(Float32Array.from(s.subarray(1 + c), (v) => v / n));
        const dx = tf.mul(tf.mul(g, inv), tf.sub(tf.sub(dy, meanDy), tf.mul(xh, meanDyXh)));
        return [dx, dGamma, dBeta];
      },
    };
  });
  const y = f(x, layer.gamma.read(), layer.beta.read()) as tf.Tensor;
  // tfjs-layers' doMovingAverage, with the shared statistics.
  const decay = 1 - layer.momentum;
  for (const [v, value] of [[layer.movingMean, mean!], [layer.movingVariance, variance!]] as const) {
    tf.tidy(() => {
      const orig = v.read();
      v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), decay)));
    });
  }
  tf.dispose([mean!, variance!]);
  return y;
}
