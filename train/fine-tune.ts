/**
 * Fine-tuning (`train.init = pretrained`): the imported network (model-import/, `pretrained.model`) up to the input of
 * its last fully connected layer, behind a layer applying its own input preprocessing (`pretrained.input`), followed
 * by a new dense layer for our genres (Glorot-uniform from the training seed, as train/models.ts's last layer).
 *
 * - `train.freeze`: `none`, `body` (every imported layer), or the name of the last frozen imported tfjs layer (it and
 *   every layer before it in the imported graph's topological order). Frozen layers are marked not trainable, so the
 *   optimizer never sees their weights (they stay bit-identical).
 * - Frozen batch normalisation: tfjs-layers 4.22's BatchNormalization decides between batch and moving statistics
 *   from the `training` argument alone (`layers/normalization.js`, `call`: `if (!training) return normalizeInference()`),
 *   not from `trainable`: a layer marked not trainable but called with `training: true` normalises with the batch's
 *   statistics and overwrites its moving mean and variance. {@link freezeBatchNorm} makes such a layer always run as
 *   in inference (Caffe's `use_global_stats`, PyTorch's `eval()` on frozen BN).
 * - `train.pretrainedLearningRateScale`: per-variable gradient scales ({@link FineTuneModel.gradientScales}: the
 *   imported layers' gradients × scale, the new layer's × 1). With Nesterov momentum (tfjs: `acc ← m·acc + g;
 *   w ← w − lr·(g + m·acc)`, linear in g) that is exactly a per-layer learning rate, Caffe's `lr_mult`. Adam divides
 *   the scale out, so the train stage refuses that combination.
 *
 * The model takes the stored pixels (RGB 0–255 crops at the network's input size, no mean subtraction) because the
 * preprocessing is its first layer (`InputPreprocess`, model-import/preprocess.ts): a saved model needs nothing else.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../util/errors.ts';
import { loadPretrained } from '../model-import/load.ts';
import { truncatedModel, type ImportedNetwork } from '../model-import/onnx-to-tfjs.ts';
import { InputPreprocess, inputPreprocessing, type InputPreprocessing } from '../model-import/preprocess.ts';
import { defaultModelCacheDir, resolveModelFile } from '../model-import/fetch.ts';
import type { Config } from '../pipeline/config-core.ts';
import type { Logger } from '../util/log.ts';
import type { BuiltModel } from './models.ts';

/** What fine-tuning needs beside the training options. */
export interface FineTuneOptions {
  /** A local ONNX file or tfjs `model.json` (a URL is resolved by the caller, model-import/fetch.ts). */
  file: string;
  preprocessing: InputPreprocessing;
  /** `train.freeze`: `none`, `body`, or the name of the last frozen layer. */
  freeze: string;
  /** `train.pretrainedLearningRateScale` (≥ 0). */
  learningRateScale: number;
}

/** A fine-tuning model: {@link BuiltModel} plus what the training loop needs to train it. */
export interface FineTuneModel extends BuiltModel {
  /** Side of the network's (square) input, pixels: the training crop. */
  inputSize: number;
  /** Per variable of `model.trainableWeights` (same order): its gradient's scale. */
  gradientScales: number[];
  /** Names of the frozen imported layers. */
  frozen: string[];
}

/** Name of the new last layer. */
export const FINE_TUNE_LOGITS = 'fine_tune_logits';

/**
 * The fine-tuning settings of a configuration, checked: null for `train.init = scratch`, else the options for
 * `file` (the local copy of `pretrained.model`, resolved by {@link resolvePretrainedModel}).
 * @throws UserError naming the key: `train.freeze` / `train.pretrainedLearningRateScale` set for a scratch run,
 *   no `pretrained.model`, or Adam with a learning-rate scale (Adam divides a gradient scale out).
 */
export function fineTuneSettings(config: Pick<Config, 'train' | 'pretrained'>, file: string): FineTuneOptions | null {
  const t = config.train;
  if (t.init === 'scratch') {
    if (t.freeze !== 'none') throw new UserError(`train.freeze = ${t.freeze} applies only with train.init = pretrained`);
    if (t.pretrainedLearningRateScale !== 1) throw new UserError('train.pretrainedLearningRateScale applies only with train.init = pretrained');
    return null;
  }
  const p = config.pretrained;
  if (!p.model) throw new UserError('train.init = pretrained needs pretrained.model (an ONNX file, its URL, or a tfjs model.json)');
  if (t.optimizer === 'adam' && t.pretrainedLearningRateScale !== 1) {
    throw new UserError('train.pretrainedLearningRateScale: Adam normalises each gradient, so a gradient scale does not change its learning rate; use train.optimizer = nesterov or leave the scale at 1');
  }
  const preprocessing = inputPreprocessing(p.input, {
    channelOrder: p.channelOrder ?? undefined, scale: p.scale ?? undefined, mean: p.mean ?? undefined, std: p.std ?? undefined,
  });
  return { file, preprocessing, freeze: t.freeze, learningRateScale: t.pretrainedLearningRateScale };
}

/**
 * The local file of `pretrained.model` (a URL downloaded into the cache once, model-import/fetch.ts) and the side of
 * its square input, pixels (the fine-tuning crop).
 * @throws UserError as {@link resolveModelFile} and {@link pretrainedInputSize}.
 */
