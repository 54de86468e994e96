/**
 * Feature extraction with onnxruntime-node's CPU build (an optional dependency: its native library ships in the npm
 * package; `.npmrc` skips the CUDA download of its install script). The same crops and preprocessing as the
 * TensorFlow.js path (model-import/extract.ts), transposed to the NCHW layout ONNX files take; the feature tensor is
 * made a graph output ({@link withGraphOutput}) and read back in our layout (NCHW maps as NHWC, so both engines
 * flatten a map in H·W·C order).
 */
import { cropBatch, type Crop, type Features } from './extract.ts';
import { withGraphOutput, type OnnxModel } from './onnx-read.ts';
import type { InputPreprocessing } from './preprocess.ts';

/** The part of onnxruntime-node's API used here (onnxruntime-common's InferenceSession and Tensor). */
interface OrtTensor {
  readonly dims: readonly number[];
  readonly data: unknown;
  dispose?(): void;
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly inputMetadata?: readonly { name: string; isTensor: boolean; shape?: readonly (number | string)[] }[];
  run(feeds: Record<string, OrtTensor>, fetches: string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
/** onnxruntime-node's module, as far as it is used. */
export interface OnnxRuntime {
  InferenceSession: {
    create(model: Uint8Array, options: {
      executionProviders: string[]; intraOpNumThreads?: number; interOpNumThreads?: number; graphOptimizationLevel?: string;
    }): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  env: { versions?: { common?: string }; logLevel?: string };
}

async function importOptional(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

/**
 * onnxruntime-node, or why it cannot be used (not installed — it is optional —, or its native binding does not load
 * on this platform).
 */
export async function loadOnnxRuntime(): Promise<{ ort: OnnxRuntime; version: string } | { reason: string }> {
  try {
    const m = (await importOptional('onnxruntime-node')) as OnnxRuntime & { default?: OnnxRuntime };
    const ort = m.InferenceSession ? m : m.default;
    if (!ort?.InferenceSession) return { reason: 'onnxruntime-node has no InferenceSession export' };
    return { ort, version: ort.env.versions?.common ?? '?' };
  } catch (e) {
    return { reason: `onnxruntime-node did not load: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** `[N, H, W, C]` → `[N, C, H, W]`, float32. */
export function nhwcToNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    const base = b * h * w * c;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const from = base + (y * w + xx) * c;
        for (let k = 0; k < c; k++) out[base + (k * h + y) * w + xx] = x[from + k]!;
      }
    }
  }
  return out;
}

/** `[N, C, H, W]` → `[N, H, W, C]`, float32. */
export function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    const base = b * c * h * w;
    for (let k = 0; k < c; k++) {
      for (let y = 0; y < h; y++) {
        const from = base + (k * h + y) * w;
        for (let xx = 0; xx < w; xx++) out[base + (y * w + xx) * c + k] = x[from + xx]!;
      }
    }
  }
  return out;
}

/** Mean over the `k` consecutive rows of each group: `[rows · k, dim]` → `[rows, dim]`. */
function averageCrops(x: Float32Array, rows: number, k: number, dim: number): Float32Array {
  if (k === 1) return x;
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const from = (r * k + j) * dim;
      for (let d = 0; d < dim; d++) out[r * dim + d]! += x[from + d]!;
    }
    for (let d = 0; d < dim; d++) out[r * dim + d]! /= k;
  }
  return out;
}

/** An onnxruntime session that returns one tensor of an ONNX network for a batch of stored images. */
export class OrtFeatureExtractor {
  private constructor(
    private readonly ort: OnnxRuntime,
    private readonly session: OrtSession,
    private readonly tensor: string,
    /** Rows per run when the file fixes the batch dimension (model-zoo files often fix it at 1); null: any. */
    private readonly fixedBatch: number | null,
  ) {}

  /**
   * Opens a session on `bytes` (the ONNX file, decoded as `model`) that returns `tensor`.
   * @param threads onnxruntime's intra-op threads; 0 = its default (one per physical core).
   * @throws Error from onnxruntime when it cannot load the file (an operator it lacks, an invalid graph).
   */
  static async open(ort: OnnxRuntime, bytes: Uint8Array, model: OnnxModel, tensor: string, threads: number): Promise<OrtFeatureExtractor> {
    const session = await ort.InferenceSession.create(withGraphOutput(bytes, model, tensor), {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    });
    const batch = session.inputMetadata?.[0]?.shape?.[0];
    return new OrtFeatureExtractor(ort, session, tensor, typeof batch === 'number' && batch > 0 ? batch : null);
  }

  /**
   * The features of `rows` images: each crop run through the network up to the tensor, maps read as NHWC,
   * flattened, averaged over the crops.
   * @param images `[rows, S, S, 3]` uint8 RGB HWC.
   * @returns `[rows, D]` float32 and D.
   */
  async extract(images: Uint8Array, rows: number, size: number, crop: number, crops: readonly Crop[], p: InputPreprocessing): Promise<Features> {
    const n = rows * crops.length;
    const input = nhwcToNchw(cropBatch(images, rows, size, crop, crops, p), n, crop, crop, 3);
    const step = this.fixedBatch ?? n;
    const per = 3 * crop * crop;
    let out = new Float32Array(0);
    let dim = 0;
    for (let start = 0; start < n; start += step) {
      const take = Math.min(step, n - start);
      // A file with a fixed batch dimension gets its last chunk padded with zeros (the padding's rows are dropped).
      const chunk = take === step ? input.subarray(start * per, (start + step) * per) : new Float32Array(step * per);
      if (take < step) chunk.set(input.subarray(start * per, (start + take) * per));
      const x = new this.ort.Tensor('float32', chunk, [step, 3, crop, crop]);
      const y = (await this.session.run({ [this.session.inputNames[0]!]: x }, [this.tensor]))[this.tensor]!;
      if (!(y.data instanceof Float32Array)) throw new Error(`onnxruntime: tensor '${this.tensor}' is not float32`);
      const dims = y.dims;
      const data = dims.length === 4 ? nchwToNhwc(y.data, dims[0]!, dims[1]!, dims[2]!, dims[3]!) : y.data;
      dim = data.length / step;
      if (out.length === 0) out = new Float32Array(n * dim);
      out.set(data.subarray(0, take * dim), start * dim);
      x.dispose?.();
      y.dispose?.();
    }
    return { features: averageCrops(out, rows, crops.length, dim), dim };
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
