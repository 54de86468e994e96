/**
 * `DATA_DIR/selection.arrow`: each genre's eligible albums in a seeded random order (written by `select`), which
 * `download` walks until the genre has `perGenre` images.
 */
import type { ListingInfo } from './candidates.ts';
import { defineTable, type RowOf } from './table.ts';

/**
 * Columns: `genre`, `rank` (1-based order in which `download` tries the genre's albums), `item_id`, `art_id`,
 * `url` (the image URL to fetch, its origin rewritten to `bandcamp.imageOrigin` at download time; null: build it
 * from `art_id` and `image.format`), `sha256` (expected content hash in `select.fromManifest` mode, else null).
 *
 * Metadata key `mode`: `crawl` (ranked candidates; download replaces failures) or `manifest` (exactly these images;
 * any failure is an error).
 */
export const selectionFormat = defineTable('selection', {
  genre: 'utf8',
  rank: 'int32',
  item_id: 'int64',
  art_id: 'int64',
  url: 'utf8',
  sha256: 'utf8',
  band_id: 'int64',
}, ['band_id']);
export type SelectionRow = RowOf<typeof selectionFormat.columns>;

/** Per-genre counts at each step of `select`, stored as JSON under the metadata key `counts` (in `crawl` mode). */
export interface SelectCounts {
  candidates: number;
  exclusive: number;
  withArt: number;
  /** Dropped because an earlier album of the same genre's listing has the same `art_id`. */
  sharedArt: number;
  /** Eligible albums in the ranking (complete blocks only, see `selectFromCandidates` in stages/select.ts). */
  eligible: number;
  /** Candidates left out of the ranking because their block of the listing is not complete yet. */
  pendingBlock?: number;
  /** How far the listing went (from `candidates.arrow`), for `download`'s rounds and the report. */
  listing?: ListingInfo;
}

/**
 * Reads the per-genre counts (metadata key `counts`) of a selection file.
 * @returns null when the file has none (`manifest` mode) or cannot be read: the counts only enrich messages.
 */
export function readSelectionCounts(path: string): Record<string, SelectCounts> | null {
  try {
    const c = selectionFormat.readMetadata(path).get('counts');
    return c ? (JSON.parse(c) as Record<string, SelectCounts>) : null;
  } catch {
    return null;
  }
}
