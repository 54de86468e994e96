/**
 * Builds the TensorFlow.js layers model equivalent to an ONNX image CNN ({@link OnnxModel}, model-import/onnx-read.ts).
 *
 * ONNX image tensors are NCHW and convolution weights OIHW; ours are NHWC and HWIO. Each operator becomes tfjs layers
 * over NHWC tensors with its weights transposed, and a dense layer after a flattened `[C, H, W]` map gets its rows
 * reordered from ONNX's C·H·W order to our H·W·C order, so the model computes the same function on the transposed
 * input. Supported operators ({@link SUPPORTED_OPERATORS}): what torchvision/timm exports and the ONNX model zoo's
 * CaffeNet/AlexNet/ResNet/MobileNet use. Anything else is an {@link OnnxFormatError} naming the operator and node.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BiasAdd, ConstantPad2D, GroupedConv2D, LocalResponseNormalization } from './layers.ts';
import { OnnxFormatError, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx-read.ts';

/** The operators {@link onnxToTfjs} converts. */
export const SUPPORTED_OPERATORS = [
  'Conv', 'Relu', 'Clip', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'LRN', 'BatchNormalization', 'Gemm', 'MatMul',
  'Add', 'Concat', 'Flatten', 'Reshape', 'Dropout', 'Softmax', 'Pad', 'Identity', 'Constant',
] as const;

/** A network imported from ONNX. */
export interface ImportedNetwork {
  /** Input `[B, H, W, C]` float32 (NHWC; channel order and scaling as the file expects) → the graph's first output. */
  model: tfl.LayersModel;
  /** The network's input size [H, W], pixels (from the file). */
  inputSize: [number, number];
  /** Input channels (3 for image CNNs). */
  channels: number;
  /** Every converted tensor by its ONNX name (4-D maps as NHWC). */
  tensors: Map<string, tfl.SymbolicTensor>;
  /** ONNX name of the default feature tensor: the input of the last fully connected layer (fc7, pooled features). */
  featureTensor: string;
  /** ONNX name of the logits: the output of the last fully connected layer. */
  logitsTensor: string;
  /** Name of the tfjs layer computing the logits (the one fine-tuning replaces). */
  logitsLayer: string;
}

/** A converted value: a constant, or a symbolic NHWC (rank 4) or `[B, F]` (rank 2) tensor. */
type Value =
  | { kind: 'const'; t: OnnxTensor }
  | { kind: 'sym'; x: tfl.SymbolicTensor; rank: number; flattenedFrom?: [number, number, number] };

interface Context {
  values: Map<string, Value>;
  names: Set<string>;
  weights: { layer: tfl.layers.Layer; arrays: { data: Float32Array; shape: number[] }[] }[];
  model: OnnxModel;
  where: string;
  /** The nodes reading each tensor. */
  consumers: Map<string, OnnxNode[]>;
  /** Activation nodes folded into the layer before them (tfjs' fused conv/matmul with bias and activation). */
  fused: Set<OnnxNode>;
  /** Pre-activation tensors that no longer exist on their own (folded), left out of {@link ImportedNetwork.tensors}. */
  hidden: Set<string>;
}

/**
 * The activation a Conv/Gemm's only consumer applies, when it can be folded into the layer: `relu` (Relu),
 * `relu6` (Clip to [0, 6]); null when the output is read elsewhere too or is a graph output.
 */
function foldableActivation(ctx: Context, node: OnnxNode): { activation: 'relu' | 'relu6'; consumer: OnnxNode } | null {
  const out = node.outputs[0]!;
  const readers = ctx.consumers.get(out) ?? [];
  if (readers.length !== 1 || ctx.model.outputs.some((o) => o.name === out)) return null;
  const r = readers[0]!;
  if (r.opType === 'Relu') return { activation: 'relu', consumer: r };
  if (r.opType === 'Clip') {
    // Bounds: constant inputs (an initializer or a Constant node, which may come later in the file) or, before
    // opset 11, attributes.
    const bound = (i: number, name: string): number | undefined => {
      const input = r.inputs[i];
      if (!input) return r.attributes.get(name) as number | undefined;
      const v = ctx.values.get(input);
      if (v?.kind === 'const') return v.t.data[0];
      const producer = ctx.model.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === input);
      const t = producer?.attributes.get('value');
      return t && typeof t === 'object' && !Array.isArray(t) ? t.data[0] : undefined;
    };
    if (bound(1, 'min') === 0 && bound(2, 'max') === 6) return { activation: 'relu6', consumer: r };
  }
  return null;
}

