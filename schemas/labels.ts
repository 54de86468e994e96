/**
 * `DATA_DIR/labels.arrow`: one row per `candidates.arrow` row (`item_id`, `genre`), written by `label`.
 */
import { defineTable, type RowOf } from './table.ts';

/**
 * Columns: `item_id`, `genre` (the listing it came from), `tags` (the album's tag norm names without the location
 * tag; in `label.mode=listing`, the chosen genres whose listings contain it), `exclusive` (true when exactly one
 * chosen genre applies, and it is `genre`), `reason` (`exclusive`, `multi-genre:<g1>,<g2>`, `no-chosen-genre`,
 * `not-found`, `failed:<why>`).
 */
export const labelsFormat = defineTable('labels', {
  item_id: 'int64',
  genre: 'utf8',
  tags: 'utf8list',
  exclusive: 'bool',
  reason: 'utf8',
});
export type LabelRow = RowOf<typeof labelsFormat.columns>;
