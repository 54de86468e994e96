/**
 * The report's images, read from the shards so the reader sees exactly what the model sees: a contact sheet of
 * covers per genre (small JPEG thumbnails encoded with sharp from the raw `[S, S, 3]` uint8 HWC pixels) and the
 * per-pixel training mean as a PNG. Images become `data:` URIs, so the page needs no other file.
 *
 * Formats: `schemas/shards/layout.ts` (Arrow IPC stream files `shards/<split>/data-*.arrow`, column `image`
 * FixedSizeList<uint8>[S·S·3]) and `schemas/mean.ts` (`shards/mean.arrow`, column `mean` FixedSizeList<float32>).
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import sharp from 'sharp';
import { readLayoutMeta, SPLIT_NAMES, type SplitName } from '../schemas/shards/layout.ts';
import { fromInt64 } from '../schemas/table.ts';
import { shardFiles, type Part } from './inputs.ts';

/** One cover of a contact sheet. */
export interface Thumbnail {
  /** `data:image/jpeg;base64,…`. */
  src: string;
  /** Side of the thumbnail, in pixels. */
  size: number;
  itemId: number | null;
  artId: number | null;
  split: SplitName;
}

/** Contact sheets: up to `perGenre` thumbnails per genre, and the side S of the stored images. */
export interface ContactSheets {
  /** Stored image side S, in pixels. */
  imageSize: number;
  byGenre: Record<string, Thumbnail[]>;
  /** Shard files opened. */
  filesRead: number;
}

/** The per-pixel mean image and its summary. */
export interface MeanImage {
  /** `data:image/png;base64,…`, S×S. */
  src: string;
  size: number;
  /** Training images averaged. */
  count: number | null;
  channelMean: number[] | null;
  channelStd: number[] | null;
}

/** Largest thumbnail side, in pixels (displayed at 96 CSS px; 128 keeps them sharp on 1.33× screens). */
export const THUMBNAIL_MAX = 128;

/**
 * Encodes one `[S, S, 3]` uint8 HWC RGB image as a JPEG thumbnail.
 * @param pixels S·S·3 bytes; @param size S in pixels; @param side thumbnail side in pixels.
 * @returns a `data:image/jpeg;base64,…` URI.
 */
export async function thumbnailDataUri(pixels: Uint8Array, size: number, side: number): Promise<string> {
  let img = sharp(pixels, { raw: { width: size, height: size, channels: 3 } });
  if (side !== size) img = img.resize(side, side, { kernel: 'lanczos3' });
  const jpeg = await img.jpeg({ quality: 82, mozjpeg: true }).toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}

/** The bytes of row `i` of a FixedSizeList<uint8> column of a record batch (a view, no copy). */
function imageBytes(vec: arrow.Vector, i: number, length: number): Uint8Array {
  // A record batch's column has one Data chunk; its child holds the flat uint8 values.
  const data = vec.data[0]!;
  const child = data.children[0]!;
  const start = (child.offset + (data.offset + i) * length);
  return (child.values as Uint8Array).subarray(start, start + length);
}

/**
 * Reads shards (train split first, then validation and test) record batch by record batch until every genre has
 * `perGenre` images or the shards are exhausted, and encodes the thumbnails. Stops reading as soon as it has enough.
 * @param genres the genres to collect (others are ignored).
 * @param perGenre covers per genre (0 = none).
 * @returns missing when no shard file exists; error when a shard cannot be read.
 */
