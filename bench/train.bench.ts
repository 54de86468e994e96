/**
 * Benchmarks of training (issues 6 and 14):
 * - the loader alone: shards' uint8 records → augmented float32 batches (224 random crops from 256, mirrored,
 *   mean-subtracted) on one core (main thread), images/s; target ≥ 3,000;
 * - training throughput (forward + backward + Nesterov update), images/s, for a reference small convnet at 64×64 and
 *   for AlexNet at 224, on each backend available here; wasm against cpu as a ratio in the same run (target ≥ 20×);
 * - issue 14: AlexNet-224 training (batch 32, Nesterov) on wasm in rounds, each round interleaving today's kernels
 *   (`setFastWasmGradients(false)`, 1 thread), ours on 1 thread, PyTorch on 1 thread (bench/torch_train.py, same
 *   network and batch), ours data-parallel on all threads, PyTorch on as many threads; medians over the rounds
 *   (`BENCH_TRAIN_ROUNDS`, default 3);
 * - issue 14's scaling target (all threads vs 1 thread) from tight pairs instead ({@link threadPairs}): a 1-thread
 *   model and data-parallel pools stay warm, and each pair times a few steps of each back to back, so a burst of
 *   load from this shared machine's other tenants hits both sides of a pair (a round of the above spans ~1 min,
 *   long enough for such bursts to skew one side); the ratio is the median of the per-pair ratios. PyTorch's own
 *   scaling is measured the same way in the same run (`torch_train.py --pairs`), as what the machine offered
 *   (`BENCH_TRAIN_PAIRS` pairs, default 8);
 * (The demo end to end, issue 14's third target, is bench/demo.bench.ts.)
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultThreads, ReplicaPool, type Balance } from '../train/data-parallel.ts';
import { setFastWasmGradients } from '../train/wasm-kernels.ts';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { median, loadText, type BenchContext, type BenchModule, type BenchResult } from './lib.ts';
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

/**
 * One AlexNet-224 measurement on wasm: `threads` 1 (this thread) or more (a {@link ReplicaPool}), `steps` timed steps
 * after `warmup` untimed ones (a fresh replica's wasm heap grows and is first touched during its first steps, at
 * ~3.5 ms per MB of page faults on these machines; training runs thousands of steps, so the steady state counts).
 */
async function alexWasm(spec: ModelSpec, batch: number, steps: number, threads: number, fast: boolean, warmup: number): Promise<number> {
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
      pool = await ReplicaPool.start({ threads, backend: 'wasm', vars, crop: 224, classes, maxRows: batch, model: { kind: 'build', spec, crop: 224, classes, seed: 1 } });
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

/**
 * Thread scaling of AlexNet-224 training on wasm in `pairs` tight pairs: a 1-thread model (this thread,
 * tfjs's optimizer) and two data-parallel pools on `threads` threads (`train.balance` rows and speed), each with its
 * own model, warmed up by `warmup` steps, then per pair `steps` steps of each back to back (the order reverses every
 * other pair). Returns images/s per pair for each.
 */
async function threadPairs(spec: ModelSpec, batch: number, steps: number, threads: number, warmup: number, pairs: number): Promise<{ one: number[]; rows: number[]; speed: number[] }> {
  setFastWasmGradients(true);
  const classes = 10;
  const xData = new Float32Array(batch * 224 * 224 * 3).map((_, i) => Math.sin(i) * 0.5);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % classes);
  const built: { model: tfl.LayersModel; opt: tf.Optimizer }[] = [];
  const pools: ReplicaPool[] = [];
  const make = () => {
    const { model, logits } = buildModel(spec, 224, classes, 1);
    const opt = tf.train.momentum(0.001, 0.9, true);
    built.push({ model, opt });
    return { logits, vars: model.trainableWeights.map((w) => w.read() as tf.Variable), opt };
  };
  const x = tf.tensor4d(xData, [batch, 224, 224, 3]);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
  try {
    /** A data-parallel pool with its own model; returns its training step. */
    const poolStep = async (balance: Balance) => {
      const m = make();
      const pool = await ReplicaPool.start({ threads, backend: 'wasm', balance, vars: m.vars, crop: 224, classes, maxRows: batch, model: { kind: 'build', spec, crop: 224, classes, seed: 1 } });
      pools.push(pool);
      await pool.sync(m.vars, m.opt, { kind: 'nesterov', learningRate: 0.001, momentum: 0.9 });
      let k = 0;
      return async () => {
        await pool.step(m.logits, m.vars, xData, labels, k++);
      };
    };
    const one = make();
    const runners = {
      one: () => minimizeStep(one.opt, one.logits, one.vars, x, y),
      rows: await poolStep('rows'),
      speed: await poolStep('speed'),
    };
    const rate = async (run: () => Promise<void>) => {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) await run();
      return (batch * steps) / ((performance.now() - t0) / 1000);
    };
    for (const run of Object.values(runners)) for (let i = 0; i < warmup; i++) await run();
    const out = { one: [] as number[], rows: [] as number[], speed: [] as number[] };
    for (let p = 0; p < pairs; p++) {
      const order = (['one', 'rows', 'speed'] as const).slice();
      if (p % 2) order.reverse();
      for (const k of order) out[k].push(await rate(runners[k]));
    }
    return out;
  } finally {
    for (const pool of pools) await pool.close();
    tf.dispose([x, y]);
    for (const b of built) {
      b.opt.dispose();
      b.model.dispose();
    }
  }
}

