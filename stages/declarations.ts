/**
 * What every stage is, without its code: name, description, dependencies, the data-directory files it reads,
 * parameters, outputs, version — and the constants stage modules share with their declaration (parameter lists,
 * output paths). The registry (index.ts) pairs each declaration with its lazily imported implementation.
 *
 * Adding a stage: declare it here, register it in index.ts, write `stages/<name>.ts` exporting
 * `<name>Stage: StageImplementation`, and read only the paths declared in `inputs` (through `ctx.path`). Stages share
 * nothing but the data directory: a stage module imports no other stage module (only this one).
 */
import { resolve } from 'node:path';
import { hashJson, pickParams, type Config } from '../pipeline/config-core.ts';
import { LOCK_FILE } from '../pipeline/lock.ts';
import type { StageDeclaration } from '../pipeline/stage.ts';
import { FOREST_OUTPUT, INSPECT_DIR, LINEAR_SVM_OUTPUT, metricsPath, modelDir, PREDICTIONS_OUTPUT } from '../schemas/paths.ts';
import { splitDir, SPLIT_NAMES } from '../schemas/shards/names.ts';

/** Config keys whose values change the shards' bytes. */
export const SHARDS_PARAMS = ['genres', 'image.size', 'image.fit', 'image.maxPixels', 'shards.decoder', 'shards.maxShardBytes', 'shards.recordBatchRows'] as const;

/** The declared outputs of `shards`, relative to the data directory (one by one: `mean` writes next to them). */
export const SHARDS_OUTPUTS = ['shards/dataset_dict.json', ...SPLIT_NAMES.map((s) => splitDir(s)), 'shards/rejected.tsv'] as const;

/** sha256 of the shard-relevant configuration: recorded in every shard's schema metadata. */
export function shardsConfigHash(config: Config): string {
  return hashJson(pickParams(config, SHARDS_PARAMS));
}

/** Config keys that decide the trained model (`train.backend` and `train.resumeFrom` do not). */
export const TRAIN_PARAMS = [
  'seed', 'image.size',
  'train.architecture', 'train.modelParams', 'train.crop', 'train.mirror', 'train.subtractMean', 'train.optimizer',
  'train.learningRate', 'train.momentum', 'train.adam', 'train.batchSize', 'train.epochs', 'train.schedule', 'train.patience',
  'train.plateau', 'train.cosine', 'train.weightDecay', 'train.seed', 'train.repeats', 'train.snapshotEvery', 'train.run',
] as const;

/** The outputs of the configured `baseline.model`: {@link FOREST_OUTPUT} and/or {@link LINEAR_SVM_OUTPUT}. */
export function baselineOutputs(c: Config): string[] {
  const m = c.baseline.model;
  return [...(m === 'linear-svm' ? [] : [FOREST_OUTPUT]), ...(m === 'forest' ? [] : [LINEAR_SVM_OUTPUT])];
}

/** The report's declared output (a directory), relative to the data directory. */
export const REPORT_DIR = 'report';
/** The page inside {@link REPORT_DIR}, relative to the data directory. */
export const REPORT_PAGE = 'report/index.html';

/**
 * Everything the report reads: the funnel's files, the shards (contact sheets) and the mean, the training curves,
 * the evaluations (the convnet's, with its repeats over training seeds, and the baselines `baseline.model` configures:
 * the forest's and/or the linear SVM's), what the network learned (`eval/inspect/`), and the lock file (stage timings).
 */
export function reportInputs(config: Config): string[] {
  return [
    'candidates.arrow', 'labels.arrow', 'selection.arrow', 'manifest.tsv', 'rejected.tsv', 'splits.arrow',
    'shards/rejected.tsv', ...SPLIT_NAMES.map((s) => splitDir(s)), 'shards/mean.arrow',
    metricsPath(config.train.run), 'eval/metrics.json', INSPECT_DIR, ...baselineOutputs(config), LOCK_FILE,
  ];
}

/** Why the crawl stages are skipped when `select.fromManifest` rebuilds the dataset from a manifest, else null. */
function rebuildingFromManifest(config: Config): string | null {
  return config.select.fromManifest ? `select.fromManifest is set (${config.select.fromManifest})` : null;
}

/** The `discover` stage: `discover_web` listings → `candidates.arrow`. */
export const discoverDeclaration: StageDeclaration = {
  name: 'discover',
  description: 'list albums per genre tag via Bandcamp discover_web (resumable)',
  deps: [],
  inputs: [],
  params: ['genres', 'perGenre', 'bandcamp.origin', 'crawl.slice', 'crawl.pageSize', 'crawl.oversample', 'crawl.maxEmptyPages', 'crawl.maxPagesPerGenre'],
  outputs: ['candidates.arrow'],
  version: 2,
  skipWhen: rebuildingFromManifest,
};

/** The `label` stage: `candidates.arrow` → `labels.arrow`. */
export const labelDeclaration: StageDeclaration = {
  name: 'label',
  description: 'keep albums that match exactly one chosen genre (album tags, or listings)',
  deps: ['discover'],
  inputs: ['candidates.arrow'],
  params: (config) => (config.label.mode === 'tags' ? ['genres', 'label.mode', 'bandcamp.origin'] : ['genres', 'label.mode']),
  outputs: ['labels.arrow'],
  version: 2,
  skipWhen: rebuildingFromManifest,
};

/** The `select` stage: candidates and labels (or `select.fromManifest`) → `selection.arrow`. */
export const selectDeclaration: StageDeclaration = {
  name: 'select',
  description: 'rank each genre’s eligible albums in a seeded order (or take a manifest to rebuild)',
  deps: ['discover', 'label'],
  inputs: (config) => (config.select.fromManifest ? [] : ['candidates.arrow', 'labels.arrow']),
  params: ['genres', 'seed', 'select.fromManifest', 'crawl.pageSize'],
  extraInputs: (config) => (config.select.fromManifest ? [resolve(config.select.fromManifest)] : []),
  outputs: ['selection.arrow'],
  version: 2,
};

