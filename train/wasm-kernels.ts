/**
 * Gradient kernels that `@tensorflow/tfjs-backend-wasm` 4.22 lacks, so that convnets can train on the wasm backend.
 *
 * The wasm backend ships `Conv2D` (XNNPACK, with dilations and explicit padding), `Conv2DBackpropInput`,
 * `MaxPoolGrad`, `AvgPoolGrad`, `Transpose` and `Slice`, but not `Conv2DBackpropFilter`: training any model with a
 * conv layer fails with "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'". We compose it from the
 * kernels that exist (the standard identity, e.g. Dumoulin & Visin, "A guide to convolution arithmetic", 2016):
 *
 * forward:  y[b,i,j,o]  = Σ_{p,q,c} x[b, i·s_h − t + p, j·s_w − l + q, c] · w[p,q,c,o]
 * so        dw[p,q,c,o] = Σ_{b,i,j} x[b, p + i·s_h − t, q + j·s_w − l, c] · dy[b,i,j,o]
 *
 * which is a stride-1 forward convolution of x transposed to `[C, H, W, B]` (channels as the batch, the batch as
 * the channels) with dy transposed to `[outH, outW, B, O]` as the filter, dilated by the forward stride, padded by
 * the forward top/left padding and by whatever bottom/right padding makes the result `[fh, fw, C, O]` (negative:
 * the unused last rows/columns of x are sliced off), then transposed back from `[C, fh, fw, O]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/** What the wasm backend object exposes that we use (its `disposeData`); `tf.backend()` when wasm is active. */
interface DisposingBackend {
  disposeData(dataId: object, force?: boolean): boolean;
}

/** Attributes of tfjs-core's `Conv2DBackpropFilter` kernel (see `conv2DBackpropFilter` in tfjs-core). */
interface BackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

