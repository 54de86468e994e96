/**
 * The stage registry: every target of `covers make`, in pipeline order. Each pairs its declaration
 * (declarations.ts) with its implementation module, `stages/<name>.ts`, imported only when the stage runs, so
 * listing, planning and `covers status` load no stage code (no TensorFlow.js, crawlee, sharp or cheerio).
 */
import { lazyStage, type Stage } from '../pipeline/stage.ts';
import * as d from './declarations.ts';

/** The `discover` stage: `discover_web` listings → `candidates.arrow`. */
export const discoverStage: Stage = lazyStage(d.discoverDeclaration, async () => (await import('./discover.ts')).discoverStage);

/** The `label` stage: `candidates.arrow` → `labels.arrow`. */
export const labelStage: Stage = lazyStage(d.labelDeclaration, async () => (await import('./label.ts')).labelStage);

/** The `select` stage: candidates and labels (or `select.fromManifest`) → `selection.arrow`. */
export const selectStage: Stage = lazyStage(d.selectDeclaration, async () => (await import('./select.ts')).selectStage);

/** The `download` stage: `selection.arrow` → `images/`, `manifest.tsv`, `rejected.tsv`. */
export const downloadStage: Stage = lazyStage(d.downloadDeclaration, async () => (await import('./download.ts')).downloadStage);

/** The `split` stage: `manifest.tsv` → `splits.arrow`. */
export const splitStage: Stage = lazyStage(d.splitDeclaration, async () => (await import('./split.ts')).splitStage);

/** The `shards` stage: `splits.arrow` and the downloaded images → the shards (`d.SHARDS_OUTPUTS`). */
export const shardsStage: Stage = lazyStage(d.shardsDeclaration, async () => (await import('./shards.ts')).shardsStage);

/** The `mean` stage: training shards → `shards/mean.arrow`, `shards/mean.json`. */
export const meanStage: Stage = lazyStage(d.meanDeclaration, async () => (await import('./mean.ts')).meanStage);

/** The `train` stage: shards and per-pixel mean → `models/<train.run>/`. */
export const trainStage: Stage = lazyStage(d.trainDeclaration, async () => (await import('./train.ts')).trainStage);

/** The `evaluate` stage: `models/<train.run>/` and the test shards → `eval/metrics.json`. */
export const evaluateStage: Stage = lazyStage(d.evaluateDeclaration, async () => (await import('./evaluate.ts')).evaluateStage);

/** The `inspect` stage: model, test shards, predictions → `eval/inspect/` (what the network learned). */
export const inspectStage: Stage = lazyStage(d.inspectDeclaration, async () => (await import('./inspect.ts')).inspectStage);

/** The `baseline` stage: `shards` → `eval/baseline.json`. */
export const baselineStage: Stage = lazyStage(d.baselineDeclaration, async () => (await import('./baseline.ts')).baselineStage);

/**
 * The `report` stage: everything above → `report/index.html`. Its parameters are the whole resolved configuration,
 * because the page prints it (and its hash, `train.backend`, `train.architecture`): any configuration change makes
 * the report stale.
 */
export const reportStage: Stage = lazyStage(d.reportDeclaration, async () => (await import('./report.ts')).reportStage);

/** All stages, in pipeline order (dependencies before dependents). */
export const STAGES: readonly Stage[] = [
  discoverStage,
  labelStage,
  selectStage,
  downloadStage,
  splitStage,
  shardsStage,
  meanStage,
  trainStage,
  evaluateStage,
  inspectStage,
  baselineStage,
  reportStage,
];
