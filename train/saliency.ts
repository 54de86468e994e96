/**
 * Where a trained model looks, and what it computes before its last layer (the `inspect` stage): class activation
 * maps on the last conv layer — HiResCAM (Draelos & Carin 2020, "Use HiResCAM instead of Grad-CAM for faithful
 * explanations of convolutional neural networks": Σ_c ∂y/∂A_c ⊙ A_c, then ReLU) or Grad-CAM (Selvaraju et al. 2017:
 * Σ_c mean(∂y/∂A_c) · A_c, then ReLU) —, gradient saliency (Simonyan et al. 2014: max over channels of |∂y/∂x|) for
 * a model without conv layers, and the penultimate activations (the input of the `logits` layer, train/models.ts)
 * with the softmax output.
 *
 * Our models end in flatten → dense, so each position has its own weights: HiResCAM is then exactly each position's
 * share of the logit (for a linear head), whereas Grad-CAM's averaged gradient spreads the credit over every
 * position where a channel fires. On the planted-shortcut test (test/inspect.test.ts) HiResCAM put about 75% of the
 * marked genre's heat in the marked quadrant, Grad-CAM about 50%.
 *
 * Models are those of train/models.ts, a chain `image → conv… → flatten → dense… → logits → softmax`, loaded from
 * `models/<run>/`: the head after a layer is applied layer by layer (inference mode) to a concrete tensor, so tf.grad
 * can differentiate it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** `hires-cam` or `grad-cam` on the last conv layer, or `gradient` (input gradients, for a model without conv layers). */
export type SaliencyMethod = 'hires-cam' | 'grad-cam' | 'gradient';

/** How {@link saliencyMaps} explains a model. */
export interface SaliencyPlan {
  method: SaliencyMethod;
  /** The layer whose activations Grad-CAM weighs (the last conv layer's ReLU output), or null for `gradient`. */
  layer: string | null;
  /** Resolution of the maps, [height, width]. */
  grid: [number, number];
}

/** The name of the `logits` layer (train/models.ts). */
const LOGITS = 'logits';

function layerIndex(model: tfl.LayersModel, name: string): number {
  const i = model.layers.findIndex((l) => l.name === name);
  if (i < 0) throw new Error(`model ${model.name} has no layer "${name}" (not a train/models.ts model)`);
  return i;
}

/**
 * Chooses the method: `cam` (HiResCAM or Grad-CAM) on the output of the last `Conv2D` layer (after its ReLU: the
 * layer itself, or `<conv>_relu` with batch norm), else gradient saliency at the input resolution.
 * @param crop the model's input side, pixels.
 */
export function planSaliency(model: tfl.LayersModel, crop: number, cam: 'hires-cam' | 'grad-cam'): SaliencyPlan {
  const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
  if (!convs.length) return { method: 'gradient', layer: null, grid: [crop, crop] };
  const last = convs[convs.length - 1]!;
  const relu = model.layers.find((l) => l.name === `${last.name}_relu`);
  const layer = relu ?? last;
  const shape = layer.outputShape as (number | null)[];
  return { method: cam, layer: layer.name, grid: [shape[1]!, shape[2]!] };
}

/** Applies layers `from … to` (indices into `model.layers`, inclusive) in inference mode. */
function applyLayers(model: tfl.LayersModel, x: tf.Tensor, from: number, to: number): tf.Tensor {
  let y = x;
  for (let i = from; i <= to; i++) y = model.layers[i]!.apply(y, { training: false }) as tf.Tensor;
  return y;
}

/**
 * Saliency maps of a batch, each for one class's logit.
 * @param x `[B, crop, crop, 3]` float32 network inputs (mean-subtracted, scaled: train/augment.ts).
 * @param targets the class explained per image (B).
 * @returns `[B, gh, gw]` float32 maps, each scaled to [0, 1] by its own maximum (all zeros when the map is flat zero).
 */
export function saliencyMaps(model: tfl.LayersModel, plan: SaliencyPlan, x: Float32Array, batch: number, crop: number, targets: readonly number[]): Float32Array {
  const logitsAt = layerIndex(model, LOGITS);
  const [gh, gw] = plan.grid;
  const maps = tf.tidy(() => {
    const input = tf.tensor4d(x, [batch, crop, crop, 3]);
    const mask = tf.oneHot(tf.tensor1d(targets as number[], 'int32'), (model.layers[logitsAt]!.outputShape as number[])[1]!);
    if (plan.method === 'gradient') {
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(applyLayers(model, v, 1, logitsAt), mask)))(input);
      return tf.max(tf.abs(g), 3) as tf.Tensor3D;
    }
    const at = layerIndex(model, plan.layer!);
    const features = applyLayers(model, input, 1, at);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(applyLayers(model, a, at + 1, logitsAt), mask)))(features);
    // HiResCAM: each position's own gradient times its activation, summed over channels.
    if (plan.method === 'hires-cam') return tf.relu(tf.sum(tf.mul(g, features), 3)) as tf.Tensor3D;
    const weights = tf.mean(g, [1, 2], true); // [B, 1, 1, C]: the gradient averaged over positions
    return tf.relu(tf.sum(tf.mul(weights, features), 3)) as tf.Tensor3D;
  });
  const out = maps.dataSync() as Float32Array;
  maps.dispose();
  const n = gh * gw;
  for (let b = 0; b < batch; b++) {
    let hi = 0;
    for (let i = 0; i < n; i++) hi = Math.max(hi, out[b * n + i]!);
    if (hi > 0) for (let i = 0; i < n; i++) out[b * n + i]! /= hi;
  }
  return out;
}

/**
 * The penultimate activations (the input of `logits`) and the softmax output of a batch.
 * @param x `[B, crop, crop, 3]` float32 network inputs.
 * @returns `features` `[B, d]` and `probabilities` `[B, classes]`, float32 row-major.
 */
export function penultimate(model: tfl.LayersModel, x: Float32Array, batch: number, crop: number): { features: Float32Array; dims: number; probabilities: Float32Array } {
  const logitsAt = layerIndex(model, LOGITS);
  const [f, p] = tf.tidy(() => {
    const feats = applyLayers(model, tf.tensor4d(x, [batch, crop, crop, 3]), 1, logitsAt - 1);
    const flat = tf.reshape(feats, [batch, -1]);
    return [flat, applyLayers(model, flat, logitsAt, model.layers.length - 1)];
  });
  const features = f.dataSync() as Float32Array;
  const probabilities = p.dataSync() as Float32Array;
  const dims = f.shape[1]!;
  f.dispose();
  p.dispose();
  return { features, dims, probabilities };
}

/**
 * The first `Conv2D` layer's kernel.
 * @returns the layer name, its kernel `[kh, kw, cin, F]` float32 and that shape; null when the model has no conv layer.
 */
export function firstConvKernel(model: tfl.LayersModel): { layer: string; kernel: Float32Array; shape: [number, number, number, number] } | null {
  const conv = model.layers.find((l) => l.getClassName() === 'Conv2D');
  if (!conv) return null;
  const w = conv.getWeights()[0]!;
  return { layer: conv.name, kernel: w.dataSync() as Float32Array, shape: w.shape as [number, number, number, number] };
}
