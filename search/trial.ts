/**
 * One search trial: trains the trial's configuration on the training split with the training loop the `train` stage
 * uses (train/train-options.ts), for `search.epochs` epochs, scores it on the validation split (the lowest validation
 * loss over its epochs, and the accuracy at that epoch), and stops it early when the pruner says so. A trial that
 * cannot train (a model that does not fit the crop, a diverging learning rate, any error) ends as `failed` with the
 * message; only an interruption (Ctrl-C, kill) propagates.
 */
import { rmSync } from 'node:fs';
import type { Config } from '../pipeline/config-core.ts';
import { resolveModelSpec } from '../schemas/model-params.ts';
import type { SplitData } from '../schemas/shards/read.ts';
import type { TrialRecord } from '../schemas/search.ts';
import { InterruptedError } from '../util/errors.ts';
import { trainModel } from '../train/train-loop.ts';
import { trainOptionsFromConfig } from '../train/train-options.ts';
import { fineTuneSettings } from '../train/fine-tune.ts';

/** What one trial needs. */
export interface TrialInput {
  /** The trial's configuration (search/apply.ts), or the reason it has none (recorded as the failure). */
  config: Config | Error;
  train: SplitData;
  validation: SplitData;
  /** Per-pixel training mean `[S, S, 3]` float32 (used when the trial's `train.subtractMean` is true). */
  mean: Float32Array | null;
  /**
   * With `train.init = pretrained`: the local copy of `pretrained.model` and its input side (the crop), resolved once
   * by the stage (train/fine-tune.ts resolvePretrainedModel); null for scratch trials.
   */
  pretrained: { file: string; crop: number } | null;
  epochs: number;
  threads: number;
  /** Scratch directory for the training loop's snapshots; emptied before and removed after the trial. */
  snapshotDir: string;
  signal?: AbortSignal;
  log: (line: string) => void;
  /** Asked after each epoch with its validation loss: true stops the trial as pruned (ignored after the last epoch). */
  prune: (epoch: number, loss: number) => boolean;
}

/** A trial's outcome: its row of trials.tsv without the trial number and values. */
export type TrialOutcome = Omit<TrialRecord, 'trial' | 'values'>;

/**
 * Runs one trial (see the module comment).
 * @throws InterruptedError when `signal` aborts (the trial is lost, not recorded).
 */
export async function runTrial(i: TrialInput): Promise<TrialOutcome> {
  const t0 = performance.now();
  const losses: number[] = [];
  const accuracies: number[] = [];
  const seconds = () => Number(((performance.now() - t0) / 1000).toFixed(2));
  const outcome = (status: TrialOutcome['status'], message: string): TrialOutcome => {
    const k = losses.length ? losses.indexOf(Math.min(...losses)) : -1;
    return {
      status, epochs: losses.length, validationLoss: k >= 0 ? losses[k]! : null, validationAccuracy: k >= 0 ? accuracies[k]! : null,
      seconds: seconds(), validationLosses: losses, message,
    };
  };
  if (i.config instanceof Error) return outcome('failed', i.config.message);
  const c = i.config;
  const stop = new AbortController();
  let prunedAt = 0;
  rmSync(i.snapshotDir, { recursive: true, force: true });
  try {
    // A fine-tuning trial trains the imported network at its input size with its own preprocessing (no mean), as
    // the train stage does; its settings are checked per trial (e.g. Adam with a learning-rate scale fails the trial).
    const fineTune = fineTuneSettings(c, i.pretrained?.file ?? '');
    if (fineTune && !i.pretrained) throw new Error('train.init = pretrained: the search stage resolved no pretrained network');
    const crop = fineTune ? i.pretrained!.crop : c.train.crop;
    if (crop > i.train.size) throw new Error(`${fineTune ? `the pretrained network's input (${crop}×${crop})` : `train.crop = ${crop}`} is larger than the shard images (${i.train.size}×${i.train.size})`);
    const spec = resolveModelSpec(c.train.architecture, c.train.modelParams);
    const result = await trainModel(trainOptionsFromConfig(c.train, {
      train: i.train, validation: i.validation, mean: c.train.subtractMean && !fineTune ? i.mean : null, spec, seed: c.train.seed ?? c.seed,
      fineTune, crop,
      snapshotDir: i.snapshotDir, log: i.log, epochs: i.epochs, threads: i.threads,
      signal: i.signal ? AbortSignal.any([i.signal, stop.signal]) : stop.signal,
      onEpoch: (m, last) => {
        losses.push(m.validationLoss!);
        accuracies.push(m.validationAccuracy!);
        // Asked after every epoch, the last included (a parallel worker reports the loss to the others from here).
        if (i.prune(m.epoch, m.validationLoss!) && !last) {
          prunedAt = m.epoch;
          stop.abort();
        }
      },
    }));
    result.model.dispose();
    return outcome('complete', result.stopReason === 'epochs' ? '' : `stopped early: ${result.stopReason}`);
  } catch (e) {
    if (i.signal?.aborted) throw e instanceof InterruptedError ? e : new InterruptedError();
    if (prunedAt > 0) return outcome('pruned', `pruned after epoch ${prunedAt} (validation loss ${losses[prunedAt - 1]!.toFixed(4)} not in the best 1/η at that rung)`);
    return outcome('failed', (e as Error).message.split('\n')[0]!);
  } finally {
    rmSync(i.snapshotDir, { recursive: true, force: true });
  }
}
