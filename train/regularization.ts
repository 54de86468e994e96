/**
 * L2 weight decay (`train.weightDecay`), which the 2015 study did not use: the penalty `λ/2 · Σ‖W‖²` over the
 * kernels of the conv and dense layers (not biases, not batch-norm parameters) is added to the mean cross-entropy,
 * so each kernel's gradient gains `λ·W`, the same as PyTorch's `weight_decay=λ` on those parameters (coupled L2, not
 * AdamW's decoupled decay).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** The kernels of a model's conv and dense layers (tfjs-layers names them `<layer>/kernel`). */
export function decayedWeights(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.filter((w) => /(^|\/)kernel$/.test(w.originalName)).map((w) => w.read() as tf.Variable);
}

/**
 * `λ/2 · Σ‖W‖²` over `weights` (a scalar tensor, nats), or null when `weightDecay` is 0. Call inside a tidy/minimize.
 * @param weightDecay λ ≥ 0.
 */
export function l2Penalty(weights: readonly tf.Tensor[], weightDecay: number): tf.Scalar | null {
  if (weightDecay <= 0 || weights.length === 0) return null;
  return tf.mul(weightDecay / 2, tf.addN(weights.map((w) => tf.sum(tf.square(w))))) as tf.Scalar;
}
