/**
 * Stage `split`: assigns the manifest's images to train/validation/test (stratified by genre, seeded, exact counts)
 * and fixes the order of each split; writes `DATA_DIR/splits.arrow` (schemas/splits.ts).
 */
import { existsSync } from 'node:fs';
import { assignSplits } from '../dataset/split.ts';
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
      return { itemId: row.item_id, artId: row.art_id, label, genre: row.genre, sha256: row.sha256 };
    });
    let assigned;
    try {
      assigned = assignSplits(items, config.splits, config.seed);
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
    const counts = SPLIT_NAMES.map((s) => `${s} ${rows.filter((r) => r.split === s).length}`).join(', ');
    ctx.log.info(`${rows.length} images: ${counts}`);
    for (const [label, genre] of config.genres.entries()) {
      if (!items.some((it) => it.label === label)) ctx.log.warn(`genre "${genre}" has no images in the manifest`);
    }
  },
};
