/**
 * Loader worker thread (train/loader.ts): builds float32 batches from the split's shared image buffer while the
 * main thread trains. Messages: `{images, size, crop, mean}` once (workerData), then `{id, plan}` → `{id, x}` with
 * `x` transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { fillBatch, type BatchPlan } from './augment.ts';

interface Init {
  images: Uint8Array;
  size: number;
  crop: number;
  mean: Float32Array | null;
}

const init = workerData as Init;
parentPort!.on('message', (msg: { id: number; plan: BatchPlan }) => {
  const x = new Float32Array(msg.plan.indices.length * init.crop * init.crop * 3);
  fillBatch(x, init.images, init.size, init.crop, msg.plan, init.mean);
  parentPort!.postMessage({ id: msg.id, x }, [x.buffer]);
});
