/**
 * Stage `train`: trains the configured convnet on the training split (TensorFlow.js), choosing the learning rate
 * schedule on the validation split, and writes `DATA_DIR/models/<train.run>/`:
 * - `model.json` + `weights.bin`: the model in the TensorFlow.js layers format (softmax output; load with
 *   `tfl.loadLayersModel(fileLoader(dir))` from train/model-io.ts after importing train/models.ts, which registers
 *   the `SeededDropout` layer class);
 * - `config.json`: the settings it declares (`seed`, `image.size`, the `train` section), the resolved architecture,
 *   backend, label names, input size;
 * - `metrics.jsonl`: one `EpochMetrics` (schemas/metrics.ts) per epoch.
 * With `train.repeats` = N > 1 it trains N models with training seeds `s … s + N − 1` (s = `train.seed`, or `seed`
 * when null) on the same split (the training seed sets the initial weights, the shuffles, crops, mirrors and dropout
 * masks): the first at `models/<run>/`, each other in `models/<run>/seed-<seed>/` (the same files); `config.json` of
 * the first lists them all under `repeats`.
 * With `train.fromSearch`, it trains the best configuration of `search` (`search/best.json`'s values set in this one).
 * Snapshots go to `DATA_DIR/.work/train/<run>/<hash of the params and the training seed>/` every `train.snapshotEvery` epochs, so a killed run
 * resumes where its last snapshot left off (and a finished one is not retrained when only its outputs were lost).
 * `train.epochs` is not in that hash (except under the `cosine` schedule, whose curve is drawn over `train.epochs`):
 * raising it on a finished run continues from the finished run's last epoch, exactly as if the higher count had been
 * asked for from the start; lowering it below a snapshot's epoch starts over (train/train-loop.ts says so in the
 * log). `covers make train --force` starts over (the runner removes the stage's work directory).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hashJson, pickParams, type Config } from '../pipeline/config.ts';
import { readSearchBest, SEARCH_BEST } from '../schemas/search.ts';
import { applyAssignment } from '../search/apply.ts';
import { resolveList, UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { selectBackend } from '../train/backends.ts';
import { fileSaver } from '../train/model-io.ts';
import { ModelParamsError, resolveModelSpec } from '../schemas/model-params.ts';
import { readMean } from '../schemas/mean.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit } from '../schemas/shards/read.ts';
import { trainModel } from '../train/train-loop.ts';
import { trainOptionsFromConfig } from '../train/train-options.ts';
import { defaultThreads } from '../train/data-parallel.ts';
import { describeKeptCheckpoint, keptCheckpoint } from '../schemas/metrics.ts';
import { modelDir, repeatDir, repeatSeeds, writeEpochMetrics, writeTrainRecord, type RepeatRecord, type TrainRecord } from '../schemas/model.ts';
import { FINE_TUNE_PARAMS, TRAIN_PARAMS, trainDeclaration } from './declarations.ts';
import { fineTuneSettings, resolvePretrainedModel, type FineTuneOptions } from '../train/fine-tune.ts';

/**
 * The configuration to train: the stage's own, or with `train.fromSearch` the search's best configuration
 * (`search/best.json`'s values set in it, search/apply.ts).
 * @throws UserError when `train.fromSearch` is set and the search has not been made, or its values no longer fit.
 */
function trainedConfig(ctx: StageContext): Config {
  if (!ctx.config.train.fromSearch) return ctx.config;
  const file = ctx.path(SEARCH_BEST);
  if (!existsSync(file)) throw new UserError(`train.fromSearch is set but ${SEARCH_BEST} is missing: run \`covers make search\` first (\`covers make train\` with train.fromSearch does)`);
  const best = readSearchBest(file);
  try {
    // Built from the declared keys only: ctx.config is a view that refuses the others, and cannot be cloned whole.
    const config = applyAssignment(ctx.config, best.values, [...resolveList(trainDeclaration.params, ctx.config), ...(trainDeclaration.tuning ?? [])]);
    ctx.log.info(`training the search's best configuration (trial ${best.trial + 1}, validation loss ${best.validationLoss.toFixed(4)}, accuracy ${best.validationAccuracy.toFixed(3)}): ${Object.entries(best.values).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    return config;
  } catch (e) {
    throw new UserError(`${SEARCH_BEST}: its configuration does not apply to this one (${(e as Error).message.split('\n')[0]}); rerun \`covers make search\``);
  }
}

/**
 * With `train.init = pretrained`, the network to fine-tune (the file, downloaded when a URL) and its input side;
 * otherwise null.
 * @throws UserError naming the key (train/fine-tune.ts {@link fineTuneSettings}).
 */
async function fineTuneOptions(ctx: StageContext, config: Config): Promise<{ fineTune: FineTuneOptions; crop: number } | null> {
  if (!fineTuneSettings(config, '')) return null;
  const { file, crop } = await resolvePretrainedModel(config.pretrained, { log: ctx.log, signal: ctx.signal });
  return { fineTune: fineTuneSettings(config, file)!, crop };
}

