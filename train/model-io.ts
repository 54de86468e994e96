/**
 * Saving and loading models and training snapshots on the local file system (Node).
 *
 * Models use the TensorFlow.js layers format (`model.json` with the topology and weights manifest, `weights.bin`),
 * written by {@link fileSaver}, an `IOHandler` (tfjs-node's `file://` handler is not available without tfjs-node),
 * and read back by {@link fileLoader} / `tfl.loadLayersModel(fileLoader(dir))`.
 *
 * A snapshot (`snapshot.json` + `snapshot.bin`) holds everything a resumed run needs to continue exactly as an
 * uninterrupted one: model weights, best weights, optimizer slots (momentum / Adam moments and the iteration count),
 * and the schedule and PRNG state (in the JSON).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic } from '../util/fsutil.ts';

function joinBuffers(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const total = parts.reduce((s, p) => s + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  return out;
}

/** An `IOHandler` that saves a model to `dir/model.json` and `dir/weights.bin` (atomically, each file). */
export function fileSaver(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      mkdirSync(dir, { recursive: true });
      const weights = artifacts.weightData ? joinBuffers(artifacts.weightData as ArrayBuffer | ArrayBuffer[]) : new Uint8Array(0);
      writeFileAtomic(join(dir, 'weights.bin'), weights);
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        trainingConfig: artifacts.trainingConfig,
        userDefinedMetadata: artifacts.userDefinedMetadata,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileAtomic(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/**
 * An `IOHandler` that loads a model saved by {@link fileSaver} (or any tfjs layers model with one weights file group).
 * @throws Error naming the file when `model.json` or a weights file is missing.
 */
export function fileLoader(dir: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const path = join(dir, 'model.json');
      if (!existsSync(path)) throw new Error(`model: ${path} not found`);
      const json = JSON.parse(readFileSync(path, 'utf8')) as tf.io.ModelJSON;
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Uint8Array[] = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) {
          const file = join(dir, p);
          if (!existsSync(file)) throw new Error(`model: weights file ${file} not found`);
          buffers.push(readFileSync(file));
        }
      }
      const data = joinBuffers(buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: data.buffer as ArrayBuffer,
      };
    },
  };
}

/** A named group of tensors in a snapshot. */
export type TensorGroups = Record<string, { name: string; tensor: tf.Tensor }[]>;

interface SnapshotEntry {
  group: string;
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  offset: number;
  length: number;
}

/**
 * Writes a snapshot: `state` (JSON) and the tensors (float32/int32, little-endian) in `dir`. `snapshot.bin` is
 * written first and `snapshot.json` last, each atomically, so a snapshot is complete when its JSON exists.
 */
export async function writeSnapshot(dir: string, state: unknown, groups: TensorGroups): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const entries: SnapshotEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [group, list] of Object.entries(groups)) {
    for (const { name, tensor } of list) {
      const dtype = tensor.dtype === 'int32' ? 'int32' : 'float32';
      const values = dtype === 'int32' ? Int32Array.from(await tensor.data()) : Float32Array.from(await tensor.data());
      const bytes = new Uint8Array(values.buffer);
      entries.push({ group, name, shape: tensor.shape, dtype, offset, length: values.length });
      chunks.push(bytes);
      offset += bytes.byteLength;
    }
  }
  const bin = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) { bin.set(c, at); at += c.byteLength; }
  const tag = `${Date.now()}-${process.pid}`;
  writeFileAtomic(join(dir, 'snapshot.bin'), bin);
  writeFileAtomic(join(dir, 'snapshot.json'), JSON.stringify({ tag, state, tensors: entries }));
}

/** A loaded snapshot; the caller owns (and disposes) the tensors. */
export interface Snapshot<S> {
  state: S;
  groups: TensorGroups;
}

/**
 * Reads a snapshot written by {@link writeSnapshot}, or null when `dir` holds none.
 * @throws Error naming the file when the binary part is shorter than the JSON says (a damaged snapshot).
 */
export function readSnapshot<S>(dir: string): Snapshot<S> | null {
  const jsonPath = join(dir, 'snapshot.json');
  if (!existsSync(jsonPath)) return null;
  const meta = JSON.parse(readFileSync(jsonPath, 'utf8')) as { state: S; tensors: SnapshotEntry[] };
  const bin = readFileSync(join(dir, 'snapshot.bin'));
  const groups: TensorGroups = {};
  for (const e of meta.tensors) {
    const bytes = e.length * 4;
    if (e.offset + bytes > bin.byteLength) throw new Error(`snapshot ${join(dir, 'snapshot.bin')} is truncated (tensor ${e.group}/${e.name})`);
    const copy = new Uint8Array(bin.subarray(e.offset, e.offset + bytes)).buffer;
    const values = e.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
    (groups[e.group] ??= []).push({ name: e.name, tensor: tf.tensor(values, e.shape, e.dtype) });
  }
  return { state: meta.state, groups };
}
