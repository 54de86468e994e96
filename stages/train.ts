/**
 * Stage `train`: trains the configured convnet on the training split (TensorFlow.js), choosing the learning rate
 * schedule on the validation split, and writes `DATA_DIR/models/<train.run>/`:
 * - `model.json` + `weights.bin`: the model in the TensorFlow.js layers format (softmax output; load with
 *   `tfl.loadLayersModel(fileLoader(dir))` from train/model-io.ts after importing train/models.ts, which registers
 *   the `SeededDropout` layer class);
 * - `config.json`: the resolved configuration, the resolved architecture, backend, label names, input size;
 * - `metrics.jsonl`: one `EpochMetrics` (schemas/metrics.ts) per epoch.
 * Snapshots go to `DATA_DIR/.work/train/<run>/<params hash>/` every `train.snapshotEvery` epochs, so a killed run
 * resumes where its last snapshot left off (and a finished one is not retrained when only its outputs were lost).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hashJson, pickParams } from '../pipeline/config.ts';
import { UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { selectBackend } from '../train/backends.ts';
import { fileSaver } from '../train/model-io.ts';
import { ModelParamsError, resolveModelSpec } from '../train/model-params.ts';
import { readMean } from '../schemas/mean.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit } from '../schemas/shards/read.ts';
import { trainModel } from '../train/train-loop.ts';
import { modelDir, writeEpochMetrics, writeTrainRecord } from '../schemas/model.ts';
import { TRAIN_PARAMS } from './declarations.ts';

/** The `train` stage: shards and per-pixel mean → `models/<train.run>/` (see the module comment). */
export const trainStage: StageImplementation = {
  name: 'train',
  async run(ctx: StageContext) {
    const t = ctx.config.train;
    let spec;
    try {
      spec = resolveModelSpec(t.architecture, t.modelParams);
    } catch (e) {
      if (e instanceof ModelParamsError) throw new UserError(e.message);
      throw e;
    }
    const backend = await selectBackend(t.backend, (l) => ctx.log.info(l));
    const train = await readSplit(ctx.path(splitDir('train')));
    let validation = null;
    try {
      validation = await readSplit(ctx.path(splitDir('validation')));
    } catch (e) {
      ctx.log.warn(`no validation split (${(e as Error).message}): fixed learning rate, last weights kept`);
    }
    if (t.crop > train.size) throw new UserError(`train.crop = ${t.crop} is larger than the shard images (${train.size}×${train.size})`);
    const mean = t.subtractMean ? readMean(ctx.path('shards/mean.arrow'), train.size) : null;
    const params = pickParams(ctx.config, TRAIN_PARAMS);
    const snapshotDir = join(ctx.workDir, t.run, hashJson(params).slice(0, 16));
    ctx.log.info(`${spec.architecture} on ${train.n} training and ${validation?.n ?? 0} validation images, ${train.size}→${t.crop} crops; snapshots in ${snapshotDir}`);
    // The epoch progress covers only the epochs this run trains (none when a finished run is resumed) and stops
    // with the last epoch, before the final snapshot is written.
    let progress: ReturnType<StageContext['progress']> | null = null;
    let firstEpoch = 0;
    const stopProgress = () => {
      progress?.stop();
      progress = null;
    };
    let result;
    try {
      result = await trainModel({
        train, validation, mean, spec,
        crop: t.crop, mirror: t.mirror, optimizer: t.optimizer, learningRate: t.learningRate, momentum: t.momentum, adam: t.adam,
        batchSize: t.batchSize, epochs: t.epochs, patience: t.patience, snapshotEvery: t.snapshotEvery, seed: ctx.config.seed,
        snapshotDir, resumeFrom: t.resumeFrom, log: (l) => ctx.log.info(l), signal: ctx.signal,
        onStart: (s) => {
          if (s.done) return;
          firstEpoch = s.epoch;
          progress = ctx.progress(s.epoch > 0 ? `epochs ${s.epoch + 1}–${t.epochs}` : 'epochs', t.epochs - s.epoch);
        },
        onEpoch: (m, last) => {
          progress?.update(m.epoch - firstEpoch);
          if (last) stopProgress();
        },
      });
    } finally {
      stopProgress();
    }
    ctx.log.info(`training stopped (${result.stopReason}) after ${result.state.epoch} epochs; best validation accuracy ${result.state.bestAccuracy >= 0 ? result.state.bestAccuracy.toFixed(3) : 'n/a'} at epoch ${result.state.bestEpoch}`);
    const out = ctx.out(modelDir(ctx.config.train.run));
    mkdirSync(out, { recursive: true });
    await result.model.save(fileSaver(out));
    const record = {
      config: ctx.config,
      architecture: { name: spec.architecture, params: spec.params, convs: spec.convs, denses: spec.denses },
      backend: backend.name,
      labelNames: train.labelNames,
      imageSize: train.size,
      crop: t.crop,
      subtractMean: t.subtractMean,
      stopReason: result.stopReason,
      bestEpoch: result.state.bestEpoch,
      bestValidationAccuracy: result.state.bestAccuracy >= 0 ? result.state.bestAccuracy : null,
    };
    writeTrainRecord(out, record);
    writeEpochMetrics(out, result.metrics);
    result.model.dispose();
  },
};