/** Marks a folded activation: its node becomes an alias, the pre-activation tensor is hidden. */
function fold(ctx: Context, node: OnnxNode, f: { consumer: OnnxNode }): void {
  ctx.fused.add(f.consumer);
  ctx.hidden.add(node.outputs[0]!);
}

/** True when TensorFlow's `same` padding of a window equals the pads [top, left, bottom, right] (so no pad layer is needed). */
function isSamePadding(size: [number, number], kernel: number[], strides: number[], dilations: number[], p: [number, number, number, number]): boolean {
  return [0, 1].every((i) => {
    const k = (kernel[i]! - 1) * dilations[i]! + 1;
    const total = Math.max((Math.ceil(size[i]! / strides[i]!) - 1) * strides[i]! + k - size[i]!, 0);
    return p[i] === Math.floor(total / 2) && p[i + 2] === total - Math.floor(total / 2);
  });
}

const fail = (ctx: Context, node: OnnxNode, why: string) => new OnnxFormatError(`${ctx.where}: node '${node.name}' (${node.opType}): ${why}`);

function attr<T extends OnnxAttribute>(node: OnnxNode, name: string, fallback: T): T {
  return (node.attributes.get(name) as T | undefined) ?? fallback;
}

/** A tfjs-valid, unique layer name: the weight's module path when there is one (`features.0`), else the node's name. */
function layerName(ctx: Context, node: OnnxNode): string {
  const weight = node.inputs.slice(1).find((n) => ctx.model.initializers.has(n) && /\.(weight|bias)$/.test(n));
  let base = (weight ? weight.replace(/\.(weight|bias)$/, '') : node.name).replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[^A-Za-z0-9]+|_+$/g, '');
  if (!base) base = node.opType;
  let name = base;
  for (let i = 2; ctx.names.has(name); i++) name = `${base}_${i}`;
  ctx.names.add(name);
  return name;
}

function sym(ctx: Context, node: OnnxNode, i: number): Extract<Value, { kind: 'sym' }> {
  const v = ctx.values.get(node.inputs[i] ?? '');
  if (!v) throw fail(ctx, node, `input '${node.inputs[i]}' is not produced by any earlier node`);
  if (v.kind !== 'sym') throw fail(ctx, node, `input '${node.inputs[i]}' is a constant; only computed inputs are supported there`);
  return v;
}

function constant(ctx: Context, node: OnnxNode, i: number, optional = false): OnnxTensor | null {
  const name = node.inputs[i];
  if (!name) {
    if (optional) return null;
    throw fail(ctx, node, `input ${i} is missing`);
  }
  const v = ctx.values.get(name);
  if (!v) throw fail(ctx, node, `input '${name}' is not produced by any earlier node`);
  if (v.kind !== 'const') throw fail(ctx, node, `input '${name}' must be a constant (weights)`);
  return v.t;
}

function apply(ctx: Context, layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]): tfl.SymbolicTensor {
  return layer.apply(x) as tfl.SymbolicTensor;
}

function setOutput(ctx: Context, node: OnnxNode, v: Value): void {
  ctx.values.set(node.outputs[0]!, v);
}

function rank4(ctx: Context, node: OnnxNode, v: Extract<Value, { kind: 'sym' }>): [number, number, number] {
  if (v.rank !== 4) throw fail(ctx, node, `expects an N×C×H×W input, got rank ${v.rank}`);
  const [, h, w, c] = v.x.shape;
  return [h!, w!, c!];
}

