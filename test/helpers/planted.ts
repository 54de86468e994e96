/**
 * Test helper: a planted shortcut. Synthetic shards (dataset/synthetic-shards.ts) of noise covers where only the
 * first genre's covers carry a bright square in the top-left corner, plus a `manifest.tsv` and `labels.arrow` for
 * the test split (two sources and two image sizes, alternating), so `train` → `evaluate` → `inspect` run on them.
 */
import { join } from 'node:path';
import { writeTestShards } from '../../dataset/synthetic-shards.ts';
import { labelsFormat } from '../../schemas/labels.ts';
import { manifestFormat } from '../../schemas/manifest.ts';
import { splitDir } from '../../schemas/shards/names.ts';
import { readSplitIds } from '../../schemas/shards/read.ts';
import type { Rng } from '../../util/rng.ts';

/** Side of the planted images, pixels. */
export const PLANTED_SIZE = 32;
/** Side of the corner mark, pixels (top-left corner, genre 0 only). */
export const MARK = 7;
/** Genres: the first carries the mark. */
export const PLANTED_GENRES = ['marked', 'plain', 'other'];

/** One noise cover (each value uniform in 40–215); genre 0 adds a white `MARK`×`MARK` square at the top-left corner. */
export function plantedImage(label: number, size: number, rng: Rng): Uint8Array {
  const img = new Uint8Array(size * size * 3);
  for (let i = 0; i < img.length; i++) img[i] = 40 + Math.floor(rng.next() * 176);
  if (label === 0) for (let y = 0; y < MARK; y++) for (let x = 0; x < MARK; x++) img.fill(255, (y * size + x) * 3, (y * size + x) * 3 + 3);
  return img;
}

/**
 * Writes the planted dataset into `dir`.
 * @returns the test split's item ids, in shard order.
 */
export async function writePlantedDataset(dir: string, perClass = { train: 60, validation: 10, test: 12 }): Promise<(number | null)[]> {
  writeTestShards(dir, { size: PLANTED_SIZE, labelNames: PLANTED_GENRES, perClass, seed: 3, draw: plantedImage });
  const { itemIds, artIds } = await readSplitIds(join(dir, splitDir('test')));
  manifestFormat.write(join(dir, 'manifest.tsv'), itemIds.map((id, i) => ({
    item_id: id, genre: null, art_id: artIds[i]!, url: null, sha256: null, bytes: 1000, width: i % 2 ? 350 : 700, height: i % 2 ? 350 : 700, phash: null, band_id: null,
  })));
  labelsFormat.write(join(dir, 'labels.arrow'), itemIds.map((id, i) => ({
    item_id: id, genre: null, tags: [], exclusive: true, reason: 'exclusive', source: i % 2 ? 'tralbum_details' : 'ld+json',
  })));
  return itemIds;
}
