/**
 * `DATA_DIR/candidates.arrow`: albums listed per genre by `discover` (`POST /api/discover/1/discover_web`,
 * REFERENCE.md §2.4), in listing order. An album listed under two genres has two rows.
 */
import { defineTable, type RowOf } from './table.ts';

/**
 * Columns: `genre` (the tag norm name it was listed under), `rank` (1-based position in that genre's listing after
 * removing repeated `item_id`s), `item_id`, `art_id` (`primary_image.image_id`; null when `is_art` is false or there
 * is no image), `item_url` (without `?from=`), `title`, `band_name`, `band_id`.
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
