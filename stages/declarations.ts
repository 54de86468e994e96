/**
 * What every stage is, without its code: name, description, dependencies, the data-directory files it reads,
 * parameters, outputs, version — and the constants stage modules share with their declaration (parameter lists,
 * output paths). The registry (index.ts) pairs each declaration with its lazily imported implementation.
 *
 * Adding a stage: declare it here, register it in index.ts, write `stages/<name>.ts` exporting
 * `<name>Stage: StageImplementation`, and read only the paths declared in `inputs` (through `ctx.path`) and the config
keys declared in `params` or `tuning` (through `ctx.config`, which throws on any other). Stages share
 * nothing but the data directory: a stage module imports no other stage module (only this one).
 */
import { resolve } from 'node:path';
import { hashJson, pickParams, type Config } from '../pipeline/config-core.ts';
import { LOCK_FILE } from '../pipeline/lock.ts';
import type { StageDeclaration } from '../pipeline/stage.ts';
import { FEATURES_DIR, FOREST_OUTPUT, INSPECT_DIR, LINEAR_SVM_OUTPUT, metricsPath, modelDir, PREDICTIONS_OUTPUT, PRETRAINED_FOREST_OUTPUT, PRETRAINED_LINEAR_SVM_OUTPUT, SEARCH_BEST, SEARCH_TRIALS } from '../schemas/paths.ts';
import { splitDir, SPLIT_NAMES } from '../schemas/shards/names.ts';
import { localModelFiles } from '../schemas/pretrained-names.ts';

/** Config keys whose values change the shards' bytes. */
const SHARDS_PARAMS = ['genres', 'image.size', 'image.fit', 'image.maxPixels', 'shards.decoder', 'shards.maxShardBytes', 'shards.recordBatchRows'] as const;

/** The declared outputs of `shards`, relative to the data directory (one by one: `mean` writes next to them). */
const SHARDS_OUTPUTS = ['shards/dataset_dict.json', ...SPLIT_NAMES.map((s) => splitDir(s)), 'shards/rejected.tsv'] as const;

/** sha256 of the shard-relevant configuration: recorded in every shard's schema metadata. */
export function shardsConfigHash(config: Config): string {
  return hashJson(pickParams(config, SHARDS_PARAMS));
}

/**
 * What the client for Bandcamp's site reads (`siteClient` in bandcamp/client.ts) besides `crawl.maxPageBytes`: its
 * request budget, retries, backoff, timeouts, transport and User-Agent. None of them changes what an answer says, only
 * how and how fast it is fetched (a request that spends its retries stops the stage to be rerun later, nothing is kept).
 */
const SITE_CLIENT_TUNING = [
  'crawl.maxRequestsPerMinute', 'crawl.maxConcurrency', 'crawl.impersonate', 'crawl.timeoutMs', 'crawl.maxRetries', 'crawl.maxBlockedRetries',
  'crawl.backoff', 'bandcamp.userAgent',
] as const;

/** Config keys that decide the trained model (`train.backend` and `train.resumeFrom` do not). */
export const TRAIN_PARAMS = [
  'seed', 'image.size',
  'train.architecture', 'train.modelParams', 'train.crop', 'train.mirror', 'train.subtractMean', 'train.optimizer',
  'train.learningRate', 'train.momentum', 'train.adam', 'train.batchSize', 'train.epochs', 'train.schedule', 'train.patience',
  'train.plateau', 'train.cosine', 'train.weightDecay', 'train.seed', 'train.repeats', 'train.snapshotEvery', 'train.run',
  'train.fromSearch',
] as const;

/**
 * Config keys that decide a fine-tuned model (`train.init = pretrained`, train/fine-tune.ts) beside {@link TRAIN_PARAMS}:
 * the network and its preprocessing. Not searched: `search` trains from scratch.
 */
export const FINE_TUNE_PARAMS = [
  'train.init', 'train.freeze', 'train.pretrainedLearningRateScale',
  'pretrained.model', 'pretrained.sha256', 'pretrained.input', 'pretrained.channelOrder', 'pretrained.scale', 'pretrained.mean', 'pretrained.std',
] as const;

/** The outputs of the configured `baseline.model`: {@link FOREST_OUTPUT} and/or {@link LINEAR_SVM_OUTPUT}. */
function baselineOutputs(c: Config): string[] {
  const m = c.baseline.model;
  const f = c.baseline.features;
  const out: string[] = [];
  if (f !== 'pretrained') out.push(...(m === 'linear-svm' ? [] : [FOREST_OUTPUT]), ...(m === 'forest' ? [] : [LINEAR_SVM_OUTPUT]));
  if (f !== 'pixels') out.push(...(m === 'linear-svm' ? [] : [PRETRAINED_FOREST_OUTPUT]), ...(m === 'forest' ? [] : [PRETRAINED_LINEAR_SVM_OUTPUT]));
  return out;
}

