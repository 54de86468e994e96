/**
 * Feature extraction: a pretrained network's feature tensor for a batch of stored images, from crops at the
 * network's input size, preprocessed as the network expects, averaged over the crops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { preprocessPixels, type InputPreprocessing } from './preprocess.ts';

/** A crop of a stored image: top-left offset and whether it is mirrored left–right. */
export type Crop = [oy: number, ox: number, mirror: 0 | 1];

/**
 * Copies one crop out of an `[S, S, 3]` image, preprocessed.
 * @returns `[crop, crop, 3]` float32 HWC in the network's channel order.
 */
export function cropPixels(image: Uint8Array, size: number, crop: number, [oy, ox, mirror]: Crop, p: InputPreprocessing): Float32Array {
  const px = new Uint8Array(crop * crop * 3);
  for (let y = 0; y < crop; y++) {
    for (let x = 0; x < crop; x++) {
      const sx = mirror ? ox + crop - 1 - x : ox + x;
      const from = ((oy + y) * size + sx) * 3;
      px.set(image.subarray(from, from + 3), (y * crop + x) * 3);
    }
  }
  return preprocessPixels(px, p);
}

/**
 * The crops of `rows` images, preprocessed, in one batch.
 * @param images `[rows, S, S, 3]` uint8 RGB HWC.
 * @returns `[rows · crops.length, crop, crop, 3]` float32 NHWC in the network's channel order (image-major: the crops
 *   of image 0, then image 1, …).
 */
export function cropBatch(images: Uint8Array, rows: number, size: number, crop: number, crops: readonly Crop[], p: InputPreprocessing): Float32Array {
  const per = crop * crop * 3;
  const input = new Float32Array(rows * crops.length * per);
  for (let i = 0; i < rows; i++) {
    const image = images.subarray(i * size * size * 3, (i + 1) * size * size * 3);
    crops.forEach((c, k) => input.set(cropPixels(image, size, crop, c, p), (i * crops.length + k) * per));
  }
  return input;
}

/** The features of a batch of images: `[rows, D]` float32 row-major, and D. */
export interface Features {
  features: Float32Array;
  dim: number;
}

/**
 * The features of `rows` images with the TensorFlow.js import.
 * @param model input `[B, crop, crop, 3]` → the feature tensor (any shape `[B, …]`, flattened row-major; NHWC maps
 *   flatten in H·W·C order).
 * @param images `[rows, S, S, 3]` uint8 RGB HWC.
 * @param crops the crops of each image (averaged).
 * @returns `[rows, D]` float32 and D.
 */
export function extractFeatures(
  model: tfl.LayersModel, images: Uint8Array, rows: number, size: number, crop: number, crops: readonly Crop[], p: InputPreprocessing,
): Features {
  const input = cropBatch(images, rows, size, crop, crops, p);
  return tf.tidy(() => {
    const out = model.predict(tf.tensor4d(input, [rows * crops.length, crop, crop, 3])) as tf.Tensor;
    const dim = out.size / (rows * crops.length);
    const avg = tf.mean(tf.reshape(out, [rows, crops.length, dim]), 1);
    return { features: avg.dataSync() as Float32Array, dim };
  });
}
