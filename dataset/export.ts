/**
 * The export's work apart from the stage's bookkeeping (stages/export.ts): streaming a split's shard rows as
 * {@link ExportSample}s with their images encoded (dataset/export-image.ts), cutting them into export shards of
 * `export.shardSize`, encoding a shard in each format (schemas/export/), and the resumable record of finished shards
 * (`DATA_DIR/.work/export/progress.json`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import pLimit, { type LimitFunction } from 'p-limit';
import { streamShardBatches, type ShardBatch } from '../schemas/shards/read.ts';
import { encodeParquetShard } from '../schemas/export/parquet.ts';
import { encodeTFRecordShard } from '../schemas/export/tfrecord.ts';
import { encodeWebDatasetShard } from '../schemas/export/webdataset.ts';
import type { ExportFormat, ExportSample } from '../schemas/export/layout.ts';
import { UserError } from '../util/errors.ts';
import { encodeImage, type ExportImageOptions } from './export-image.ts';

/** Limits of one export shard (config `export.shardSize`). */
export interface ShardLimits {
  /** Samples at most. */
  rows: number;
  /** Encoded image bytes at most (a shard always takes its first sample, however large). */
  bytes: number;
}

/**
 * Whether a shard holding `rows` samples of `bytes` encoded image bytes is closed before a next sample of
 * `nextBytes`: when it has `limits.rows` samples, or the next would take it past `limits.bytes`.
 */
export function shardIsFull(rows: number, bytes: number, nextBytes: number, limits: ShardLimits): boolean {
  return rows >= limits.rows || (rows > 0 && bytes + nextBytes > limits.bytes);
}

/** What {@link streamSamples} needs besides the files. */
export interface StreamSamplesOptions {
  image: ExportImageOptions;
  /** Rows of the split to pass over first (already exported by an earlier, interrupted run). */
  skipRows: number;
  /** Images encoded at once (sharp runs them on libuv's thread pool); default: the machine's parallelism × 2. */
  concurrency?: number;
  signal?: AbortSignal;
}

/** An export sample with the label names of the shard it came from. */
export type SourcedSample = ExportSample & { labelNames: string[] };

/**
 * The rows of a split's shard files, in order, as export samples with their images encoded. The next record batch's
 * images are encoding (on libuv's thread pool) while the caller works on the current one's.
 * @param files the split's shard files (schemas/shards/read.ts `listShardFiles`).
 * @throws UserError naming the file and row when a row lacks its `item_id`, `art_id`, `genre` or `sha256`;
 *   Error `export: interrupted` when `signal` aborts.
 */
export async function* streamSamples(files: readonly string[], opts: StreamSamplesOptions): AsyncGenerator<SourcedSample> {
  const limit = pLimit(opts.concurrency ?? availableParallelism() * 2);
  let row = 0;
  let pending: Promise<SourcedSample[]> | null = null;
  try {
    for await (const batch of streamShardBatches(files, { ids: true })) {
      if (opts.signal?.aborted) throw new Error('export: interrupted');
      const first = Math.max(0, opts.skipRows - row);
      const start = row;
      row += batch.rows;
      if (first >= batch.rows) continue;
      const next = encodeBatch(batch, first, start, opts.image, limit);
      next.catch(() => undefined); // its error is thrown where it is awaited, not as an unhandled rejection meanwhile
      if (pending) yield* await pending;
      pending = next;
    }
    if (pending) yield* await pending;
  } finally {
    // Let encodes still in flight settle (their errors included) before the caller goes on.
    await pending?.catch(() => undefined);
  }
}

/**
 * Encodes the images of rows `first…` of a record batch into samples, at most `limit` images at once.
 * @param start the batch's first row in the split (for messages).
 * @throws UserError naming the file and row when a row lacks an id, its genre or its sha256.
 */
async function encodeBatch(batch: ShardBatch, first: number, start: number, image: ExportImageOptions, limit: LimitFunction): Promise<SourcedSample[]> {
  const size = batch.meta.shape[0];
  const len = size * size * 3;
  const ids = batch.ids!;
  const samples: SourcedSample[] = [];
  for (let i = first; i < batch.rows; i++) {
    const itemId = ids.itemIds[i];
    const artId = ids.artIds[i];
    const genre = ids.genres[i];
    const sha256 = ids.sha256s[i];
    if (itemId == null || artId == null || genre == null || sha256 == null) {
      throw new UserError(`export: ${batch.file}, row ${start + i} of the split: item_id, art_id, genre or sha256 is null (rebuild the shards: covers make shards --force)`);
    }
    samples.push({ key: String(itemId), image: new Uint8Array(0), imageFormat: image.format, size, label: batch.labels[i]!, genre, itemId, artId, sha256, labelNames: batch.meta.labelNames });
  }
  const encoded = await Promise.all(samples.map((_, j) => limit(() => encodeImage(batch.images.subarray((first + j) * len, (first + j + 1) * len), size, image))));
  encoded.forEach((bytes, j) => (samples[j]!.image = bytes));
  return samples;
}

/**
 * One export shard's bytes in `format`.
 * @param labelNames genre names in label order (Parquet's ClassLabel).
 */
export async function encodeShard(format: ExportFormat, samples: readonly ExportSample[], labelNames: readonly string[]): Promise<Uint8Array> {
  switch (format) {
    case 'parquet': return encodeParquetShard(samples, labelNames);
    case 'webdataset': return encodeWebDatasetShard(samples);
    case 'tfrecord': return encodeTFRecordShard(samples);
  }
}

/** One finished export shard in the progress record: its rows and, per format, its file name and size. */
export interface DoneShard {
  rows: number;
  files: Partial<Record<ExportFormat, { name: string; size: number }>>;
}

/** `DATA_DIR/.work/export/progress.json`: the export shards finished so far, per split, for the inputs `fingerprint`. */
export interface ExportProgress {
  version: 1;
  /** sha256 of the export's parameters and of its input files' identity (stages/export.ts); other values start over. */
  fingerprint: string;
  splits: Record<string, DoneShard[]>;
}

/**
 * Reads the progress record, keeping only what still holds: the same `fingerprint`, and per split the leading
 * shards whose files are all present at their recorded size (`fileOf(format, split, name)` gives a file's path).
 * @returns the record to go on from (empty when absent, unreadable or for other inputs).
 */
export function loadProgress(path: string, fingerprint: string, fileOf: (format: ExportFormat, split: string, name: string) => string): ExportProgress {
  const fresh: ExportProgress = { version: 1, fingerprint, splits: {} };
  if (!existsSync(path)) return fresh;
  let old: ExportProgress;
  try {
    old = JSON.parse(readFileSync(path, 'utf8')) as ExportProgress;
  } catch {
    return fresh;
  }
  if (old.version !== 1 || old.fingerprint !== fingerprint || typeof old.splits !== 'object') return fresh;
  for (const [split, shards] of Object.entries(old.splits)) {
    const kept: DoneShard[] = [];
    for (const shard of shards) {
      const intact = Object.entries(shard.files).every(([format, f]) => statSync(fileOf(format as ExportFormat, split, f!.name), { throwIfNoEntry: false })?.size === f!.size);
      if (!intact) break;
      kept.push(shard);
    }
    fresh.splits[split] = kept;
  }
  return fresh;
}