/** ONNX `pads` [top, left, bottom, right] (after `auto_pad` resolution) for a 2-D window. */
function spatialPads(ctx: Context, node: OnnxNode, size: [number, number], kernel: number[], strides: number[], dilations: number[]): [number, number, number, number] {
  const autoPad = attr(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') {
    const pads = attr<number[]>(node, 'pads', [0, 0, 0, 0]);
    if (pads.length !== 4) throw fail(ctx, node, `pads [${pads.join(', ')}] are not 2-D`);
    return pads as [number, number, number, number];
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const total = size.map((n, i) => Math.max(0, (Math.ceil(n / strides[i]!) - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - n));
    const lo = total.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    return [lo[0]!, lo[1]!, total[0]! - lo[0]!, total[1]! - lo[1]!];
  }
  throw fail(ctx, node, `auto_pad '${autoPad}' is not supported`);
}

/** Pads with `value` in a layer named `<name>_pad` (none when all pads are 0). */
function pad(ctx: Context, node: OnnxNode, name0: string, x: tfl.SymbolicTensor, p: [number, number, number, number], value: number): tfl.SymbolicTensor {
  if (p.every((v) => v === 0)) return x;
  if (p.some((v) => v < 0)) throw fail(ctx, node, `negative pads [${p.join(', ')}] are not supported`);
  const padding: [[number, number], [number, number]] = [[p[0], p[2]], [p[1], p[3]]];
  const name = `${name0}_pad`;
  const layer = value === 0 ? tfl.layers.zeroPadding2d({ name, padding }) : new ConstantPad2D({ name, padding, value });
  return apply(ctx, layer, x);
}

/** Transposes OIHW `[O, I, kh, kw]` to HWIO `[kh, kw, I, O]`. */
function oihwToHwio(w: Float32Array, [o, i, kh, kw]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o!; a++) for (let b = 0; b < i!; b++) for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) {
    out[((y * kw! + x) * i! + b) * o! + a] = w[((a * i! + b) * kh! + y) * kw! + x]!;
  }
  return out;
}

function float(ctx: Context, node: OnnxNode, t: OnnxTensor): Float32Array {
  if (!(t.data instanceof Float32Array)) throw fail(ctx, node, `weight '${t.name}' is not float32`);
  return t.data;
}

function conv(ctx: Context, node: OnnxNode): void {
  const x = sym(ctx, node, 0);
  const [h, w, c] = rank4(ctx, node, x);
  const W = constant(ctx, node, 1)!;
  const B = constant(ctx, node, 2, true);
  if (W.dims.length !== 4) throw fail(ctx, node, `weight '${W.name}' has dims [${W.dims.join(', ')}], expected [O, I, kh, kw]`);
  const [o, i, kh, kw] = W.dims as [number, number, number, number];
  const group = attr(node, 'group', 1);
  if (group < 1 || i * group !== c || o % group !== 0) throw fail(ctx, node, `weight [${W.dims.join(', ')}] with group ${group} does not fit ${c} input channels`);
  if (B && (B.dims.length !== 1 || B.dims[0] !== o)) throw fail(ctx, node, `bias '${B.name}' has dims [${B.dims.join(', ')}], expected [${o}]`);
  const kernelShape = attr<number[]>(node, 'kernel_shape', [kh, kw]);
  if (kernelShape[0] !== kh || kernelShape[1] !== kw) throw fail(ctx, node, `kernel_shape [${kernelShape.join(', ')}] differs from the weight's [${kh}, ${kw}]`);
  const strides = attr<number[]>(node, 'strides', [1, 1]) as [number, number];
  const dilations = attr<number[]>(node, 'dilations', [1, 1]) as [number, number];
  const name = layerName(ctx, node);
  const pads = spatialPads(ctx, node, [h, w], [kh, kw], strides, dilations);
  const same = (group === 1 || (group === c && i === 1)) && pads.some((v) => v > 0) && isSamePadding([h, w], [kh, kw], strides, dilations, pads);
  const padding = same ? ('same' as const) : ('valid' as const);
  const padded = same ? x.x : pad(ctx, node, name, x.x, pads, 0);
  const act = group === 1 || (group === c && i === 1) ? foldableActivation(ctx, node) : null;
  if (act) fold(ctx, node, act);
  const activation = act?.activation ?? 'linear';
  const hwio = oihwToHwio(float(ctx, node, W), W.dims);
  const bias = B ? [{ data: float(ctx, node, B), shape: [o] }] : [];
  let layer: tfl.layers.Layer;
  let kernel: { data: Float32Array; shape: number[] };
  if (group === 1) {
    layer = tfl.layers.conv2d({ name, filters: o, kernelSize: [kh, kw], strides, dilationRate: dilations, padding, activation, useBias: B !== null });
    kernel = { data: hwio, shape: [kh, kw, i, o] };
  } else if (group === c && i === 1 && (dilations[0] === 1 || strides[0] === 1)) {
    // Depthwise: ONNX output channel k·m + j reads input channel k; tfjs' depthwise kernel [kh, kw, C, m] is the same order.
    const m = o / c;
    layer = tfl.layers.depthwiseConv2d({ name, kernelSize: [kh, kw], depthMultiplier: m, strides, dilationRate: dilations, padding, activation, useBias: B !== null });
    kernel = { data: hwio, shape: [kh, kw, c, m] };
  } else {
    if (same) throw new Error('unreachable: grouped convolutions are padded explicitly');
    layer = new GroupedConv2D({ name, filters: o, kernelSize: [kh, kw], strides, dilationRate: dilations, groups: group, useBias: B !== null });
    kernel = { data: hwio, shape: [kh, kw, i, o] };
  }
  const y = apply(ctx, layer, padded);
  ctx.weights.push({ layer, arrays: [kernel, ...bias] });
  setOutput(ctx, node, { kind: 'sym', x: y, rank: 4 });
}

