/**
 * The batch loader: turns {@link BatchPlan}s into float32 batches `[B, crop, crop, 3]` ahead of the training step.
 *
 * Batches are built in a worker thread (train/batch-worker.ts) reading the split's SharedArrayBuffer, with up to
 * `prefetch` batches in flight, so the model does not wait for data; when a worker cannot start (e.g. no TypeScript
 * tsx), batches are built on the main thread and the loader says so (`mode`).
 */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from './ts-worker.ts';
import { fillBatch, type BatchPlan } from './augment.ts';
import type { SplitData } from '../schemas/shards/read.ts';

/** One batch ready for the model. */
export interface Batch {
  /** `[B, crop, crop, 3]` float32 HWC, mean-subtracted and scaled. */
  x: Float32Array;
  /** Labels of the batch's records, `[B]`. */
  labels: Int32Array;
  plan: BatchPlan;
}

/** Options of {@link BatchLoader}. */
export interface LoaderOptions {
  /** Side of the square crop, in pixels (≤ the split's image size S). */
  crop: number;
  /** Per-pixel mean `[S, S, 3]`, or null for none. */
  mean: Float32Array | null;
  /** Batches built ahead (default 2). */
  prefetch?: number;
  /** Use a worker thread (default true). */
  worker?: boolean;
}

/** Builds batches of one split; `close()` when done. */
export class BatchLoader {
  private worker: Worker | null = null;
  private pending = new Map<number, { resolve: (x: Float32Array) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  /** `worker` or `main-thread`, and why. */
  mode: string;

  constructor(readonly data: SplitData, readonly opts: LoaderOptions) {
    this.mode = 'main-thread (worker disabled)';
    if (opts.worker !== false) {
      try {
        this.worker = startTsWorker(new URL('./batch-worker.ts', import.meta.url), {
          images: data.images,
          size: data.size,
          crop: opts.crop,
          mean: opts.mean,
        });
        this.worker.unref();
        this.worker.on('message', (m: { id: number; x: Float32Array }) => {
          const p = this.pending.get(m.id);
          this.pending.delete(m.id);
          p?.resolve(m.x);
        });
        this.worker.on('error', (e) => this.fail(e));
        this.worker.on('exit', (code) => { if (this.pending.size) this.fail(new Error(`loader worker exited with code ${code}`)); });
        this.mode = 'worker thread';
      } catch (e) {
        this.worker = null;
        this.mode = `main-thread (worker failed: ${(e as Error).message})`;
      }
    }
  }

  private fail(e: Error): void {
    this.worker = null;
    this.mode = `main-thread (worker failed: ${e.message})`;
    for (const [, p] of this.pending) p.reject(e);
    this.pending.clear();
  }

  private buildLocal(plan: BatchPlan): Float32Array {
    const x = new Float32Array(plan.indices.length * this.opts.crop * this.opts.crop * 3);
    fillBatch(x, this.data.images, this.data.size, this.opts.crop, plan, this.opts.mean);
    return x;
  }

  private async build(plan: BatchPlan): Promise<Float32Array> {
    const w = this.worker;
    if (!w) return this.buildLocal(plan);
    const id = this.nextId++;
    const p = new Promise<Float32Array>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    w.postMessage({ id, plan });
    try {
      return await p;
    } catch {
      return this.buildLocal(plan); // worker died: fall back, losing nothing
    }
  }

  /** Yields the batches of `plans` in order, building up to `prefetch` ahead. */
  async *batches(plans: readonly BatchPlan[]): AsyncGenerator<Batch> {
    const depth = Math.max(1, this.opts.prefetch ?? 2);
    const queue: Promise<Float32Array>[] = [];
    let next = 0;
    const fill = () => {
      while (queue.length < depth && next < plans.length) queue.push(this.build(plans[next++]!));
    };
    for (let i = 0; i < plans.length; i++) {
      fill();
      const x = await queue.shift()!;
      fill();
      const plan = plans[i]!;
      const labels = new Int32Array(plan.indices.length);
      for (let j = 0; j < labels.length; j++) labels[j] = this.data.labels[plan.indices[j]!]!;
      yield { x, labels, plan };
    }
  }

  /** Stops the worker. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
