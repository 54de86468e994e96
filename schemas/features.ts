/**
 * The features layout: a pretrained network's features of every shard row, written by `features`, in the same
 * Hugging Face `datasets` on-disk layout as the shards (schemas/shards/), one row per shard row and in the same order.
 *
 * ```
 * DATA_DIR/features/dataset_dict.json                     {"splits": ["train", "validation", "test"]}
 * DATA_DIR/features/<split>/data-0000K-of-0000N.arrow      Arrow IPC stream files
 * DATA_DIR/features/<split>/state.json, dataset_info.json  as the shards' (schemas/shards/write.ts hfState)
 * ```
 *
 * Columns (nullable, as `datasets` writes them): `features` FixedSizeList<float32>[D] (a `Sequence` of length D),
 * `label` int64 (`ClassLabel` over the genres), `genre` utf8, `item_id` int64, `sha256` utf8 (of the downloaded file).
 * The schema metadata `bandcamp_covers_features` records D, the genre names and where the features came from.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import * as arrow from 'apache-arrow';
import { UserError } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fsutil.ts';
import { FEATURES_DIR } from './paths.ts';
import { HF_METADATA_KEY, shardFileName } from './shards/layout.ts';
import { SPLIT_NAMES, type SplitName } from './shards/names.ts';
import { listShardFiles } from './shards/read.ts';
import { encodeStream, hfState } from './shards/write.ts';
import { fromInt64, toInt64 } from './table.ts';

export { FEATURES_DIR };
/** Schema-metadata key of {@link FeaturesMeta}. */
export const FEATURES_METADATA_KEY = 'bandcamp_covers_features';

/** `features/<split>`. */
export function featuresSplitDir(split: SplitName): string {
  return `${FEATURES_DIR}/${split}`;
}

/** Where the features came from, recorded in every file's schema metadata. */
export interface FeaturesMeta {
  /** D, the length of each row's feature vector. */
  dim: number;
  labelNames: string[];
  /** `pretrained.model` as configured. */
  model: string;
  /** The feature tensor (ONNX tensor or tfjs layer name). */
  layer: string;
  /** The preprocessing, e.g. `imagenet`. */
  input: string;
  /** Crops averaged per image (1 or 10). */
  crops: number;
}

/** One row. */
export interface FeatureRecord {
  /** D float32 values (copied). */
  features: Float32Array;
  label: number;
  genre: string;
  itemId: number;
  sha256: string;
}

/** The Hugging Face `features` of a features split. */
export function hfFeatureColumns(dim: number, labelNames: readonly string[]): Record<string, unknown> {
  return {
    features: { feature: { dtype: 'float32', _type: 'Value' }, length: dim, _type: 'Sequence' },
    label: { names: [...labelNames], _type: 'ClassLabel' },
    genre: { dtype: 'string', _type: 'Value' },
    item_id: { dtype: 'int64', _type: 'Value' },
    sha256: { dtype: 'string', _type: 'Value' },
  };
}

/** The Arrow schema of a features file. */
export function featuresSchema(meta: FeaturesMeta): arrow.Schema {
  const metadata = new Map<string, string>([
    [HF_METADATA_KEY, JSON.stringify({ info: { features: hfFeatureColumns(meta.dim, meta.labelNames) } })],
    [FEATURES_METADATA_KEY, JSON.stringify(meta)],
  ]);
  return new arrow.Schema(
    [
      new arrow.Field('features', new arrow.FixedSizeList(meta.dim, new arrow.Field('item', new arrow.Float32(), true)), true),
      new arrow.Field('label', new arrow.Int64(), true),
      new arrow.Field('genre', new arrow.Utf8(), true),
      new arrow.Field('item_id', new arrow.Int64(), true),
      new arrow.Field('sha256', new arrow.Utf8(), true),
    ],
    metadata,
  );
}

function recordBatch(schema: arrow.Schema, rows: readonly FeatureRecord[], dim: number): arrow.RecordBatch {
  const n = rows.length;
  const values = new Float32Array(n * dim);
  rows.forEach((r, i) => values.set(r.features, i * dim));
  const int64 = (v: readonly number[], what: string) => arrow.makeData({ type: new arrow.Int64(), length: n, nullCount: 0, data: BigInt64Array.from(v, (x) => toInt64(x, what)) });
  const utf8 = (v: readonly string[]) => arrow.vectorFromArray([...v], new arrow.Utf8()).data[0]!;
  const features = arrow.makeData({
    type: schema.fields[0]!.type as arrow.FixedSizeList<arrow.Float32>,
    length: n,
    nullCount: 0,
    child: arrow.makeData({ type: new arrow.Float32(), length: values.length, nullCount: 0, data: values }),
  });
  const struct = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length: n,
    nullCount: 0,
    children: [features, int64(rows.map((r) => r.label), 'label'), utf8(rows.map((r) => r.genre)), int64(rows.map((r) => r.itemId), 'item_id'), utf8(rows.map((r) => r.sha256))],
  });
  return new arrow.RecordBatch(schema, struct);
}

/** Options of {@link FeatureSplitWriter}. */
export interface FeatureSplitWriterOptions {
  /** The split's directory (created), e.g. `DATA_DIR/features/train`. */
  dir: string;
  split: SplitName;
  meta: FeaturesMeta;
  /** Largest file, in bytes (a file holds at least one record batch). */
  maxShardBytes: number;
  /** Rows per record batch. */
  batchRows: number;
}

/**
 * Writes one split's features: {@link add} each row in order, then {@link finish}. Files roll over before
 * `maxShardBytes`, are renamed `data-0000K-of-0000N.arrow` at the end, and `state.json`/`dataset_info.json` are the
 * shards' (same `_fingerprint` rule: 16 hex digits of the sha256 of the split name and the files' bytes).
 */
