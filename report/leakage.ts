/**
 * The report's leakage section data: the split's audit (`split/audit.json`, schemas/split-audit.ts) and thumbnails of
 * the covers of its near-duplicate groups, read from the shards (so the page shows what the model sees).
 */
import { existsSync } from 'node:fs';
import { readSplitAudit, SPLIT_AUDIT, type SplitAudit } from '../schemas/split-audit.ts';
import { splitDir, SPLIT_NAMES } from '../schemas/shards/names.ts';
import { listShardFiles, streamShardBatches } from '../schemas/shards/read.ts';
import { dataPath, type DataPath, type Part } from './inputs.ts';
import { thumbnailDataUri } from './images.ts';

/** Near-duplicate groups shown with thumbnails (the audit lists them all). */
export const LEAKAGE_GROUPS_SHOWN = 40;
/** Side of a near-duplicate thumbnail, pixels. */
const SIDE = 96;

/** The audit and `data:` URIs of the thumbnails of the first {@link LEAKAGE_GROUPS_SHOWN} groups' covers, by item_id. */
export interface Leakage {
  audit: SplitAudit;
  thumbnails: Map<number, string>;
}

/**
 * Reads the audit and the thumbnails.
 * @returns missing when `split/audit.json` does not exist; error when it (or a shard) cannot be read. Covers not in
 * the shards (rejected there) have no thumbnail.
 */
export async function readLeakage(dataDir: string | DataPath): Promise<Part<Leakage>> {
  const p = dataPath(dataDir);
  const path = p(SPLIT_AUDIT);
  if (!existsSync(path)) return { ok: false, kind: 'missing', stage: 'split', message: `${SPLIT_AUDIT} not found` };
  let audit: SplitAudit;
  try {
    audit = readSplitAudit(path);
  } catch (e) {
    return { ok: false, kind: 'error', stage: 'split', message: (e as Error).message };
  }
  const want = new Set(audit.nearDuplicateGroups.slice(0, LEAKAGE_GROUPS_SHOWN).flatMap((g) => g.covers.map((c) => c.item_id)));
  const thumbnails = new Map<number, string>();
  if (want.size === 0) return { ok: true, data: { audit, thumbnails } };
  try {
    const files = SPLIT_NAMES.flatMap((s) => listShardFiles(p(splitDir(s)), { allowMissing: true }));
    for await (const batch of streamShardBatches(files, { ids: true })) {
      const size = batch.meta.shape[0];
      const length = size * size * 3;
      for (let i = 0; i < batch.rows; i++) {
        const id = batch.ids!.itemIds[i]!;
        if (id === null || !want.has(id) || thumbnails.has(id)) continue;
        thumbnails.set(id, await thumbnailDataUri(batch.images.slice(i * length, (i + 1) * length), size, Math.min(size, SIDE)));
      }
      if (thumbnails.size === want.size) break;
    }
  } catch (e) {
    return { ok: false, kind: 'error', stage: 'shards', message: (e as Error).message };
  }
  return { ok: true, data: { audit, thumbnails } };
}