function kernel(name: string): KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm backend has no "${name}" kernel (needed by Conv2DBackpropFilter)`);
  return k.kernelFunc;
}

/** Temporaries of one composed kernel: results of wasm kernels run through {@link Scratch.run}, freed by `dispose()`. */
class Scratch {
  private readonly temps: TensorInfo[] = [];
  constructor(private readonly backend: unknown) {}

  /** Runs wasm kernel `name`; its result is freed by {@link dispose} unless {@link keep} takes it out. */
  run(name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo {
    const out = kernel(name)({ inputs, backend: this.backend as never, attrs }) as TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** A stride-1 NHWC `Conv2D` of `x` with `filter`, explicit `[[top, bottom], [left, right]]` padding, `dilations`. */
  conv(x: TensorInfo, filter: TensorInfo, pad: [[number, number], [number, number]], dilations: [number, number]): TensorInfo {
    return this.run('Conv2D', { x, filter }, {
      strides: [1, 1],
      pad: [[0, 0], pad[0], pad[1], [0, 0]],
      dataFormat: 'NHWC',
      dilations,
      dimRoundingMode: undefined as unknown as string,
    } as unknown as NamedAttrMap);
  }

  /** Adds `t`, made by another kernel, to the temporaries. */
  track(t: TensorInfo): TensorInfo {
    this.temps.push(t);
    return t;
  }

  /** Takes `t` out of the temporaries (it becomes the kernel's result). */
  keep(t: TensorInfo): TensorInfo {
    this.temps.splice(this.temps.indexOf(t), 1);
    return t;
  }

  /** Frees the temporaries. */
  dispose(): void {
    const be = this.backend as DisposingBackend;
    for (const t of this.temps.splice(0)) be.disposeData(t.dataId);
  }
}

/**
 * The wasm `Conv2DBackpropFilter` kernel function.
 * Inputs: `x` `[B, H, W, C]` float32 NHWC, `dy` `[B, outH, outW, O]`. Output: `[fh, fw, C, O]`.
 * @throws Error for `dataFormat` NCHW (the wasm backend's convolutions are NHWC only).
 */
const conv2DBackpropFilterWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as BackpropFilterAttrs;
  if (a.dataFormat === 'NCHW') throw new Error('wasm Conv2DBackpropFilter: dataFormat NCHW is not supported; use NHWC (channelsLast)');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast',
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Rows of (padded) x that the dilated dy filter reaches for output row fh-1: fh + (outH-1)·s_h; pad or cut the rest.
  let bottom = filterHeight + (outHeight - 1) * strideHeight - inHeight - top;
  let right = filterWidth + (outWidth - 1) * strideWidth - inWidth - left;
  const s = new Scratch(backend);
  try {
    let xs = x;
    if (bottom < 0 || right < 0) {
      const h = inHeight + Math.min(bottom, 0);
      const w = inWidth + Math.min(right, 0);
      xs = s.run('Slice', { x }, { begin: [0, 0, 0, 0], size: [batchSize, h, w, inChannels] });
      bottom = Math.max(bottom, 0);
      right = Math.max(right, 0);
    }
    const xt = s.run('Transpose', { x: xs }, { perm: [3, 1, 2, 0] }); // [C, H, W, B]
    const dyt = s.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }); // [outH, outW, B, O]
    const conv = s.conv(xt, dyt, [[top, bottom], [left, right]], [strideHeight, strideWidth]); // [C, fh, fw, O]
    if (conv.shape[1] !== filterHeight || conv.shape[2] !== filterWidth || conv.shape[3] !== outChannels) {
      throw new Error(`wasm Conv2DBackpropFilter: internal shape ${conv.shape} for filter ${a.filterShape}`);
    }
    return s.keep(s.run('Transpose', { x: conv }, { perm: [1, 2, 0, 3] }));
  } finally {
    s.dispose();
  }
};

/** The kernel registration of {@link conv2DBackpropFilterWasm}. */
const conv2DBackpropFilterWasmConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilterWasm,
};

/** Attributes of tfjs-core's `Conv2DBackpropInput` kernel (see `conv2DBackpropInput` in tfjs-core). */
interface BackpropInputAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/**
 * The wasm `Conv2DBackpropInput` kernel function, from XNNPACK's forward convolution instead of tfjs-backend-wasm
 * 4.22's scalar loop (2.5–3.7 GFLOP/s against 27–30 for the forward convolution of the same size).
 *
 * From the forward identity above, dx[b, y, x, c] = Σ_{p,q,o} dy[b, i, j, o] · w[p, q, c, o] over y = i·s_h − t + p,
 * x = j·s_w − l + q. With dy' the output gradient dilated by the stride (s − 1 zeros between rows and columns) and
 * p' = fh − 1 − p, that is a stride-1 correlation of dy' padded by fh − 1 − t on top (fw − 1 − l on the left) with
 * the spatially flipped filter transposed to `[fh, fw, O, C]`, cut to `[B, H, W, C]`. The dilation is a reshape of
 * dy to `[B, outH, 1, outW, 1, O]`, zero-padded to `[B, outH, s_h, outW, s_w, O]` (so it also has s − 1 zero rows at
 * the end, which the bottom padding accounts for); negative paddings become slices of the result.
 *
 * Inputs: `dy` `[B, outH, outW, O]` float32 NHWC, `filter` `[fh, fw, C, O]`. Output: `[B, H, W, C]` (`inputShape`).
 * @throws Error for `dataFormat` NCHW (the wasm backend's convolutions are NHWC only).
 */
const conv2DBackpropInputWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as BackpropInputAttrs;
  if (a.dataFormat === 'NCHW') throw new Error('wasm Conv2DBackpropInput: dataFormat NCHW is not supported; use NHWC (channelsLast)');
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape, filter.shape as [number, number, number, number], a.strides, 1, a.pad, a.dimRoundingMode, false, 'channelsLast',
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const s = new Scratch(backend);
  try {
    let d = dy;
    if (strideHeight > 1 || strideWidth > 1) {
      const r = s.run('Reshape', { x: dy }, { shape: [batchSize, outHeight, 1, outWidth, 1, outChannels] });
      const p = s.run('PadV2', { x: r }, {
        paddings: [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]], constantValue: 0,
      } as unknown as NamedAttrMap);
      d = s.run('Reshape', { x: p }, { shape: [batchSize, outHeight * strideHeight, outWidth * strideWidth, outChannels] });
    }
    const dh = d.shape[1]!;
    const dw = d.shape[2]!;
    // Padding of the dilated gradient; where negative, padding 0 and skipping the first rows of the result.
    const top = filterHeight - 1 - info.padInfo.top;
    const left = filterWidth - 1 - info.padInfo.left;
    const skipH = Math.max(-top, 0);
    const skipW = Math.max(-left, 0);
    const padTop = Math.max(top, 0);
    const padLeft = Math.max(left, 0);
    const padBottom = Math.max(skipH + inHeight + filterHeight - 1 - dh - padTop, 0);
    const padRight = Math.max(skipW + inWidth + filterWidth - 1 - dw - padLeft, 0);
    const flipped = s.run('Reverse', { x: filter }, { dims: [0, 1] });
    const wt = s.run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] }); // [fh, fw, O, C]
    const conv = s.conv(d, wt, [[padTop, padBottom], [padLeft, padRight]], [1, 1]);
    if (conv.shape[1]! < skipH + inHeight || conv.shape[2]! < skipW + inWidth || conv.shape[3] !== inChannels) {
      throw new Error(`wasm Conv2DBackpropInput: internal shape ${conv.shape} for input ${a.inputShape}`);
    }
    if (skipH === 0 && skipW === 0 && conv.shape[1] === inHeight && conv.shape[2] === inWidth) return s.keep(conv);
    return s.keep(s.run('Slice', { x: conv }, { begin: [0, skipH, skipW, 0], size: [batchSize, inHeight, inWidth, inChannels] }));
  } finally {
    s.dispose();
  }
};

/** The kernel registration of {@link conv2DBackpropInputWasm}. */
const conv2DBackpropInputWasmConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInputWasm,
};

/** Attributes of tfjs-core's `BatchMatMul` kernel. */
interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** The `Transpose` permutation of a rank-`rank` tensor that swaps its last two axes. */
function swapLast2(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

/**
 * How {@link fastBatchMatMul} computes `op(a)·op(b)` (`op` transposes when the attribute says so), for `a` giving
 * `[M, K]` and `b` giving `[K, N]` after `op`:
 * - `direct`: transpose the operands that need it, then the untransposed product (moves `M·K` and/or `K·N`
 *   elements);
 * - `swapped`: the identity `op(a)·op(b) = (op(b)ᵀ·op(a)ᵀ)ᵀ`: transposes `b` unless `transposeB`, `a` unless
 *   `transposeA`, and the `[N, M]` result (moves `M·N` plus those);
 * whichever moves fewer elements (tfjs-backend-wasm's `Transpose` is a plain strided loop, ~40 M elements/s on a
 * 4608 × 2048 matrix here, so moving a large weight matrix would cost more than the product).
 */
export function matMulPlan(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): 'direct' | 'swapped' {
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0);
  const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * n;
  return direct <= swapped ? 'direct' : 'swapped';
}

/**
 * Wraps tfjs-backend-wasm's `BatchMatMul` so that products with a transposed operand run on XNNPACK: tfjs-backend-wasm
 * 4.22 hands XNNPACK only untransposed products and computes any `transposeA`/`transposeB` with a scalar loop
 * (measured here on a dense layer of 4608 → 2048 inputs → units, 16 rows: the weight gradient `dW = xᵀ·dy` at
 * 0.8 GFLOP/s and the input gradient `dx = dy·Wᵀ` at 1.3–2.8 GFLOP/s, against 23 GFLOP/s for the forward product).
 * A transposed product becomes explicit transposes plus an untransposed product, planned by {@link matMulPlan} so
 * that only the small operands move: `dx = dy·Wᵀ` is computed as `(W·dyᵀ)ᵀ` (10 ms instead of 106 ms for the layer
 * above). Untransposed products go to `original` unchanged.
 */
function fastBatchMatMul(original: KernelFunc): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const at = attrs as unknown as BatchMatMulAttrs;
    if (!at.transposeA && !at.transposeB) return original({ inputs, backend, attrs });
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = at.transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
    const k = at.transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
    const n = at.transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    const s = new Scratch(backend);
    const plain = (x: TensorInfo, y: TensorInfo): TensorInfo =>
      original({ inputs: { a: x, b: y }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as unknown as NamedAttrMap }) as TensorInfo;
    const moved = (t: TensorInfo): TensorInfo => s.run('Transpose', { x: t }, { perm: swapLast2(t.shape.length) });
    try {
      if (matMulPlan(m, k, n, at.transposeA, at.transposeB) === 'direct') {
        return plain(at.transposeA ? moved(a) : a, at.transposeB ? moved(b) : b);
      }
      const r = s.track(plain(at.transposeB ? b : moved(b), at.transposeA ? a : moved(a)));
      return s.keep(moved(r));
    } finally {
      s.dispose();
    }
  };
}

/**
 * Gradient kernels a convnet of this project needs on wasm (conv, ReLU, max-pool, average pool, dense, dropout,
 * softmax cross-entropy). All but `Conv2DBackpropFilter` ship with tfjs-backend-wasm 4.22 (checked by
 * {@link missingWasmKernels} in the tests).
 */
const WASM_TRAINING_KERNELS = [
  'Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'AvgPool', 'AvgPoolGrad',
  'Relu', 'Step', 'BatchMatMul', '_FusedMatMul', 'FusedConv2D', 'Softmax', 'Sum', 'Reshape', 'Transpose', 'Slice', 'Select',
  'LogicalAnd', 'GreaterEqual', 'LessEqual', 'ClipByValue', 'Log', 'Exp', 'Max', 'Sub', 'Multiply', 'RealDiv',
  'Add', 'AddN', 'Sqrt', 'Square', 'Neg', 'Cast', 'ZerosLike', 'OnesLike', 'Fill', 'Mean', 'ArgMax', 'Equal',
  'Reverse', 'PadV2',
] as const;

/** Kernels of {@link WASM_TRAINING_KERNELS} not registered for the wasm backend. */
export function missingWasmKernels(): string[] {
  return WASM_TRAINING_KERNELS.filter((k) => !tf.getKernel(k, 'wasm'));
}

/** tfjs-backend-wasm's own kernels that {@link setFastWasmGradients} replaces, kept to switch back. */
const shipped: { backpropInput?: KernelConfig; batchMatMul?: KernelConfig } = {};
let fastOn = false;

function replace(config: KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

/**
 * Switches between our fast wasm gradient kernels ({@link conv2DBackpropInputWasm}, {@link fastBatchMatMul}) and
 * the ones tfjs-backend-wasm 4.22 ships (the benchmarks' "today" baseline in the same process). Takes effect for
 * the next kernel call (tfjs looks kernels up per call). Call after {@link registerWasmGradientKernels}.
 */
export function setFastWasmGradients(on: boolean): void {
  if (on === fastOn) return;
  const bpi = shipped.backpropInput ??= tf.getKernel('Conv2DBackpropInput', 'wasm');
  const bmm = shipped.batchMatMul ??= tf.getKernel('BatchMatMul', 'wasm');
  if (!bpi || !bmm) throw new Error('setFastWasmGradients: import @tensorflow/tfjs-backend-wasm first');
  if (on) {
    // Keep the shipped kernels' setup functions (they bind the wasm exports at backend initialisation), so that
    // switching back works after the backend initialised with ours registered.
    replace({ ...conv2DBackpropInputWasmConfig, setupFunc: bpi.setupFunc });
    replace({ ...bmm, kernelFunc: fastBatchMatMul(bmm.kernelFunc) });
  } else {
    replace(bpi);
    replace(bmm);
  }
  fastOn = on;
}

/** Whether {@link setFastWasmGradients} is on. */
export function fastWasmGradients(): boolean {
  return fastOn;
}

/**
 * Registers the missing wasm gradient kernel and our fast ones (idempotent). Call after importing
 * `@tensorflow/tfjs-backend-wasm` and before the wasm backend initialises (so that the `BatchMatMul` wrapper's
 * setup function runs with it). `COVERS_WASM_FAST_GRADIENTS=0` keeps the shipped kernels (for comparisons).
 */
export function registerWasmGradientKernels(): void {
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel(conv2DBackpropFilterWasmConfig);
    setFastWasmGradients(process.env.COVERS_WASM_FAST_GRADIENTS !== '0');
  }
}
