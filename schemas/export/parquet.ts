/**
 * Parquet shards: `DATA_DIR/export/parquet/<split>/<split>-NNNNNN.parquet`, the Arrow shards' columns with the image
 * encoded, written by `parquet-wasm` (Apache Arrow's Rust `parquet` crate compiled to WebAssembly) from an Arrow IPC
 * stream built with apache-arrow.
 *
 * Columns:
 * - `image`: struct<bytes: binary, path: string>, the Hugging Face `datasets` `Image` feature's storage: `bytes` the
 *   PNG (lossless, the default) or JPEG of the `[S, S, 3]` RGB cover, `path` `<key>.png` / `<key>.jpg` (a name, not a
 *   file on disk). An encoded image instead of the raw tensor: a quarter to a half of the raw bytes, and what the Hub
 *   viewer, `datasets` (`Image` → PIL), Spark and DuckDB users expect of an image column;
 * - `label`: int64, index of `genre` in the label names (`ClassLabel`);
 * - `genre`: string; `item_id`, `art_id`: int64 (Bandcamp ids); `sha256`: string (of the downloaded file).
 *
 * Metadata: the Arrow schema carries `huggingface` = `{"info": {"features": …}}` (what `datasets` writes and reads, so
 * `load_dataset("parquet", …)` gives `Image` and `ClassLabel` back with the genre names), also written as Parquet
 * key-value metadata for readers that do not restore the Arrow schema. One key only: parquet-wasm passes metadata
 * through Rust hash maps, whose order changes from run to run, so a second key would make the bytes unstable (the
 * image size, label names and encoding are in `dataset.json`). Row groups of {@link PARQUET_ROW_GROUP_ROWS} rows
 * (small groups suit image rows: the Hub viewer and random access read a group at a time), Snappy compression,
 * parquet-rs's default statistics (binary min/max truncated to 64 bytes), created-by fixed so reruns are
 * byte-identical.
 */
import * as arrow from 'apache-arrow';
import { Compression, readParquet, Table as ParquetTable, writeParquet, WriterPropertiesBuilder } from 'parquet-wasm';
import { toInt64 } from '../table.ts';
import { HF_METADATA_KEY } from '../shards/layout.ts';
import { imageExtension, type ExportSample } from './layout.ts';

/** Rows per Parquet row group. */
export const PARQUET_ROW_GROUP_ROWS = 100;
/** The `created_by` string of every file (fixed: byte-stable reruns whatever the writer's version string). */
export const PARQUET_CREATED_BY = 'bandcamp-covers export (parquet-wasm)';

/** The columns, with their types and meaning (for dataset.json and README). */
export const PARQUET_COLUMNS = {
  image: 'struct<bytes: binary, path: string>: the cover, PNG or JPEG (datasets Image feature)',
  label: 'int64: index of the genre in labelNames (datasets ClassLabel)',
  genre: 'string: the genre (Bandcamp tag norm name)',
  item_id: 'int64: Bandcamp album id; the sample key in decimal',
  art_id: 'int64: Bandcamp cover image id',
  sha256: 'string: sha256 (hex) of the downloaded cover file',
} as const;

/** The Hugging Face `datasets` features of the Parquet shards. */
export function parquetHfFeatures(labelNames: readonly string[]): Record<string, unknown> {
  return {
    image: { _type: 'Image' },
    label: { names: [...labelNames], _type: 'ClassLabel' },
    genre: { dtype: 'string', _type: 'Value' },
    item_id: { dtype: 'int64', _type: 'Value' },
    art_id: { dtype: 'int64', _type: 'Value' },
    sha256: { dtype: 'string', _type: 'Value' },
  };
}

/** The metadata of every Parquet shard (schema metadata and Parquet key-value metadata alike): `huggingface` only. */
export function parquetMetadata(labelNames: readonly string[]): Map<string, string> {
  return new Map([[HF_METADATA_KEY, JSON.stringify({ info: { features: parquetHfFeatures(labelNames) } })]]);
}

