/**
 * The training options a `train.*` configuration gives {@link trainModel}: one place, so that the `train` stage and
 * every `search` trial train the same way from the same keys.
 */
import type { Config } from '../pipeline/config-core.ts';
import type { TrainOptions } from './train-loop.ts';

/** What a run supplies beside the `train.*` keys (`epochs` and `threads`, when given, override the config's). */
export type RunOptions = Pick<TrainOptions, 'train' | 'validation' | 'mean' | 'spec' | 'seed' | 'snapshotDir' | 'log'>
  & Partial<Pick<TrainOptions, 'signal' | 'resumeFrom' | 'onStart' | 'onEpoch' | 'threads' | 'epochs' | 'workerLoader' | 'fineTune' | 'crop'>>;

/**
 * {@link TrainOptions} from the `train.*` keys of `t` and the run's own `r`. `train.threads` null means 1 here;
 * callers pass `r.threads` for "all cores".
 */
export function trainOptionsFromConfig(t: Config['train'], r: RunOptions): TrainOptions {
  // The `train` section as the caller's view of the configuration holds it: TrainSettings (train/train-loop.ts) names
  // the keys the loop reads, so they are not restated here.
  return { ...t, threads: t.threads ?? 1, ...r };
}
