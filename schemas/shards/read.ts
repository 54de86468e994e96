/**
 * The one reader of the shards (layout.ts: Hugging Face `datasets` on-disk layout, Arrow IPC stream files), used by
 * `mean`, `train`, `evaluate`, `baseline` and the report. Functions take a split directory (`DATA_DIR/shards/<split>`,
 * the path a stage declares as its input).
 *
 * Record batches are streamed from each file with apache-arrow's `RecordBatchReader` (never a whole file at once:
 * docs/PITFALLS.md #6); the `image` column is read as a view of the FixedSizeList child's `Uint8Array` (no per-record copy).
 */
import { createReadStream, existsSync, readdirSync, readFileSync, type ReadStream } from 'node:fs';
import { basename, join } from 'node:path';
import * as arrow from 'apache-arrow';
import { fromInt64 } from '../table.ts';
import { readLayoutMeta, type ShardLayoutMeta } from './layout.ts';
import { UserError } from '../../util/errors.ts';

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
  /** Per row, with `{ids: true}` only: `genre`, `item_id`, `art_id`, `sha256` (null where the cell is null or the column absent). */
  ids?: { genres: (string | null)[]; itemIds: (number | null)[]; artIds: (number | null)[]; sha256s: (string | null)[] };
}

/**
 * The shard files of a split, in order: from `state.json`'s `_data_files` when present, else every
 * `data-*-of-*.arrow` file sorted by name.
 * @param dir the split directory, `DATA_DIR/shards/<split>`.
 * @param opts.allowMissing return `[]` (instead of throwing) when the split directory or its data files are absent.
 * @throws UserError when the split directory or its files are missing, or `state.json` lists a file that is not there.
 */
export function listShardFiles(dir: string, opts: { allowMissing?: boolean } = {}): string[] {
  const split = basename(dir);
  if (!existsSync(dir)) {
    if (opts.allowMissing) return [];
    throw new UserError(`shards: split "${split}" not found at ${dir} (run \`covers make shards\` first)`);
  }
  const statePath = join(dir, 'state.json');
  let files: string[] = [];
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { _data_files?: { filename: string }[] };
    files = (state._data_files ?? []).map((f) => f.filename);
  }
  if (!files.length) files = readdirSync(dir).filter((f) => /^data-\d+-of-\d+\.arrow$/.test(f)).sort();
  if (!files.length) {
    if (opts.allowMissing) return [];
    throw new UserError(`shards: split "${split}" at ${dir} has no data-*-of-*.arrow files`);
  }
  const paths = files.map((f) => join(dir, f));
  const missing = paths.find((p) => !existsSync(p));
  if (missing) throw new UserError(`shards: ${missing} is listed in state.json but missing`);
  return paths;
}

/**
 * Streams the record batches of shard files as {@link ShardBatch}es.
 * @param opts.ids also read the `genre`, `item_id`, `art_id` and `sha256` columns ({@link ShardBatch.ids}).
 * @throws UserError naming the file when it is not one of our shards (no layout metadata), has a null image or
 *   label, or its image length does not match the layout.
 */
export async function* streamShardBatches(files: readonly string[], opts: { ids?: boolean } = {}): AsyncGenerator<ShardBatch> {
  for (const file of files) {
    const stream = createReadStream(file, { highWaterMark: 1 << 22 });
    try {
      yield* streamFile(stream, file, opts);
    } finally {
      // A consumer that stops early (the report's contact sheets) must not leave the file open.
      stream.destroy();
    }
  }
}

async function* streamFile(stream: ReadStream, file: string, opts: { ids?: boolean }): AsyncGenerator<ShardBatch> {
  let reader: arrow.AsyncRecordBatchStreamReader;
  try {
    reader = (await arrow.RecordBatchReader.from(stream)) as arrow.AsyncRecordBatchStreamReader;
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
    yield { images, labels, rows: batch.numRows, meta, file, ids: opts.ids ? readIds(batch, file) : undefined };
  }
}

function readIds(batch: arrow.RecordBatch, file: string): NonNullable<ShardBatch['ids']> {
  const genre = batch.getChild('genre');
  if (!genre) throw new UserError(`shards: ${file} lacks the genre column`);
  const id = (name: string) => {
    const v = batch.getChild(name);
    return Array.from({ length: batch.numRows }, (_, i) => {
      const x = v?.get(i) as bigint | number | null | undefined;
      return x === null || x === undefined ? null : fromInt64(x, `${file}: ${name}`);
    });
  };
  const sha = batch.getChild('sha256');
  return {
    genres: Array.from({ length: batch.numRows }, (_, i) => genre.get(i) as string | null),
    itemIds: id('item_id'),
    artIds: id('art_id'),
    sha256s: Array.from({ length: batch.numRows }, (_, i) => (sha?.get(i) as string | null | undefined) ?? null),
  };
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
 * @param dir the split directory, `DATA_DIR/shards/<split>`.
 * @param limit read at most this many records (for benchmarks).
 * @throws UserError when the shards of the split disagree on the layout or label names, or hold no records.
 */
export async function readSplit(dir: string, limit = Infinity): Promise<SplitData> {
  const split = basename(dir);
  const batches: ShardBatch[] = [];
  let n = 0;
  for await (const b of streamShardBatches(listShardFiles(dir))) {
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
 * The ids of a split's records, in {@link readSplit}'s order (without keeping the images).
 * @param dir the split directory, `DATA_DIR/shards/<split>`.
 * @returns per record: `item_id`, `art_id` (null where the cell is null).
 * @throws UserError as {@link streamShardBatches}.
 */
export async function readSplitIds(dir: string): Promise<{ itemIds: (number | null)[]; artIds: (number | null)[] }> {
  const itemIds: (number | null)[] = [];
  const artIds: (number | null)[] = [];
  for await (const b of streamShardBatches(listShardFiles(dir), { ids: true })) {
    itemIds.push(...b.ids!.itemIds);
    artIds.push(...b.ids!.artIds);
  }
  return { itemIds, artIds };
}