/** Extra bottom/right padding so that a `valid` pool yields ONNX's `ceil_mode` output size (PyTorch's rule: the last window starts inside the input or the leading pad). */
function ceilExtra(n: number, k: number, s: number, lo: number, hi: number): number {
  const span = n + lo + hi;
  let out = Math.ceil((span - k) / s) + 1;
  if ((out - 1) * s >= n + lo) out--;
  return Math.max(0, (out - 1) * s + k - span);
}

function pool(ctx: Context, node: OnnxNode, kind: 'max' | 'avg'): void {
  const x = sym(ctx, node, 0);
  const [h, w] = rank4(ctx, node, x);
  const k = attr<number[]>(node, 'kernel_shape', []);
  if (k.length !== 2) throw fail(ctx, node, `kernel_shape [${k.join(', ')}] is not 2-D`);
  const strides = attr<number[]>(node, 'strides', [1, 1]);
  const dilations = attr<number[]>(node, 'dilations', [1, 1]);
  if (dilations.some((d) => d !== 1)) throw fail(ctx, node, `dilated pooling is not supported`);
  if (kind === 'max' && attr<number>(node, 'storage_order', 0) !== 0) throw fail(ctx, node, 'storage_order 1 is not supported');
  if (node.outputs.length > 1 && node.outputs[1]) throw fail(ctx, node, 'the Indices output is not supported');
  const p = spatialPads(ctx, node, [h, w], k, strides, dilations);
  if (attr<number>(node, 'ceil_mode', 0) === 1) {
    p[2] += ceilExtra(h, k[0]!, strides[0]!, p[0], p[2]);
    p[3] += ceilExtra(w, k[1]!, strides[1]!, p[1], p[3]);
  }
  const anyPad = p.some((v) => v !== 0);
  if (kind === 'avg' && anyPad && attr<number>(node, 'count_include_pad', 0) !== 1) {
    throw fail(ctx, node, `average pooling with pads [${p.join(', ')}] that excludes the padding from the count is not supported`);
  }
  const name = layerName(ctx, node);
  const padded = pad(ctx, node, name, x.x, p, kind === 'max' ? -Infinity : 0);
  const args = { name, poolSize: [k[0]!, k[1]!] as [number, number], strides: [strides[0]!, strides[1]!] as [number, number], padding: 'valid' as const };
  const layer = kind === 'max' ? tfl.layers.maxPooling2d(args) : tfl.layers.averagePooling2d(args);
  setOutput(ctx, node, { kind: 'sym', x: apply(ctx, layer, padded), rank: 4 });
}

