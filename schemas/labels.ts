/**
 * `DATA_DIR/labels.arrow`: one row per `candidates.arrow` row (`item_id`, `genre`), written by `label`.
 */
import { defineTable, type RowOf } from './table.ts';

/**
 * Columns:
 * - `item_id`, `genre` (the listing it came from);
 * - `tags`: the album's tag norm names, each once, without the location tag (in `label.mode=listing`, the chosen
 *   genres whose listings contain it); empty for rejected items;
 * - `exclusive`: true when exactly one chosen genre applies, and it is `genre`;
 * - `reason`: `exclusive`, `multi-genre:<g1>,<g2>`, `no-chosen-genre` (tags, but none of the chosen genres),
 *   `no-tags` (no tags but the location), `not-found` (404), `not-an-album` (the URL serves a band or label page),
 *   `redirected-to:<item_id>` (Bandcamp answered with another album; its URL when the page names no `item_id`);
 * - `source`: where the album's fields came from: `tralbum_details` (the mobile API), `data-tralbum`, `ld+json` or
 *   `bc-page-properties` (the album page, by the first of these it carries: `bandcamp/parse.ts`), `listing`
 *   (`label.mode=listing`), or null (`not-found`, `not-an-album`).
 */
export const labelsFormat = defineTable('labels', {
  item_id: 'int64',
  genre: 'utf8',
  tags: 'utf8list',
  exclusive: 'bool',
  reason: 'utf8',
  source: 'utf8',
});
export type LabelRow = RowOf<typeof labelsFormat.columns>;
