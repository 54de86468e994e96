import { resolve } from 'node:path';

/**
 * The config vocabulary of pretrained networks (`pretrained.input` presets), shared by the config schema
 * (pipeline/config.ts) and model-import/preprocess.ts, which defines what each preset means; and how
 * `pretrained.model` names a download rather than a local file.
 */

/** `pretrained.input` presets. */
export const INPUT_PRESET_NAMES = ['imagenet', 'caffe'] as const;
export type InputPresetName = (typeof INPUT_PRESET_NAMES)[number];

/** True when a `pretrained.model` value is an http(s) URL (downloaded into the cache) rather than a local path. */
export function isModelUrl(model: string): boolean {
  return /^https?:\/\//i.test(model);
}

/**
 * The local file a `pretrained.model` value names, resolved against the working directory, as a list for a stage's
 * `extraInputs`: empty for '' (none) and for a URL (its download is pinned by `pretrained.sha256` instead).
 */
export function localModelFiles(model: string): string[] {
  return model && !isModelUrl(model) ? [resolve(model)] : [];
}

/**
 * `pretrained.engine`: what runs the network for the `features` stage. `onnxruntime`: onnxruntime-node's CPU build
 * (an optional dependency; ONNX files only); `tfjs`: our TensorFlow.js import (model-import/onnx-to-tfjs.ts), which
 * fine-tuning always uses; `auto`: onnxruntime where it loads and can run the file, else tfjs (the reason logged).
 */
export const FEATURE_ENGINE_NAMES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type FeatureEngineName = (typeof FEATURE_ENGINE_NAMES)[number];
