/**
 * Which engine runs a pretrained network for the `features` stage (`pretrained.engine`): onnxruntime-node (ONNX files;
 * ~2.5× the TensorFlow.js import's speed on one thread, bench/features.bench.ts) or the TensorFlow.js import
 * (model-import/onnx-to-tfjs.ts; also what fine-tuning uses, and the only engine for a tfjs `model.json`).
 */
import { readFile } from 'node:fs/promises';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { FeatureEngineName } from '../schemas/pretrained-names.ts';
import { UserError } from '../util/errors.ts';
import { extractFeatures, type Crop, type Features } from './extract.ts';
import { decodeOnnx } from './onnx-read.ts';
import type { ImportedNetwork } from './onnx-to-tfjs.ts';
import { loadOnnxRuntime, OrtFeatureExtractor } from './onnxruntime.ts';
import type { InputPreprocessing } from './preprocess.ts';

/** Runs a network up to its feature tensor for batches of stored images. */
export interface FeatureExtractor {
  /** The engine chosen. */
  engine: 'onnxruntime' | 'tfjs';
  /** For the log: version and threads. */
  details: string;
  /**
   * @param images `[rows, S, S, 3]` uint8 RGB HWC.
   * @param crop the network's input size; `crops` the crops of each image (features averaged over them).
   * @returns `[rows, D]` float32 (maps flattened in H·W·C order) and D.
   */
  extract(images: Uint8Array, rows: number, size: number, crop: number, crops: readonly Crop[], p: InputPreprocessing): Promise<Features>;
  release(): Promise<void>;
}

/** What {@link openFeatureExtractor} needs. */
export interface FeatureEngineOptions {
  /** The local model file (ONNX, or a tfjs `model.json`). */
  file: string;
  /** The file imported into TensorFlow.js (model-import/load.ts). */
  net: ImportedNetwork;
  /** The feature tensor: an ONNX tensor name or a tfjs layer name. */
  layer: string;
  /** `truncatedModel(net, layer)`: the tfjs model up to it. */
  truncated: tfl.LayersModel;
  engine: FeatureEngineName;
  /** onnxruntime's intra-op threads; 0 = its default (one per physical core). */
  threads: number;
  log: (line: string) => void;
}

function tfjsExtractor(model: tfl.LayersModel, details: string): FeatureExtractor {
  return {
    engine: 'tfjs',
    details,
    extract: async (images, rows, size, crop, crops, p) => extractFeatures(model, images, rows, size, crop, crops, p),
    release: async () => {},
  };
}

/** Why onnxruntime cannot run this file, or the open extractor. */
async function tryOnnxRuntime(o: FeatureEngineOptions): Promise<FeatureExtractor | string> {
  if (o.file.endsWith('.json')) return 'a TensorFlow.js model.json runs on the tfjs import only';
  if (!o.net.tensors.has(o.layer)) return `pretrained.layer '${o.layer}' is a tfjs layer name, not a tensor of the ONNX file`;
  const loaded = await loadOnnxRuntime();
  if ('reason' in loaded) return loaded.reason;
  const bytes = await readFile(o.file);
  try {
    const ort = await OrtFeatureExtractor.open(loaded.ort, bytes, decodeOnnx(bytes, o.file), o.layer, o.threads);
    return {
      engine: 'onnxruntime',
      details: `onnxruntime-node ${loaded.version} CPU, ${o.threads === 0 ? 'default' : o.threads} intra-op thread${o.threads === 1 ? '' : 's'}`,
      extract: (images, rows, size, crop, crops, p) => ort.extract(images, rows, size, crop, crops, p),
      release: () => ort.release(),
    };
  } catch (e) {
    return `onnxruntime cannot run ${o.file}: ${(e as Error).message.split('\n')[0]}`;
  }
}

/**
 * Opens the engine `pretrained.engine` asks for: `tfjs`; `onnxruntime`; or `auto`, onnxruntime where it can run the
 * file, else tfjs with the reason logged.
 * @throws UserError naming `pretrained.engine` and the reason when `onnxruntime` is asked for and cannot run the file.
 */
export async function openFeatureExtractor(o: FeatureEngineOptions): Promise<FeatureExtractor> {
  if (o.engine === 'tfjs') return tfjsExtractor(o.truncated, 'pretrained.engine=tfjs');
  const ort = await tryOnnxRuntime(o);
  if (typeof ort !== 'string') return ort;
  if (o.engine === 'onnxruntime') throw new UserError(`pretrained.engine=onnxruntime: ${ort}`);
  o.log(`features: onnxruntime not used (${ort}); running the TensorFlow.js import`);
  return tfjsExtractor(o.truncated, `auto: ${ort}`);
}
