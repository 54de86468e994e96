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

/**
 * The wasm `Conv2DBackpropFilter` kernel function.
 * Inputs: `x` `[B, H, W, C]` float32 NHWC, `dy` `[B, outH, outW, O]`. Output: `[fh, fw, C, O]`.
 * @throws Error for `dataFormat` NCHW (the wasm backend's convolutions are NHWC only).
 */
export const conv2DBackpropFilterWasm: KernelFunc = ({ inputs, backend, attrs }) => {
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
  const be = backend as unknown as DisposingBackend;
  const temps: TensorInfo[] = [];
  const run = (name: string, ins: Record<string, TensorInfo>, at: NamedAttrMap): TensorInfo => {
    const out = kernel(name)({ inputs: ins, backend, attrs: at }) as TensorInfo;
    temps.push(out);
    return out;
  };
  try {
    let xs = x;
    if (bottom < 0 || right < 0) {
      const h = inHeight + Math.min(bottom, 0);
      const w = inWidth + Math.min(right, 0);
      xs = run('Slice', { x }, { begin: [0, 0, 0, 0], size: [batchSize, h, w, inChannels] });
      bottom = Math.max(bottom, 0);
      right = Math.max(right, 0);
    }
    const xt = run('Transpose', { x: xs }, { perm: [3, 1, 2, 0] }); // [C, H, W, B]
    const dyt = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] }); // [outH, outW, B, O]
    const conv = run('Conv2D', { x: xt, filter: dyt }, {
      strides: [1, 1],
      pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
      dataFormat: 'NHWC',
      dilations: [strideHeight, strideWidth],
      dimRoundingMode: undefined as unknown as string,
    } as unknown as NamedAttrMap); // [C, fh, fw, O]
    if (conv.shape[1] !== filterHeight || conv.shape[2] !== filterWidth || conv.shape[3] !== outChannels) {
      throw new Error(`wasm Conv2DBackpropFilter: internal shape ${conv.shape} for filter ${a.filterShape}`);
    }
    const dw = kernel('Transpose')({ inputs: { x: conv }, backend, attrs: { perm: [1, 2, 0, 3] } }) as TensorInfo;
    return dw;
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
};

/** The kernel registration of {@link conv2DBackpropFilterWasm}. */
export const conv2DBackpropFilterWasmConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilterWasm,
};

/**
 * Gradient kernels a convnet of this project needs on wasm (conv, ReLU, max-pool, average pool, dense, dropout,
 * softmax cross-entropy). All but `Conv2DBackpropFilter` ship with tfjs-backend-wasm 4.22 (checked by
 * {@link missingWasmKernels} in the tests).
 */
export const WASM_TRAINING_KERNELS = [
  'Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'AvgPool', 'AvgPoolGrad',
  'Relu', 'Step', 'BatchMatMul', '_FusedMatMul', 'FusedConv2D', 'Softmax', 'Sum', 'Reshape', 'Transpose', 'Slice', 'Select',
  'LogicalAnd', 'GreaterEqual', 'LessEqual', 'ClipByValue', 'Log', 'Exp', 'Max', 'Sub', 'Multiply', 'RealDiv',
  'Add', 'AddN', 'Sqrt', 'Square', 'Neg', 'Cast', 'ZerosLike', 'OnesLike', 'Fill', 'Mean', 'ArgMax', 'Equal',
] as const;

/** Kernels of {@link WASM_TRAINING_KERNELS} not registered for the wasm backend. */
export function missingWasmKernels(): string[] {
  return WASM_TRAINING_KERNELS.filter((k) => !tf.getKernel(k, 'wasm'));
}

/** Registers the missing wasm gradient kernels (idempotent). Call after importing `@tensorflow/tfjs-backend-wasm`. */
export function registerWasmGradientKernels(): void {
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) tf.registerKernel(conv2DBackpropFilterWasmConfig);
}
