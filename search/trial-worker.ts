/**
 * A worker thread that runs search trials (search/trial.ts) for search/pool.ts: it reads the splits and the mean
 * once, then runs each trial it is sent, reporting every epoch's validation loss (for the other trials' successive
 * halving) and the outcome. Messages: see {@link ToWorker} and {@link FromWorker}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../pipeline/config-core.ts';
import { readMean } from '../schemas/mean.ts';
import { readSplit, type SplitData } from '../schemas/shards/read.ts';
import { selectBackend } from '../train/backends.ts';
import { ashaPrunes, lossesAt, type AshaOptions } from './asha.ts';
import { runTrial, type TrialOutcome } from './trial.ts';

/** What the worker is started with. */
export interface TrialWorkerData {
  backend: Config['train']['backend'];
  trainDir: string;
  validationDir: string;
  meanFile: string;
}

/** One trial to run. */
export interface TrialJob {
  trial: number;
  /** The trial's configuration, or the message of why it has none. */
  config: Config | { error: string };
  epochs: number;
  threads: number;
  snapshotDir: string;
  /** Successive halving, or null for none. */
  asha: AshaOptions | null;
  /** The pretrained network of fine-tuning trials (search/trial.ts TrialInput.pretrained), or null. */
  pretrained: { file: string; crop: number } | null;
  /** Validation losses per epoch of every other trial known when it starts (finished or running). */
  curves: Record<number, number[]>;
}

/** Messages to the worker. */
export type ToWorker = { op: 'run'; job: TrialJob } | { op: 'epoch'; trial: number; loss: number };
/** Messages from the worker. */
export type FromWorker =
  | { op: 'ready' }
  | { op: 'epoch'; trial: number; loss: number }
  | { op: 'log'; line: string }
  | { op: 'done'; trial: number; outcome: TrialOutcome }
  | { op: 'error'; message: string };

const port = parentPort!;
const data = workerData as TrialWorkerData;
let splits: { train: SplitData; validation: SplitData; mean: Float32Array } | null = null;
/** Curves of the other trials, updated as they report epochs. */
let curves: Record<number, number[]> = {};

async function load(): Promise<NonNullable<typeof splits>> {
  if (splits) return splits;
  await selectBackend(data.backend);
  const train = await readSplit(data.trainDir);
  const validation = await readSplit(data.validationDir);
  splits = { train, validation, mean: readMean(data.meanFile, train.size) };
  return splits;
}

async function run(job: TrialJob): Promise<void> {
  const s = await load();
  curves = { ...job.curves };
  const outcome = await runTrial({
    config: 'error' in job.config ? new Error(job.config.error) : job.config,
    train: s.train, validation: s.validation, mean: s.mean, pretrained: job.pretrained, epochs: job.epochs, threads: job.threads, snapshotDir: job.snapshotDir,
    log: (line) => port.postMessage({ op: 'log', line } satisfies FromWorker),
    prune: (epoch, loss) => {
      port.postMessage({ op: 'epoch', trial: job.trial, loss } satisfies FromWorker);
      return job.asha !== null && ashaPrunes(job.asha, epoch, loss, lossesAt(Object.values(curves), epoch));
    },
  });
  port.postMessage({ op: 'done', trial: job.trial, outcome } satisfies FromWorker);
}

port.on('message', (m: ToWorker) => {
  if (m.op === 'epoch') (curves[m.trial] ??= []).push(m.loss);
  else run(m.job).catch((e: unknown) => port.postMessage({ op: 'error', message: (e as Error).message } satisfies FromWorker));
});
port.postMessage({ op: 'ready' } satisfies FromWorker);
