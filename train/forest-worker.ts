/**
 * Random-forest worker thread (train/random-forest.ts `fitForest`): holds a {@link TreeBuilder} over the shared
 * feature-major training matrix and grows the trees it is asked for. Messages: `{xt, y, n, d, classes}` once
 * (workerData, SharedArrayBuffer-backed), then `{p, t}` → `{t, tree}` (tree arrays transferred) or `{error}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TreeBuilder, type ResolvedParams, type WorkerReply } from './random-forest.ts';

interface Init {
  xt: Uint8Array;
  y: Int32Array;
  n: number;
  d: number;
  classes: number;
}

const init = workerData as Init;
const builder = new TreeBuilder(init.xt, init.n, init.d, init.y, init.classes);
parentPort!.on('message', (msg: { p: ResolvedParams; t: number }) => {
  try {
    const tree = builder.build(msg.p, msg.t);
    const reply: WorkerReply = { t: msg.t, tree };
    const buffers = [tree.feature, tree.threshold, tree.left, tree.right, tree.value].map((a) => a.buffer as ArrayBuffer);
    parentPort!.postMessage(reply, buffers);
  } catch (e) {
    const reply: WorkerReply = { error: (e as Error).stack ?? String(e) };
    parentPort!.postMessage(reply);
  }
});