function batchNorm(ctx: Context, node: OnnxNode): void {
  const x = sym(ctx, node, 0);
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => float(ctx, node, constant(ctx, node, i)!));
  const c = x.x.shape[x.x.shape.length - 1]!;
  if ([scale, bias, mean, variance].some((a) => a!.length !== c)) throw fail(ctx, node, `parameters do not have ${c} channels`);
  if (node.outputs.filter(Boolean).length > 1) throw fail(ctx, node, 'training-mode outputs (running mean/var) are not supported');
  const layer = tfl.layers.batchNormalization({ name: layerName(ctx, node), axis: -1, epsilon: attr(node, 'epsilon', 1e-5), momentum: attr(node, 'momentum', 0.9) });
  const y = apply(ctx, layer, x.x);
  ctx.weights.push({ layer, arrays: [scale, bias, mean, variance].map((data) => ({ data: data!, shape: [c] })) });
  setOutput(ctx, node, { kind: 'sym', x: y, rank: x.rank, flattenedFrom: x.flattenedFrom });
}

/** Reorders the rows of a `[K, N]` kernel from ONNX's flatten order (C, H, W) to ours (H, W, C). */
function chwRowsToHwc(kernel: Float32Array, [c, h, w]: [number, number, number], n: number): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let ci = 0; ci < c; ci++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const from = ((ci * h + y) * w + x) * n;
    const to = ((y * w + x) * c + ci) * n;
    out.set(kernel.subarray(from, from + n), to);
  }
  return out;
}

function dense(ctx: Context, node: OnnxNode, gemm: boolean): void {
  const a = sym(ctx, node, 0);
  if (a.rank !== 2) throw fail(ctx, node, `expects a 2-D input (after Flatten), got rank ${a.rank}`);
  const B = constant(ctx, node, 1)!;
  const C = gemm ? constant(ctx, node, 2, true) : null;
  if (gemm && attr<number>(node, 'transA', 0) !== 0) throw fail(ctx, node, 'transA = 1 is not supported');
  const transB = gemm && attr<number>(node, 'transB', 0) === 1;
  const alpha = gemm ? attr(node, 'alpha', 1) : 1;
  const beta = gemm ? attr(node, 'beta', 1) : 1;
  if (B.dims.length !== 2) throw fail(ctx, node, `weight '${B.name}' is not 2-D`);
  const [k, n] = transB ? [B.dims[1]!, B.dims[0]!] : [B.dims[0]!, B.dims[1]!];
  if (k !== a.x.shape[1]) throw fail(ctx, node, `weight [${B.dims.join(', ')}] does not take ${a.x.shape[1]} inputs`);
  const b = float(ctx, node, B);
  let kernel: Float32Array = new Float32Array(k * n);
  for (let r = 0; r < k; r++) for (let col = 0; col < n; col++) kernel[r * n + col] = alpha * (transB ? b[col * k + r]! : b[r * n + col]!);
  if (a.flattenedFrom && a.flattenedFrom[1] * a.flattenedFrom[2] > 1) kernel = chwRowsToHwc(kernel, a.flattenedFrom, n);
  let bias: Float32Array | null = null;
  if (C) {
    const cData = float(ctx, node, C);
    if (cData.length !== n && cData.length !== 1) throw fail(ctx, node, `bias '${C.name}' has ${cData.length} values, expected ${n}`);
    bias = new Float32Array(n).map((_, j) => beta * cData[cData.length === 1 ? 0 : j]!);
  }
  const act = foldableActivation(ctx, node);
  if (act) fold(ctx, node, act);
  const layer = tfl.layers.dense({ name: layerName(ctx, node), units: n, useBias: bias !== null, activation: act?.activation ?? 'linear' });
  const y = apply(ctx, layer, a.x);
  ctx.weights.push({ layer, arrays: [{ data: kernel, shape: [k, n] }, ...(bias ? [{ data: bias, shape: [n] }] : [])] });
  setOutput(ctx, node, { kind: 'sym', x: y, rank: 2 });
}