/** PyTorch's thread scaling in tight pairs (`torch_train.py --pairs`): [1 thread, `threads`] images/s per pair, or null. */
function torchPairs(specFile: string, batch: number, steps: number, threads: number, warmup: number, pairs: number, log: (m: string) => void): [number, number][] | null {
  const r = spawnSync('python3', [join(here, 'torch_train.py'), '--spec', specFile, '--size', '224', '--batch', String(batch), '--steps', String(steps), '--threads', String(threads), '--warmup', String(warmup), '--pairs', String(pairs)], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) {
    log(`PyTorch did not run: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-1)[0]}`);
    return null;
  }
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { pairs: [number, number][] }).pairs;
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
  const m = { today: [] as number[], ours1: [] as number[], torch1: [] as number[], oursN: [] as number[], torchN: [] as number[] };
  const loads: string[] = [];
  for (let r = 0; r < rounds; r++) {
    loads.push(loadText());
    m.today.push(await alexWasm(spec, batch, steps, 1, false, warmup));
    m.ours1.push(await alexWasm(spec, batch, steps, 1, true, warmup));
    const t1 = alexTorch(specFile, batch, steps * 2, 1, warmup, ctx.log);
    if (t1 !== null) m.torch1.push(t1);
    if (threads > 1) {
      m.oursN.push(await alexWasm(spec, batch, steps, threads, true, warmup));
      const tn = alexTorch(specFile, batch, steps * 2, threads, warmup, ctx.log);
      if (tn !== null) m.torchN.push(tn);
    }
    ctx.log(`round ${r + 1}: today ${m.today.at(-1)!.toFixed(2)}, ours 1 thread ${m.ours1.at(-1)!.toFixed(2)}, PyTorch 1 thread ${m.torch1.at(-1)?.toFixed(2)}, ours ${threads} threads ${m.oursN.at(-1)?.toFixed(2)}, PyTorch ${threads} threads ${m.torchN.at(-1)?.toFixed(2)} images/s (load ${loads.at(-1)})`);
  }
  loads.push(loadText());
  const notes = `batch ${batch}, Nesterov; median of ${rounds} interleaved round(s) of ${steps} step(s) after ${warmup} warm-up step(s) (PyTorch: ${steps * 2} after as many); load averages (1/5/15 min) during the rounds: ${loads.join('; ')}`;
  const out: BenchResult[] = [];
  const today = median(m.today);
  const ours1 = median(m.ours1);
  out.push({ name: 'AlexNet-224 training, wasm 1 thread: our gradient kernels vs today\'s (tfjs-backend-wasm 4.22\'s Conv2DBackpropInput, transposed matMul)', value: ours1, unit: 'images/s', baseline: { name: 'today\'s kernels, same run', value: today }, target: '≥ 2× today', met: ours1 / today >= 2, notes });
  if (m.torch1.length) {
    const t = median(m.torch1);
    out.push({ name: 'AlexNet-224 training, wasm 1 thread vs PyTorch CPU 1 thread', value: ours1, unit: 'images/s', baseline: { name: 'PyTorch 1 thread, same run', value: t }, target: '≥ 0.3× PyTorch', met: ours1 / t >= 0.3, notes });
  }
  if (threads > 1) {
    const pairs = ctx.quick ? 1 : Number(process.env.BENCH_TRAIN_PAIRS ?? 8);
    const pairLoads = [loadText()];
    const tp = await threadPairs(spec, batch, steps, threads, warmup, pairs);
    pairLoads.push(loadText());
    const tt = torchPairs(specFile, batch, steps * 2, threads, warmup, pairs, ctx.log);
    pairLoads.push(loadText());
    const ratios = (n: number[], one: number[]) => n.map((v, i) => v / one[i]!);
    const fmt = (r: number[]) => r.map((v) => v.toFixed(2)).join(', ');
    const rowsR = ratios(tp.rows, tp.one);
    const speedR = ratios(tp.speed, tp.one);
    const torchR = tt ? tt.map(([a, b]) => b / a) : null;
    ctx.log(`pairs: ours ${threads}/1 threads ${fmt(rowsR)}; balance=speed ${fmt(speedR)}; PyTorch ${torchR ? fmt(torchR) : 'not run'}`);
    const pairNotes = `batch ${batch}, Nesterov; ${pairs} tight pairs after ${warmup} warm-up steps of each: ${steps} steps on 1 thread, ${steps} on ${threads} threads (order alternating), models and pools kept warm; ` +
      `ratio = median of the per-pair ratios; load averages (1/5/15 min) before, between ours and PyTorch's pairs, after: ${pairLoads.join('; ')}`;
    const torchNote = torchR ? `; PyTorch's own ${threads} threads / 1 thread in ${pairs} such pairs in this run (torch_train.py --pairs, ${steps * 2} steps each): median ${median(torchR).toFixed(2)} (${fmt(torchR)})` : '';
    const rowsRatio = median(rowsR);
    out.push({
      name: `AlexNet-224 training, wasm data-parallel on ${threads} threads vs 1 thread`, value: median(tp.rows), unit: 'images/s',
      baseline: { name: 'ours, 1 thread, same pairs', value: median(tp.one) }, ratio: rowsRatio,
      target: '≥ 1.7× 1 thread (2 cores)', met: rowsRatio >= 1.7, notes: `${pairNotes}; per pair: ${fmt(rowsR)}${torchNote}`,
    });
    out.push({
      name: `AlexNet-224 training, wasm data-parallel on ${threads} threads with train.balance=speed vs 1 thread`, value: median(tp.speed), unit: 'images/s',
      baseline: { name: 'ours, 1 thread, same pairs', value: median(tp.one) }, ratio: median(speedR),
      notes: `${pairNotes}; rows split by measured speed (resuming is then exact only to rounding; the default splits equally); per pair: ${fmt(speedR)}`,
    });
  }
  if (m.oursN.length && m.torchN.length) {
    const oursN = median(m.oursN);
    const t = median(m.torchN);
    const perRound = m.oursN.map((v, i) => (v / m.ours1[i]!).toFixed(2)).join(', ');
    out.push({
      name: `AlexNet-224 training, wasm ${threads} threads vs PyTorch CPU ${threads} threads`, value: oursN, unit: 'images/s',
      baseline: { name: `PyTorch ${threads} threads, same run`, value: t }, target: '≥ 0.3× PyTorch', met: oursN / t >= 0.3,
      notes: `${notes}; for the record, ours ${threads} threads / 1 thread per round (rounds span ~1 min, so load bursts skew them; the scaling row uses tight pairs): ${perRound}`,
    });
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
