/**
 * The study's model parameter strings (`train.modelParams`), as its experiment runner (yanirs/bandcamp-deep-learning,
 * `architectures.py`, Lasagne) took them: `key=value` pairs joined by `:`, e.g.
 * `num_conv_layers=5:num_dense_layers=2:lc0_num_filters=48:lc0_filter_size=11:lc0_stride=4:lc0_mp=True`.
 *
 * Keys of the ConvNet family (ConvNet, AlexNet, VggNet, LasagneMnistConvExample):
 * - `num_conv_layers`, `num_dense_layers`;
 * - `lcI_num_filters`, `lcI_filter_size`, `lcI_stride` (default 1), `lcI_mp` (max-pool after conv I, default False),
 *   `lcI_border_mode` (`same`, the default, or `valid`), `lcI_bn` (batch normalisation, default False: see below);
 * - `lmI_pool_size` (default 2), `lmI_stride` (default: the pool size, as Lasagne's MaxPool2DLayer);
 * - `ldI_num_units`, `ldI_dropout` (dropout rate after dense layer I, default 0.5), `ldI_hd` (has dropout, default True),
 *   `ldI_bn` (batch normalisation, default False);
 * - VggNet only: `reduction_factor` (divides every filter and unit count, default 1).
 * SingleLayerMlp: `num_units` (hidden units, default 512).
 * Values: integers, decimals, `True`/`False`, words; sizes as `5`, `5x5` or `(5,5)`.
 *
 * `lcI_bn` and `ldI_bn` are ours, not the study's (it had no batch normalisation): `True` puts batch normalisation
 * (Ioffe & Szegedy 2015) between the layer's linear part and its ReLU, and drops the layer's bias (the normalisation's
 * offset replaces it), as Lasagne's `batch_norm()` helper does. Its moving mean and variance (momentum 0.99,
 * epsilon 0.001: tfjs-layers' defaults) are updated by training steps and saved with the weights.
 *
 * Configuration vocabulary, in schemas/ because the config schema (pipeline/config.ts) validates `train.architecture`
 * and `train.modelParams` with it and every run records the resolved spec in `models/<run>/config.json`
 * (schemas/model.ts); pure, it imports nothing (no TensorFlow.js).
 */

/** The architectures of `train.architecture`. */
export const ARCHITECTURES = ['ConvNet', 'AlexNet', 'VggNet', 'SingleLayerMlp', 'LasagneMnistConvExample'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** A parsed parameter value. */
export type ParamValue = number | boolean | string | [number, number];

/** One convolutional layer: same-padded (by default), ReLU, He-uniform. */
export interface ConvSpec {
  filters: number;
  /** [height, width] in pixels. */
  kernelSize: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
  /** Batch normalisation between the conv and its ReLU (the conv then has no bias); absent = false. */
  batchNorm?: boolean;
  /** Max-pool after the conv, or null. */
  pool: { poolSize: [number, number]; strides: [number, number] } | null;
}

/** One dense layer: ReLU, He-uniform, then dropout at `dropout` (0 = none). */
export interface DenseSpec {
  units: number;
  dropout: number;
  /** Batch normalisation between the dense layer and its ReLU (the layer then has no bias); absent = false. */
  batchNorm?: boolean;
}

/** A resolved architecture: what `buildModel` builds (input → convs → flatten → denses → softmax). */
export interface ModelSpec {
  architecture: Architecture;
  convs: ConvSpec[];
  denses: DenseSpec[];
  /** The resolved parameters, for the record (config.json). */
  params: Record<string, ParamValue>;
}

/** Thrown for a malformed string, an unknown key or a bad value; the message names the key (and lists the valid keys). */
export class ModelParamsError extends Error {
  /**
   * @param message the full message (`train.modelParams: …`), as the train stage reports it.
   * @param expected what was expected, as a phrase that follows "expected" (config validation reports it as
   *   `train.modelParams = "…": expected <expected> (valid keys: …)`).
   * @param validKeys the keys valid here, when known (see {@link validKeys}).
   */
  constructor(message: string, readonly expected: string = message, readonly validKeys?: string[]) {
    super(message);
    this.name = 'ModelParamsError';
  }
}

/** Parses one value: `True`/`False`, numbers, `AxB` / `(A,B)` pairs, otherwise the word. */
function parseParamValue(raw: string): ParamValue {
  const v = raw.trim();
  if (v === 'True' || v === 'true') return true;
  if (v === 'False' || v === 'false') return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v)) return Number(v);
  const pair = /^\(?\s*(\d+)\s*[,x×]\s*(\d+)\s*\)?$/.exec(v);
  if (pair) return [Number(pair[1]), Number(pair[2])];
  return v;
}

