/**
 * Reading the shards (schemas/shards/layout.ts: Hugging Face `datasets` on-disk layout, Arrow IPC stream files) and the
 * per-pixel mean (schemas/mean.ts) for training, evaluation and the baseline.
 *
 * Record batches are streamed from each file with apache-arrow's `RecordBatchReader` (never a whole file at once:
 * PITFALLS.md #6); the `image` column is read as a view of the FixedSizeList child's `Uint8Array` (no per-record copy).
 */
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { readLayoutMeta, type ShardLayoutMeta } from './layout.ts';
import { UserError } from '../../pipeline/stage.ts';

/** One record batch of a shard, as typed views. */
export interface ShardBatch {
  /** `[rows, S, S, 3]` uint8 HWC RGB, row-major: a view into the record batch's memory (not a copy). */
  images: Uint8Array;
  /** Label per row (index into `meta.labelNames`). */
  labels: Int32Array;
  rows: number;
  meta: ShardLayoutMeta;
  /** The shard file, for messages. */
  file: string;
}

/**
 * The shard files of a split, in order: from `state.json`'s `_data_files` when present, else every
 * `data-*-of-*.arrow` file sorted by name.
 * @param shardsDir `DATA_DIR/shards`.
 * @throws UserError when the split directory or its files are missing.
 */
export function listShardFiles(shardsDir: string, split: string): string[] {
  const dir = join(shardsDir, split);
  if (!existsSync(dir)) throw new UserError(`shards: split "${split}" not found at ${dir} (run \`covers make shards\` first)`);
  const statePath = join(dir, 'state.json');
  let files: string[] = [];
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { _data_files?: { filename: string }[] };
    files = (state._data_files ?? []).map((f) => f.filename);
  }
  if (!files.length) files = readdirSync(dir).filter((f) => /^data-\d+-of-\d+\.arrow$/.test(f)).sort();
  if (!files.length) throw new UserError(`shards: split "${split}" at ${dir} has no data-*-of-*.arrow files`);
  const paths = files.map((f) => join(dir, f));
  const missing = paths.find((p) => !existsSync(p));
  if (missing) throw new UserError(`shards: ${missing} is listed in state.json but missing`);
  return paths;
}

/**
 * Streams the record batches of shard files as {@link ShardBatch}es.
 * @throws UserError naming the file when it is not one of our shards (no layout metadata), has a null image or
 *   label, or its image length does not match the layout.
 */
export async function* streamShardBatches(files: readonly string[]): AsyncGenerator<ShardBatch> {
  for (const file of files) {
    let reader: arrow.AsyncRecordBatchStreamReader;
    try {
      reader = (await arrow.RecordBatchReader.from(createReadStream(file, { highWaterMark: 1 << 22 }))) as arrow.AsyncRecordBatchStreamReader;
      await reader.open();
    } catch (e) {
      throw new UserError(`shards: ${file} is not an Arrow IPC stream file (${(e as Error).message})`);
    }
    let meta: ShardLayoutMeta;
    try {
      meta = readLayoutMeta(reader.schema, file);
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    const [s, s2, ch] = meta.shape;
    const recordLen = s * s2 * ch;
    for await (const batch of reader) {
      if (batch.numRows === 0) continue;
      const imageData = batch.getChild('image')?.data[0];
      const labelData = batch.getChild('label')?.data[0];
      if (!imageData || !labelData) throw new UserError(`shards: ${file} lacks the image or label column`);
      if (imageData.nullCount > 0 || labelData.nullCount > 0) throw new UserError(`shards: ${file} has a null image or label`);
      const listSize = (imageData.type as arrow.FixedSizeList).listSize;
      if (listSize !== recordLen) throw new UserError(`shards: ${file}: image length ${listSize} but layout ${meta.shape.join('×')}`);
      const child = imageData.children[0]!;
      const start = (imageData.offset + 0) * listSize + child.offset;
      const images = (child.values as Uint8Array).subarray(start, start + batch.numRows * listSize);
      const raw = labelData.values as BigInt64Array | Int32Array;
      const labels = new Int32Array(batch.numRows);
      for (let i = 0; i < batch.numRows; i++) labels[i] = Number(raw[labelData.offset + i]);
      yield { images, labels, rows: batch.numRows, meta, file };
    }
  }
}

/** A whole split in memory. */
export interface SplitData {
  split: string;
  /** S, pixels. */
  size: number;
  labelNames: string[];
  /** `[n, S, S, 3]` uint8 HWC RGB, contiguous; backed by a SharedArrayBuffer so loader workers can read it. */
  images: Uint8Array;
  labels: Int32Array;
  n: number;
}

/**
 * Reads a split into one contiguous (shared) buffer, one copy per record batch.
 * @param limit read at most this many records (for benchmarks).
 * @throws UserError when the shards of the split disagree on the layout or label names, or hold no records.
 */
export async function readSplit(shardsDir: string, split: string, limit = Infinity): Promise<SplitData> {
  const batches: ShardBatch[] = [];
  let n = 0;
  for await (const b of streamShardBatches(listShardFiles(shardsDir, split))) {
    if (batches.length && (b.meta.shape[0] !== batches[0]!.meta.shape[0] || b.meta.labelNames.join('\n') !== batches[0]!.meta.labelNames.join('\n'))) {
      throw new UserError(`shards: ${b.file} has layout ${b.meta.shape.join('×')} / labels ${b.meta.labelNames.join(',')}, unlike ${batches[0]!.file}`);
    }
    batches.push(b);
    n += b.rows;
    if (n >= limit) break;
  }
  if (!batches.length) throw new UserError(`shards: split "${split}" holds no records`);
  n = Math.min(n, limit);
  const meta = batches[0]!.meta;
  const recordLen = meta.shape[0] * meta.shape[1] * 3;
  const images = new Uint8Array(new SharedArrayBuffer(n * recordLen));
  const labels = new Int32Array(n);
  let at = 0;
  for (const b of batches) {
    const rows = Math.min(b.rows, n - at);
    images.set(rows === b.rows ? b.images : b.images.subarray(0, rows * recordLen), at * recordLen);
    labels.set(b.labels.subarray(0, rows), at);
    at += rows;
  }
  return { split, size: meta.shape[0], labelNames: meta.labelNames, images, labels, n };
}

/**
 * Reads the per-pixel training mean `shards/mean.arrow` (schemas/mean.ts).
 * @returns `[S, S, 3]` float32 HWC, uint8 units.
 * @throws UserError when the file is missing or its size differs from `size`.
 */
export function readMean(path: string, size: number): Float32Array {
  if (!existsSync(path)) throw new UserError(`mean: ${path} not found (run \`covers make mean\`, or set train.subtractMean=false)`);
  const table = arrow.tableFromIPC(readFileSync(path));
  const col = table.getChild('mean');
  const data = col?.data[0];
  if (!data) throw new UserError(`mean: ${path} has no "mean" column`);
  const len = (data.type as arrow.FixedSizeList).listSize;
  if (len !== size * size * 3) throw new UserError(`mean: ${path} holds ${len} values, expected ${size}×${size}×3 = ${size * size * 3}`);
  const child = data.children[0]!;
  const start = data.offset * len + child.offset;
  return Float32Array.from((child.values as Float32Array).subarray(start, start + len));
}
