/** Multi-crop prediction of a trained model on a split (the `evaluate` stage). */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { evalCrops, planEval } from './augment.ts';
import { BatchLoader } from './loader.ts';
import type { ReplicaPool } from './data-parallel.ts';
import type { SplitData } from '../schemas/shards/read.ts';

/**
 * Predicts the class of every record of `data`: the softmax of each deterministic crop (centre, or centre + four
 * corners each mirrored) averaged per image, then argmax.
 * @param model outputs softmax probabilities `[B, classes]` for `[B, crop, crop, 3]` inputs.
 * @param imagesPerBatch images per forward pass (each expanded to `crops` inputs).
 * @param pool replicas of `model` on worker threads (train/data-parallel.ts, a `load` pool with room for
 *   `imagesPerBatch × crops` rows) that share each batch's forward pass, or null.
 * @returns predicted label per record, and the averaged probabilities `[n, classes]`.
 */
export async function predictSplit(
  model: tfl.LayersModel, data: SplitData, crop: number, mean: Float32Array | null, crops: 1 | 10, imagesPerBatch: number,
  onBatch?: (images: number) => void, pool: ReplicaPool | null = null,
): Promise<{ predicted: Int32Array; probabilities: Float32Array }> {
  const k = evalCrops(data.size, crop, crops).length;
  const loader = new BatchLoader(data, { crop, mean, prefetch: 2 });
  const predicted = new Int32Array(data.n);
  let classes = 0;
  let probs = new Float32Array(0);
  let at = 0;
  try {
    for await (const b of loader.batches(planEval(data.n, imagesPerBatch, data.size, crop, crops))) {
      const images = b.labels.length / k;
      const rows = b.labels.length;
      const shared = pool ? await pool.forward(model, b.x, rows, 'model') : null;
      const avg = tf.tidy(() => {
        const p = shared
          ? tf.tensor2d(shared, [rows, shared.length / rows])
          : (model.predict(tf.tensor4d(b.x, [rows, crop, crop, 3])) as tf.Tensor2D);
        return tf.mean(tf.reshape(p, [images, k, p.shape[1]]), 1) as tf.Tensor2D;
      });
      const values = (await avg.data()) as Float32Array;
      classes = avg.shape[1];
      avg.dispose();
      if (probs.length === 0) probs = new Float32Array(data.n * classes);
      probs.set(values, at * classes);
      for (let i = 0; i < images; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (values[i * classes + c]! > values[i * classes + best]!) best = c;
        predicted[at + i] = best;
      }
      at += images;
      onBatch?.(images);
    }
  } finally {
    await loader.close();
  }
  return { predicted, probabilities: probs };
}
