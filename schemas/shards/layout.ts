/**
 * The shard layout: Hugging Face `datasets`' on-disk format (what `Dataset.save_to_disk` writes and
 * `datasets.load_from_disk` reads), written by `shards`, read by `train`, `evaluate`, `baseline` and `report`.
 *
 * ```
 * DATA_DIR/shards/dataset_dict.json            {"splits": ["train", "validation", "test"]}
 * DATA_DIR/shards/<split>/data-0000K-of-0000N.arrow   Arrow IPC *stream* files
 * DATA_DIR/shards/<split>/state.json           _data_files, _fingerprint, _format_*, _output_all_columns, _split
 * DATA_DIR/shards/<split>/dataset_info.json    features (image, label as ClassLabel, …)
 * DATA_DIR/shards/mean.arrow, mean.json        per-pixel training mean (see schemas/mean.ts)
 * DATA_DIR/shards/rejected.tsv                 images that failed preprocessing
 * ```
 *
 * Columns (all nullable, as `datasets` writes them):
 * - `image`: FixedSizeList<uint8>[S·S·3], one image as `[S, S, 3]` uint8, HWC, row-major, RGB;
 * - `label`: int64, the index of `genre` in the label names (a `ClassLabel`);
 * - `genre`: utf8; `item_id`, `art_id`: int64 (Bandcamp ids); `sha256`: utf8 (of the downloaded file).
 */
import * as arrow from 'apache-arrow';
import { toInt64 } from '../table.ts';


/** Schema-metadata key under which we record the tensor layout (JSON, {@link ShardLayoutMeta}). */
const LAYOUT_METADATA_KEY = 'bandcamp_covers';
/** Schema-metadata key that Hugging Face `datasets` reads its features from (`{"info": {"features": …}}`). */
export const HF_METADATA_KEY = 'huggingface';

/** What the `bandcamp_covers` schema metadata records. */
export interface ShardLayoutMeta {
  /** `[S, S, 3]`. */
  shape: [number, number, number];
  layout: 'HWC';
  dtype: 'uint8';
  /** Genre names; `label` indexes this list. */
  labelNames: string[];
  /** sha256 of the resolved configuration that made the shards. */
  configHash: string;
}

/** The Hugging Face `features` of the shards, as `dataset_info.json` and the schema metadata hold them. */
export function hfFeatures(size: number, labelNames: readonly string[]): Record<string, unknown> {
  return {
    image: { feature: { dtype: 'uint8', _type: 'Value' }, length: size * size * 3, _type: 'Sequence' },
    label: { names: [...labelNames], _type: 'ClassLabel' },
    genre: { dtype: 'string', _type: 'Value' },
    item_id: { dtype: 'int64', _type: 'Value' },
    art_id: { dtype: 'int64', _type: 'Value' },
    sha256: { dtype: 'string', _type: 'Value' },
  };
}

/**
 * The Arrow schema of a shard for S×S images.
 * @param size S, in pixels.
 * @param labelNames genre names in label order.
 * @param configHash sha256 of the resolved configuration.
 */
export function shardSchema(size: number, labelNames: readonly string[], configHash: string): arrow.Schema {
  const meta: ShardLayoutMeta = { shape: [size, size, 3], layout: 'HWC', dtype: 'uint8', labelNames: [...labelNames], configHash };
  const metadata = new Map<string, string>([
    [HF_METADATA_KEY, JSON.stringify({ info: { features: hfFeatures(size, labelNames) } })],
    [LAYOUT_METADATA_KEY, JSON.stringify(meta)],
  ]);
  return new arrow.Schema(
    [
      new arrow.Field('image', new arrow.FixedSizeList(size * size * 3, new arrow.Field('item', new arrow.Uint8(), true)), true),
      new arrow.Field('label', new arrow.Int64(), true),
      new arrow.Field('genre', new arrow.Utf8(), true),
      new arrow.Field('item_id', new arrow.Int64(), true),
      new arrow.Field('art_id', new arrow.Int64(), true),
      new arrow.Field('sha256', new arrow.Utf8(), true),
    ],
    metadata,
  );
}

/**
 * Reads the layout metadata of a shard schema.
 * @throws Error when the schema lacks it (not one of our shards).
 */
export function readLayoutMeta(schema: arrow.Schema, source = 'shard'): ShardLayoutMeta {
  const raw = schema.metadata.get(LAYOUT_METADATA_KEY);
  if (!raw) throw new Error(`${source}: no "${LAYOUT_METADATA_KEY}" schema metadata (not written by bandcamp-covers shards)`);
  return JSON.parse(raw) as ShardLayoutMeta;
}

/** File name of shard `index` (0-based) of `count` in a split, as `datasets` names them: `data-00000-of-00003.arrow`. */
export function shardFileName(index: number, count: number): string {
  return `data-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.arrow`;
}

/** The rows of one shard record batch, column by column (`n` rows). */
export interface ShardColumns {
  /** `n` images back to back, each `[S, S, 3]` uint8 HWC: `n·S·S·3` bytes (used as the record batch's buffer, not copied). */
  images: Uint8Array;
  labels: readonly number[];
  genres: readonly string[];
  itemIds: readonly number[];
  artIds: readonly number[];
  sha256s: readonly string[];
}

/**
 * Builds one record batch of a shard from its columns.
 * @param schema a {@link shardSchema}.
 * @throws RangeError when an id or label is not a safe integer, or the image bytes do not match the row count.
 */
export function shardRecordBatch(schema: arrow.Schema, cols: ShardColumns): arrow.RecordBatch {
  const n = cols.labels.length;
  const imageType = schema.fields[0]!.type as arrow.FixedSizeList<arrow.Uint8>;
  if (cols.images.length !== n * imageType.listSize) throw new RangeError(`shard batch: ${cols.images.length} image bytes for ${n} rows of ${imageType.listSize}`);
  const int64 = (values: readonly number[], what: string) =>
    arrow.makeData({ type: new arrow.Int64(), length: n, nullCount: 0, data: BigInt64Array.from(values, (v) => toInt64(v, what)) });
  const utf8 = (values: readonly string[]) => arrow.vectorFromArray([...values], new arrow.Utf8()).data[0]!;
  const image = arrow.makeData({
    type: imageType,
    length: n,
    nullCount: 0,
    child: arrow.makeData({ type: new arrow.Uint8(), length: cols.images.length, nullCount: 0, data: cols.images }),
  });
  const struct = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length: n,
    nullCount: 0,
    children: [image, int64(cols.labels, 'label'), utf8(cols.genres), int64(cols.itemIds, 'item_id'), int64(cols.artIds, 'art_id'), utf8(cols.sha256s)],
  });
  return new arrow.RecordBatch(schema, struct);
}
