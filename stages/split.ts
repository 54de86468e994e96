/**
 * Stage `split`: assigns the manifest's images to train/validation/test (stratified by genre, seeded, exact counts)
 * and fixes the order of each split; writes `DATA_DIR/splits.arrow` (schemas/splits.ts) and the leakage audit
 * `DATA_DIR/split/audit.json` (schemas/split-audit.ts).
 *
 * Leak groups stay in one split (dataset/split.ts `assignGroupedSplits`): with `split.groupBy=artist`, every cover of
 * one artist (the manifest's `band_id`, which `download` copies from the selection, i.e. from `discover`'s listing);
 * unless `dedupe.near=off`, every near-duplicate group (the manifest's perceptual hashes within
 * `dedupe.maxDistance`). With `split.groupBy=none` and `dedupe.near=off` the split is the genre-stratified one of
 * earlier versions, byte for byte.
 */
import { existsSync } from 'node:fs';
import { assignGroupedSplits, assignSplits, leakGroups } from '../dataset/split.ts';
import { groupsOf, nearPairs, packHashes, type NearPair } from '../dataset/near-dup.ts';
import { phashFromHex } from '../dataset/phash.ts';
import { auditSplit } from '../dataset/leakage.ts';
import { SPLIT_AUDIT, writeSplitAudit } from '../schemas/split-audit.ts';
import { manifestFormat, imageRelPath } from '../schemas/manifest.ts';
import { splitsFormat, type SplitRow } from '../schemas/splits.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { UserError, type StageImplementation } from '../pipeline/stage.ts';

/** The `split` stage: `manifest.tsv` → `splits.arrow`. */
export const splitStage: StageImplementation = {
  name: 'split',
  async run(ctx) {
    const { config } = ctx;
    const manifestPath = ctx.path('manifest.tsv');
    if (!existsSync(manifestPath)) throw new UserError(`split: ${manifestPath} not found (run \`covers make download\` first)`);
    let manifest;
    try {
      manifest = manifestFormat.read(manifestPath);
    } catch (e) {
      throw new UserError(`split: ${(e as Error).message}`);
    }
    if (manifest.length === 0) throw new UserError(`split: ${manifestPath} lists no images`);
    const items = manifest.map((row, i) => {
      const line = `${manifestPath}: line ${i + 2}`;
      if (row.item_id === null || row.art_id === null || row.genre === null) throw new UserError(`split: ${line}: item_id, art_id and genre are required`);
      const label = config.genres.indexOf(row.genre);
      if (label < 0) throw new UserError(`split: ${line}: item_id ${row.item_id} has genre "${row.genre}", which is not in config genres (${config.genres.join(', ')})`);
      let phash = null;
      if (row.phash !== null && config.dedupe.near !== 'off') {
        try {
          phash = phashFromHex(row.phash);
        } catch (e) {
          throw new UserError(`split: ${line}: column phash: ${(e as Error).message}`);
        }
      }
      return { itemId: row.item_id, artId: row.art_id, label, genre: row.genre, sha256: row.sha256, bandId: row.band_id, phash };
    });
    const byArtist = config.split.groupBy === 'artist';
    const hashed = items.filter((it) => it.phash !== null);
    let pairs: NearPair[] = [];
    if (hashed.length) {
      const index = items.map((it, k) => (it.phash ? k : -1)).filter((k) => k >= 0);
      pairs = nearPairs(packHashes(hashed.map((it) => it.phash!)), config.dedupe.maxDistance).map((p) => ({ i: index[p.i]!, j: index[p.j]!, distance: p.distance }));
    }
    const nearGroups = groupsOf(items.length, pairs);
    if (byArtist && !items.some((it) => it.bandId !== null)) {
      ctx.log.warn(`split.groupBy=artist, but ${manifestPath} has no band_id (an older manifest, or a rebuild from the study's links): covers are grouped by near-duplicates only`);
    }
    if (config.dedupe.near !== 'off' && hashed.length < items.length) {
      ctx.log.warn(`${items.length - hashed.length} of ${items.length} covers have no perceptual hash in ${manifestPath} (rerun \`covers make download\` to hash them): they are not grouped as near-duplicates`);
    }
    let assigned;
    try {
      if (byArtist || nearGroups.length > 0) {
        const group = leakGroups(items, byArtist, nearGroups);
        assigned = assignGroupedSplits(items.map((it, k) => ({ ...it, group: group[k]! })), config.splits, config.seed);
      } else {
        assigned = assignSplits(items, config.splits, config.seed);
      }
    } catch (e) {
      throw new UserError(`split: ${manifestPath}: ${(e as Error).message}`);
    }
    const rows: SplitRow[] = assigned.map((a) => ({
      item_id: a.itemId,
      genre: a.genre,
      label: a.label,
      art_id: a.artId,
      split: a.split,
      order: a.order,
      sha256: a.sha256,
      path: imageRelPath(a.genre, a.artId),
    }));
    splitsFormat.write(ctx.out('splits.arrow'), rows, {
      seed: String(config.seed),
      ratios: JSON.stringify(config.splits),
      genres: JSON.stringify(config.genres),
    });
    const splitOf = new Map(assigned.map((a) => [a.itemId, a.split]));
    const audit = auditSplit(
      items.map((it, k) => ({
        item_id: it.itemId, genre: it.genre, art_id: it.artId, split: splitOf.get(it.itemId)!, path: imageRelPath(it.genre, it.artId),
        phash: manifest[k]!.phash ?? null, band_id: it.bandId,
      })),
      nearGroups,
      pairs,
      { groupBy: config.split.groupBy, near: config.dedupe.near, maxDistance: config.dedupe.maxDistance, requested: config.splits },
    );
    writeSplitAudit(ctx.out(SPLIT_AUDIT), audit);
    const counts = SPLIT_NAMES.map((s) => `${s} ${rows.filter((r) => r.split === s).length} (${(100 * audit.fractions.achieved[s]).toFixed(1)}%)`).join(', ');
    ctx.log.info(`${rows.length} images: ${counts}`);
    const l = audit.leaks;
    ctx.log.info(
      `leak groups: ${audit.multiCoverArtists} artist(s) with several covers, ${audit.nearDuplicateGroups.length} near-duplicate group(s); ` +
        `sharing an artist with train: validation ${l.validation.shareArtistWithTrain}, test ${l.test.shareArtistWithTrain}; ` +
        `a near-duplicate group: validation ${l.validation.shareNearDuplicateWithTrain}, test ${l.test.shareNearDuplicateWithTrain} (${SPLIT_AUDIT})`,
    );
    for (const [label, genre] of config.genres.entries()) {
      if (!items.some((it) => it.label === label)) ctx.log.warn(`genre "${genre}" has no images in the manifest`);
    }
  },
};
