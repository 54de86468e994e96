/**
 * The stage registry: every target of `covers make`, in pipeline order.
 */
import type { Stage } from '../pipeline/stage.ts';
import { discoverStage } from './discover.ts';
import { labelStage } from './label.ts';
import { selectStage } from './select.ts';
import { downloadStage } from './download.ts';
import { splitStage } from './split.ts';
import { shardsStage } from './shards.ts';
import { meanStage } from './mean.ts';
import { trainStage } from './train.ts';
import { evaluateStage } from './evaluate.ts';
import { baselineStage } from './baseline.ts';
import { reportStage } from './report.ts';

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
  baselineStage,
  reportStage,
];
