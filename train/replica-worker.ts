/**
 * A worker replica of data-parallel training and inference (train/data-parallel.ts): its own CPU backend and
 * model, computing its rank's slice of each batch from shared memory. `workerData` is a {@link ReplicaInit};
 * messages are {@link ReplicaRequest}s, each answered by one {@link ReplicaReply} except `apply`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from './backends.ts';
import {
  applyReduced, disposeOptimizer, makeOptimizer, setAdamPowers, reduceChunk, sliceForward, sliceGradients, sliceRows,
  type ReplicaInit, type ReplicaReply, type ReplicaRequest,
} from './data-parallel.ts';
import { fileLoader } from './model-io.ts';
import { buildModel } from './models.ts';

const init = workerData as ReplicaInit;
const port = parentPort!;
const reply = (r: ReplicaReply) => port.postMessage(r);

async function main(): Promise<void> {
  await selectBackend(init.backend);
  let model: tfl.LayersModel;
  let logits: tfl.LayersModel;
  if (init.model.kind === 'build') {
    const m = init.model;
    ({ model, logits } = buildModel(m.spec, m.crop, m.classes, m.seed));
  } else {
    model = await tfl.loadLayersModel(fileLoader(init.model.dir));
    logits = model;
  }
  const vars = init.model.kind === 'build' ? model.trainableWeights.map((w) => w.read() as tf.Variable) : [];
  const params = vars.reduce((s, v) => s + v.size, 0);
  const x = new Float32Array(init.buffers.x);
  const labels = new Int32Array(init.buffers.labels);
  const grads = new Float32Array(init.buffers.grads);
  const reduced = new Float32Array(init.buffers.reduced);
  const out = new Float32Array(init.buffers.out);
  let optimizer: tf.Optimizer | null = null;

  const handle = async (m: ReplicaRequest): Promise<ReplicaReply | null> => {
    switch (m.op) {
      case 'sync': {
        vars.forEach((v, i) => {
          const t = tf.tensor(m.weights[i]!, v.shape, 'float32');
          v.assign(t);
          t.dispose();
        });
        if (optimizer) disposeOptimizer(optimizer);
        optimizer = makeOptimizer(m.optimizer);
        if (m.optimizerWeights.length) {
          const ws = m.optimizerWeights.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, 'float32') }));
          await optimizer.setWeights(ws); // copies them into the optimizer's own variables
          for (const w of ws) w.tensor.dispose();
        }
        setAdamPowers(optimizer, m.adamPowers);
        return { op: 'synced' };
      }
      case 'step': {
        const [offset, count] = sliceRows(m.rows, init.threads, init.rank);
        const r = sliceGradients(logits, vars, x, labels.subarray(0, m.rows), offset, count, m.rows, init.crop, init.classes, m.step, grads.subarray(init.rank * params, (init.rank + 1) * params));
        return { op: 'grads', ...r };
      }
      case 'reduce':
        reduceChunk(grads, reduced, init.threads, init.rank);
        return { op: 'reduced' };
      case 'apply':
        if (!optimizer) throw new Error('apply before sync');
        applyReduced(optimizer, vars, reduced);
        return null;
      case 'forward': {
        const [offset, count] = sliceRows(m.rows, init.threads, init.rank);
        sliceForward(m.output === 'logits' ? logits : model, x, offset, count, init.crop, init.classes, out);
        return { op: 'forward' };
      }
    }
  };

  // Requests are handled strictly in order (sync awaits setWeights).
  let chain = Promise.resolve();
  port.on('message', (m: ReplicaRequest) => {
    chain = chain.then(async () => {
      try {
        const r = await handle(m);
        if (r) reply(r);
      } catch (e) {
        reply({ op: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    });
  });
  reply({ op: 'ready', params });
}

main().catch((e: unknown) => reply({ op: 'error', message: `could not start: ${e instanceof Error ? e.message : String(e)}` }));
