/**
 * Reads an ONNX model file (protobuf `onnx.ModelProto`, schema in model-import/onnx-proto.ts) into plain,
 * validated records: the graph's nodes in file order, its attributes, and its constant tensors as typed arrays.
 *
 * Model files are untrusted input: the bytes are only decoded (protobufjs checks every length against the buffer and
 * throws on a truncated message), never executed, and every tensor's declared dims are checked against the length of
 * its data before the data is used. Errors are {@link OnnxFormatError}s naming the file and the tensor or node.
 */
import protobuf from 'protobufjs';
import { endianness } from 'node:os';
import { UserError } from '../util/errors.ts';
import { ONNX_PROTO } from './onnx-proto.ts';

/** A file that is not a readable ONNX model, or holds something this reader refuses (message names the item). */
export class OnnxFormatError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxFormatError';
  }
}

/** ONNX `TensorProto.DataType` codes this reader accepts (onnx.proto: FLOAT = 1, INT32 = 6, INT64 = 7). */
export const ONNX_FLOAT = 1;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;

/** A constant tensor: `dims` as in the file (NCHW / OIHW for image tensors), `data` row-major, length = product of dims. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  /** FLOAT tensors as float32; INT32/INT64 tensors as float64 numbers (shapes, axes, pads). */
  data: Float32Array | Float64Array;
}

/** One attribute value, by its ONNX type: f (FLOAT), i (INT), s (STRING), floats, ints, t (TENSOR). */
export type OnnxAttribute = number | string | number[] | OnnxTensor;

