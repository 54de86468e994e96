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
  /**
   * `[B, crop, crop, 3]` float32 HWC, mean-subtracted and scaled. Valid until the next batch is requested: the loader
   * then reuses its buffer (fresh memory costs ~3.5 ms per MB here, ~70 ms for a batch of 32 crops of 224), so copy
   * it to keep it.
   */
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
  /** Buffers of batches the consumer is done with, reused for the next ones. */
  private readonly free: Float32Array[] = [];
  /** Batch buffers allocated so far (the rest were reused). */
  allocated = 0;
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
        this.worker.on('message', (m: { id: number; x: Float32Array; fresh: boolean }) => {
          if (m.fresh) this.allocated++;
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

  /**
   * A free buffer of `length` floats, or null. Buffers of other lengths (e.g. a short last batch's) wait for a batch
   * of their length, such as the next epoch's last one: at most `prefetch` + 1 per distinct length.
   */
  private reuse(length: number): Float32Array | null {
    const i = this.free.findIndex((b) => b.length === length);
    return i < 0 ? null : this.free.splice(i, 1)[0]!;
  }

  private buildLocal(plan: BatchPlan): Float32Array {
    const length = plan.indices.length * this.opts.crop * this.opts.crop * 3;
    let x = this.reuse(length);
    if (!x) {
      x = new Float32Array(length);
      this.allocated++;
    }
    fillBatch(x, this.data.images, this.data.size, this.opts.crop, plan, this.opts.mean);
    return x;
  }

  private async build(plan: BatchPlan): Promise<Float32Array> {
    const w = this.worker;
    if (!w) return this.buildLocal(plan);
    const id = this.nextId++;
    const p = new Promise<Float32Array>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    const x = this.reuse(plan.indices.length * this.opts.crop * this.opts.crop * 3);
    if (x) w.postMessage({ id, plan, x }, [x.buffer as ArrayBuffer]);
    else w.postMessage({ id, plan });
    try {
      return await p;
    } catch {
      return this.buildLocal(plan); // worker died: fall back, losing nothing
    }
  }

  /**
   * Yields the batches of `plans` in order, building up to `prefetch` ahead. A batch's `x` is reused once the next
   * batch is requested (see {@link Batch.x}).
   */
  async *batches(plans: readonly BatchPlan[]): AsyncGenerator<Batch> {
    const depth = Math.max(1, this.opts.prefetch ?? 2);
    const queue: Promise<Float32Array>[] = [];
    let next = 0;
    const fill = () => {
      while (queue.length < depth && next < plans.length) queue.push(this.build(plans[next++]!));
    };
    let done: Float32Array | null = null;
    for (let i = 0; i < plans.length; i++) {
      if (done) this.free.push(done); // the consumer asked for this batch, so it is done with the last one
      fill();
      const x = await queue.shift()!;
      fill();
      const plan = plans[i]!;
      const labels = new Int32Array(plan.indices.length);
      for (let j = 0; j < labels.length; j++) labels[j] = this.data.labels[plan.indices[j]!]!;
      done = x;
      yield { x, labels, plan };
    }
    if (done) this.free.push(done);
  }

  /** Stops the worker. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}
