/**
 * The study's baseline: a random forest on downsampled pixels (100 trees on 50×50 grayscale images), with
 * `ml-random-forest`. Features are the pixel values (0–255) of each shard image resized with sharp (libvips).
 *
 * ml-random-forest differs from scikit-learn's forest (which the study used): its `maxFeatures` is the share of
 * features each *tree* sees (drawn once per tree, not per split), and its CART search is far slower (about 140 s
 * per tree on 8,000 × 2,500 features with maxFeatures 0.02, measured here). So each tree is grown on a bag of
 * `baseline.maxSamples` images and `baseline.maxFeatures` of the pixels (config.ts documents the defaults).
 */
import { RandomForestClassifier } from 'ml-random-forest';
import sharp from 'sharp';
import { streamShardBatches, listShardFiles } from './shards.ts';

/** Share of the features each tree is trained on (ml-random-forest `maxFeatures`). */
export const BASELINE_MAX_FEATURES = 0.02;

/** Downsampled features of a split. */
export interface PixelFeatures {
  /** One row per image: `pixels × pixels` (grayscale) or `pixels × pixels × 3` (RGB) values, uint8 units (0–255). */
  rows: number[][];
  labels: number[];
  labelNames: string[];
}

/**
 * Reads a split's shards and downsamples every image to `pixels × pixels` with sharp (area-averaging reduction).
 * @param grayscale one luminance value per pixel (the study) instead of R, G, B.
 */
export async function pixelFeatures(shardsDir: string, split: string, pixels: number, grayscale: boolean, concurrency = 4): Promise<PixelFeatures> {
  const rows: number[][] = [];
  const labels: number[] = [];
  let labelNames: string[] = [];
  const channels = grayscale ? 1 : 3;
  for await (const b of streamShardBatches(listShardFiles(shardsDir, split))) {
    labelNames = b.meta.labelNames;
    const s = b.meta.shape[0];
    const len = s * s * 3;
    const out: number[][] = new Array(b.rows);
    let next = 0;
    const work = async () => {
      while (next < b.rows) {
        const i = next++;
        let img = sharp(b.images.subarray(i * len, (i + 1) * len), { raw: { width: s, height: s, channels: 3 } }).resize(pixels, pixels, { kernel: 'cubic' });
        if (grayscale) img = img.grayscale();
        const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
        if (info.channels !== channels) throw new Error(`baseline: sharp returned ${info.channels} channels, expected ${channels}`);
        const row = new Array<number>(data.length);
        for (let j = 0; j < data.length; j++) row[j] = data[j]!;
        out[i] = row;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, b.rows) }, work));
    rows.push(...out);
    labels.push(...b.labels);
  }
  return { rows, labels, labelNames };
}

/** Options of {@link trainForest}. */
export interface ForestOptions {
  trees: number;
  seed: number;
  maxFeatures?: number;
  /** Images bagged per tree; null = as many as the training set. */
  maxSamples?: number | null;
}

/** Trains the random forest. */
export function trainForest(train: PixelFeatures, o: ForestOptions): RandomForestClassifier {
  const rf = new RandomForestClassifier({
    nEstimators: o.trees,
    maxFeatures: o.maxFeatures ?? BASELINE_MAX_FEATURES,
    replacement: false,
    useSampleBagging: true,
    noOOB: true,
    seed: o.seed,
    ...(o.maxSamples && o.maxSamples < train.rows.length ? { maxSamples: o.maxSamples } : {}),
  });
  rf.train(train.rows, train.labels);
  return rf;
}
