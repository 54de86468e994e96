/**
 * Trials in parallel (`search.parallel` > 1): one worker thread per concurrent trial (search/trial-worker.ts), each
 * training with its own `train.threads`. The pool relays each epoch's validation loss to the other workers, so their
 * successive halving judges against every trial running or done, as asynchronous successive halving does.
 */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../train/ts-worker.ts';
import type { TrialOutcome } from './trial.ts';
import type { FromWorker, TrialJob, TrialWorkerData } from './trial-worker.ts';

interface Slot {
  worker: Worker;
  /** Settles when the worker has loaded. */
  ready: Promise<void>;
  busy: boolean;
  trial: number | null;
  resolve: ((o: TrialOutcome) => void) | null;
  reject: ((e: Error) => void) | null;
}

/** A pool of trial workers. */
export class TrialPool {
  private slots: Slot[] = [];
  /** Validation losses per epoch of the trials run so far in this pool, by trial number. */
  readonly curves: Record<number, number[]> = {};

  private constructor(private readonly data: TrialWorkerData, private readonly log: (line: string) => void) {}

  /** Starts `n` workers and waits until they are ready. @throws Error when one cannot start. */
  static async start(n: number, data: TrialWorkerData, log: (line: string) => void): Promise<TrialPool> {
    const pool = new TrialPool(data, log);
    for (let i = 0; i < n; i++) pool.slots.push(pool.spawn());
    await Promise.all(pool.slots.map((s) => s.ready));
    return pool;
  }

  /** A new worker's slot, at once (its `ready` settles when the worker has started). */
  private spawn(): Slot {
    const worker = startTsWorker(new URL('./trial-worker.ts', import.meta.url), this.data);
    let ok!: () => void;
    let fail!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      ok = res;
      fail = rej;
    });
    ready.catch(() => {}); // a replacement that fails to start is reported by the next run()
    const slot: Slot = { worker, ready, busy: false, trial: null, resolve: null, reject: null };
    worker.on('message', (m: FromWorker) => {
      if (m.op === 'ready') ok();
      else this.onMessage(slot, m);
    });
    worker.on('error', (e) => {
      fail(e);
      slot.reject?.(e);
    });
    worker.on('exit', (code) => {
      fail(new Error(`trial worker exited (code ${code})`));
      slot.reject?.(new Error(`trial worker exited (code ${code})`));
    });
    return slot;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (m.op === 'log') this.log(m.line);
    else if (m.op === 'epoch') {
      (this.curves[m.trial] ??= []).push(m.loss);
      for (const other of this.slots) if (other !== slot && other.busy) other.worker.postMessage({ op: 'epoch', trial: m.trial, loss: m.loss });
    } else if (m.op === 'done') this.finish(slot, (r) => r.resolve?.(m.outcome));
    else if (m.op === 'error') this.finish(slot, (r) => r.reject?.(new Error(m.message)));
  }

  private finish(slot: Slot, settle: (s: Slot) => void): void {
    settle(slot);
    slot.busy = false;
    slot.trial = null;
    slot.resolve = null;
    slot.reject = null;
  }

  /** Whether a worker is free. */
  get idle(): boolean {
    return this.slots.some((s) => !s.busy);
  }

  /**
   * Runs `job` on a free worker. Resolves with the trial's outcome.
   * @throws Error when no worker is free, or the worker fails outside the trial (it then is replaced).
   */
  async run(job: TrialJob): Promise<TrialOutcome> {
    const slot = this.slots.find((s) => !s.busy);
    if (!slot) throw new Error('TrialPool.run: no free worker');
    slot.busy = true;
    slot.trial = job.trial;
    await slot.ready;
    return new Promise<TrialOutcome>((resolve, reject) => {
      slot.resolve = resolve;
      slot.reject = (e) => {
        // The worker failed outside the trial: replace it, so the pool keeps its size.
        slot.reject = null;
        this.slots = this.slots.map((s) => (s === slot ? this.spawn() : s));
        void slot.worker.terminate();
        reject(e);
      };
      slot.worker.postMessage({ op: 'run', job });
    });
  }

  /** Stops every worker (trials in flight are lost, their promises left pending). */
  async close(): Promise<void> {
    for (const s of this.slots) s.reject = null;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots = [];
  }
}
