/**
 * The export layout shared by the three formats (parquet.ts, webdataset.ts, tfrecord.ts own each format's bytes):
 *
 * ```
 * DATA_DIR/export/<format>/<split>/<split>-NNNNNN.<ext>   shards, NNNNNN from 000000, in split order
 * DATA_DIR/export/<format>/mean.npy                       per-pixel training mean, [S, S, 3] float32 (npy.ts)
 * DATA_DIR/export/<format>/dataset.json                   what is where: splits, shard files, rows, columns/keys, labels
 * DATA_DIR/export/<format>/README.md                      the same, for people, with a loader
 * ```
 *
 * Every format holds the same rows in the same order as the Arrow shards (`schemas/shards/`), cut at the same
 * boundaries, so `train-000003.parquet`, `train-000003.tar` and `train-000003.tfrecord` hold the same samples.
 */

/** The export formats, in the order they are written (config `export.formats` takes these; this module imports nothing). */
export const EXPORT_FORMATS = ['parquet', 'webdataset', 'tfrecord'] as const;
/** One of {@link EXPORT_FORMATS}. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The export's root, relative to the data directory. */
export const EXPORT_DIR = 'export';

/** Image encodings an export can hold. */
export type ExportImageFormat = 'png' | 'jpeg';

/** File extension of an encoded image: `png` or `jpg` (the extension `webdataset`'s decoders key on). */
export function imageExtension(format: ExportImageFormat): 'png' | 'jpg' {
  return format === 'png' ? 'png' : 'jpg';
}

/** MIME type of an encoded image. */
export function imageMime(format: ExportImageFormat): string {
  return format === 'png' ? 'image/png' : 'image/jpeg';
}

/** One exported row: the shard row plus its encoded image. */
export interface ExportSample {
  /**
   * The sample's key, stable across rebuilds: the album's Bandcamp `item_id` in decimal (unique in a dataset: an
   * album has one genre). WebDataset's `__key__`; no dots, no slashes.
   */
  key: string;
  /** The cover encoded as {@link ExportSample.imageFormat}: PNG (lossless) or JPEG bytes of the `[S, S, 3]` image. */
  image: Uint8Array;
  imageFormat: ExportImageFormat;
  /** Image side S, pixels (height = width = S). */
  size: number;
  /** Index of `genre` in the label names. */
  label: number;
  genre: string;
  itemId: number;
  artId: number;
  /** sha256 of the downloaded file (hex). */
  sha256: string;
}

/** File name of shard `index` (0-based) of a split: `train-000003.tar` (WebDataset's `{split}-{NNNNNN}.tar`). */
export function exportShardName(split: string, index: number, format: ExportFormat): string {
  return `${split}-${String(index).padStart(6, '0')}.${SHARD_EXTENSION[format]}`;
}

/** Shard file extension per format. */
export const SHARD_EXTENSION: Readonly<Record<ExportFormat, string>> = { parquet: 'parquet', webdataset: 'tar', tfrecord: 'tfrecord' };

/** A format's folder, relative to the data directory: `export/<format>`. */
export function exportFormatDir(format: ExportFormat): string {
  return `${EXPORT_DIR}/${format}`;
}

/** `dataset.json` of one exported format. */
export interface ExportDescription {
  format: ExportFormat;
  /** Written by bandcamp-covers; the shard layout it came from. */
  source: 'bandcamp-covers shards';
  image: { encoding: ExportImageFormat; height: number; width: number; channels: 3; colorSpace: 'RGB' };
  /** Genre names; `label` indexes this list. */
  labelNames: string[];
  /** Per split: the shard files (relative to the format's folder) in order, and the rows in each. */
  splits: Record<string, { files: string[]; rows: number[]; total: number }>;
  /** `mean.npy`: per-pixel training mean, `[S, S, 3]` float32, uint8 units, HWC. */
  mean: { file: 'mean.npy'; shape: [number, number, number]; dtype: 'float32' };
  /** Column names (Parquet), sample keys (WebDataset) or feature keys (TFRecord), each with its type and meaning. */
  fields: Record<string, string>;
  /** How to load it, in Python. */
  load: string;
}