/** The report's declared output (a directory), relative to the data directory. */
export const REPORT_DIR = 'report';
/** The page inside {@link REPORT_DIR}, relative to the data directory. */
export const REPORT_PAGE = 'report/index.html';

/**
 * Everything the report reads: the funnel's files, the shards (contact sheets) and the mean, the training curves,
 * the evaluations (the convnet's, with its repeats over training seeds, and the baselines `baseline.model` configures:
 * the forest's and/or the linear SVM's), what the network learned (`eval/inspect/`), the lock file (stage timings), and
 * with `train.fromSearch` the search's trials.
 */
function reportInputs(config: Config): string[] {
  return [
    'candidates.arrow', 'labels.arrow', 'selection.arrow', 'manifest.tsv', 'rejected.tsv', 'splits.arrow', 'split/audit.json',
    'shards/rejected.tsv', ...SPLIT_NAMES.map((s) => splitDir(s)), 'shards/mean.arrow',
    metricsPath(config.train.run), 'eval/metrics.json', INSPECT_DIR, ...baselineOutputs(config), LOCK_FILE,
    ...(config.train.fromSearch ? [SEARCH_TRIALS] : []),
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
  // A listing page over crawl.maxListingBytes stops the stage with an error; it never becomes part of the output.
  // crawl.maxPageBytes is only the client's default limit: every discover_web request sets its own.
  tuning: [...SITE_CLIENT_TUNING, 'crawl.maxListingBytes', 'crawl.maxPageBytes'],
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
  // In `tags` mode an album page over crawl.maxPageBytes is kept as rejected (`too-large`): the limit decides the labels.
  params: (config) => (config.label.mode === 'tags' ? ['genres', 'label.mode', 'bandcamp.origin', 'crawl.maxPageBytes'] : ['genres', 'label.mode']),
  tuning: SITE_CLIENT_TUNING,
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
  tuning: ['perGenre'], // only in its log lines ("need N"): the ranking holds every eligible album whatever perGenre is
  extraInputs: (config) => (config.select.fromManifest ? [resolve(config.select.fromManifest)] : []),
  outputs: ['selection.arrow'],
  version: 3, // 3: band_id
};

/** The `download` stage: `selection.arrow` → `images/`, `manifest.tsv`, `rejected.tsv`. */
export const downloadDeclaration: StageDeclaration = {
  name: 'download',
  description: 'download each genre’s covers until it has perGenre valid, distinct images',
  deps: ['select'],
  inputs: ['selection.arrow'],
  // crawl.pageSize sizes the further listing it asks discover for when a genre is short.
  params: ['genres', 'perGenre', 'bandcamp.imageOrigin', 'image.format', 'image.maxPixels', 'select.allowShort', 'select.fromManifest', 'download.maxBytes', 'download.truncatedRuns', 'crawl.maxRounds', 'crawl.pageSize', 'dedupe.near', 'dedupe.maxDistance'],
  // A cover that spent its retries keeps its place for the next run; it is not replaced.
  tuning: ['download.concurrency', 'download.timeoutMs', 'download.retries', 'crawl.maxBlockedRetries', 'crawl.backoff', 'crawl.impersonate', 'bandcamp.userAgent'],
  outputs: ['manifest.tsv', 'rejected.tsv'],
  inPlaceOutputs: ['images'],
  version: 3, // 3: perceptual hashes and band_id in the manifest; near-duplicates across genres rejected
};

/** The `split` stage: `manifest.tsv` → `splits.arrow`. */
export const splitDeclaration: StageDeclaration = {
  name: 'split',
  description: 'assign the downloaded images to train/validation/test, stratified by genre, each artist and near-duplicate group in one split (DATA_DIR/splits.arrow, split/audit.json)',
  deps: ['download'],
  inputs: ['manifest.tsv'],
  params: ['genres', 'seed', 'splits', 'split.groupBy', 'dedupe.near', 'dedupe.maxDistance'],
  outputs: ['splits.arrow', 'split/audit.json'],
  version: 2, // 2: artist and near-duplicate groups kept in one split; the leakage audit
};

/** The `shards` stage: `splits.arrow` and the downloaded images → {@link SHARDS_OUTPUTS}. */
export const shardsDeclaration: StageDeclaration = {
  name: 'shards',
  description: 'preprocess the images to S×S RGB and write Arrow shards in the Hugging Face datasets layout (DATA_DIR/shards/)',
  deps: ['split'],
  inputs: ['splits.arrow', 'images'],
  // An image still decoding after shards.decodeTimeoutMs is rejected (`decoder-timeout`), so the timeout decides the
  // shards' rows; it stays out of the shards' own hash (SHARDS_PARAMS), which no decode timing should change.
  params: [...SHARDS_PARAMS, 'shards.decodeTimeoutMs'],
  tuning: ['shards.concurrency'], // worker count and images in flight
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

/** Config keys the `features` stage reads. */
export const FEATURES_PARAMS = [
  'genres', 'pretrained.model', 'pretrained.sha256', 'pretrained.input', 'pretrained.channelOrder', 'pretrained.scale', 'pretrained.mean', 'pretrained.std',
  'pretrained.layer', 'pretrained.crops', 'pretrained.batchSize', 'pretrained.engine', 'train.backend', 'shards.maxShardBytes',
];

/** The `features` stage: the shards and a pretrained network (`pretrained.model`) → `features/<split>/`. */
export const featuresDeclaration: StageDeclaration = {
  name: 'features',
  description: "a pretrained network's features of every shard row (pretrained.model, .layer) → features/<split>/",
  deps: ['shards'],
  inputs: SPLIT_NAMES.map((s) => splitDir(s)),
  params: FEATURES_PARAMS,
  // A local file is hashed; a URL's download is pinned by pretrained.sha256 (and named by pretrained.model).
  extraInputs: (c) => localModelFiles(c.pretrained.model),
  tuning: ['pretrained.threads'],
  outputs: [FEATURES_DIR],
  version: 1,
};

/** The `train` stage: shards and per-pixel mean (and `search/best.json` with `train.fromSearch`) → `models/<train.run>/`. */
export const trainDeclaration: StageDeclaration = {
  name: 'train',
  description: 'train the convnet on the training split (TensorFlow.js) → models/<run>/',
  // With train.fromSearch, the search's best configuration: `make train` (or evaluate) then makes `search` first.
  deps: (c) => ['shards', 'mean', ...(c.train.fromSearch ? ['search'] : [])],
  inputs: (c) => [splitDir('train'), splitDir('validation'), 'shards/mean.arrow', ...(c.train.fromSearch ? [SEARCH_BEST] : [])],
  params: [...TRAIN_PARAMS, ...FINE_TUNE_PARAMS],
  // A local pretrained.model is hashed when fine-tuning (a URL's download is pinned by pretrained.sha256).
  extraInputs: (c) => (c.train.init === 'pretrained' ? localModelFiles(c.pretrained.model) : []),
  // train.resumeFrom only seeds the first snapshot of a run (the user's explicit choice); the rest change the speed.
  tuning: ['train.backend', 'train.threads', 'train.balance', 'train.resumeFrom'],
  outputs: (c) => [modelDir(c.train.run)],
  version: 3, // 3: config.json records the settings train declares, not the whole configuration (a finished run's snapshot rewrites it in seconds)
};

/** `train.*` keys of {@link TRAIN_PARAMS} that only the `train` stage reads: a search trial's run is its own. */
const RUN_ONLY = ['train.epochs', 'train.repeats', 'train.run', 'train.snapshotEvery', 'train.fromSearch'];

/**
 * Config keys the `search` stage reads: the training keys a trial trains with, how trials run (`train.backend`,
 * `train.threads`, `train.balance`), and the `search` section. {@link SEARCH_RESUMABLE_PARAMS} decide which recorded
 * trials a rerun continues from.
 */
export const SEARCH_PARAMS = [
  ...TRAIN_PARAMS.filter((p) => !RUN_ONLY.includes(p)), ...FINE_TUNE_PARAMS, 'train.backend', 'train.threads', 'train.balance', 'search',
] as const;

/**
 * The keys whose values make the recorded trials of a search valid for a rerun: all of {@link SEARCH_PARAMS} but the
 * budget (`search.trials`), how many run at once (`search.parallel`) and how they run (backend, threads, balance).
 */
export const SEARCH_RESUMABLE_PARAMS = [
  ...TRAIN_PARAMS.filter((p) => !RUN_ONLY.includes(p)), ...FINE_TUNE_PARAMS,
  'search.epochs', 'search.algorithm', 'search.tpe', 'search.seed', 'search.space', 'search.pruner', 'search.asha',
] as const;

/** The `search` stage: shards and mean → `search/trials.tsv`, `search/best.json`. */
export const searchDeclaration: StageDeclaration = {
  name: 'search',
  description: 'hyperparameter search (TPE or random, ASHA pruning) on the validation split → search/trials.tsv, best.json',
  deps: ['shards', 'mean'],
  inputs: [splitDir('train'), splitDir('validation'), 'shards/mean.arrow'],
  params: SEARCH_PARAMS,
  // With train.init = pretrained the trials fine-tune pretrained.model: a local file is hashed, as for train.
  extraInputs: (c) => (c.train.init === 'pretrained' ? localModelFiles(c.pretrained.model) : []),
  outputs: [SEARCH_TRIALS, SEARCH_BEST],
  version: 1,
};

/** The `evaluate` stage: `models/<train.run>/` and the test shards → `eval/metrics.json`. */
export const evaluateDeclaration: StageDeclaration = {
  name: 'evaluate',
  description: 'score the trained convnet on the test split (multi-crop) → eval/metrics.json',
  deps: ['train'],
  inputs: (c) => [modelDir(c.train.run), splitDir('test'), 'shards/mean.arrow'],
  params: ['eval', 'train.run'],
  tuning: ['train.backend', 'train.threads'],
  outputs: ['eval/metrics.json', PREDICTIONS_OUTPUT],
  version: 3, // 3: also writes the per-image predictions
};

/**
 * The `inspect` stage: the model, test shards, mean, predictions, labels and manifest → `eval/inspect/`; with
 * `pretrained.model` set, also the test split's pretrained features (`features/test`), embedded beside the
 * network's activations: `make inspect` (or `report`) then makes `features` first.
 */
export const inspectDeclaration: StageDeclaration = {
  name: 'inspect',
  description: 'what the network learned: filters, right and wrong covers, saliency, embeddings, accuracy by source → eval/inspect/',
  deps: (c) => ['evaluate', ...(c.pretrained.model ? ['features'] : [])],
  inputs: (c) => [
    modelDir(c.train.run), splitDir('test'), 'shards/mean.arrow', PREDICTIONS_OUTPUT, 'manifest.tsv', ...(c.select.fromManifest ? [] : ['labels.arrow']),
    ...(c.pretrained.model ? [`${FEATURES_DIR}/test`] : []),
  ],
  params: ['seed', 'inspect', 'train.run', 'train.backend', 'select.fromManifest', 'pretrained.model'],
  outputs: [INSPECT_DIR],
  version: 1,
};

/** The `baseline` stage: `shards` → `eval/baseline.json` and/or `eval/baseline-linear-svm.json`. */
export const baselineDeclaration: StageDeclaration = {
  name: 'baseline',
  description: 'the study baselines on downsampled pixels and/or pretrained features: random forest and/or linear SVM → eval/baseline*.json',
  // With baseline.features ≠ pixels it also reads the features target's output: `make baseline` then makes `features` first.
  deps: (c) => ['shards', ...(c.baseline.features === 'pixels' ? [] : ['features'])],
  inputs: (c) => [splitDir('train'), splitDir('test'), ...(c.baseline.features === 'pixels' ? [] : [`${FEATURES_DIR}/train`, `${FEATURES_DIR}/test`])],
  params: [
    'seed', 'train.seed', 'train.repeats', 'baseline.model', 'baseline.features', 'baseline.trees', 'baseline.pixels', 'baseline.grayscale', 'baseline.maxFeatures', 'baseline.maxSamples',
    'baseline.minSamplesSplit', 'baseline.svmC', 'baseline.svmMaxIter',
  ],
  tuning: ['baseline.threads'], // the forest is the same for any thread count
  outputs: baselineOutputs,
  version: 4,
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

/**
 * The `export` stage: shards and mean → `export/<format>/` for each of `export.formats` (Parquet, WebDataset,
 * TFRecord; schemas/export/). No stage depends on it, so `covers make all` (= `report`) never runs it: build it with
 * `covers make export`.
 */
export const exportDeclaration: StageDeclaration = {
  name: 'export',
  description: 'export the shards and mean as Parquet, WebDataset and/or TFRecord (export.formats) → export/<format>/',
  deps: ['shards', 'mean'],
  inputs: [...SPLIT_NAMES.map((s) => splitDir(s)), 'shards/mean.arrow'],
  params: ['export'],
  outputs: ['export'],
  version: 1,
};