/** The `train` stage: shards and per-pixel mean → `models/<train.run>/` (see the module comment). */
export const trainStage: StageImplementation = {
  name: 'train',
  async run(ctx: StageContext) {
    const config = trainedConfig(ctx);
    const t = config.train;
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
    const tuning = await fineTuneOptions(ctx, config);
    // Fine-tuning crops at the network's input size and applies its own preprocessing instead of the mean.
    const crop = tuning?.crop ?? t.crop;
    if (crop > train.size) {
      throw new UserError(tuning
        ? `train.init = pretrained: the network ${config.pretrained.model} takes ${crop}×${crop} inputs, larger than the shard images (${train.size}×${train.size}, image.size); rebuild the shards with image.size ≥ ${crop} (train.crop is not used when fine-tuning)`
        : `train.crop = ${crop} is larger than the shard images (${train.size}×${train.size})`);
    }
    const subtractMean = t.subtractMean && !tuning;
    const mean = subtractMean ? readMean(ctx.path('shards/mean.arrow'), train.size) : null;
    const seeds = repeatSeeds(config);
    const total = t.epochs * seeds.length;
    // The epoch progress covers only the epochs this run trains (none when a finished run is resumed) and stops
    // with the last epoch, before the final snapshot is written.
    let progress: ReturnType<StageContext['progress']> | null = null;
    let doneBefore = 0;
    let firstEpoch = 0;
    const stopProgress = () => {
      progress?.stop();
      progress = null;
    };
    const out = ctx.out(modelDir(t.run));
    const repeats: RepeatRecord[] = [];
    let firstRecord: TrainRecord | null = null;
    try {
      for (const [k, seed] of seeds.entries()) {
        // train.repeats and train.seed are left out of the hash and the training seed put in, so a model trains (and
        // resumes) the same whatever the repeat count; `seed` (the split's) stays in. train.epochs is left out too
        // unless the schedule depends on it (see the module comment).
        // The fine-tuning keys only when fine-tuning, so a scratch run's snapshots keep their directory.
        const hashed = [...TRAIN_PARAMS, ...(tuning ? FINE_TUNE_PARAMS : [])]
          .filter((p) => p !== 'train.repeats' && p !== 'train.seed' && (p !== 'train.epochs' || t.schedule === 'cosine'));
        const params = { ...pickParams(config, hashed), trainingSeed: seed };
        const snapshotDir = join(ctx.workDir, t.run, hashJson(params).slice(0, 16));
        const of = seeds.length > 1 ? ` (seed ${seed}, model ${k + 1} of ${seeds.length})` : '';
        ctx.log.info(`${tuning ? `fine-tuning ${config.pretrained.model}` : spec.architecture}${!tuning && t.modelParams ? ` (train.modelParams ${t.modelParams})` : ''} on ${train.n} training and ${validation?.n ?? 0} validation images, ${train.size}→${crop} crops, ${t.schedule} schedule${of}; snapshots in ${snapshotDir}`);
        const result = await trainModel(trainOptionsFromConfig(t, {
          train, validation, mean, spec, seed,
          snapshotDir, resumeFrom: k === 0 ? t.resumeFrom : null, log: (l) => ctx.log.info(l), signal: ctx.signal,
          threads: t.threads ?? defaultThreads(),
          fineTune: tuning?.fineTune ?? null, crop,
          onStart: (s) => {
            firstEpoch = s.epoch;
            if (s.done) return;
            const label = seeds.length > 1 ? 'epochs (all seeds)' : s.epoch > 0 ? `epochs ${s.epoch + 1}–${t.epochs}` : 'epochs';
            progress ??= ctx.progress(label, total - doneBefore - s.epoch);
          },
          onEpoch: (m, last) => {
            progress?.update(doneBefore + m.epoch - firstEpoch);
            if (last && k === seeds.length - 1) stopProgress();
          },
        }));
        doneBefore += result.state.epoch - firstEpoch;
        const bestAcc = result.state.bestAccuracy >= 0 ? result.state.bestAccuracy : null;
        ctx.log.info(`training stopped (${result.stopReason}) after ${result.state.epoch} epochs${of}; kept checkpoint: ${describeKeptCheckpoint(keptCheckpoint(result.metrics, t.schedule))}`);
        const dir = repeatDir(config, seed);
        const target = join(out, dir);
        mkdirSync(target, { recursive: true });
        await result.model.save(fileSaver(target));
        const last = result.metrics[result.metrics.length - 1];
        repeats.push({ seed, dir, stopReason: result.stopReason, bestEpoch: result.state.bestEpoch, bestValidationAccuracy: bestAcc, finalTrainLoss: last?.trainLoss ?? null });
        const record: TrainRecord = {
          config,
          architecture: tuning
            ? { name: `fine-tuned ${config.pretrained.model}`, freeze: t.freeze, pretrainedLearningRateScale: t.pretrainedLearningRateScale }
            : { name: spec.architecture, params: spec.params, convs: spec.convs, denses: spec.denses },
          backend: backend.name,
          labelNames: train.labelNames,
          imageSize: train.size,
          crop,
          subtractMean,
          ...(tuning ? { init: 'pretrained', pretrained: { model: config.pretrained.model, preprocessing: tuning.fineTune.preprocessing } } : {}),
          seed,
          stopReason: result.stopReason,
          bestEpoch: result.state.bestEpoch,
          bestValidationAccuracy: bestAcc,
          bestValidationLoss: result.state.bestLoss,
        };
        if (k === 0) firstRecord = record;
        else writeTrainRecord(target, record);
        writeEpochMetrics(target, result.metrics);
        result.model.dispose();
      }
    } finally {
      stopProgress();
    }
    // The first model's config.json is written last, listing every repeat, so it is complete once it exists.
    if (!firstRecord) throw new Error(`train.repeats = ${t.repeats}: no model was trained`);
    writeTrainRecord(out, { ...firstRecord, repeats });
  },
};
