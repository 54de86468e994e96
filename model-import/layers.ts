/**
 * tfjs-layers layers that ONNX image CNNs need and tfjs-layers 4.22 lacks: grouped convolution (CaffeNet/AlexNet's
 * conv2/4/5, `group = 2`), local response normalisation (tfjs has the op, no layer), padding with a constant other
 * than zero (max pooling pads with −∞), and a bias added to any tensor (ONNX `Add` of a constant). All work on NHWC
 * tensors, are registered for serialisation (a fine-tuned model saves and loads like any other) and have gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type Shape = (number | null)[];
const firstInput = (inputs: tf.Tensor | tf.Tensor[]): tf.Tensor => (Array.isArray(inputs) ? inputs[0]! : inputs);
const firstShape = (s: Shape | Shape[]): Shape => (Array.isArray(s[0]) ? (s[0] as Shape) : (s as Shape));

/** Options of {@link GroupedConv2D}. */
export interface GroupedConv2DArgs {
  name?: string;
  /** Output channels (a multiple of `groups`). */
  filters: number;
  /** [kh, kw]. */
  kernelSize: [number, number];
  /** [sh, sw]. */
  strides: [number, number];
  /** [dh, dw]. */
  dilationRate: [number, number];
  /** Channel groups: input and output channels are split into this many groups, each convolved on its own. */
  groups: number;
  useBias: boolean;
}

/**
 * 2-D convolution with channel groups (ONNX `Conv` with `group > 1`, Caffe's `group`), padding `valid`.
 * Input `[B, H, W, C]` float32; kernel `[kh, kw, C / groups, filters]` (HWIO: output channels `g·F/groups …` read
 * input channels `g·C/groups …`); bias `[filters]`. Output `[B, H', W', filters]`.
 */
export class GroupedConv2D extends tfl.layers.Layer {
  static className = 'GroupedConv2D';
  readonly args: GroupedConv2DArgs;
  private kernel: tfl.LayerVariable | null = null;
  private bias: tfl.LayerVariable | null = null;

  constructor(args: GroupedConv2DArgs) {
    super({ name: args.name });
    this.args = args;
  }

  override build(inputShape: Shape | Shape[]): void {
    const c = firstShape(inputShape)[3];
    const { groups, filters, kernelSize } = this.args;
    if (c == null || c % groups !== 0 || filters % groups !== 0) {
      throw new Error(`${this.name}: ${c} input and ${filters} output channels do not split into ${groups} groups`);
    }
    this.kernel = this.addWeight('kernel', [kernelSize[0], kernelSize[1], c / groups, filters], 'float32', tfl.initializers.glorotUniform({}));
    if (this.args.useBias) this.bias = this.addWeight('bias', [filters], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [b, h, w] = firstShape(inputShape);
    const { kernelSize: k, strides: s, dilationRate: d, filters } = this.args;
    const out = (n: number | null | undefined, i: 0 | 1) => (n == null ? null : Math.floor((n - (d[i] * (k[i] - 1) + 1)) / s[i]) + 1);
    return [b ?? null, out(h, 0), out(w, 1), filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = firstInput(inputs) as tf.Tensor4D;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      const xs = tf.split(x, this.args.groups, 3);
      const ks = tf.split(kernel, this.args.groups, 3);
      const ys = xs.map((xi, g) => tf.conv2d(xi as tf.Tensor4D, ks[g]! as tf.Tensor4D, this.args.strides, 'valid', 'NHWC', this.args.dilationRate));
      const y = ys.length === 1 ? ys[0]! : tf.concat(ys, 3);
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { name: _name, ...rest } = this.args;
    return { ...super.getConfig(), ...rest };
  }
}
tf.serialization.registerClass(GroupedConv2D);

/** Options of {@link LocalResponseNormalization}: ONNX `LRN`'s attributes. */
export interface LocalResponseNormalizationArgs {
  name?: string;
  /** Channels summed over (odd). */
  size: number;
  alpha: number;
  beta: number;
  bias: number;
}

/**
 * ONNX `LRN` (Caffe's across-channel LRN, AlexNet's): `y = x / (bias + alpha/size · Σ x²)^beta`, the sum over the
 * `size` channels centred on each, over `[B, H, W, C]`. Computed with tfjs' `localResponseNormalization`
 * (depth radius `(size − 1)/2`, its alpha being per element, hence `alpha/size`).
 */
export class LocalResponseNormalization extends tfl.layers.Layer {
  static className = 'LocalResponseNormalization';
  readonly args: LocalResponseNormalizationArgs;

  constructor(args: LocalResponseNormalizationArgs) {
    super({ name: args.name });
    if (args.size % 2 !== 1) throw new Error(`${args.name ?? 'LRN'}: size ${args.size} is even; only odd sizes are supported`);
    this.args = args;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const { size, alpha, beta, bias } = this.args;
    return tf.localResponseNormalization(firstInput(inputs) as tf.Tensor4D, (size - 1) / 2, bias, alpha / size, beta);
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { name: _name, ...rest } = this.args;
    return { ...super.getConfig(), ...rest };
  }
}
tf.serialization.registerClass(LocalResponseNormalization);

/** Options of {@link ConstantPad2D}. */
export interface ConstantPad2DArgs {
  name?: string;
  /** [[top, bottom], [left, right]] pixels. */
  padding: [[number, number], [number, number]];
  /** The padding value (−Infinity before a max pool). */
  value: number;
}

/** Pads `[B, H, W, C]` spatially with a constant. */
export class ConstantPad2D extends tfl.layers.Layer {
  static className = 'ConstantPad2D';
  readonly args: ConstantPad2DArgs;

  constructor(args: ConstantPad2DArgs) {
    super({ name: args.name });
    this.args = args;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [b, h, w, c] = firstShape(inputShape);
    const [[t, bo], [l, r]] = this.args.padding;
    return [b ?? null, h == null ? null : h + t + bo, w == null ? null : w + l + r, c ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [[t, b], [l, r]] = this.args.padding;
    return tf.pad(firstInput(inputs), [[0, 0], [t, b], [l, r], [0, 0]], this.args.value);
  }

  override getConfig(): tf.serialization.ConfigDict {
    // JSON has no −Infinity: stored as a string.
    return { ...super.getConfig(), padding: this.args.padding, value: Number.isFinite(this.args.value) ? this.args.value : String(this.args.value) };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls({ ...config, value: Number(config.value) });
  }
}
tf.serialization.registerClass(ConstantPad2D);

/** Options of {@link BiasAdd}. */
export interface BiasAddArgs {
  name?: string;
  /** Length of the last axis. */
  units: number;
}

/** Adds a learned vector `[units]` along the last axis (ONNX `Add` of a per-channel constant, e.g. after `MatMul`). */
export class BiasAdd extends tfl.layers.Layer {
  static className = 'BiasAdd';
  readonly units: number;
  private bias: tfl.LayerVariable | null = null;

  constructor(args: BiasAddArgs) {
    super({ name: args.name });
    this.units = args.units;
  }

  override build(): void {
    this.bias = this.addWeight('bias', [this.units], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return firstShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.add(firstInput(inputs), this.bias!.read());
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
}
tf.serialization.registerClass(BiasAdd);
