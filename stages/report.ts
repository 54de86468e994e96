/**
 * Stage `report`: writes `DATA_DIR/report/index.html`, one self-contained page (inline CSS and SVG, images as
 * `data:` URIs, no script, nothing fetched) with the dataset funnel per genre, contact sheets and the per-pixel mean
 * read from the shards, training curves, the confusion matrix, per-class accuracy against chance, a comparison of the
 * convnet, the random-forest baseline, chance and the 2015 study, what the network learned (`eval/inspect/`:
 * filters, right and wrong covers, saliency, embeddings, accuracy by source; report/inspect.ts), and what is needed to
 * reproduce the result.
 *
 * It is the final target (`covers make all`), so it depends on `evaluate` and `baseline` (and through them on every
 * stage); on a partially built data directory (e.g. `buildReport` called directly) the missing sections say which
 * `covers make` target builds them.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/fsutil.ts';
import type { StageContext, StageImplementation } from '../pipeline/stage.ts';
import { fmtBytes } from '../report/html.ts';
import { buildReport } from '../report/render.ts';
import { REPORT_DIR, REPORT_PAGE } from './declarations.ts';

/** The `report` stage. */
export const reportStage: StageImplementation = {
  name: 'report',
  async run(ctx: StageContext) {
    // The page names the data directory it was read from; the stage sees only its declared paths, so the name is
    // the parent of its own output directory (every read goes through ctx.path).
    const dataDir = dirname(ctx.path(REPORT_DIR));
    const page = await buildReport({ dataDir, config: ctx.config, path: (rel) => ctx.path(rel), stageOrder: ctx.stageNames });
    const dir = ctx.out(REPORT_DIR);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'index.html');
    writeFileAtomic(file, page);
    ctx.log.info(`wrote ${REPORT_PAGE} (${fmtBytes(statSync(file).size)})`);
  },
};

export default reportStage;
