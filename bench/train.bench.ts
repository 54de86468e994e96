/**
 * Benchmarks of training (issues 6 and 14):
 * - the loader alone: shards' uint8 records → augmented float32 batches (224 random crops from 256, mirrored,
 *   mean-subtracted) on one core (main thread), images/s; target ≥ 3,000;
 * - training throughput (forward + backward + Nesterov update), images/s, for a reference small convnet at 64×64 and
 *   for AlexNet at 224, on each backend available here; wasm against cpu as a ratio in the same run (target ≥ 20×);
 * - issue 14: AlexNet-224 training (batch 32, Nesterov) on wasm in rounds, each round interleaving today's kernels
 *   (`setFastWasmGradients(false)`, 1 thread), ours on 1 thread, PyTorch on 1 thread (bench/torch_train.py, same
 *   network and batch), ours data-parallel on all threads (equal slices, then `train.balance=speed`), PyTorch on as
 *   many threads; medians over the rounds;
 * (The demo end to end, issue 14's third target, is bench/demo.bench.ts.)
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defaultThreads, ReplicaPool, type Balance } from '../train/data-parallel.ts';
import { setFastWasmGradients } from '../train/wasm-kernels.ts';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { fillBatch, planEpoch } from '../train/augment.ts';
import { Rng } from '../util/rng.ts';
import { BACKEND_ORDER, selectBackend, type BackendName } from '../train/backends.ts';
import { resolveModelSpec, type ModelSpec } from '../schemas/model-params.ts';
import { buildModel } from '../train/models.ts';
import { readMean } from '../schemas/mean.ts';
import { readSplit } from '../schemas/shards/read.ts';
import { join } from 'node:path';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

/** One training step on this thread: `opt` minimises the softmax cross-entropy of `logits` on `x` against one-hot `y`. */
async function minimizeStep(opt: tf.Optimizer, logits: tfl.LayersModel, vars: tf.Variable[], x: tf.Tensor, y: tf.Tensor): Promise<void> {
  const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, logits.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!;
  await cost.data();
  cost.dispose();
}

/** Images per second of training steps of `spec` at `size`, after one warm-up step. */
async function trainThroughput(spec: ModelSpec, size: number, batch: number, steps: number): Promise<number> {
  const { model, logits } = buildModel(spec, size, 10, 1);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = tf.train.momentum(0.001, 0.9, true);
  const x = tf.randomUniform([batch, size, size, 3], -1, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10);
  const step = () => minimizeStep(opt, logits, vars, x, y);
  await step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const s = (performance.now() - t0) / 1000;
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
  return (batch * steps) / s;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const REPO = join(here, '..');

/** Median of a non-empty list. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Load averages (1, 5, 15 min) as text, for the notes. */
function load(): string {
  return loadavg().map((l) => l.toFixed(1)).join(' / ');
}

/**
 * One AlexNet-224 measurement on wasm: `threads` 1 (this thread) or more (a {@link ReplicaPool}), `steps` timed steps
 * after `warmup` untimed ones (a fresh replica's wasm heap grows and is first touched during its first steps, at
 * ~3.5 ms per MB of page faults on these machines; training runs thousands of steps, so the steady state counts).
 */
async function alexWasm(spec: ModelSpec, batch: number, steps: number, threads: number, fast: boolean, warmup: number, balance: Balance = 'rows'): Promise<number> {
  setFastWasmGradients(fast);
  const classes = 10;
  const { model, logits } = buildModel(spec, 224, classes, 1);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = tf.train.momentum(0.001, 0.9, true);
  const xData = new Float32Array(batch * 224 * 224 * 3).map((_, i) => Math.sin(i) * 0.5);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % classes);
  let pool: ReplicaPool | null = null;
  try {
    let step: () => Promise<void>;
    if (threads > 1) {
      pool = await ReplicaPool.start({ threads, backend: 'wasm', balance, vars, crop: 224, classes, maxRows: batch, model: { kind: 'build', spec, crop: 224, classes, seed: 1 } });
      await pool.sync(vars, opt, { kind: 'nesterov', learningRate: 0.001, momentum: 0.9 });
      let k = 0;
      step = async () => {
        await pool!.step(logits, vars, xData, labels, k++);
      };
    } else {
      const x = tf.tensor4d(xData, [batch, 224, 224, 3]);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
      step = () => minimizeStep(opt, logits, vars, x, y);
    }
    for (let i = 0; i < warmup; i++) await step();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step();
    return (batch * steps) / ((performance.now() - t0) / 1000);
  } finally {
    await pool?.close();
    opt.dispose();
    model.dispose();
    setFastWasmGradients(true);
  }
}

/** One PyTorch measurement (bench/torch_train.py), or null with the reason logged when torch is missing. */
function alexTorch(specFile: string, batch: number, steps: number, threads: number, warmup: number, log: (m: string) => void): number | null {
  const r = spawnSync('python3', [join(here, 'torch_train.py'), '--spec', specFile, '--size', '224', '--batch', String(batch), '--steps', String(steps), '--threads', String(threads), '--warmup', String(warmup)], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) {
    log(`PyTorch did not run: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-1)[0]}`);
    return null;
  }
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { imagesPerSecond: number }).imagesPerSecond;
}