export class FeatureSplitWriter {
  private readonly schema: arrow.Schema;
  private readonly header: Uint8Array;
  private pending: FeatureRecord[] = [];
  private temp: string[] = [];
  private fd: number | null = null;
  private fileBytes = 0;
  private rows = 0;
  private readonly hash: Hash;

  constructor(private readonly opts: FeatureSplitWriterOptions) {
    this.schema = featuresSchema(opts.meta);
    const h = encodeStream(this.schema, []);
    this.header = h.subarray(0, h.length - 8);
    this.hash = createHash('sha256').update(`split:${opts.split}\n`);
    mkdirSync(opts.dir, { recursive: true });
  }

  /**
   * Appends a row.
   * @throws RangeError naming the item when the vector's length is not D or has a non-finite value.
   */
  add(r: FeatureRecord): void {
    if (r.features.length !== this.opts.meta.dim) throw new RangeError(`features ${this.opts.split}: item_id ${r.itemId}: ${r.features.length} values, expected ${this.opts.meta.dim}`);
    if (!r.features.every(Number.isFinite)) throw new RangeError(`features ${this.opts.split}: item_id ${r.itemId}: a feature is not finite`);
    this.pending.push({ ...r, features: Float32Array.from(r.features) });
    if (this.pending.length >= this.opts.batchRows) this.flush();
  }

  private write(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd!, bytes, off, bytes.length - off);
    this.hash.update(bytes);
    this.fileBytes += bytes.length;
  }

  private close(): void {
    if (this.fd === null) return;
    this.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    closeSync(this.fd);
    this.fd = null;
  }

  private open(): void {
    const path = join(this.opts.dir, `.part-${String(this.temp.length).padStart(5, '0')}.arrow`);
    this.temp.push(path);
    this.fd = openSync(path, 'w');
    this.fileBytes = 0;
    this.write(this.header);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const stream = encodeStream(this.schema, [recordBatch(this.schema, this.pending, this.opts.meta.dim)]);
    const message = stream.subarray(this.header.length, stream.length - 8);
    if (this.fd !== null && this.fileBytes > this.header.length && this.fileBytes + message.length + 8 > this.opts.maxShardBytes) this.close();
    if (this.fd === null) this.open();
    this.write(message);
    this.rows += this.pending.length;
    this.pending = [];
  }

  /** Writes what is pending, names the files and writes `state.json` and `dataset_info.json`. Returns the rows written. */
  finish(): number {
    this.flush();
    if (this.temp.length === 0) this.open();
    this.close();
    const files = this.temp.map((tmp, k) => {
      const name = shardFileName(k, this.temp.length);
      renameSync(tmp, join(this.opts.dir, name));
      return name;
    });
    const info = { citation: '', description: `features of the covers by ${this.opts.meta.model} at ${this.opts.meta.layer} (bandcamp-covers)`, features: hfFeatureColumns(this.opts.meta.dim, this.opts.meta.labelNames), homepage: '', license: '' };
    writeFileAtomic(join(this.opts.dir, 'state.json'), `${JSON.stringify(hfState(files, this.hash.digest('hex').slice(0, 16), this.opts.split), null, 2)}\n`);
    writeFileAtomic(join(this.opts.dir, 'dataset_info.json'), `${JSON.stringify(info, null, 2)}\n`);
    return this.rows;
  }

  /** Closes and removes the files written so far. */
  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    for (const f of this.temp) rmSync(f, { force: true });
  }
}

/** Writes `features/dataset_dict.json` under `root` (the data directory's `features/` folder or its staging copy). */
export function writeFeaturesDatasetDict(root: string): void {
  writeFileAtomic(join(root, 'dataset_dict.json'), `${JSON.stringify({ splits: [...SPLIT_NAMES] })}\n`);
}

/** A features split in memory. */
export interface FeatureSplit {
  meta: FeaturesMeta;
  /** `[rows, D]` float32, row-major. */
  features: Float32Array;
  labels: Int32Array;
  itemIds: number[];
  rows: number;
}

/**
 * Reads a whole features split.
 * @param dir `DATA_DIR/features/<split>`.
 * @throws UserError naming the file when it is not a features file, has a null cell, or files disagree on D.
 */
export function readFeatureSplit(dir: string): FeatureSplit {
  let meta: FeaturesMeta | null = null;
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  const itemIds: number[] = [];
  for (const file of listShardFiles(dir)) {
    const table = arrow.tableFromIPC(readFileSync(file));
    const raw = table.schema.metadata.get(FEATURES_METADATA_KEY);
    if (!raw) throw new UserError(`features: ${file} has no "${FEATURES_METADATA_KEY}" metadata (not written by the features stage)`);
    const m = JSON.parse(raw) as FeaturesMeta;
    if (meta && m.dim !== meta.dim) throw new UserError(`features: ${file} holds ${m.dim} features per row, earlier files ${meta.dim}`);
    meta ??= m;
    const col = table.getChild('features');
    const lab = table.getChild('label');
    const ids = table.getChild('item_id');
    if (!col || !lab || !ids || col.nullCount > 0 || lab.nullCount > 0) throw new UserError(`features: ${file} lacks a features or label value`);
    for (let i = 0; i < table.numRows; i++) {
      parts.push(Float32Array.from(col.get(i) as Iterable<number>));
      labels.push(Number(lab.get(i)));
      itemIds.push(fromInt64(ids.get(i) as bigint, `${file}: item_id`));
    }
  }
  if (!meta) throw new UserError(`features: ${dir} holds no files`);
  const features = new Float32Array(parts.length * meta.dim);
  parts.forEach((p, i) => features.set(p, i * meta!.dim));
  return { meta, features, labels: Int32Array.from(labels), itemIds, rows: parts.length };
}
