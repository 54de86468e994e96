/**
 * TFRecord shards of `tf.train.Example`: `DATA_DIR/export/tfrecord/<split>/<split>-NNNNNN.tfrecord`, one Example per
 * sample, in shard order.
 *
 * Record framing (TensorFlow, tensorflow/core/lib/io/record_writer.h and the TFRecord format guide,
 * https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details):
 *
 * ```
 * uint64 length            little-endian
 * uint32 masked_crc32c(length bytes)
 * byte   data[length]      a serialized tf.train.Example
 * uint32 masked_crc32c(data)
 * ```
 *
 * with `masked_crc = ((crc >>> 15) | (crc << 17)) + 0xa282ead8` over CRC-32C (Castagnoli)
 * (tensorflow/tsl/lib/hash/crc32c.h `Mask`). No compression. CRC-32C comes from `@node-rs/crc32`; the protobuf is
 * encoded with `protobufjs` from the message definitions of tensorflow/core/example/example.proto and feature.proto
 * ({@link EXAMPLE_PROTO}, copied without their comments and options).
 *
 * Features of each Example ({@link TFRECORD_FEATURES}): the TF object-detection / TF-slim image conventions
 * (`image/encoded`, `image/format`, `image/class/label`, `image/class/text`, `image/height`, `image/width`,
 * `image/channels`) plus `image/key` and the Bandcamp ids.
 */
import { crc32c } from '@node-rs/crc32';
import protobuf from 'protobufjs';
import type { ExportSample } from './layout.ts';

/**
 * The message definitions of tensorflow/core/example/feature.proto and example.proto (TensorFlow 2.x, Apache-2.0),
 * comments and file options left out; field numbers and types as there.
 */
export const EXAMPLE_PROTO = `
syntax = "proto3";
package tensorflow;
message BytesList { repeated bytes value = 1; }
message FloatList { repeated float value = 1 [packed = true]; }
message Int64List { repeated int64 value = 1 [packed = true]; }
message Feature {
  oneof kind {
    BytesList bytes_list = 1;
    FloatList float_list = 2;
    Int64List int64_list = 3;
  }
}
message Features { map<string, Feature> feature = 1; }
message FeatureList { repeated Feature feature = 1; }
message FeatureLists { map<string, FeatureList> feature_list = 1; }
message Example { Features features = 1; }
`;

/** The feature keys of each Example, with their types (for `tf.io.parse_single_example` and dataset.json). */
export const TFRECORD_FEATURES = {
  'image/encoded': 'bytes: the cover, PNG or JPEG (image/format)',
  'image/format': "bytes: 'png' or 'jpeg'",
  'image/height': 'int64: S',
  'image/width': 'int64: S',
  'image/channels': 'int64: 3 (RGB)',
  'image/class/label': 'int64: index of the genre in labelNames (ClassLabel)',
  'image/class/text': 'bytes: the genre (Bandcamp tag norm name)',
  'image/key': 'bytes: the sample key (item_id in decimal), as in the WebDataset export',
  'bandcamp/item_id': 'int64: Bandcamp album id',
  'bandcamp/art_id': 'int64: Bandcamp cover image id',
  'bandcamp/sha256': 'bytes: sha256 (hex) of the downloaded cover file',
} as const;

/** The mask constant of TFRecord's masked CRC-32C (tensorflow/tsl/lib/hash/crc32c.h `kMaskDelta`). */
export const CRC_MASK_DELTA = 0xa282ead8;

let exampleType: protobuf.Type | undefined;
/** The `tensorflow.Example` message type, parsed once from {@link EXAMPLE_PROTO}. */
function exampleMessage(): protobuf.Type {
  exampleType ??= protobuf.parse(EXAMPLE_PROTO, { keepCase: true }).root.lookupType('tensorflow.Example');
  return exampleType;
}

