/**
 * The stage registry: every target of `covers make`, in pipeline order. A stage lands here when its module does.
 */
import type { Stage } from '../pipeline/stage.ts';

/** All stages, in pipeline order (dependencies before dependents). */
export const STAGES: readonly Stage[] = [
  // REGISTRY: one line per stage, in pipeline order (discover, label, select, download, split, shards, mean, train, evaluate, baseline, report)
];