/** The `download` stage: `selection.arrow` → `images/`, `manifest.tsv`, `rejected.tsv`. */
export const downloadDeclaration: StageDeclaration = {
  name: 'download',
  description: 'download each genre’s covers until it has perGenre valid, distinct images',
  deps: ['select'],
  inputs: ['selection.arrow'],
  params: ['genres', 'perGenre', 'bandcamp.imageOrigin', 'image.format', 'image.maxPixels', 'select.allowShort', 'select.fromManifest', 'download.maxBytes', 'download.truncatedRuns', 'crawl.maxRounds'],
  outputs: ['manifest.tsv', 'rejected.tsv'],
  inPlaceOutputs: ['images'],
  version: 2,
};

/** The `split` stage: `manifest.tsv` → `splits.arrow`. */
export const splitDeclaration: StageDeclaration = {
  name: 'split',
  description: 'assign the downloaded images to train/validation/test, stratified by genre (DATA_DIR/splits.arrow)',
  deps: ['download'],
  inputs: ['manifest.tsv'],
  params: ['genres', 'seed', 'splits'],
  outputs: ['splits.arrow'],
  version: 1,
};

/** The `shards` stage: `splits.arrow` and the downloaded images → {@link SHARDS_OUTPUTS}. */
export const shardsDeclaration: StageDeclaration = {
  name: 'shards',
  description: 'preprocess the images to S×S RGB and write Arrow shards in the Hugging Face datasets layout (DATA_DIR/shards/)',
  deps: ['split'],
  inputs: ['splits.arrow', 'images'],
  params: SHARDS_PARAMS,
  outputs: SHARDS_OUTPUTS,
  version: 2, // 2: the fast resampler rounds halves up on every machine; the addon rejects malformed headers itself
};

/** The `mean` stage: training shards → `shards/mean.arrow`, `shards/mean.json`. */
export const meanDeclaration: StageDeclaration = {
  name: 'mean',
  description: 'per-pixel mean and per-channel mean/std of the training split (DATA_DIR/shards/mean.arrow, mean.json)',
  deps: ['shards'],
  inputs: [splitDir('train')],
  params: [],
  outputs: ['shards/mean.arrow', 'shards/mean.json'],
  version: 1,
};

/** The `train` stage: shards and per-pixel mean → `models/<train.run>/`. */
export const trainDeclaration: StageDeclaration = {
  name: 'train',
  description: 'train the convnet on the training split (TensorFlow.js) → models/<run>/',
  deps: ['shards', 'mean'],
  inputs: [splitDir('train'), splitDir('validation'), 'shards/mean.arrow'],
  params: TRAIN_PARAMS,
  outputs: (c) => [modelDir(c.train.run)],
  version: 2,
};

/** The `evaluate` stage: `models/<train.run>/` and the test shards → `eval/metrics.json`. */
export const evaluateDeclaration: StageDeclaration = {
  name: 'evaluate',
  description: 'score the trained convnet on the test split (multi-crop) → eval/metrics.json',
  deps: ['train'],
  inputs: (c) => [modelDir(c.train.run), splitDir('test'), 'shards/mean.arrow'],
  params: ['eval', 'train.run'],
  outputs: ['eval/metrics.json', PREDICTIONS_OUTPUT],
  version: 3, // 3: also writes the per-image predictions
};

/** The `inspect` stage: the model, test shards, mean, predictions, labels and manifest → `eval/inspect/`. */
export const inspectDeclaration: StageDeclaration = {
  name: 'inspect',
  description: 'what the network learned: filters, right and wrong covers, saliency, embeddings, accuracy by source → eval/inspect/',
  deps: ['evaluate'],
  inputs: (c) => [modelDir(c.train.run), splitDir('test'), 'shards/mean.arrow', PREDICTIONS_OUTPUT, 'manifest.tsv', ...(c.select.fromManifest ? [] : ['labels.arrow'])],
  params: ['seed', 'inspect', 'train.run', 'train.backend', 'select.fromManifest'],
  outputs: [INSPECT_DIR],
  version: 1,
};

/** The `baseline` stage: `shards` → `eval/baseline.json` and/or `eval/baseline-linear-svm.json`. */
export const baselineDeclaration: StageDeclaration = {
  name: 'baseline',
  description: 'the study baselines on downsampled pixels: random forest and/or linear SVM → eval/baseline*.json',
  deps: ['shards'],
  inputs: [splitDir('train'), splitDir('test')],
  // baseline.threads is left out: the forest is the same for any thread count.
  params: [
    'seed', 'train.repeats', 'baseline.model', 'baseline.trees', 'baseline.pixels', 'baseline.grayscale', 'baseline.maxFeatures', 'baseline.maxSamples',
    'baseline.minSamplesSplit', 'baseline.svmC', 'baseline.svmMaxIter',
  ],
  outputs: baselineOutputs,
  version: 3,
};

/**
 * The `report` stage: everything above → `report/index.html`. Its parameters are the whole resolved configuration,
 * because the page prints it (and its hash, `train.backend`, `train.architecture`): any configuration change makes
 * the report stale.
 */
export const reportDeclaration: StageDeclaration = {
  name: 'report',
  description: 'write report/index.html: funnel, contact sheets, training curves, confusion matrix, comparison with chance and the 2015 study',
  deps: ['evaluate', 'inspect', 'baseline'],
  inputs: reportInputs,
  params: (config) => Object.keys(config),
  outputs: [REPORT_DIR],
  version: 1,
};