/** TFRecord's masked CRC-32C of `data`, as an unsigned 32-bit integer. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + CRC_MASK_DELTA) >>> 0;
}

const bytesFeature = (...values: Uint8Array[]) => ({ bytes_list: { value: values } });
const int64Feature = (...values: number[]) => ({ int64_list: { value: values } });
const text = (s: string) => Buffer.from(s, 'utf8');

/**
 * Serializes one sample as a `tf.train.Example` (features {@link TFRECORD_FEATURES}, in that order, so the bytes
 * are the same on every run).
 */
export function encodeExample(s: ExportSample): Uint8Array {
  const feature = {
    'image/encoded': bytesFeature(s.image),
    'image/format': bytesFeature(text(s.imageFormat)),
    'image/height': int64Feature(s.size),
    'image/width': int64Feature(s.size),
    'image/channels': int64Feature(3),
    'image/class/label': int64Feature(s.label),
    'image/class/text': bytesFeature(text(s.genre)),
    'image/key': bytesFeature(text(s.key)),
    'bandcamp/item_id': int64Feature(s.itemId),
    'bandcamp/art_id': int64Feature(s.artId),
    'bandcamp/sha256': bytesFeature(text(s.sha256)),
  } satisfies Record<keyof typeof TFRECORD_FEATURES, unknown>;
  const type = exampleMessage();
  // A plain object of the message's shape (field names as in the .proto, numbers for int64, bytes as Uint8Array):
  // protobufjs encodes it as is, without fromObject's copy.
  return type.encode({ features: { feature } }).finish();
}

/** A feature as {@link decodeExample} gives it back. */
export type DecodedFeature = { bytes: Uint8Array[] } | { int64: number[] } | { float: number[] };

/**
 * Parses a serialized `tf.train.Example`.
 * @returns its features by key.
 * @throws Error when the bytes are not an Example, or an int64 is beyond 2^53 − 1.
 */
export function decodeExample(data: Uint8Array): Record<string, DecodedFeature> {
  const type = exampleMessage();
  const obj = type.toObject(type.decode(data), { longs: String, oneofs: true }) as {
    features?: { feature?: Record<string, { bytes_list?: { value?: Uint8Array[] }; int64_list?: { value?: string[] }; float_list?: { value?: number[] } }> };
  };
  const out: Record<string, DecodedFeature> = {};
  for (const [key, f] of Object.entries(obj.features?.feature ?? {})) {
    if (f.bytes_list) out[key] = { bytes: f.bytes_list.value ?? [] };
    else if (f.int64_list) {
      out[key] = {
        int64: (f.int64_list.value ?? []).map((v) => {
          const n = Number(v);
          if (!Number.isSafeInteger(n)) throw new Error(`tfrecord: feature ${key}: int64 ${v} is beyond 2^53 − 1`);
          return n;
        }),
      };
    } else out[key] = { float: f.float_list?.value ?? [] };
  }
  return out;
}

/** One TFRecord record (framing above) around `data`. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** A TFRecord shard's bytes: one framed Example per sample, in order. */
export function encodeTFRecordShard(samples: readonly ExportSample[]): Uint8Array {
  return Buffer.concat(samples.map((s) => frameRecord(encodeExample(s))));
}

/**
 * Splits a TFRecord file into its records' data, checking both CRCs of each.
 * @param source names the file in errors.
 * @throws Error naming the source, the record and the byte offset when a record is cut short or a CRC does not match.
 */
export function readTFRecords(bytes: Uint8Array, source = 'tfrecord'): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new Error(`${source}: record ${records.length} at byte ${at}: header cut short`);
    const len = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== maskedCrc32c(bytes.subarray(at, at + 8))) throw new Error(`${source}: record ${records.length} at byte ${at}: length CRC mismatch`);
    if (at + 12 + len + 4 > bytes.length) throw new Error(`${source}: record ${records.length} at byte ${at}: data cut short`);
    const data = bytes.subarray(at + 12, at + 12 + len);
    if (view.getUint32(at + 12 + len, true) !== maskedCrc32c(data)) throw new Error(`${source}: record ${records.length} at byte ${at}: data CRC mismatch`);
    records.push(data);
    at += 12 + len + 4;
  }
  return records;
}
