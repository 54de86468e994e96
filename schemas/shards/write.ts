/**
 * Writes one split of the shards (schemas/shards/layout.ts: the Hugging Face `datasets` on-disk layout) record batch by
 * record batch, so memory holds at most one record batch of images however large the split.
 *
 * - Each shard is an Arrow IPC **stream** file (schema message, record batches, end-of-stream marker), as
 *   `Dataset.save_to_disk` writes them and `datasets.load_from_disk` / `pyarrow.ipc.open_stream` read them
 *   (docs/PITFALLS.md #7).
 * - A shard never exceeds `maxShardBytes`: before a record batch is appended, its exact encoded size is known, and the
 *   writer rolls over to a new file when it would not fit. The number of shards N is known only at the end, so files
 *   are written under temporary names and renamed to `data-0000K-of-0000N.arrow` by {@link SplitShardWriter.finish}.
 * - Output bytes depend only on the records and the options: no timestamps; `_fingerprint` in `state.json` is a hash
 *   of the shard bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { writeFileAtomic } from '../../util/fsutil.ts';
import { hfFeatures, shardFileName, shardRecordBatch, shardSchema } from './layout.ts';
import { type SplitName } from './names.ts';

/** One record of a shard. */
export interface ShardRecord {
  /** `[S, S, 3]` uint8 RGB, HWC, row-major: exactly S·S·3 bytes (copied; the caller may reuse it). */
  image: Uint8Array;
  /** Index of `genre` in the label names. */
  label: number;
  genre: string;
  itemId: number;
  artId: number;
  /** sha256 (hex) of the downloaded file. */
  sha256: string;
}

/** Options of {@link SplitShardWriter}. */
export interface SplitShardWriterOptions {
  /** The split's directory (created), e.g. `DATA_DIR/shards/train`. */
  dir: string;
  split: SplitName;
  /** S, in pixels. */
  size: number;
  /** Genre names in label order (config `genres`). */
  labelNames: readonly string[];
  /** sha256 of the configuration that made the shards (schema metadata). */
  configHash: string;
  /** Largest shard file, in bytes (config `shards.maxShardBytes`). */
  maxShardBytes: number;
  /** Rows per record batch (config `shards.recordBatchRows`); lowered when a batch would not fit in one shard. */
  recordBatchRows: number;
}

/** What {@link SplitShardWriter.finish} reports. */
export interface SplitShardResult {
  split: SplitName;
  /** Shard file names, in order. */
  files: string[];
  /** Records written. */
  rows: number;
  /** Total bytes of the shard files. */
  bytes: number;
  /** `state.json`'s `_fingerprint`: 16 hex digits of the sha256 of the split name and every shard's bytes. */
  fingerprint: string;
}

/** Largest record batch body we write, in bytes: far below Arrow JS's 1 GiB read limit (docs/PITFALLS.md #6). */
export const MAX_RECORD_BATCH_BYTES = 256 * 1024 * 1024;
/** Bytes of the end-of-stream marker (continuation token 0xFFFFFFFF, then a zero length). */
const EOS_BYTES = 8;
/** Upper bound of a record batch's flatbuffer header plus the variable-width columns' bytes per row (ids, genre, sha256). */
const BATCH_HEADER_BYTES = 4096;
const ROW_META_BYTES = 8 * 3 + 4 * 2 + 64 + 128 + 16;

/** Encodes `batches` as a complete Arrow IPC stream (schema, batches, end-of-stream marker). */
export function encodeStream(schema: arrow.Schema, batches: readonly arrow.RecordBatch[]): Uint8Array {
  const writer = new arrow.RecordBatchStreamWriter();
  writer.reset(undefined, schema);
  for (const b of batches) writer.write(b);
  writer.finish();
  return writer.toUint8Array(true);
}

/**
 * The `state.json` of a split, with all seven keys `datasets.load_from_disk` reads (as `Dataset.save_to_disk` writes
 * them: keys sorted, 2-space indent).
 */
export function hfState(files: readonly string[], fingerprint: string, split: SplitName): Record<string, unknown> {
  return {
    _data_files: files.map((filename) => ({ filename })),
    _fingerprint: fingerprint,
    _format_columns: null,
    _format_kwargs: {},
    _format_type: null,
    _output_all_columns: false,
    _split: split,
  };
}

/** The `dataset_info.json` of a split (the keys `Dataset.save_to_disk` writes, with our features). */
function hfDatasetInfo(size: number, labelNames: readonly string[]): Record<string, unknown> {
  return {
    citation: '',
    description: 'Bandcamp album covers labelled by genre (bandcamp-covers): image is [S, S, 3] uint8 RGB, HWC, row-major',
    features: hfFeatures(size, labelNames),
    homepage: '',
    license: '',
  };
}

/**
 * Writes the shards of one split. Call {@link add} for each record in order, then {@link finish} once.
 * Not safe for concurrent `add` calls (records are appended in call order).
 */
export class SplitShardWriter {
  readonly schema: arrow.Schema;
  /** Rows per record batch actually used. */
  readonly batchRows: number;
  private readonly recordLen: number;
  private readonly schemaBytes: Uint8Array;
  private readonly hash: Hash;
  private pending: ShardRecord[] = [];
  private pendingImages: Uint8Array;
  private tempFiles: string[] = [];
  private fd: number | null = null;
  private fileBytes = 0;
  private fileBatches = 0;
  private totalBytes = 0;
  private rows = 0;
  private finished = false;

