/**
 * `DATA_DIR/manifest.tsv`: the dataset's lock file, written by `download`, read by `split`, `shards` and
 * `select.fromManifest`. One row per kept image; the image file is `DATA_DIR/images/<genre>/a<art_id>.jpg`.
 */
import { defineTsv, type TsvRow } from './tsv.ts';

/**
 * Columns of `manifest.tsv`, in file order. `bytes` in bytes; `width`, `height` in pixels of the downloaded file;
 * `phash`: the cover's 64-bit perceptual hash as 16 hex digits (dataset/phash.ts; empty with `dedupe.near=off`);
 * `band_id`: Bandcamp's id of the album's artist (empty when unknown, e.g. a rebuild from the study's links). The
 * last two were added later: a manifest without them is still read (both null).
 */
export const manifestFormat = defineTsv(
  'manifest',
  {
    item_id: 'int',
    genre: 'string',
    art_id: 'int',
    url: 'string',
    sha256: 'string',
    bytes: 'int',
    width: 'int',
    height: 'int',
    phash: 'string',
    band_id: 'int',
  },
  2,
);
export type ManifestRow = TsvRow<typeof manifestFormat.columns>;

/** Where `download` stores an image, relative to the data directory. */
export function imageRelPath(genre: string, artId: number): string {
  return `images/${genre}/a${artId}.jpg`;
}

/**
 * Rejected items with their reason: `DATA_DIR/rejected.tsv` (written by `download`: permanent reasons only —
 * `not-found`, `corrupt`, `truncated`, `too-large`, `unsupported-url`, `http-error`, `sha256-mismatch`, duplicates as
 * `duplicate-of:<item_id>`, near-duplicates as `near-duplicate-of:<item_id>` with the Hamming distance in `detail`) and `DATA_DIR/shards/rejected.tsv` (written by `shards`:
 * images that failed preprocessing). `stage` names the stage that rejected the item.
 */
export const rejectedFormat = defineTsv('rejected', {
  stage: 'string',
  item_id: 'int',
  genre: 'string',
  art_id: 'int',
  url: 'string',
  reason: 'string',
  detail: 'string',
});
export type RejectedRow = TsvRow<typeof rejectedFormat.columns>;

/** The kind of a rejection reason, for grouping: `duplicate-of:123` → `duplicate-of`; empty → `unknown`. */
export function reasonKey(reason: string | null): string {
  const r = (reason ?? '').trim();
  if (!r) return 'unknown';
  const colon = r.indexOf(':');
  return colon > 0 ? r.slice(0, colon) : r;
}
