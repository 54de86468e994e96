/**
 * Loads a pretrained network from a local file: an ONNX model (`*.onnx`, converted by model-import/onnx-to-tfjs.ts)
 * or a TensorFlow.js layers model (`model.json` with its weight files beside it, read natively by tfjs-layers).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../util/errors.ts';
import { decodeOnnx, OnnxFormatError } from './onnx-read.ts';
import { onnxToTfjs, type ImportedNetwork } from './onnx-to-tfjs.ts';
import './layers.ts';

/**
 * Reads and converts an ONNX file.
 * @throws OnnxFormatError (a UserError) naming the file and the node, operator or tensor at fault; UserError when the
 *   file cannot be read.
 */
export async function loadOnnx(path: string): Promise<ImportedNetwork> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new UserError(`pretrained.model: cannot read ${path}: ${(e as Error).message}`);
  }
  return onnxToTfjs(decodeOnnx(bytes, path), path);
}

/** The `weightsManifest` part of a tfjs `model.json` (tfjs-core io/types.ts). */
interface ModelJson {
  modelTopology?: unknown;
  weightsManifest?: tf.io.WeightsManifestConfig;
}

/**
 * Reads a tfjs layers model (`model.json` + the weight files its `weightsManifest` names, beside it) into an
 * {@link ImportedNetwork}: the feature tensor is the input of its last dense layer, the logits that layer's output
 * (its activation is expected to be linear or softmax; with softmax the features are still the dense layer's input).
 * @throws UserError naming the file when it is not a layers model, a weight file is missing, or a weight file's
 *   length differs from what the manifest declares.
 */
export async function loadTfjsLayersModel(path: string): Promise<ImportedNetwork> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as ModelJson;
  } catch (e) {
    throw new UserError(`pretrained.model: ${path} is not a readable model.json: ${(e as Error).message}`);
  }
  if (!json.modelTopology || !json.weightsManifest) throw new UserError(`pretrained.model: ${path} has no modelTopology/weightsManifest (not a tfjs layers model)`);
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const file = join(dirname(path), p);
      try {
        buffers.push(await readFile(file));
      } catch (e) {
        throw new UserError(`pretrained.model: weight file ${file} named by ${path}: ${(e as Error).message}`);
      }
    }
  }
  const weightData = Buffer.concat(buffers);
  const expected = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * (s.dtype === 'float32' || s.dtype === 'int32' ? 4 : 1), 0);
  if (!specs.some((s) => s.quantization) && weightData.length !== expected) {
    throw new UserError(`pretrained.model: the weight files of ${path} hold ${weightData.length} bytes, the manifest declares ${expected}`);
  }
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology as object, weightSpecs: specs, weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.length) }),
  );
  const input = model.inputs[0]!;
  const [, h, w, c] = input.shape;
  if (model.inputs.length !== 1 || input.shape.length !== 4 || !h || !w || !c) {
    throw new UserError(`pretrained.model: ${path} must take one [B, H, W, C] image input with fixed H, W, C; it takes ${model.inputs.map((i) => `[${i.shape.join(', ')}]`).join(', ')}`);
  }
  const denses = model.layers.filter((l) => l.getClassName() === 'Dense');
  const last = denses[denses.length - 1];
  if (!last) throw new UserError(`pretrained.model: ${path} has no dense layer to take features before`);
  const tensors = new Map<string, tfl.SymbolicTensor>();
  for (const l of model.layers) tensors.set(l.name, l.output as tfl.SymbolicTensor);
  const inbound = last.input as tfl.SymbolicTensor;
  const featureTensor = `${last.name}:input`;
  tensors.set(featureTensor, inbound);
  return { model, inputSize: [h, w], channels: c, tensors, featureTensor, logitsTensor: last.name, logitsLayer: last.name };
}

/**
 * Loads a local pretrained model: `*.json` as a tfjs layers model, anything else as ONNX.
 * @throws OnnxFormatError / UserError as {@link loadOnnx} and {@link loadTfjsLayersModel}.
 */
export async function loadPretrained(path: string): Promise<ImportedNetwork> {
  return path.endsWith('.json') ? loadTfjsLayersModel(path) : loadOnnx(path);
}

export { OnnxFormatError };
