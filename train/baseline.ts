/**
 * The study's baseline: a random forest on downsampled pixels (scikit-learn's `RandomForestClassifier(n_estimators=100)`
 * on 50×50 grayscale images in the 2015 study), with our forest (train/random-forest.ts, which follows
 * scikit-learn's algorithm and defaults). Features are the pixel values (0–255) of each shard image resized with
 * sharp (libvips).
 *
 * Why not a library: `ml-random-forest` (npm) took about 140 s per tree on 8,000 × 2,500 features, about 4 hours
 * for the study's 100 trees, and draws its features once per tree rather than per split; our forest fits the 100
 * trees in seconds (bench/baseline.bench.ts, against scikit-learn on the same data).
 */
import sharp from 'sharp';
import type { Config } from '../pipeline/config.ts';
import { streamShardBatches, listShardFiles } from '../schemas/shards/read.ts';
import type { FitOptions, ForestParams } from './random-forest.ts';

/** Downsampled features of a split. */
export interface PixelFeatures {
  /**
   * `[n, d]` uint8 (0–255), row-major, one row per image in shard order: `pixels × pixels` luminance values
   * (grayscale) or `pixels × pixels × 3` R, G, B values (HWC).
   */
  x: Uint8Array;
  /** Images (rows). */
  n: number;
  /** Features per image (columns). */
  d: number;
  /** `[n]` class labels (indices into `labelNames`). */
  labels: Int32Array;
  labelNames: string[];
  /** What the features are, for the metrics' details: absent for pixels; `pretrained: <model> at <layer>`. */
  source?: string;
}

/**
 * Reads a split's shards and downsamples every image to `pixels × pixels` with sharp (cubic kernel, as the
 * shards' preprocessing).
 * @param splitDir a split directory, `DATA_DIR/shards/<split>` (schemas/shards/).
 * @param grayscale one luminance value per pixel (the study) instead of R, G, B.
 * @param concurrency sharp pipelines in flight.
 * @throws Error when the split has no shards or sharp returns an unexpected channel count.
 */
export async function pixelFeatures(splitDir: string, pixels: number, grayscale: boolean, concurrency = 4): Promise<PixelFeatures> {
  const channels = grayscale ? 1 : 3;
  const d = pixels * pixels * channels;
  const parts: Uint8Array[] = [];
  const labels: number[] = [];
  let labelNames: string[] = [];
  for await (const b of streamShardBatches(listShardFiles(splitDir))) {
    labelNames = b.meta.labelNames;
    const s = b.meta.shape[0];
    const len = s * s * 3;
    const out = new Uint8Array(b.rows * d);
    let next = 0;
    const work = async () => {
      while (next < b.rows) {
        const i = next++;
        let img = sharp(b.images.subarray(i * len, (i + 1) * len), { raw: { width: s, height: s, channels: 3 } }).resize(pixels, pixels, { kernel: 'cubic' });
        if (grayscale) img = img.grayscale();
        const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
        if (info.channels !== channels || data.length !== d) throw new Error(`baseline: sharp returned ${info.channels} channels (${data.length} bytes) for image ${i} of ${splitDir}, expected ${channels} (${d} bytes)`);
        out.set(data, i * d);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, b.rows) }, work));
    parts.push(out);
    labels.push(...b.labels);
  }
  const n = labels.length;
  const x = new Uint8Array(n * d);
  let o = 0;
  for (const p of parts) {
    x.set(p, o);
    o += p.length;
  }
  return { x, n, d, labels: Int32Array.from(labels), labelNames };
}

/** The forest parameters of the `baseline` config section (pipeline/config.ts) and the run's seed. */
export function forestParams(b: Config['baseline'], seed: number): ForestParams {
  return { trees: b.trees, maxFeatures: b.maxFeatures, maxSamples: b.maxSamples, minSamplesSplit: b.minSamplesSplit, bootstrap: true, seed };
}

/** The thread count of the `baseline` config section (null = the machine's available parallelism). */
export function forestThreads(b: Config['baseline']): FitOptions['threads'] {
  return b.threads ?? undefined;
}

/**
 * Float feature vectors (a pretrained network's, schemas/features.ts) as the 8-bit features the forest and the SVM
 * take: each feature is mapped linearly from its range over the training split, [min, max], to 0–255 and rounded
 * (values outside the range, in the test split, are clamped). A constant feature becomes 0.
 * @param train `[n, d]` float32 training rows; `others`: further `[m, d]` sets scaled with the training ranges.
 * @returns one `[·, d]` uint8 array per input, in order.
 */
export function quantizeFeatures(train: Float32Array, d: number, ...others: Float32Array[]): Uint8Array[] {
  const lo = new Float32Array(d).fill(Infinity);
  const hi = new Float32Array(d).fill(-Infinity);
  for (let i = 0; i < train.length; i += d) {
    for (let j = 0; j < d; j++) {
      const v = train[i + j]!;
      if (v < lo[j]!) lo[j] = v;
      if (v > hi[j]!) hi[j] = v;
    }
  }
  return [train, ...others].map((x) => {
    const out = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i += d) {
      for (let j = 0; j < d; j++) {
        const span = hi[j]! - lo[j]!;
        out[i + j] = span > 0 ? Math.min(255, Math.max(0, Math.round(((x[i + j]! - lo[j]!) / span) * 255))) : 0;
      }
    }
    return out;
  });
}