/** Issue 14's figures (see the module comment). */
async function issue14(ctx: BenchContext): Promise<BenchResult[]> {
  await selectBackend('wasm');
  const spec = resolveModelSpec('AlexNet', '');
  const specFile = join(ctx.tmpDir, 'alexnet-spec.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const batch = 32;
  const steps = ctx.quick ? 1 : 3;
  const warmup = ctx.quick ? 1 : 2;
  const rounds = ctx.quick ? 1 : Number(process.env.BENCH_TRAIN_ROUNDS ?? 3);
  const threads = defaultThreads();
  const m = { today: [] as number[], ours1: [] as number[], torch1: [] as number[], oursN: [] as number[], torchN: [] as number[], speedN: [] as number[] };
  const loads: string[] = [];
  for (let r = 0; r < rounds; r++) {
    loads.push(load());
    m.today.push(await alexWasm(spec, batch, steps, 1, false, warmup));
    m.ours1.push(await alexWasm(spec, batch, steps, 1, true, warmup));
    const t1 = alexTorch(specFile, batch, steps * 2, 1, warmup, ctx.log);
    if (t1 !== null) m.torch1.push(t1);
    if (threads > 1) {
      m.oursN.push(await alexWasm(spec, batch, steps, threads, true, warmup));
      m.speedN.push(await alexWasm(spec, batch, steps, threads, true, warmup, 'speed'));
      const tn = alexTorch(specFile, batch, steps * 2, threads, warmup, ctx.log);
      if (tn !== null) m.torchN.push(tn);
    }
    ctx.log(`round ${r + 1}: today ${m.today.at(-1)!.toFixed(2)}, ours 1 thread ${m.ours1.at(-1)!.toFixed(2)}, PyTorch 1 thread ${m.torch1.at(-1)?.toFixed(2)}, ours ${threads} threads ${m.oursN.at(-1)?.toFixed(2)} (balance=speed ${m.speedN.at(-1)?.toFixed(2)}), PyTorch ${threads} threads ${m.torchN.at(-1)?.toFixed(2)} images/s (load ${loads.at(-1)})`);
  }
  loads.push(load());
  const notes = `batch ${batch}, Nesterov; median of ${rounds} interleaved round(s) of ${steps} step(s) after ${warmup} warm-up step(s) (PyTorch: ${steps * 2} after as many); load averages (1/5/15 min) during the rounds: ${loads.join('; ')}`;
  const out: BenchResult[] = [];
  const today = median(m.today);
  const ours1 = median(m.ours1);
  out.push({ name: 'AlexNet-224 training, wasm 1 thread: our gradient kernels vs today\'s (tfjs-backend-wasm 4.22\'s Conv2DBackpropInput, transposed matMul)', value: ours1, unit: 'images/s', baseline: { name: 'today\'s kernels, same run', value: today }, target: '≥ 2× today', met: ours1 / today >= 2, notes });
  if (m.torch1.length) {
    const t = median(m.torch1);
    out.push({ name: 'AlexNet-224 training, wasm 1 thread vs PyTorch CPU 1 thread', value: ours1, unit: 'images/s', baseline: { name: 'PyTorch 1 thread, same run', value: t }, target: '≥ 0.3× PyTorch', met: ours1 / t >= 0.3, notes });
  }
  if (m.oursN.length) {
    const oursN = median(m.oursN);
    const perRound = (n: number[], one: number[]) => n.map((v, i) => (v / one[i]!).toFixed(2)).join(', ');
    const roundNotes = `${notes}; per round, ours ${threads} threads / 1 thread: ${perRound(m.oursN, m.ours1)}` +
      (m.torchN.length === m.torch1.length && m.torch1.length ? `; PyTorch ${threads} threads / 1 thread: ${perRound(m.torchN, m.torch1)}` : '');
    out.push({ name: `AlexNet-224 training, wasm data-parallel on ${threads} threads vs 1 thread`, value: oursN, unit: 'images/s', baseline: { name: 'ours, 1 thread, same run', value: ours1 }, target: '≥ 1.7× 1 thread (2 cores)', met: oursN / ours1 >= 1.7, notes: roundNotes });
    const speedN = median(m.speedN);
    out.push({
      name: `AlexNet-224 training, wasm data-parallel on ${threads} threads with train.balance=speed vs 1 thread`, value: speedN, unit: 'images/s',
      baseline: { name: 'ours, 1 thread, same run', value: ours1 },
      notes: `${notes}; rows split by measured speed (resuming is then exact only to rounding; the default splits equally); per round: ${perRound(m.speedN, m.ours1)}`,
    });
    if (m.torchN.length) {
      const t = median(m.torchN);
      out.push({ name: `AlexNet-224 training, wasm ${threads} threads vs PyTorch CPU ${threads} threads`, value: oursN, unit: 'images/s', baseline: { name: `PyTorch ${threads} threads, same run`, value: t }, target: '≥ 0.3× PyTorch', met: oursN / t >= 0.3, notes });
    }
  }
  return out;
}

const bench: BenchModule = {
  title: 'Training (TensorFlow.js): loader and backends',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const results: BenchResult[] = await issue14(ctx);
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
