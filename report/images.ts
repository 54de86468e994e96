/**
 * The report's images, read from the shards so the reader sees exactly what the model sees: a contact sheet of
 * covers per genre (small JPEG thumbnails encoded with sharp from the raw `[S, S, 3]` uint8 HWC pixels) and the
 * per-pixel training mean as a PNG. Images become `data:` URIs, so the page needs no other file.
 *
 * Formats: `schemas/shards/layout.ts` (Arrow IPC stream files `shards/<split>/data-*.arrow`, column `image`
 * FixedSizeList<uint8>[S·S·3]) and `schemas/mean.ts` (`shards/mean.arrow`, column `mean` FixedSizeList<float32>).
 */
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { MEAN_ARROW, readMeanRow } from '../schemas/mean.ts';
import { splitDir, SPLIT_NAMES, type SplitName } from '../schemas/shards/names.ts';
import { listShardFiles, streamShardBatches } from '../schemas/shards/read.ts';
import { dataPath, type DataPath, type Part } from './inputs.ts';

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
const THUMBNAIL_MAX = 128;

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

/**
 * Reads shards (train split first, then validation and test) record batch by record batch until every genre has
 * `perGenre` images or the shards are exhausted, and encodes the thumbnails. Stops reading as soon as it has enough.
 * @param genres the genres to collect (others are ignored).
 * @param perGenre covers per genre (0 = none).
 * @returns missing when no shard file exists; error when a shard cannot be read.
 */
export async function readContactSheets(dataDir: string | DataPath, genres: readonly string[], perGenre: number): Promise<Part<ContactSheets>> {
  const p = dataPath(dataDir);
  let files: { split: SplitName; path: string }[];
  try {
    files = SPLIT_NAMES.flatMap((split) => listShardFiles(p(splitDir(split)), { allowMissing: true }).map((path) => ({ split, path })));
  } catch (e) {
    return { ok: false, kind: 'error', stage: 'shards', message: (e as Error).message };
  }
  if (!files.length) return { ok: false, kind: 'missing', stage: 'shards', message: 'shards/<split>/data-*.arrow not found' };
  const byGenre: Record<string, { pixels: Uint8Array; itemId: number | null; artId: number | null; split: SplitName }[]> = Object.fromEntries(genres.map((g) => [g, []]));
  const want = new Set(genres);
  const full = () => genres.every((g) => byGenre[g]!.length >= perGenre);
  let imageSize = 0;
  let filesRead = 0;
  try {
    for (const { split, path } of files) {
      if (full()) break;
      filesRead++;
      for await (const batch of streamShardBatches([path], { ids: true })) {
        const size = batch.meta.shape[0];
        imageSize = size;
        const length = size * size * 3;
        const ids = batch.ids!;
        for (let i = 0; i < batch.rows; i++) {
          const g = ids.genres[i]!;
          if (g === null || !want.has(g) || byGenre[g]!.length >= perGenre) continue;
          // Copy: the batch's buffer is released when the reader moves on.
          byGenre[g]!.push({ pixels: batch.images.slice(i * length, (i + 1) * length), itemId: ids.itemIds[i]!, artId: ids.artIds[i]!, split });
        }
        if (full()) break;
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
export async function readMeanImage(dataDir: string | DataPath): Promise<Part<MeanImage>> {
  const p = dataPath(dataDir);
  const path = p(MEAN_ARROW);
  if (!existsSync(path)) return { ok: false, kind: 'missing', stage: 'mean', message: `${MEAN_ARROW} not found` };
  try {
    const row = readMeanRow(path);
    const pixels = new Uint8Array(row.mean.length);
    for (let i = 0; i < row.mean.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round(row.mean[i]!)));
    const png = await sharp(pixels, { raw: { width: row.size, height: row.size, channels: 3 } }).png({ compressionLevel: 9 }).toBuffer();
    return {
      ok: true,
      data: { src: `data:image/png;base64,${png.toString('base64')}`, size: row.size, count: row.count, channelMean: [...row.channelMean], channelStd: [...row.channelStd] },
    };
  } catch (e) {
    return { ok: false, kind: 'error', stage: 'mean', message: `${MEAN_ARROW}: ${(e as Error).message}` };
  }
}
