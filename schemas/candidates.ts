/**
 * `DATA_DIR/candidates.arrow`: albums listed per genre by `discover` (`POST /api/discover/1/discover_web`,
 * docs/BANDCAMP.md#discover_web), in listing order. An album listed under two genres has two rows.
 */
import { defineTable, type RowOf } from './table.ts';

/**
 * Columns: `genre` (the tag norm name it was listed under), `rank` (1-based position in that genre's listing after
 * removing repeated `item_id`s), `item_id`, `art_id` (`primary_image.image_id`; null when `is_art` is false or there
 * is no image), `item_url` (without `?from=`), `title`, `band_name`, `band_id`. Metadata key `listing`: JSON of
 * {@link ListingInfo} per genre.
 */
export const candidatesFormat = defineTable('candidates', {
  genre: 'utf8',
  rank: 'int32',
  item_id: 'int64',
  art_id: 'int64',
  item_url: 'utf8',
  title: 'utf8',
  band_name: 'utf8',
  band_id: 'int64',
});
export type CandidateRow = RowOf<typeof candidatesFormat.columns>;

/** Why a genre's listing ended: the site said so, a cursor came back, pages stopped bringing new albums, the page cap. */
export type ListingEnd = 'end' | 'cursor-cycle' | 'no-new-items' | 'page-limit';

/** Listing ends that a guard against a misbehaving site chose (not the site's end, not a configured cap). */
export function endedByGuard(ended: ListingEnd | null): boolean {
  return ended === 'cursor-cycle' || ended === 'no-new-items';
}

/** Per genre, in `candidates.arrow`'s metadata key `listing` (JSON): how far the listing went and why it stopped. */
export interface ListingInfo {
  /** Albums listed (distinct `item_id`s of whole pages). */
  albums: number;
  /** `discover_web` pages walked, all rounds together. */
  pages: number;
  /** Pages round 1 alone would have walked (`perGenre × crawl.oversample` albums). */
  firstRoundPages: number;
  /** Albums round 1 alone would have listed. */
  firstRoundAlbums: number;
  /** Extra rounds this genre needed (`download` asked for more). */
  extraRounds: number;
  /** Why the listing ended, or null when it goes on past what was listed. */
  ended: ListingEnd | null;
  /**
   * When a guard ended the listing (`cursor-cycle`, `no-new-items`): the cursor of the page the next run asks again
   * (the pages before it are kept). Absent otherwise.
   */
  resumeAt?: string;
}

/** Reads `candidates.arrow`'s `listing` metadata (per genre), or null for a file written without it. */
export function readListingInfo(path: string): Record<string, ListingInfo> | null {
  const m = candidatesFormat.readMetadata(path).get('listing');
  return m ? (JSON.parse(m) as Record<string, ListingInfo>) : null;
}
