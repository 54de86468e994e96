/**
 * Stage `mean`: the per-pixel mean of the training split, plus per-channel mean and standard deviation
 * (schemas/mean.ts), written to `DATA_DIR/shards/mean.arrow` and `DATA_DIR/shards/mean.json`. These two files are
 * this stage's declared outputs; `shards` declares its own files one by one, so writing them does not make `shards`
 * stale.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fsutil.ts';
import { UserError, type StageImplementation } from '../pipeline/stage.ts';
import { MeanAccumulator } from '../dataset/mean.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { listShardFiles, streamShardBatches } from '../schemas/shards/read.ts';

/** The `mean` stage: training shards → `shards/mean.arrow`, `shards/mean.json`. */
export const meanStage: StageImplementation = {
  name: 'mean',
  async run(ctx) {
    const trainDir = ctx.path(splitDir('train'));
    let acc: MeanAccumulator | null = null;
    for await (const batch of streamShardBatches(listShardFiles(trainDir))) {
      if (ctx.signal.aborted) throw new Error('mean: interrupted');
      const size = batch.meta.shape[0];
      acc ??= new MeanAccumulator(size);
      if (acc.size !== size) throw new UserError(`mean: ${batch.file} holds ${size}×${size} images, earlier shards ${acc.size}×${acc.size}`);
      acc.add(batch.images, batch.rows);
    }
    if (!acc || acc.count === 0) throw new UserError(`mean: the training split in ${trainDir} holds no images`);
    writeFileAtomic(ctx.out('shards/mean.arrow'), acc.toArrowStream());
    const summary = acc.summary();
    writeFileAtomic(ctx.out('shards/mean.json'), `${JSON.stringify(summary, null, 2)}\n`);
    const fmt = (v: number[]) => v.map((x) => x.toFixed(1)).join(', ');
    ctx.log.info(`${summary.count} training images; channel mean ${fmt(summary.channelMean)}, std ${fmt(summary.channelStd)}`);
  },
};
