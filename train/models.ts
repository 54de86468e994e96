/**
 * Builds tfjs-layers models from a {@link ModelSpec}: input `[S, S, 3]` float32 (mean-subtracted crop, HWC) →
 * conv (He-uniform, same padding unless told) [→ batch norm] → ReLU [→ max-pool] … → flatten → dense (He-uniform)
 * [→ batch norm] → ReLU → dropout … → dense (Glorot-uniform, Lasagne's default) → softmax. Weights are initialised
 * from the seed. Without batch norm a layer is one tfjs layer with a built-in ReLU, as before batch norm existed.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ModelSpec } from '../schemas/model-params.ts';

/** Options of {@link SeededDropout}. */
export interface SeededDropoutArgs {
  rate: number;
  seed: number;
  name?: string;
}

/**
 * Dropout whose masks come from a seed and a step counter, so a run is reproducible and a resumed run draws the
 * same masks as an uninterrupted one. (tfjs-layers' `Dropout` with a `seed` draws the same mask on every call, and
 * without one uses `Math.random`.) The counter is advanced by {@link setDropoutStep} before each training step.
 */
export class SeededDropout extends tfl.layers.Layer {
  static className = 'SeededDropout';
  readonly rate: number;
  readonly seed: number;
  /** The training step the next mask belongs to. */
  step = 0;
  /**
   * Which rows of the whole batch the next input holds (data-parallel training gives each thread a slice): the mask
   * is drawn for `total` rows and rows `offset …` are used, so masks do not depend on how the batch is split.
   * Null: the input is the whole batch.
   */
  rows: { offset: number; total: number } | null = null;

  constructor(args: SeededDropoutArgs) {
    super({ name: args.name });
    this.rate = args.rate;
    this.seed = args.seed;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (!kwargs.training || this.rate <= 0) return tf.clone(x);
    // A distinct 32-bit seed per (layer seed, step).
    const s = (Math.imul(this.seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(this.step + 1, 0xc2b2ae35)) >>> 0;
    const r = this.rows;
    if (!r || (r.offset === 0 && r.total === x.shape[0])) return tf.dropout(x, this.rate, undefined, s);
    // tf.dropout's mask (tfjs-core 4.22 ops/dropout.ts) for the whole batch, cut to this slice's rows.
    return tf.tidy(() => {
      const keep = 1 - this.rate;
      const all = tf.randomUniform([r.total, ...x.shape.slice(1)], 0, 1, 'float32', s);
      const rows = tf.slice(all, r.offset, x.shape[0]);
      return tf.mul(x, tf.div(tf.floor(tf.add(rows, keep)), keep));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}
tf.serialization.registerClass(SeededDropout);

/**
 * Sets the dropout step of every {@link SeededDropout} of a model, those of nested models included (a fine-tuned
 * network holds the imported one as a layer), and which rows of the whole batch the next input holds (`rows`, see
 * {@link SeededDropout.rows}; default: the whole batch).
 */
export function setDropoutStep(model: tfl.LayersModel, step: number, rows: { offset: number; total: number } | null = null): void {
  for (const layer of leafLayers(model)) {
    if (layer instanceof SeededDropout) {
      layer.step = step;
      layer.rows = rows;
    }
  }
}

/**
 * The layers of `model` that are not models themselves, in order, with the layers of nested models in their place (a
 * fine-tuned network holds the imported one as a single layer: train/fine-tune.ts).
 */
export function leafLayers(model: tfl.LayersModel): tfl.layers.Layer[] {
  return model.layers.flatMap((layer) => (layer instanceof tfl.LayersModel ? leafLayers(layer) : [layer]));
}

/** A built model: `model` outputs softmax probabilities `[B, classes]`; `logits` shares its layers and outputs logits. */
export interface BuiltModel {
  model: tfl.LayersModel;
  logits: tfl.LayersModel;
}

/** Batch normalisation over the last (channel) axis, then ReLU; layers named `<layer>_bn`, `<layer>_relu`. */
function batchNormRelu(x: tfl.SymbolicTensor, layer: string): tfl.SymbolicTensor {
  const y = tfl.layers.batchNormalization({ name: `${layer}_bn`, axis: -1 }).apply(x) as tfl.SymbolicTensor;
  return tfl.layers.reLU({ name: `${layer}_relu` }).apply(y) as tfl.SymbolicTensor;
}

/**
 * Builds the model.
 * @param inputSize side S of the square input crop, pixels.
 * @param classes number of genres.
 * @param seed initialiser and dropout seed.
 * @throws Error naming the layer when a conv or pool leaves no pixels (input too small for the architecture).
 */
export function buildModel(spec: ModelSpec, inputSize: number, classes: number, seed: number): BuiltModel {
  let s = seed * 1000;
  const next = () => s++;
  const input = tfl.input({ shape: [inputSize, inputSize, 3], name: 'image' });
  let x: tfl.SymbolicTensor = input;
  spec.convs.forEach((c, i) => {
    const bn = c.batchNorm === true;
    x = tfl.layers
      .conv2d({
        name: `conv${i}`, filters: c.filters, kernelSize: c.kernelSize, strides: c.strides, padding: c.padding, activation: bn ? 'linear' : 'relu',
        kernelInitializer: tfl.initializers.heUniform({ seed: next() }), biasInitializer: 'zeros', useBias: !bn,
      })
      .apply(x) as tfl.SymbolicTensor;
    if (bn) x = batchNormRelu(x, `conv${i}`);
    if (c.pool) x = tfl.layers.maxPooling2d({ name: `pool${i}`, poolSize: c.pool.poolSize, strides: c.pool.strides, padding: 'valid' }).apply(x) as tfl.SymbolicTensor;
    const shape = x.shape;
    if (shape.some((d) => d !== null && d <= 0)) throw new Error(`model: conv layer ${i} leaves an empty ${shape.slice(1).join('×')} output for ${inputSize}×${inputSize} input`);
  });
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  spec.denses.forEach((d, i) => {
    const bn = d.batchNorm === true;
    x = tfl.layers
      .dense({ name: `dense${i}`, units: d.units, activation: bn ? 'linear' : 'relu', useBias: !bn, kernelInitializer: tfl.initializers.heUniform({ seed: next() }) })
      .apply(x) as tfl.SymbolicTensor;
    if (bn) x = batchNormRelu(x, `dense${i}`);
    if (d.dropout > 0) x = new SeededDropout({ name: `dropout${i}`, rate: d.dropout, seed: next() }).apply(x) as tfl.SymbolicTensor;
  });
  const logitsOut = tfl.layers
    .dense({ name: 'logits', units: classes, kernelInitializer: tfl.initializers.glorotUniform({ seed: next() }) })
    .apply(x) as tfl.SymbolicTensor;
  const probs = tfl.layers.activation({ name: 'softmax', activation: 'softmax' }).apply(logitsOut) as tfl.SymbolicTensor;
  return {
    model: tfl.model({ inputs: input, outputs: probs, name: spec.architecture }),
    logits: tfl.model({ inputs: input, outputs: logitsOut, name: `${spec.architecture}_logits` }),
  };
}
