/**
 * Where the runs and the evaluations live in the data directory. Their formats (schema, writer, reader) are owned by
 * schemas/model.ts and schemas/metrics.ts, which re-export these; the names stand apart so that the stage
 * declarations, and with them `covers --help` and `covers status`, load without zod.
 */

/** A run's directory, relative to the data directory: `models/<run>`. */
export function modelDir(run: string): string {
  return `models/${run}`;
}

/** `models/<run>/metrics.jsonl`, relative to the data directory. */
export function metricsPath(run: string): string {
  return `${modelDir(run)}/metrics.jsonl`;
}

/** `eval/baseline.json`, relative to the data directory: the random forest's metrics (the study's baseline). */
export const FOREST_OUTPUT = 'eval/baseline.json';
/** `eval/baseline-linear-svm.json`, relative to the data directory: the linear SVM's metrics. */
export const LINEAR_SVM_OUTPUT = 'eval/baseline-linear-svm.json';

/** `search/trials.tsv`, relative to the data directory: every trial of `search` (format: schemas/search.ts). */
export const SEARCH_TRIALS = 'search/trials.tsv';
/** `search/best.json`, relative to the data directory: the best configuration of `search` (format: schemas/search.ts). */
export const SEARCH_BEST = 'search/best.json';

/** `eval/baseline-pretrained.json`: the random forest on a pretrained network's features (`baseline.features`). */
export const PRETRAINED_FOREST_OUTPUT = 'eval/baseline-pretrained.json';
/** `eval/baseline-linear-svm-pretrained.json`: the linear SVM on a pretrained network's features. */
export const PRETRAINED_LINEAR_SVM_OUTPUT = 'eval/baseline-linear-svm-pretrained.json';

/** `features`, relative to the data directory: a pretrained network's features (format: schemas/features.ts). */
export const FEATURES_DIR = 'features';

/** `eval/predictions.arrow`, relative to the data directory: the convnet's per-image test predictions (schemas/predictions.ts). */
export const PREDICTIONS_OUTPUT = 'eval/predictions.arrow';
/** `eval/inspect`, relative to the data directory: what the network learned, for the report (schemas/inspect.ts). */
export const INSPECT_DIR = 'eval/inspect';
