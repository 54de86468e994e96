/**
 * `DATA_DIR/splits.arrow`: the train/validation/test assignment of every image of the manifest, written by `split`,
 * read by `shards`. Arrow IPC stream file (`pyarrow.ipc.open_stream`).
 *
 * Rows are in split order (train, validation, test), then by `order`. Columns:
 * - `item_id`, `art_id`: Bandcamp ids (int64); `genre`: the Bandcamp tag norm name;
 * - `label`: index of `genre` in config `genres` (int32), the shards' `ClassLabel`;
 * - `split`: `train`, `validation` or `test`;
 * - `order`: 0-based position of the record within its split (int32): the order of the shards. The training split is
 *   shuffled (seeded); validation and test are sorted by label, then `item_id`;
 * - `sha256`: of the downloaded file (from the manifest); `path`: the image, relative to the data directory
 *   (`images/<genre>/a<art_id>.jpg`).
 *
 * Metadata: `seed`, `ratios` (JSON `{train, validation, test}`), `genres` (JSON list, label order).
 */
import { defineTable, type RowOf } from './table.ts';

/** The `splits.arrow` table format (columns and metadata: see the module comment). */
export const splitsFormat = defineTable('splits', {
  item_id: 'int64',
  genre: 'utf8',
  label: 'int32',
  art_id: 'int64',
  split: 'utf8',
  order: 'int32',
  sha256: 'utf8',
  path: 'utf8',
});
export type SplitRow = RowOf<typeof splitsFormat.columns>;
