/**
 * Benchmarks of training (issue 6):
 * - the loader alone: shards' uint8 records → augmented float32 batches (224 random crops from 256, mirrored,
 *   mean-subtracted) on one core (main thread), images/s; target ≥ 3,000;
 * - training throughput (forward + backward + Nesterov update), images/s, for a reference small convnet at 64×64 and
 *   for AlexNet at 224, on each backend available here; wasm against cpu as a ratio in the same run (target ≥ 20×).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { fillBatch, planEpoch } from '../train/augment.ts';
import { Rng } from '../util/rng.ts';
import { BACKEND_ORDER, selectBackend, type BackendName } from '../train/backends.ts';
import { resolveModelSpec, type ModelSpec } from '../train/model-params.ts';
import { buildModel } from '../train/models.ts';
import { readMean } from '../schemas/mean.ts';
import { readSplit } from '../schemas/shards/read.ts';
import { join } from 'node:path';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

/** Images per second of training steps of `spec` at `size`, after one warm-up step. */
async function trainThroughput(spec: ModelSpec, size: number, batch: number, steps: number): Promise<number> {
  const { model, logits } = buildModel(spec, size, 10, 1);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = tf.train.momentum(0.001, 0.9, true);
  const x = tf.randomUniform([batch, size, size, 3], -1, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10);
  const step = async () => {
    const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, logits.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!;
    await cost.data();
    cost.dispose();
  };
  await step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const s = (performance.now() - t0) / 1000;
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
  return (batch * steps) / s;
}

const bench: BenchModule = {
  title: 'Training (TensorFlow.js): loader and backends',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const results: BenchResult[] = [];
    // Loader: synthetic 256×256 shards.
    const n = ctx.quick ? 64 : 512;
    writeTestShards(ctx.tmpDir, { size: 256, perClass: { train: Math.ceil(n / 3), validation: 1, test: 1 }, shardsPerSplit: 2, batchRows: 64 });
    const data = await readSplit(join(ctx.tmpDir, 'shards', 'train'));
    const mean = readMean(join(ctx.tmpDir, 'shards', 'mean.arrow'), 256);
    const plans = planEpoch(new Rng(1), data.n, 32, 256, 224, true);
    const out = new Float32Array(32 * 224 * 224 * 3);
    const rounds = ctx.quick ? 2 : 4;
    for (const p of plans) fillBatch(out, data.images, 256, 224, p, mean); // warm-up (JIT)
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) for (const p of plans) fillBatch(out, data.images, 256, 224, p, mean);
    const loaderRate = (data.n * rounds) / ((performance.now() - t0) / 1000);
    results.push({
      name: 'loader: 256→224 random crop + mirror + mean subtraction → float32 batches (one core)',
      value: loaderRate, unit: 'images/s', target: '≥ 3,000 images/s', met: loaderRate >= 3000,
      notes: `${data.n} images × ${rounds} rounds, batch 32, main thread (training uses a worker thread for this)`,
    });
    ctx.log(`loader ${loaderRate.toFixed(0)} images/s`);

    // Training throughput per backend (images/s hardly depends on the batch size on cpu, so it gets small batches).
    const small = resolveModelSpec('LasagneMnistConvExample', '');
    const alex = resolveModelSpec('AlexNet', '');
    const rates: Partial<Record<BackendName, { small: number; alex: number | null }>> = {};
    for (const name of BACKEND_ORDER) {
      try {
        await selectBackend(name);
      } catch (e) {
        ctx.log(`backend ${name} unavailable: ${(e as Error).message}`);
        continue;
      }
      const slow = name === 'cpu';
      const smallRate = await trainThroughput(small, 64, slow ? 4 : 32, slow ? 1 : ctx.quick ? 2 : 5);
      const alexRate = slow && ctx.quick ? null : await trainThroughput(alex, 224, slow ? 4 : 16, slow ? 1 : ctx.quick ? 1 : 3);
      rates[name] = { small: smallRate, alex: alexRate };
      ctx.log(`${name}: small convnet 64×64 ${smallRate.toFixed(1)} images/s, AlexNet 224 ${alexRate?.toFixed(2) ?? 'skipped'} images/s`);
    }
    const cpu = rates.cpu;
    for (const [name, r] of Object.entries(rates) as [BackendName, { small: number; alex: number | null }][]) {
      const vsCpu = name !== 'cpu' && cpu;
      results.push({
        name: `train LasagneMnistConvExample (2×conv5×5·32 + pool, dense 256) at 64×64, ${name}`,
        value: r.small, unit: 'images/s', notes: name === 'cpu' ? 'batch 4, one step after a warm-up step' : 'batch 32',
        ...(vsCpu ? { baseline: { name: 'cpu backend, same run', value: cpu.small }, target: '≥ 20× cpu', met: r.small / cpu.small >= 20 } : {}),
      });
      if (r.alex !== null) {
        results.push({
          name: `train AlexNet (study defaults) at 224×224, ${name}`,
          value: r.alex, unit: 'images/s',
          ...(vsCpu && cpu.alex ? { baseline: { name: 'cpu backend, same run', value: cpu.alex }, target: '≥ 20× cpu', met: r.alex / cpu.alex >= 20 } : {}),
          notes: name === 'cpu' ? 'batch 4, one step' : 'batch 16',
        });
      }
    }
    return results;
  },
};
export default bench;