export async function readContactSheets(dataDir: string, genres: readonly string[], perGenre: number): Promise<Part<ContactSheets>> {
  const files = SPLIT_NAMES.flatMap((split) => shardFiles(dataDir, split).map((path) => ({ split, path })));
  if (!files.length) return { ok: false, kind: 'missing', stage: 'shards', message: 'shards/<split>/data-*.arrow not found' };
  const byGenre: Record<string, { pixels: Uint8Array; itemId: number | null; artId: number | null; split: SplitName }[]> = Object.fromEntries(genres.map((g) => [g, []]));
  const want = new Set(genres);
  const full = () => genres.every((g) => byGenre[g]!.length >= perGenre);
  let imageSize = 0;
  let filesRead = 0;
  try {
    for (const { split, path } of files) {
      if (full()) break;
      const stream = createReadStream(path);
      try {
        const reader = await arrow.RecordBatchReader.from(stream);
        filesRead++;
        for await (const batch of reader) {
          const meta = readLayoutMeta(batch.schema, path);
          const size = meta.shape[0];
          imageSize = size;
          const length = size * size * 3;
          const image = batch.getChild('image');
          const genre = batch.getChild('genre');
          if (!image || !genre) throw new Error(`${path}: expected columns "image" and "genre"`);
          const item = batch.getChild('item_id');
          const art = batch.getChild('art_id');
          for (let i = 0; i < batch.numRows; i++) {
            const g = genre.get(i) as string | null;
            if (g === null || !want.has(g) || byGenre[g]!.length >= perGenre || !image.isValid(i)) continue;
            const id = (v: arrow.Vector | null, what: string) => {
              const x = v?.get(i) as bigint | number | null | undefined;
              return x === null || x === undefined ? null : fromInt64(x, `${path}: ${what}`);
            };
            // Copy: the batch's buffer is released when the reader moves on.
            byGenre[g]!.push({ pixels: imageBytes(image, i, length).slice(), itemId: id(item, 'item_id'), artId: id(art, 'art_id'), split });
          }
          if (full()) break;
        }
      } finally {
        stream.destroy();
      }
    }
  } catch (e) {
    return { ok: false, kind: 'error', stage: 'shards', message: (e as Error).message };
  }
  const side = Math.min(imageSize, THUMBNAIL_MAX);
  const out: Record<string, Thumbnail[]> = {};
  for (const g of genres) {
    out[g] = [];
    for (const t of byGenre[g]!) {
      out[g].push({ src: await thumbnailDataUri(t.pixels, imageSize, side), size: side, itemId: t.itemId, artId: t.artId, split: t.split });
    }
  }
  return { ok: true, data: { imageSize, byGenre: out, filesRead } };
}

/**
 * Reads `shards/mean.arrow` and renders the per-pixel mean as a PNG (values rounded and clamped to 0–255).
 * @returns missing when the file does not exist; error when it is not a mean table.
 */
export async function readMeanImage(dataDir: string): Promise<Part<MeanImage>> {
  const path = join(dataDir, 'shards', 'mean.arrow');
  if (!existsSync(path)) return { ok: false, kind: 'missing', stage: 'mean', message: 'shards/mean.arrow not found' };
  try {
    const table = arrow.tableFromIPC(readFileSync(path));
    const meanCol = table.getChild('mean');
    if (!meanCol || table.numRows < 1) throw new Error('no "mean" row');
    const values = (meanCol.get(0) as arrow.Vector).toArray() as Float32Array;
    const sizeCol = table.getChild('size')?.get(0) as number | null | undefined;
    const size = sizeCol ?? Math.round(Math.sqrt(values.length / 3));
    if (size * size * 3 !== values.length) throw new Error(`mean has ${values.length} values, expected ${size}·${size}·3`);
    const pixels = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round(values[i]!)));
    const png = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 9 }).toBuffer();
    const vec3 = (name: string) => {
      const v = table.getChild(name)?.get(0) as arrow.Vector | null | undefined;
      return v ? Array.from(v.toArray() as Float64Array) : null;
    };
    const count = table.getChild('count')?.get(0) as bigint | number | null | undefined;
    return {
      ok: true,
      data: {
        src: `data:image/png;base64,${png.toString('base64')}`,
        size,
        count: count === null || count === undefined ? null : fromInt64(count, `${path}: count`),
        channelMean: vec3('channel_mean'),
        channelStd: vec3('channel_std'),
      },
    };
  } catch (e) {
    return { ok: false, kind: 'error', stage: 'mean', message: `shards/mean.arrow: ${(e as Error).message}` };
  }
}