function add(ctx: Context, node: OnnxNode): void {
  const [va, vb] = [0, 1].map((i) => ctx.values.get(node.inputs[i] ?? ''));
  if (!va || !vb) throw fail(ctx, node, 'an input is not produced by any earlier node');
  if (va.kind === 'sym' && vb.kind === 'sym') {
    if (va.rank !== vb.rank) throw fail(ctx, node, 'inputs of different ranks');
    setOutput(ctx, node, { kind: 'sym', x: apply(ctx, tfl.layers.add({ name: layerName(ctx, node) }), [va.x, vb.x]), rank: va.rank });
    return;
  }
  const [s, k] = va.kind === 'sym' ? [va, vb as Extract<Value, { kind: 'const' }>] : [vb as Extract<Value, { kind: 'sym' }>, va];
  const units = s.x.shape[s.x.shape.length - 1]!;
  // A per-channel constant: [units], [1, units] (rank 2) or [units, 1, 1] / [1, units, 1, 1] (NCHW).
  const dims = k.t.dims.filter((d) => d !== 1);
  if (k.t.data.length !== units || dims.length > 1 || (s.rank === 4 && k.t.dims.length >= 3 && k.t.dims[k.t.dims.length - 3] !== units)) {
    throw fail(ctx, node, `adding constant '${k.t.name}' of dims [${k.t.dims.join(', ')}] is supported only per channel (${units})`);
  }
  const layer = new BiasAdd({ name: layerName(ctx, node), units });
  const y = apply(ctx, layer, s.x);
  ctx.weights.push({ layer, arrays: [{ data: Float32Array.from(k.t.data), shape: [units] }] });
  setOutput(ctx, node, { kind: 'sym', x: y, rank: s.rank });
}

function flatten(ctx: Context, node: OnnxNode, x: Extract<Value, { kind: 'sym' }>): void {
  if (x.rank === 2) {
    setOutput(ctx, node, x);
    return;
  }
  const [h, w, c] = rank4(ctx, node, x);
  const y = apply(ctx, tfl.layers.flatten({ name: layerName(ctx, node) }), x.x);
  setOutput(ctx, node, { kind: 'sym', x: y, rank: 2, flattenedFrom: [c, h, w] });
}

function reshape(ctx: Context, node: OnnxNode): void {
  const x = sym(ctx, node, 0);
  const shape = Array.from(constant(ctx, node, 1)!.data);
  const total = x.x.shape.slice(1).reduce<number>((p, d) => p * d!, 1);
  // Only the flattening reshapes CNN exports use: [N, -1], [0, -1], [N, C·H·W].
  if (shape.length === 2 && (shape[1] === -1 || shape[1] === total) && shape[0] !== -1) {
    flatten(ctx, node, x);
    return;
  }
  throw fail(ctx, node, `reshape to [${shape.join(', ')}] is supported only as a flatten to [N, ${total}]`);
}

function clip(ctx: Context, node: OnnxNode): void {
  const x = sym(ctx, node, 0);
  const bound = (i: number, name: string, fallback: number): number => {
    const t = constant(ctx, node, i, true);
    if (t) return t.data[0]!;
    return attr(node, name, fallback);
  };
  const lo = bound(1, 'min', -Infinity);
  const hi = bound(2, 'max', Infinity);
  if (lo !== 0) throw fail(ctx, node, `only Clip with min 0 (ReLU, ReLU6) is supported, got min ${lo}`);
  const layer = tfl.layers.reLU({ name: layerName(ctx, node), ...(Number.isFinite(hi) ? { maxValue: hi } : {}) });
  setOutput(ctx, node, { kind: 'sym', x: apply(ctx, layer, x.x), rank: x.rank });
}

function concat(ctx: Context, node: OnnxNode): void {
  const xs = node.inputs.map((_, i) => sym(ctx, node, i));
  const rank = xs[0]!.rank;
  let axis = attr(node, 'axis', 1);
  if (axis < 0) axis += rank;
  const tfAxis = rank === 4 ? [0, 3, 1, 2][axis]! : axis;
  if (tfAxis === 0 || xs.some((v) => v.rank !== rank)) throw fail(ctx, node, `concatenation along axis ${axis} is not supported`);
  setOutput(ctx, node, { kind: 'sym', x: apply(ctx, tfl.layers.concatenate({ name: layerName(ctx, node), axis: tfAxis }), xs.map((v) => v.x)), rank });
}

function padNode(ctx: Context, node: OnnxNode): void {
  const x = sym(ctx, node, 0);
  rank4(ctx, node, x);
  const mode = attr(node, 'mode', 'constant');
  if (mode !== 'constant') throw fail(ctx, node, `pad mode '${mode}' is not supported`);
  const pads = node.inputs[1] ? Array.from(constant(ctx, node, 1)!.data) : attr<number[]>(node, 'pads', []);
  const value = node.inputs[2] ? constant(ctx, node, 2)!.data[0]! : attr(node, 'value', 0);
  if (node.inputs[3]) throw fail(ctx, node, 'the axes input is not supported');
  // [n0, c0, h0, w0, n1, c1, h1, w1]
  if (pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5]) throw fail(ctx, node, `pads [${pads.join(', ')}] must pad only H and W`);
  setOutput(ctx, node, { kind: 'sym', x: pad(ctx, node, layerName(ctx, node), x.x, [pads[2]!, pads[3]!, pads[6]!, pads[7]!], value), rank: 4 });
}