  /**
   * @throws RangeError when one record batch of a single image cannot fit in `maxShardBytes`.
   */
  constructor(private readonly opts: SplitShardWriterOptions) {
    this.schema = shardSchema(opts.size, opts.labelNames, opts.configHash);
    this.recordLen = opts.size * opts.size * 3;
    const headerBytes = encodeStream(this.schema, []);
    this.schemaBytes = headerBytes.subarray(0, headerBytes.length - EOS_BYTES);
    const perRow = this.recordLen + ROW_META_BYTES;
    const room = Math.min(opts.maxShardBytes - this.schemaBytes.length - EOS_BYTES, MAX_RECORD_BATCH_BYTES) - BATCH_HEADER_BYTES;
    const fit = Math.floor(room / perRow);
    if (fit < 1) {
      throw new RangeError(`shards.maxShardBytes = ${opts.maxShardBytes} cannot hold one ${opts.size}×${opts.size}×3 image (${this.recordLen} bytes) per shard`);
    }
    this.batchRows = Math.max(1, Math.min(opts.recordBatchRows, fit));
    this.pendingImages = new Uint8Array(this.batchRows * this.recordLen);
    this.hash = createHash('sha256').update(`split:${opts.split}\n`);
    mkdirSync(opts.dir, { recursive: true });
  }

  /**
   * Appends a record; writes a record batch when `batchRows` records are pending.
   * @throws RangeError when the image is not S·S·3 bytes, the label is out of range, or an id is not a safe integer.
   */
  add(record: ShardRecord): void {
    if (this.finished) throw new Error(`shards ${this.opts.split}: add after finish`);
    if (record.image.length !== this.recordLen) {
      throw new RangeError(`shards ${this.opts.split}: item_id ${record.itemId}: image has ${record.image.length} bytes, expected ${this.recordLen}`);
    }
    if (!Number.isInteger(record.label) || record.label < 0 || record.label >= this.opts.labelNames.length) {
      throw new RangeError(`shards ${this.opts.split}: item_id ${record.itemId}: label ${record.label} out of range`);
    }
    this.pendingImages.set(record.image, this.pending.length * this.recordLen);
    this.pending.push({ ...record, image: new Uint8Array(0) });
    if (this.pending.length === this.batchRows) this.flush();
  }

  private buildBatch(): arrow.RecordBatch {
    const n = this.pending.length;
    return shardRecordBatch(this.schema, {
      images: this.pendingImages.subarray(0, n * this.recordLen),
      labels: this.pending.map((r) => r.label),
      genres: this.pending.map((r) => r.genre),
      itemIds: this.pending.map((r) => r.itemId),
      artIds: this.pending.map((r) => r.artId),
      sha256s: this.pending.map((r) => r.sha256),
    });
  }

  private write(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd!, bytes, off, bytes.length - off);
    this.hash.update(bytes);
    this.fileBytes += bytes.length;
    this.totalBytes += bytes.length;
  }

  private openShard(): void {
    const path = join(this.opts.dir, `.part-${String(this.tempFiles.length).padStart(5, '0')}.arrow`);
    this.tempFiles.push(path);
    this.fd = openSync(path, 'w');
    this.fileBytes = 0;
    this.fileBatches = 0;
    this.write(this.schemaBytes);
  }

  private closeShard(): void {
    if (this.fd === null) return;
    this.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
  }

  /** Writes the pending records as one record batch, rolling over to a new shard when it would not fit. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const stream = encodeStream(this.schema, [this.buildBatch()]);
    // The encoded stream is schema message + batch message + EOS; the schema message is the same for every batch.
    const message = stream.subarray(this.schemaBytes.length, stream.length - EOS_BYTES);
    if (this.fd !== null && this.fileBatches > 0 && this.fileBytes + message.length + EOS_BYTES > this.opts.maxShardBytes) this.closeShard();
    if (this.fd === null) this.openShard();
    this.write(message);
    this.fileBatches++;
    this.rows += this.pending.length;
    this.pending = [];
    // A fresh buffer: the previous one may still be referenced by the encoder's output until it is garbage.
    this.pendingImages = new Uint8Array(this.batchRows * this.recordLen);
  }

  /**
   * Writes the last record batch, closes the last shard, renames the shards to `data-0000K-of-0000N.arrow` and writes
   * `state.json` and `dataset_info.json`. An empty split gets one shard holding the schema only.
   */
  finish(): SplitShardResult {
    if (this.finished) throw new Error(`shards ${this.opts.split}: finish called twice`);
    this.flush();
    if (this.tempFiles.length === 0) this.openShard();
    this.closeShard();
    this.finished = true;
    const count = this.tempFiles.length;
    const files = this.tempFiles.map((tmp, k) => {
      const name = shardFileName(k, count);
      renameSync(tmp, join(this.opts.dir, name));
      return name;
    });
    const fingerprint = this.hash.digest('hex').slice(0, 16);
    writeFileAtomic(join(this.opts.dir, 'state.json'), `${JSON.stringify(hfState(files, fingerprint, this.opts.split), null, 2)}\n`);
    writeFileAtomic(join(this.opts.dir, 'dataset_info.json'), `${JSON.stringify(hfDatasetInfo(this.opts.size, this.opts.labelNames), null, 2)}\n`);
    return { split: this.opts.split, files, rows: this.rows, bytes: this.totalBytes, fingerprint };
  }

  /** Closes and removes the files written so far (after a failure). */
  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    for (const f of this.tempFiles) rmSync(f, { force: true });
    this.finished = true;
  }
}
