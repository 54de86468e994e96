/**
 * Loader worker thread (train/loader.ts): builds float32 batches from the split's shared image buffer while the
 * main thread trains. Messages: `{images, size, crop, mean}` once (workerData), then `{id, plan, x?}` → `{id, x, fresh}`
 * with `x` transferred both ways: the loader hands back the buffers of batches its consumer is done with, so that
 * batches reuse memory (`fresh`: this one had to be allocated).
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
parentPort!.on('message', (msg: { id: number; plan: BatchPlan; x?: Float32Array }) => {
  const length = msg.plan.indices.length * init.crop * init.crop * 3;
  const fresh = msg.x?.length !== length;
  const x = fresh ? new Float32Array(length) : msg.x!;
  fillBatch(x, init.images, init.size, init.crop, msg.plan, init.mean);
  parentPort!.postMessage({ id: msg.id, x, fresh }, [x.buffer as ArrayBuffer]);
});
