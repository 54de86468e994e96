/**
 * A worker replica of data-parallel training and inference (train/data-parallel.ts): its own CPU backend and
 * model, computing its rank's slice of each batch from shared memory. `workerData` is a {@link ReplicaInit};
 * messages are {@link ReplicaRequest}s, each answered by one {@link ReplicaReply} except `load`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from './backends.ts';
import {
  chunkRange, loadWeights, sliceForward, sliceGradients, sliceRows, timedGradient, type ReplicaInit, type ReplicaReply, type ReplicaRequest,
} from './data-parallel.ts';
import { fileLoader } from './model-io.ts';
import { buildModel } from './models.ts';
import { buildFineTuneModel } from './fine-tune.ts';
import '../model-import/layers.ts'; // registers the imported networks' layer classes (fine-tuned models)
import '../model-import/preprocess.ts'; // registers InputPreprocess (fine-tuned models)
import { nextPowers, paramCount, updateChunk, type OptimizerConfig } from './optimizer.ts';
import { Collective, synchroniseBatchNorm } from './sync-batch-norm.ts';

const init = workerData as ReplicaInit;
const port = parentPort!;
const reply = (r: ReplicaReply) => port.postMessage(r);

async function main(): Promise<void> {
  await selectBackend(init.backend);
  let model: tfl.LayersModel;
  let logits: tfl.LayersModel;
  // Fine-tuning: the imported layers' gradient scales, as the calling thread's build gives them.
  let scales: number[] | null = null;
  if (init.model.kind === 'build') {
    const m = init.model;
    ({ model, logits } = buildModel(m.spec, m.crop, m.classes, m.seed));
  } else if (init.model.kind === 'fineTune') {
    const m = init.model;
    const tuned = await buildFineTuneModel(m.fineTune, m.classes, m.seed);
    ({ model, logits } = tuned);
    scales = tuned.gradientScales;
    if (tuned.inputSize !== init.crop) throw new Error(`fine-tuning: crop ${init.crop} differs from the network's input size ${tuned.inputSize}`);
  } else {
    model = await tfl.loadLayersModel(fileLoader(init.model.dir));
    logits = model;
  }
  const training = init.model.kind !== 'load';
  const vars = training ? model.trainableWeights.map((w) => w.read() as tf.Variable) : [];
  const params = paramCount(vars);
  // Batch norm's moving statistics (and, fine-tuning, the frozen layers' weights): every replica updates the
  // statistics alike in its forward pass, but a rank without rows in a batch does not, so they come from the calling
  // thread with the weights.
  const stateVars = training ? model.nonTrainableWeights.map((w) => w.read() as tf.Variable) : [];
  const state = new Float32Array(init.buffers.state);
  const bn = init.buffers.batchNorm;
  const collective = bn ? new Collective(bn.buffer, init.threads, init.rank, bn.maxLength) : null;
  if (collective) synchroniseBatchNorm(model, collective);
  const x = new Float32Array(init.buffers.x);
  const labels = new Int32Array(init.buffers.labels);
  const grads = new Float32Array(init.buffers.grads);
  const weights = new Float32Array(init.buffers.weights);
  const slots = new Float32Array(init.buffers.slots);
  const out = new Float32Array(init.buffers.out);
  const [from, to] = chunkRange(params, init.threads, init.rank);
  let optimizer: OptimizerConfig | null = null;
  let powers: [number, number] | null = null;
  const load = () => {
    loadWeights(vars, weights);
    loadWeights(stateVars, state);
  };

  const handle = async (m: ReplicaRequest): Promise<ReplicaReply | null> => {
    switch (m.op) {
      case 'sync':
        load();
        optimizer = m.optimizer;
        powers = m.adamPowers;
        return { op: 'synced' };
      case 'step': {
        const r = timedGradient(collective, init.threads, m.rows, () =>
          sliceGradients(logits, vars, x, labels.subarray(0, m.rows), m.offset, m.count, m.rows, init.crop, init.classes, m.step, grads.subarray(init.rank * params, (init.rank + 1) * params), null, scales));
        return { op: 'grads', ...r };
      }
      case 'update':
        if (!optimizer) throw new Error('update before sync');
        updateChunk(optimizer, powers, grads, init.threads, weights, slots, from, to);
        powers = nextPowers(optimizer, powers);
        return { op: 'updated' };
      case 'load':
        load();
        return null;
      case 'forward': {
        const [offset, count] = sliceRows(m.rows, init.threads, init.rank);
        sliceForward(m.output === 'logits' ? logits : model, x, offset, count, init.crop, init.classes, out);
        return { op: 'forward' };
      }
    }
  };

  // Requests are handled strictly in order (a reply to one is sent before the next starts).
  let chain = Promise.resolve();
  port.on('message', (m: ReplicaRequest) => {
    chain = chain.then(async () => {
      try {
        const r = await handle(m);
        if (r) reply(r);
      } catch (e) {
        collective?.abort(); // the other ranks stop waiting for this one's batch-norm statistics
        reply({ op: 'error', message: e instanceof Error ? e.message : String(e) });
      }
    });
  });
  reply({ op: 'ready', params, state: paramCount(stateVars) });
}

main().catch((e: unknown) => reply({ op: 'error', message: `could not start: ${e instanceof Error ? e.message : String(e)}` }));