function convertNode(ctx: Context, node: OnnxNode): void {
  if (node.domain && node.domain !== 'ai.onnx') throw fail(ctx, node, `operator domain '${node.domain}' is not supported`);
  if (ctx.fused.has(node)) return setOutput(ctx, node, ctx.values.get(node.inputs[0]!)!);
  switch (node.opType) {
    case 'Conv': return conv(ctx, node);
    case 'Relu': {
      const x = sym(ctx, node, 0);
      return setOutput(ctx, node, { kind: 'sym', x: apply(ctx, tfl.layers.reLU({ name: layerName(ctx, node) }), x.x), rank: x.rank });
    }
    case 'Clip': return clip(ctx, node);
    case 'MaxPool': return pool(ctx, node, 'max');
    case 'AveragePool': return pool(ctx, node, 'avg');
    case 'GlobalAveragePool': {
      const x = sym(ctx, node, 0);
      const [, , c] = rank4(ctx, node, x);
      const name = layerName(ctx, node);
      const pooled = apply(ctx, tfl.layers.globalAveragePooling2d({ name }), x.x);
      // ONNX keeps [N, C, 1, 1].
      return setOutput(ctx, node, { kind: 'sym', x: apply(ctx, tfl.layers.reshape({ name: `${name}_keepdims`, targetShape: [1, 1, c] }), pooled), rank: 4 });
    }
    case 'LRN': {
      const x = sym(ctx, node, 0);
      rank4(ctx, node, x);
      const size = attr(node, 'size', 0);
      if (size % 2 !== 1) throw fail(ctx, node, `size ${size} is not odd`);
      const layer = new LocalResponseNormalization({ name: layerName(ctx, node), size, alpha: attr(node, 'alpha', 1e-4), beta: attr(node, 'beta', 0.75), bias: attr(node, 'bias', 1) });
      return setOutput(ctx, node, { kind: 'sym', x: apply(ctx, layer, x.x), rank: 4 });
    }
    case 'BatchNormalization': return batchNorm(ctx, node);
    case 'Gemm': return dense(ctx, node, true);
    case 'MatMul': return dense(ctx, node, false);
    case 'Add': return add(ctx, node);
    case 'Concat': return concat(ctx, node);
    case 'Flatten': {
      if (attr(node, 'axis', 1) !== 1) throw fail(ctx, node, `axis ${attr(node, 'axis', 1)} is not supported (only 1)`);
      return flatten(ctx, node, sym(ctx, node, 0));
    }
    case 'Reshape': return reshape(ctx, node);
    case 'Dropout':
    case 'Identity': {
      const v = ctx.values.get(node.inputs[0] ?? '');
      if (!v) throw fail(ctx, node, `input '${node.inputs[0]}' is not produced by any earlier node`);
      return setOutput(ctx, node, v);
    }
    case 'Constant': {
      const t = node.attributes.get('value');
      if (!t || typeof t !== 'object' || Array.isArray(t)) throw fail(ctx, node, 'only a tensor `value` is supported');
      return setOutput(ctx, node, { kind: 'const', t });
    }
    case 'Softmax': {
      const x = sym(ctx, node, 0);
      const axis = attr(node, 'axis', ctx.model.opsetVersion >= 13 ? -1 : 1);
      if (x.rank !== 2 || (axis !== 1 && axis !== -1)) throw fail(ctx, node, 'softmax is supported over the classes of a [N, K] input only');
      return setOutput(ctx, node, { kind: 'sym', x: apply(ctx, tfl.layers.softmax({ name: layerName(ctx, node) }), x.x), rank: 2 });
    }
    case 'Pad': return padNode(ctx, node);
    default:
      throw fail(ctx, node, `operator '${node.opType}' is not supported (supported: ${SUPPORTED_OPERATORS.join(', ')})`);
  }
}