/** The Arrow schema of the Parquet shards. */
export function parquetSchema(metadata: Map<string, string>): arrow.Schema {
  const imageType = new arrow.Struct([new arrow.Field('bytes', new arrow.Binary(), true), new arrow.Field('path', new arrow.Utf8(), true)]);
  return new arrow.Schema(
    [
      new arrow.Field('image', imageType, true),
      new arrow.Field('label', new arrow.Int64(), true),
      new arrow.Field('genre', new arrow.Utf8(), true),
      new arrow.Field('item_id', new arrow.Int64(), true),
      new arrow.Field('art_id', new arrow.Int64(), true),
      new arrow.Field('sha256', new arrow.Utf8(), true),
    ],
    metadata,
  );
}

/** A Binary column from whole values: int32 offsets and the values back to back (one copy; columns under 2 GiB). */
function binaryData(values: readonly Uint8Array[]): arrow.Data<arrow.Binary> {
  const valueOffsets = new Int32Array(values.length + 1);
  let total = 0;
  values.forEach((v, i) => (valueOffsets[i + 1] = total += v.length));
  if (total > 0x7fffffff) throw new RangeError(`parquet: ${total} image bytes in one shard (at most 2 GiB)`);
  return arrow.makeData({ type: new arrow.Binary(), length: values.length, nullCount: 0, valueOffsets, data: Buffer.concat(values, total) });
}

/** The samples as one Arrow record batch of {@link parquetSchema}. */
function recordBatch(schema: arrow.Schema, samples: readonly ExportSample[]): arrow.RecordBatch {
  const n = samples.length;
  const int64 = (values: number[], what: string) => arrow.makeData({ type: new arrow.Int64(), length: n, nullCount: 0, data: BigInt64Array.from(values, (v) => toInt64(v, what)) });
  const utf8 = (values: string[]) => arrow.vectorFromArray(values, new arrow.Utf8()).data[0]!;
  const image = arrow.makeData({
    type: schema.fields[0]!.type as arrow.Struct,
    length: n,
    nullCount: 0,
    children: [
      binaryData(samples.map((s) => s.image)),
      utf8(samples.map((s) => `${s.key}.${imageExtension(s.imageFormat)}`)),
    ],
  });
  const struct = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length: n,
    nullCount: 0,
    children: [
      image,
      int64(samples.map((s) => s.label), 'label'),
      utf8(samples.map((s) => s.genre)),
      int64(samples.map((s) => s.itemId), 'item_id'),
      int64(samples.map((s) => s.artId), 'art_id'),
      utf8(samples.map((s) => s.sha256)),
    ],
  });
  return new arrow.RecordBatch(schema, struct);
}

/**
 * A Parquet shard's bytes for `samples`, in order.
 * @param labelNames genre names in label order.
 * @throws RangeError when an id or label is not a safe integer; Error from parquet-wasm when writing fails.
 */
export function encodeParquetShard(samples: readonly ExportSample[], labelNames: readonly string[]): Uint8Array {
  const metadata = parquetMetadata(labelNames);
  const schema = parquetSchema(metadata);
  const ipc = arrow.RecordBatchStreamWriter.writeAll([recordBatch(schema, samples)]).toUint8Array(true);
  const table = ParquetTable.fromIPCStream(ipc);
  const props = new WriterPropertiesBuilder()
    .setCompression(Compression.SNAPPY)
    .setCreatedBy(PARQUET_CREATED_BY)
    .setMaxRowGroupSize(PARQUET_ROW_GROUP_ROWS)
    .setKeyValueMetadata(metadata)
    .build();
  return writeParquet(table, props);
}

/**
 * Reads a Parquet shard back into an apache-arrow Table (for checks in Node; Python readers need nothing of ours).
 * @throws Error from parquet-wasm when the bytes are not Parquet.
 */
export function readParquetShard(bytes: Uint8Array): arrow.Table {
  return arrow.tableFromIPC(readParquet(bytes).intoIPCStream());
}