export async function resolvePretrainedModel(
  p: Config['pretrained'], opts: { log: Logger; signal?: AbortSignal },
): Promise<{ file: string; crop: number }> {
  const file = await resolveModelFile(p.model, { cacheDir: defaultModelCacheDir(), sha256: p.sha256, log: opts.log, signal: opts.signal });
  return { file, crop: await pretrainedInputSize(file) };
}

/**
 * The side of a pretrained network's square input, pixels.
 * @throws UserError naming the file when its input is not square or not 3 channels; as {@link loadPretrained}.
 */
export async function pretrainedInputSize(file: string): Promise<number> {
  const net = await loadPretrained(file);
  try {
    return squareInput(net, file);
  } finally {
    net.model.dispose();
  }
}

function squareInput(net: ImportedNetwork, file: string): number {
  const [h, w] = net.inputSize;
  if (h !== w) throw new UserError(`train.init = pretrained: ${file} takes ${h}×${w} inputs; only square inputs are supported`);
  if (net.channels !== 3) throw new UserError(`train.init = pretrained: ${file} takes ${net.channels} input channels, not 3`);
  return h;
}

/**
 * Makes a BatchNormalization layer normalise with its moving statistics and leave them unchanged even when called
 * with `training: true` (see the module comment), and marks it not trainable.
 */
export function freezeBatchNorm(layer: tfl.layers.Layer): void {
  layer.trainable = false;
  const call = layer.call.bind(layer);
  layer.call = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => call(inputs, { ...kwargs, training: false });
}

/**
 * The imported layers `train.freeze` names, in the graph's order.
 * @throws UserError naming `train.freeze` when it names no layer of the network.
 */
export function frozenLayers(body: tfl.LayersModel, freeze: string): tfl.layers.Layer[] {
  const layers = body.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (freeze === 'none') return [];
  if (freeze === 'body') return layers;
  const at = layers.findIndex((l) => l.name === freeze);
  if (at < 0) {
    throw new UserError(`train.freeze: the network has no layer '${freeze}' (none, body, or one of: ${layers.map((l) => l.name).join(', ')})`);
  }
  return layers.slice(0, at + 1);
}

/**
 * Builds the fine-tuning model (see the module comment): input `[B, S, S, 3]` float32 RGB 0–255 (S the network's
 * input side) → `model` softmax `[B, classes]`, `logits` `[B, classes]`.
 * @param seed the training seed (the new layer's initial weights).
 * @throws UserError as {@link pretrainedInputSize} and {@link frozenLayers}.
 */
export async function buildFineTuneModel(o: FineTuneOptions, classes: number, seed: number): Promise<FineTuneModel> {
  const net = await loadPretrained(o.file);
  const size = squareInput(net, o.file);
  const body = truncatedModel(net);
  const frozen = frozenLayers(body, o.freeze);
  for (const l of frozen) {
    if (l.getClassName() === 'BatchNormalization') freezeBatchNorm(l);
    else l.trainable = false;
  }
  const input = tfl.input({ shape: [size, size, 3], name: 'image' });
  const pre = new InputPreprocess({ preprocessing: o.preprocessing, name: 'input_preprocess' }).apply(input) as tfl.SymbolicTensor;
  let features = body.apply(pre) as tfl.SymbolicTensor;
  if (features.shape.length > 2) features = tfl.layers.flatten({ name: 'fine_tune_flatten' }).apply(features) as tfl.SymbolicTensor;
  const dense = tfl.layers.dense({ name: FINE_TUNE_LOGITS, units: classes, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed * 1000 }) });
  const logitsOut = dense.apply(features) as tfl.SymbolicTensor;
  const probs = tfl.layers.activation({ name: 'softmax', activation: 'softmax' }).apply(logitsOut) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: probs, name: 'fine_tuned' });
  const logits = tfl.model({ inputs: input, outputs: logitsOut, name: 'fine_tuned_logits' });
  const fresh = new Set(dense.trainableWeights.map((w) => w.read().id));
  const gradientScales = model.trainableWeights.map((w) => (fresh.has(w.read().id) ? 1 : o.learningRateScale));
  return { model, logits, inputSize: size, gradientScales, frozen: frozen.map((l) => l.name) };
}

/**
 * One optimizer step on `vars` with each gradient scaled by `scales[i]` (see the module comment); returns the value
 * of `f` (kept). Without scales other than 1 it is `optimizer.minimize(f, true, vars)`. Call inside a tidy.
 */
export function minimizeScaled(optimizer: tf.Optimizer, f: () => tf.Scalar, vars: tf.Variable[], scales: readonly number[] | null): tf.Scalar {
  if (!scales || scales.every((s) => s === 1)) return optimizer.minimize(f, true, vars) as tf.Scalar;
  const { value, grads } = tf.variableGrads(f, vars);
  const scaled: tf.NamedTensorMap = {};
  vars.forEach((v, i) => {
    const g = grads[v.name]!;
    scaled[v.name] = scales[i] === 1 ? g : tf.mul(g, scales[i]!);
  });
  optimizer.applyGradients(scaled);
  return value;
}