/**
 * Converts an ONNX image CNN into a tfjs layers model with the same weights.
 * @param model the decoded file (one data input `[N, C, H, W]` with fixed C, H, W).
 * @param where the file's path or URL, named in errors.
 * @throws OnnxFormatError naming the node and operator for an unsupported operator or attribute, or the input when
 *   its size is not fixed; naming the tensor for weights of the wrong shape.
 */
export function onnxToTfjs(model: OnnxModel, where: string): ImportedNetwork {
  if (model.inputs.length !== 1) throw new OnnxFormatError(`${where}: expected one data input, found ${model.inputs.length} (${model.inputs.map((i) => i.name).join(', ')})`);
  const inputInfo = model.inputs[0]!;
  const dims = inputInfo.dims;
  if (!dims || dims.length !== 4 || dims.slice(1).some((d) => d === null)) {
    throw new OnnxFormatError(`${where}: input '${inputInfo.name}' must be N×C×H×W with fixed C, H, W; the file gives [${(dims ?? []).map((d) => d ?? '?').join(', ')}]`);
  }
  const [, c, h, w] = dims as [number | null, number, number, number];
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of model.nodes) for (const t of n.inputs) if (t) consumers.set(t, [...(consumers.get(t) ?? []), n]);
  const ctx: Context = { values: new Map(), names: new Set(), weights: [], model, where, consumers, fused: new Set(), hidden: new Set() };
  for (const t of model.initializers.values()) ctx.values.set(t.name, { kind: 'const', t });
  const input = tfl.input({ shape: [h, w, c], name: 'image' });
  ctx.names.add('image');
  ctx.values.set(inputInfo.name, { kind: 'sym', x: input, rank: 4 });
  const denseNodes: OnnxNode[] = [];
  for (const node of model.nodes) {
    convertNode(ctx, node);
    if (node.opType === 'Gemm' || node.opType === 'MatMul') denseNodes.push(node);
  }
  const outName = model.outputs[0]?.name ?? '';
  const out = ctx.values.get(outName);
  if (!out || out.kind !== 'sym') throw new OnnxFormatError(`${where}: graph output '${outName}' is not computed by the graph`);
  const tensors = new Map<string, tfl.SymbolicTensor>();
  for (const [name, v] of ctx.values) if (v.kind === 'sym' && !ctx.hidden.has(name)) tensors.set(name, v.x);
  const last = denseNodes[denseNodes.length - 1];
  if (!last) throw new OnnxFormatError(`${where}: the graph has no fully connected layer (Gemm/MatMul) to take features before`);
  const tfModel = tfl.model({ inputs: input, outputs: out.x, name: 'imported' });
  tf.tidy(() => {
    for (const { layer, arrays } of ctx.weights) layer.setWeights(arrays.map((a) => tf.tensor(a.data, a.shape, 'float32')));
  });
  // The logits: the last dense layer's output, or the bias added after a MatMul.
  let logitsTensor = last.outputs[0]!;
  const next = model.nodes[model.nodes.indexOf(last) + 1];
  if (last.opType === 'MatMul' && next?.opType === 'Add' && next.inputs.includes(logitsTensor)) logitsTensor = next.outputs[0]!;
  const logitsLayer = tensors.get(logitsTensor)!.sourceLayer.name;
  return { model: tfModel, inputSize: [h, w], channels: c, tensors, featureTensor: last.inputs[0]!, logitsTensor, logitsLayer };
}

/**
 * A model sharing the imported network's layers that outputs one of its tensors.
 * @param layer an ONNX tensor name, or a tfjs layer name (its output); default: the feature tensor.
 * @throws Error naming the layer when the network has no such tensor or layer.
 */
export function truncatedModel(net: ImportedNetwork, layer: string = net.featureTensor): tfl.LayersModel {
  let out = net.tensors.get(layer);
  if (!out) {
    const l = net.model.layers.find((x) => x.name === layer);
    if (l) out = l.output as tfl.SymbolicTensor;
  }
  if (!out) throw new OnnxFormatError(`pretrained.layer: the network has no tensor or layer '${layer}' (the default is '${net.featureTensor}')`);
  return tfl.model({ inputs: net.model.inputs, outputs: out });
}