/**
 * Splits a parameter string into key → value.
 * @throws ModelParamsError for a pair without `=`, an empty key or a repeated key.
 */
export function parseModelParams(text: string): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const part of text.split(':').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) {
      throw new ModelParamsError(
        `train.modelParams: "${part}" is not key=value (pairs are joined by ":", e.g. lc0_num_filters=32:lc0_mp=True)`,
        `key=value pairs joined by ":" (e.g. lc0_num_filters=32:lc0_mp=True), not "${part}"`,
      );
    }
    const key = part.slice(0, eq).trim();
    if (key in out) throw new ModelParamsError(`train.modelParams: key "${key}" is given twice`, `each key once ("${key}" is given twice)`);
    out[key] = parseParamValue(part.slice(eq + 1));
  }
  return out;
}

/** The study's defaults of each architecture (architectures.py). */
export function architectureDefaults(arch: Architecture): Record<string, ParamValue> {
  switch (arch) {
    case 'ConvNet':
      return { num_conv_layers: 1, num_dense_layers: 1 };
    case 'SingleLayerMlp':
      return { num_units: 512 };
    case 'LasagneMnistConvExample':
      return {
        num_conv_layers: 2, num_dense_layers: 1,
        lc0_num_filters: 32, lc0_filter_size: 5, lc1_num_filters: 32, lc1_filter_size: 5, ld0_num_units: 256,
        // Lasagne's mnist_conv example pools 2×2 after each conv.
        lc0_mp: true, lc1_mp: true,
      };
    case 'AlexNet':
      return {
        num_conv_layers: 5, num_dense_layers: 2,
        lc0_num_filters: 48, lc0_filter_size: 11, lc0_stride: 4, lc0_mp: true, lm0_pool_size: 3, lm0_stride: 2,
        lc1_num_filters: 128, lc1_filter_size: 5, lc1_mp: true, lm1_pool_size: 3, lm1_stride: 2,
        lc2_num_filters: 192, lc2_filter_size: 3,
        lc3_num_filters: 192, lc3_filter_size: 3,
        lc4_num_filters: 128, lc4_filter_size: 3, lc4_mp: true, lm4_pool_size: 3, lm4_stride: 2,
        ld0_num_units: 2048, ld1_num_units: 2048,
      };
    case 'VggNet': {
      // Network D of Simonyan & Zisserman (2014).
      const filters = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
      const pools = new Set([1, 3, 6, 9, 12]);
      const p: Record<string, ParamValue> = { num_conv_layers: 13, num_dense_layers: 2, reduction_factor: 1, ld0_num_units: 4096, ld1_num_units: 4096 };
      filters.forEach((f, i) => {
        p[`lc${i}_num_filters`] = f;
        p[`lc${i}_filter_size`] = 3;
        if (pools.has(i)) p[`lc${i}_mp`] = true;
      });
      return p;
    }
  }
}

const CONV_KEYS = ['num_filters', 'filter_size', 'stride', 'mp', 'border_mode', 'bn'] as const;
const POOL_KEYS = ['pool_size', 'stride'] as const;
const DENSE_KEYS = ['num_units', 'dropout', 'hd', 'bn'] as const;

/** The keys valid for an architecture with the given layer counts, as a readable list. */
function validKeys(arch: Architecture, numConv: number, numDense: number): string[] {
  if (arch === 'SingleLayerMlp') return ['num_units'];
  const keys = ['num_conv_layers', 'num_dense_layers'];
  if (arch === 'VggNet') keys.push('reduction_factor');
  const c = numConv > 0 ? `0..${numConv - 1}` : 'none';
  const d = numDense > 0 ? `0..${numDense - 1}` : 'none';
  keys.push(...CONV_KEYS.map((k) => `lcI_${k} (I = ${c})`), ...POOL_KEYS.map((k) => `lmI_${k} (I = ${c})`), ...DENSE_KEYS.map((k) => `ldI_${k} (I = ${d})`));
  return keys;
}

