/**
 * The stage registry: every target of `covers make`, in pipeline order. What each stage is (its inputs, params,
 * outputs, and the comment describing it) is its declaration in declarations.ts; here each declaration is paired with
 * its implementation module, `stages/<name>.ts`, imported only when the stage runs, so listing, planning and
 * `covers status` load no stage code (no TensorFlow.js, crawlee, sharp or cheerio).
 */
import { lazyStage, type Stage } from '../pipeline/stage.ts';
import * as d from './declarations.ts';

/** {@link d.discoverDeclaration}, its work in stages/discover.ts. */
export const discoverStage: Stage = lazyStage(d.discoverDeclaration, async () => (await import('./discover.ts')).discoverStage);
/** {@link d.labelDeclaration}, its work in stages/label.ts. */
export const labelStage: Stage = lazyStage(d.labelDeclaration, async () => (await import('./label.ts')).labelStage);
/** {@link d.selectDeclaration}, its work in stages/select.ts. */
export const selectStage: Stage = lazyStage(d.selectDeclaration, async () => (await import('./select.ts')).selectStage);
/** {@link d.downloadDeclaration}, its work in stages/download.ts. */
export const downloadStage: Stage = lazyStage(d.downloadDeclaration, async () => (await import('./download.ts')).downloadStage);
/** {@link d.splitDeclaration}, its work in stages/split.ts. */
export const splitStage: Stage = lazyStage(d.splitDeclaration, async () => (await import('./split.ts')).splitStage);
/** {@link d.shardsDeclaration}, its work in stages/shards.ts. */
export const shardsStage: Stage = lazyStage(d.shardsDeclaration, async () => (await import('./shards.ts')).shardsStage);
/** {@link d.meanDeclaration}, its work in stages/mean.ts. */
export const meanStage: Stage = lazyStage(d.meanDeclaration, async () => (await import('./mean.ts')).meanStage);
/** {@link d.featuresDeclaration}, its work in stages/features.ts. */
export const featuresStage: Stage = lazyStage(d.featuresDeclaration, async () => (await import('./features.ts')).featuresStage);
/** {@link d.trainDeclaration}, its work in stages/train.ts. */
export const trainStage: Stage = lazyStage(d.trainDeclaration, async () => (await import('./train.ts')).trainStage);
/** {@link d.searchDeclaration}, its work in stages/search.ts. */
export const searchStage: Stage = lazyStage(d.searchDeclaration, async () => (await import('./search.ts')).searchStage);
/** {@link d.evaluateDeclaration}, its work in stages/evaluate.ts. */
export const evaluateStage: Stage = lazyStage(d.evaluateDeclaration, async () => (await import('./evaluate.ts')).evaluateStage);
/** {@link d.inspectDeclaration}, its work in stages/inspect.ts. */
export const inspectStage: Stage = lazyStage(d.inspectDeclaration, async () => (await import('./inspect.ts')).inspectStage);
/** {@link d.baselineDeclaration}, its work in stages/baseline.ts. */
export const baselineStage: Stage = lazyStage(d.baselineDeclaration, async () => (await import('./baseline.ts')).baselineStage);
/** {@link d.reportDeclaration}, its work in stages/report.ts. */
export const reportStage: Stage = lazyStage(d.reportDeclaration, async () => (await import('./report.ts')).reportStage);

/** {@link d.exportDeclaration}, its work in stages/export.ts (not part of `all`). */
export const exportStage: Stage = lazyStage(d.exportDeclaration, async () => (await import('./export.ts')).exportStage);

/** All stages, in pipeline order (dependencies before dependents). */
export const STAGES: readonly Stage[] = [
  discoverStage, labelStage, selectStage, downloadStage, splitStage, shardsStage, meanStage, featuresStage, searchStage, trainStage, evaluateStage, inspectStage, baselineStage, reportStage, exportStage,
];