/** One graph node. */
export interface OnnxNode {
  /** The node's name; when the file gives none, `<op_type>#<index>`. */
  name: string;
  opType: string;
  /** ONNX domain; '' (or 'ai.onnx') is the standard operator set. */
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

/** A graph input or output: name and dims (null where the file gives a symbolic or no size). */
export interface OnnxValueInfo {
  name: string;
  dims: (number | null)[] | null;
}

/** A decoded ONNX model. */
export interface OnnxModel {
  irVersion: number;
  /** Version of the standard operator set ('' domain). */
  opsetVersion: number;
  producer: string;
  /** Graph inputs that are not initializers (the network's data inputs). */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  nodes: OnnxNode[];
  /** Initializers (weights) by name. */
  initializers: Map<string, OnnxTensor>;
}

interface LongLike {
  toNumber(): number;
}
type Int = number | LongLike;
interface RawTensor {
  name?: string;
  dims?: Int[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: Int[];
  raw_data?: Uint8Array;
  data_location?: number;
}
interface RawAttribute {
  name?: string;
  type?: number;
  f?: number;
  i?: Int;
  s?: Uint8Array;
  t?: RawTensor;
  floats?: number[];
  ints?: Int[];
}
interface RawNode {
  name?: string;
  op_type?: string;
  domain?: string;
  input?: string[];
  output?: string[];
  attribute?: RawAttribute[];
}
interface RawDim {
  dim_value?: Int;
  dim_param?: string;
}
interface RawValueInfo {
  name?: string;
  type?: { tensor_type?: { shape?: { dim?: RawDim[] } } };
}
interface RawModel {
  ir_version?: Int;
  producer_name?: string;
  opset_import?: { domain?: string; version?: Int }[];
  graph?: {
    node?: RawNode[];
    initializer?: RawTensor[];
    input?: RawValueInfo[];
    output?: RawValueInfo[];
  };
}

let modelType: protobuf.Type | null = null;
function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root.lookupType('onnx.ModelProto');
  return modelType;
}

const int = (v: Int | undefined): number => (v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

/** Largest element count accepted for one tensor (2^31 − 1: beyond what a typed array or tfjs can hold). */
const MAX_ELEMENTS = 2 ** 31 - 1;

/**
 * Converts a decoded TensorProto into an {@link OnnxTensor}.
 * @param where the file, for messages.
 * @throws OnnxFormatError when the data type is not FLOAT/INT32/INT64, the data is stored outside the file, a dim is
 *   negative, or the data's length differs from the product of the dims (never reads past the data).
 */
function readTensor(t: RawTensor, where: string): OnnxTensor {
  const name = t.name ?? '';
  const dims = (t.dims ?? []).map(int);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new OnnxFormatError(`${where}: tensor '${name}' has invalid dims [${dims.join(', ')}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (count > MAX_ELEMENTS) throw new OnnxFormatError(`${where}: tensor '${name}' declares ${count} elements, too many`);
  if (t.data_location === 1) {
    throw new OnnxFormatError(`${where}: tensor '${name}' keeps its data in an external file; re-export with the weights inside the model (torch.onnx.export does for models under 2 GB)`);
  }
  const type = t.data_type ?? 0;
  const raw = t.raw_data && t.raw_data.length > 0 ? t.raw_data : null;
  const mismatch = (have: number, unit: string) =>
    new OnnxFormatError(`${where}: tensor '${name}' declares dims [${dims.join(', ')}] (${count} values) but holds ${have} ${unit}`);
  if (type === ONNX_FLOAT) {
    if (raw) {
      if (raw.length !== count * 4) throw mismatch(raw.length, 'bytes of float32 (raw_data)');
      const bytes = new Uint8Array(count * 4);
      bytes.set(raw);
      return { name, dims, data: new Float32Array(bytes.buffer) };
    }
    const f = t.float_data ?? [];
    if (f.length !== count) throw mismatch(f.length, 'float_data values');
    return { name, dims, data: Float32Array.from(f) };
  }
  if (type === ONNX_INT64 || type === ONNX_INT32) {
    const size = type === ONNX_INT64 ? 8 : 4;
    if (raw) {
      if (raw.length !== count * size) throw mismatch(raw.length, `bytes of ${size === 8 ? 'int64' : 'int32'} (raw_data)`);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = size === 8 ? Number(view.getBigInt64(i * 8, true)) : view.getInt32(i * 4, true);
      return { name, dims, data: out };
    }
    const values = type === ONNX_INT64 ? (t.int64_data ?? []).map(int) : (t.int32_data ?? []);
    if (values.length !== count) throw mismatch(values.length, `${type === ONNX_INT64 ? 'int64' : 'int32'}_data values`);
    return { name, dims, data: Float64Array.from(values) };
  }
  throw new OnnxFormatError(`${where}: tensor '${name}' has ONNX data type ${type}; only FLOAT (1), INT32 (6) and INT64 (7) are supported`);
}

/** Converts one attribute by its declared type (onnx.proto AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7). */
function readAttribute(a: RawAttribute, node: string, where: string): OnnxAttribute {
  switch (a.type) {
    case 1: return a.f ?? 0;
    case 2: return int(a.i);
    case 3: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case 4:
      if (!a.t) throw new OnnxFormatError(`${where}: node '${node}' attribute '${a.name}' has no tensor`);
      return readTensor(a.t, where);
    case 6: return a.floats ?? [];
    case 7: return (a.ints ?? []).map(int);
    default: throw new OnnxFormatError(`${where}: node '${node}' attribute '${a.name}' has unsupported attribute type ${a.type}`);
  }
}

function readValueInfo(v: RawValueInfo): OnnxValueInfo {
  const dims = v.type?.tensor_type?.shape?.dim;
  return { name: v.name ?? '', dims: dims ? dims.map((d) => (d.dim_value !== undefined && int(d.dim_value) > 0 ? int(d.dim_value) : null)) : null };
}

/**
 * Decodes and validates an ONNX model.
 * @param bytes the file's contents.
 * @param where the file's path or URL, named in errors.
 * @throws OnnxFormatError when the bytes are not a protobuf ModelProto (truncated, another format), the model has
 *   no graph or no nodes, or a tensor fails {@link readTensor}'s checks.
 */
export function decodeOnnx(bytes: Uint8Array, where: string): OnnxModel {
  if (endianness() !== 'LE') throw new OnnxFormatError(`${where}: reading ONNX weights needs a little-endian machine`);
  let raw: RawModel;
  try {
    raw = onnxModelType().decode(bytes) as unknown as RawModel;
  } catch (e) {
    throw new OnnxFormatError(`${where}: not a readable ONNX file (truncated or another format: ${(e as Error).message})`);
  }
  const graph = raw.graph;
  const irVersion = int(raw.ir_version);
  if (!graph || irVersion <= 0 || !graph.node || graph.node.length === 0) {
    throw new OnnxFormatError(`${where}: not an ONNX model (no ir_version or no graph with nodes)`);
  }
  const opset = (raw.opset_import ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const initializers = new Map<string, OnnxTensor>();
  for (const t of graph.initializer ?? []) {
    const tensor = readTensor(t, where);
    initializers.set(tensor.name, tensor);
  }
  const nodes = graph.node.map((n, i): OnnxNode => {
    const name = n.name || `${n.op_type ?? '?'}#${i}`;
    const attributes = new Map<string, OnnxAttribute>();
    for (const a of n.attribute ?? []) attributes.set(a.name ?? '', readAttribute(a, name, where));
    return { name, opType: n.op_type ?? '', domain: n.domain ?? '', inputs: n.input ?? [], outputs: n.output ?? [], attributes };
  });
  return {
    irVersion,
    opsetVersion: opset ? int(opset.version) : 1,
    producer: raw.producer_name ?? '',
    inputs: (graph.input ?? []).map(readValueInfo).filter((v) => !initializers.has(v.name)),
    outputs: (graph.output ?? []).map(readValueInfo),
    nodes,
    initializers,
  };
}

/**
 * The same model with one more graph output, `tensor` (an intermediate tensor, so that a runtime such as onnxruntime
 * returns it). The file is not re-encoded: the bytes of a `ModelProto { graph { output { name } } }` are appended,
 * which a protobuf parser merges into the file's graph (the protobuf encoding spec: a singular embedded message that
 * appears twice is merged, repeated fields are concatenated). Returns `bytes` itself when `tensor` already is an output.
 */
export function withGraphOutput(bytes: Uint8Array, model: OnnxModel, tensor: string): Uint8Array {
  if (model.outputs.some((o) => o.name === tensor)) return bytes;
  const type = onnxModelType();
  const extra = type.encode(type.fromObject({ graph: { output: [{ name: tensor }] } })).finish();
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes);
  out.set(extra, bytes.length);
  return out;
}