function positiveInt(key: string, v: ParamValue | undefined, fallback?: number): number {
  const x = v === undefined ? fallback : v;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
    throw new ModelParamsError(`train.modelParams: ${key} = ${JSON.stringify(v)}: expected a non-negative integer`, `${key} to be a non-negative integer, not ${JSON.stringify(v)}`);
  }
  return x;
}

function size2(key: string, v: ParamValue | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  if (Array.isArray(v)) return v;
  const n = positiveInt(key, v);
  if (n < 1) throw new ModelParamsError(`train.modelParams: ${key} = ${n}: expected at least 1`, `${key} to be at least 1, not ${n}`);
  return [n, n];
}

function bool(key: string, v: ParamValue | undefined, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ModelParamsError(`train.modelParams: ${key} = ${JSON.stringify(v)}: expected True or False`, `${key} to be True or False, not ${JSON.stringify(v)}`);
  return v;
}

/**
 * Resolves an architecture and its parameter string into a {@link ModelSpec}.
 * @throws ModelParamsError naming the key and listing the valid ones, for an unknown key or a bad value.
 */
export function resolveModelSpec(arch: Architecture, paramText: string): ModelSpec {
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new ModelParamsError(`train.architecture = ${JSON.stringify(arch)}: expected one of ${ARCHITECTURES.join(', ')}`, `train.architecture to be one of ${ARCHITECTURES.join(', ')}`);
  }
  const overrides = parseModelParams(paramText);
  const params = { ...architectureDefaults(arch), ...overrides };
  if (arch === 'SingleLayerMlp') {
    const bad = Object.keys(overrides).filter((k) => k !== 'num_units');
    if (bad.length) {
      throw new ModelParamsError(
        `train.modelParams: unknown key${bad.length > 1 ? 's' : ''} ${bad.join(', ')} for SingleLayerMlp; valid keys: num_units`,
        `keys valid for SingleLayerMlp, not ${bad.join(', ')}`,
        validKeys(arch, 0, 0),
      );
    }
    return { architecture: arch, convs: [], denses: [{ units: positiveInt('num_units', params.num_units), dropout: 0 }], params };
  }
  const numConv = positiveInt('num_conv_layers', params.num_conv_layers);
  const numDense = positiveInt('num_dense_layers', params.num_dense_layers);
  const unknown = Object.keys(overrides).filter((k) => {
    if (k === 'num_conv_layers' || k === 'num_dense_layers') return false;
    if (k === 'reduction_factor') return arch !== 'VggNet';
    const m = /^l([cmd])(\d+)_(\w+)$/.exec(k);
    if (!m) return true;
    const i = Number(m[2]);
    const sub = m[3]!;
    if (m[1] === 'c') return i >= numConv || !(CONV_KEYS as readonly string[]).includes(sub);
    if (m[1] === 'm') return i >= numConv || !(POOL_KEYS as readonly string[]).includes(sub);
    return i >= numDense || !(DENSE_KEYS as readonly string[]).includes(sub);
  });
  if (unknown.length) {
    const valid = validKeys(arch, numConv, numDense);
    throw new ModelParamsError(
      `train.modelParams: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} for ${arch} with ${numConv} conv and ${numDense} dense layers; valid keys: ${valid.join(', ')}`,
      `keys valid for ${arch} with ${numConv} conv and ${numDense} dense layers, not ${unknown.join(', ')}`,
      valid,
    );
  }
  const reduction = arch === 'VggNet' ? (params.reduction_factor as number) : 1;
  if (typeof reduction !== 'number' || !(reduction > 0)) throw new ModelParamsError(`train.modelParams: reduction_factor = ${JSON.stringify(params.reduction_factor)}: expected a positive number`, `reduction_factor to be a positive number, not ${JSON.stringify(params.reduction_factor)}`);
  // VggNet divides its own defaults (not user overrides) by the reduction factor, as architectures.py does.
  const reduce = (key: string, n: number) => (arch === 'VggNet' && !(key in overrides) ? Math.max(1, Math.floor(n / reduction)) : n);
  const convs: ConvSpec[] = [];
  for (let i = 0; i < numConv; i++) {
    const k = (s: string) => `lc${i}_${s}`;
    if (params[k('num_filters')] === undefined) throw new ModelParamsError(`train.modelParams: ${k('num_filters')} is required (conv layer ${i} of ${numConv})`, `${k('num_filters')} (conv layer ${i} of ${numConv} has no default)`);
    const filters = reduce(k('num_filters'), positiveInt(k('num_filters'), params[k('num_filters')]));
    const kernelSize = size2(k('filter_size'), params[k('filter_size')], 3);
    const strides = size2(k('stride'), params[k('stride')], 1);
    const border = params[k('border_mode')] ?? 'same';
    if (border !== 'same' && border !== 'valid') throw new ModelParamsError(`train.modelParams: ${k('border_mode')} = ${JSON.stringify(border)}: expected same or valid`, `${k('border_mode')} to be same or valid, not ${JSON.stringify(border)}`);
    let pool: ConvSpec['pool'] = null;
    if (bool(k('mp'), params[k('mp')], false)) {
      const poolSize = size2(`lm${i}_pool_size`, params[`lm${i}_pool_size`], 2);
      const ps = params[`lm${i}_stride`] === undefined ? poolSize : size2(`lm${i}_stride`, params[`lm${i}_stride`], 2);
      pool = { poolSize, strides: ps };
    }
    // batchNorm only when on, so specs without it read as before batch norm existed.
    const bn = bool(k('bn'), params[k('bn')], false);
    convs.push({ filters, kernelSize, strides, padding: border, ...(bn ? { batchNorm: true } : {}), pool });
  }
  const denses: DenseSpec[] = [];
  for (let i = 0; i < numDense; i++) {
    const k = (s: string) => `ld${i}_${s}`;
    if (params[k('num_units')] === undefined) throw new ModelParamsError(`train.modelParams: ${k('num_units')} is required (dense layer ${i} of ${numDense})`, `${k('num_units')} (dense layer ${i} of ${numDense} has no default)`);
    const units = reduce(k('num_units'), positiveInt(k('num_units'), params[k('num_units')]));
    const rate = params[k('dropout')] ?? 0.5;
    if (typeof rate !== 'number' || rate < 0 || rate >= 1) throw new ModelParamsError(`train.modelParams: ${k('dropout')} = ${JSON.stringify(rate)}: expected a rate in [0, 1)`, `${k('dropout')} to be a rate in [0, 1), not ${JSON.stringify(rate)}`);
    const bn = bool(k('bn'), params[k('bn')], false);
    denses.push({ units, dropout: bool(k('hd'), params[k('hd')], true) ? rate : 0, ...(bn ? { batchNorm: true } : {}) });
  }
  return { architecture: arch, convs, denses, params };
}

/**
 * Checks an architecture and parameter string without building anything, for config validation
 * (pipeline/config.ts): pure, imports no TensorFlow.js.
 * @returns null when {@link resolveModelSpec} accepts them, else the problem as a phrase that follows "expected",
 *   ending with the valid keys: `keys valid for AlexNet with 5 conv and 2 dense layers, not foo (valid keys: …)`.
 */
export function modelParamsProblem(arch: Architecture, paramText: string): string | null {
  try {
    resolveModelSpec(arch, paramText);
    return null;
  } catch (e) {
    if (!(e instanceof ModelParamsError)) throw e;
    return `${e.expected} (valid keys: ${(e.validKeys ?? fallbackValidKeys(arch, paramText)).join(', ')})`;
  }
}

/** The valid keys for a string that did not get as far as the unknown-key check: its layer counts if readable, else the defaults'. */
function fallbackValidKeys(arch: Architecture, paramText: string): string[] {
  let params = architectureDefaults(arch);
  try {
    params = { ...params, ...parseModelParams(paramText) };
  } catch {
    // Malformed: the defaults' layer counts.
  }
  const count = (v: ParamValue | undefined) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);
  return validKeys(arch, count(params.num_conv_layers), count(params.num_dense_layers));
}
