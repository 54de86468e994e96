/**
 * A pretrained network's input preprocessing (`pretrained.input`): channel order, scaling of the 0–255 pixels, and
 * per-channel mean and standard deviation, as the network was trained with.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { INPUT_PRESET_NAMES, type InputPresetName } from '../schemas/pretrained-names.ts';

/** How a network expects its input: `x = (pixel[order] · scale − mean) / std`, per channel. */
export interface InputPreprocessing {
  /** Channel order the network takes (ours are stored RGB). */
  channelOrder: 'rgb' | 'bgr';
  /** Multiplies the 0–255 pixel values first (1/255: [0, 1]; 1: 0–255). */
  scale: number;
  /** Per-channel mean, in the network's channel order, after scaling. */
  mean: [number, number, number];
  /** Per-channel standard deviation, in the network's channel order, after scaling. */
  std: [number, number, number];
}

export { INPUT_PRESET_NAMES, type InputPresetName };

/**
 * The presets. `imagenet`: torchvision's and timm's (RGB, [0, 1], mean 0.485/0.456/0.406, std 0.229/0.224/0.225;
 * torchvision `transforms.Normalize` in its model docs). `caffe`: BVLC CaffeNet/AlexNet's (BGR, 0–255, the ImageNet
 * mean per channel B 104, G 117, R 123 as in Caffe's `ilsvrc_2012_mean` averaged, std 1).
 */
export const INPUT_PRESETS: Readonly<Record<InputPresetName, InputPreprocessing>> = {
  imagenet: { channelOrder: 'rgb', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  caffe: { channelOrder: 'bgr', scale: 1, mean: [104, 117, 123], std: [1, 1, 1] },
};

/**
 * A preset with some of its values overridden.
 * @throws Error naming the value when a std is not positive or a scale not finite and positive.
 */
export function inputPreprocessing(preset: InputPresetName, overrides: Partial<InputPreprocessing> = {}): InputPreprocessing {
  const p = { ...INPUT_PRESETS[preset], ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) } as InputPreprocessing;
  if (!(p.scale > 0) || !Number.isFinite(p.scale)) throw new Error(`pretrained.scale must be a positive number, got ${p.scale}`);
  if (p.std.some((s) => !(s > 0))) throw new Error(`pretrained.std must be positive, got ${p.std.join(', ')}`);
  return p;
}

/**
 * Applies {@link InputPreprocessing} to RGB pixels.
 * @param pixels `[..., 3]` uint8 RGB, HWC (any number of pixels).
 * @returns float32 of the same length, channels in the network's order.
 */
export function preprocessPixels(pixels: Uint8Array, p: InputPreprocessing): Float32Array {
  const out = new Float32Array(pixels.length);
  const src = p.channelOrder === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  const mul = p.std.map((s) => p.scale / s);
  const add = p.mean.map((m, c) => -m / p.std[c]!);
  for (let i = 0; i < pixels.length; i += 3) {
    for (let c = 0; c < 3; c++) out[i + c] = pixels[i + src[c]!]! * mul[c]! + add[c]!;
  }
  return out;
}

/**
 * {@link InputPreprocessing} as a layer, so that a fine-tuned model takes the stored pixels and carries its own
 * preprocessing (evaluate and any later user apply it without knowing it): input `[B, H, W, 3]` float32 RGB 0–255,
 * HWC → `[B, H, W, 3]` float32 in the network's channel order, `(pixel · scale − mean) / std`. No weights.
 */
export class InputPreprocess extends tfl.layers.Layer {
  static className = 'InputPreprocess';
  readonly preprocessing: InputPreprocessing;

  constructor(args: { preprocessing: InputPreprocessing; name?: string }) {
    super({ name: args.name });
    this.preprocessing = args.preprocessing;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const p = this.preprocessing;
    return tf.tidy(() => {
      const ordered = p.channelOrder === 'rgb' ? x : tf.reverse(x, -1);
      const mul = tf.tensor1d(p.std.map((s) => p.scale / s));
      const add = tf.tensor1d(p.mean.map((m, c) => -m / p.std[c]!));
      return tf.add(tf.mul(ordered, mul), add);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const p = this.preprocessing;
    return { ...super.getConfig(), preprocessing: { channelOrder: p.channelOrder, scale: p.scale, mean: [...p.mean], std: [...p.std] } };
  }
}
tf.serialization.registerClass(InputPreprocess);
