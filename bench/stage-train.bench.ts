/**
 * Issue 28: the `train` and `evaluate` stages as a user runs them, against the kernels' warm rate and PyTorch.
 *
 * A fixed small data directory: synthetic 256×256 shards (dataset/synthetic-shards.ts; 3 classes, 192 training,
 * 24 validation and 24 test covers) whose upstream stages (discover … mean) are recorded fresh in the lock, so
 * `covers make train` runs the train stage alone. In `pairs` interleaved rounds (the order reverses every other one):
 * - the real `covers make train --force` in a child process (AlexNet-224, batch 32, 2 epochs, wasm, `train.threads`
 *   2), its logged images/s per epoch parsed from its output, then `covers make evaluate` (10 crops per test cover),
 *   its logged inference rate (crop images/s) parsed likewise;
 * - the benchmark's warm data-parallel pool on 2 threads (as bench/train.bench.ts: kept warm across the rounds, one
 *   epoch's 6 steps timed per round), on the same covers, augmentation and learning rate as the stage;
 * - PyTorch on 2 threads (bench/torch_train.py): 6 training steps of the same network and batch after one warm-up
 *   step, and inference on batches of 30 (3 covers × 10 crops, evaluate's batch) likewise.
 * Ratios are the medians of the per-round ratios; the load averages are in the notes (this machine is shared). A
 * second train row compares the stage's second epoch alone with the warm pool: a run starts fresh replicas, whose
 * first steps are slower (their wasm heaps are touched for the first time), and the first epoch's rate pays for it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { resolveConfig } from '../pipeline/config.ts';
import { closure } from '../pipeline/runner.ts';
import type { Config } from '../pipeline/config-core.ts';
import { STAGES } from '../stages/index.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';
import { selectBackend } from '../train/backends.ts';
import { ReplicaPool } from '../train/data-parallel.ts';
import { resolveModelSpec, type ModelSpec } from '../schemas/model-params.ts';
import { buildModel } from '../train/models.ts';
import { fillBatch, planEpoch, type BatchPlan } from '../train/augment.ts';
import { readSplit } from '../schemas/shards/read.ts';
import { readMean } from '../schemas/mean.ts';
import { Rng } from '../util/rng.ts';
import { recordFresh } from './fresh-lock.ts';
import { median, loadText, type BenchModule, type BenchResult } from './lib.ts';

const REPO = join(import.meta.dirname, '..');
const THREADS = 2;
const BATCH = 32;
/** Training covers per epoch (3 classes × 64) and steps per epoch. */
const TRAIN_N = 192;
const STEPS = TRAIN_N / BATCH;
/** evaluate's forward batch: floor(batch / 10 crops) covers × 10 crops. */
const EVAL_ROWS = Math.floor(BATCH / 10) * 10;

/** The bench's configuration file contents (everything else at its default). */
export const CONFIG = {
  image: { size: 256 },
  train: { backend: 'wasm', architecture: 'AlexNet', crop: 224, batchSize: BATCH, epochs: 2, threads: THREADS, run: 'bench' },
  eval: { crops: 10 },
};

/**
 * Writes the synthetic shards and mean into `dir` and records every stage up to `mean` as fresh in the lock (a small
 * placeholder at each declared output the shards do not provide), as the runner would after building them.
 * @throws Error when the runner does not then see `train`'s dependencies fresh.
 */
export async function buildDataDir(dir: string, config: Config): Promise<void> {
  writeTestShards(dir, { size: 256, labelNames: ['ambient', 'metal', 'jazz'], perClass: { train: TRAIN_N / 3, validation: 8, test: 8 }, batchRows: 32, seed: 28 });
  await recordFresh(dir, config, closure(STAGES, ['mean'], config), ['train'], ['train']);
}

/** Runs `covers <args>` from the checkout; returns its output. @throws Error with the output's tail when it fails. */
function covers(args: string[]): string {
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'covers.js'), ...args], { cwd: REPO, encoding: 'utf8', timeout: 1_800_000, env: { ...process.env, COVERS_DIST: '0' } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`covers ${args.join(' ')} exited ${r.status}: ${out.trim().split('\n').slice(-5).join(' | ')}`);
  return out;
}

/** The images/s of each `epoch k/N: …` line of the train stage's log. @throws Error when there are none. */
export function epochRates(log: string): number[] {
  const rates = [...log.matchAll(/epoch \d+\/\d+: .*?, ([\d.]+) images\/s/g)].map((m) => Number(m[1]));
  if (!rates.length) throw new Error(`no epoch rate in the train log: ${log.slice(-400)}`);
  return rates;
}

/** The crop images/s of the evaluate stage's `inference: …` log line. @throws Error when it is missing. */
export function inferenceRate(log: string): number {
  const m = /inference: .*?([\d.]+) crop images\/s/.exec(log);
  if (!m) throw new Error(`no inference rate in the evaluate log: ${log.slice(-400)}`);
  return Number(m[1]);
}

/** PyTorch's images/s (bench/torch_train.py) on {@link THREADS} threads, or null with the reason logged. */
function torchRate(specFile: string, mode: 'train' | 'infer', batch: number, steps: number, log: (m: string) => void): number | null {
  const r = spawnSync('python3', [join(REPO, 'bench', 'torch_train.py'), '--spec', specFile, '--size', '224', '--batch', String(batch), '--steps', String(steps),
    '--threads', String(THREADS), '--warmup', '1', '--classes', '3', '--mode', mode], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) {
    log(`PyTorch did not run: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-1)[0]}`);
    return null;
  }
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { imagesPerSecond: number }).imagesPerSecond;
}

/**
 * A warm data-parallel pool on {@link THREADS} threads (bench/train.bench.ts's kind), trained like the stage: on
 * `dataDir`'s training split through the stage's augmentation (train/augment.ts: random 224 crops of the 256-px
 * covers, mirrored, mean-subtracted, a fresh shuffle each epoch) with the stage's learning rate and momentum
 * (`train.learningRate`, `train.momentum`), so the two sides differ only in what the stage adds around the kernels.
 * (Until issue 28's follow-up it stepped one fixed `sin` batch at learning rate 0.001; measured then, neither the
 * data nor the learning rate changed the step time: bench/RESULTS.md.) `rate()` times one epoch's steps.
 */
async function warmPool(spec: ModelSpec, config: Config, dataDir: string, warmup: number): Promise<{ rate: () => Promise<number>; close: () => Promise<void> }> {
  const classes = 3;
  const data = await readSplit(join(dataDir, 'shards', 'train'));
  const mean = readMean(join(dataDir, 'shards', 'mean.arrow'), data.size);
  const { learningRate, momentum } = config.train;
  const { model, logits } = buildModel(spec, 224, classes, 1);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = tf.train.momentum(learningRate, momentum, true);
  const x = new Float32Array(BATCH * 224 * 224 * 3);
  const labels = new Int32Array(BATCH);
  const rng = new Rng(28);
  let plans: BatchPlan[] = [];
  /** The next training batch into `x` and `labels` (untimed: the stage's loader fills batches on its own thread). */
  const nextBatch = () => {
    if (!plans.length) plans = planEpoch(rng, data.n, BATCH, data.size, 224, true);
    const p = plans.shift()!;
    fillBatch(x, data.images, data.size, 224, p, mean);
    for (let i = 0; i < p.indices.length; i++) labels[i] = data.labels[p.indices[i]!]!;
  };
  const pool = await ReplicaPool.start({ threads: THREADS, backend: 'wasm', vars, crop: 224, classes, maxRows: BATCH, model: { kind: 'build', spec, crop: 224, classes, seed: 1 } });
  await pool.sync(vars, opt, { kind: 'nesterov', learningRate, momentum });
  let k = 0;
  for (let i = 0; i < warmup; i++) {
    nextBatch();
    await pool.step(logits, vars, x, labels, k++);
  }
  return {
    rate: async () => {
      let ms = 0;
      for (let i = 0; i < STEPS; i++) {
        nextBatch();
        const t0 = performance.now();
        await pool.step(logits, vars, x, labels, k++);
        ms += performance.now() - t0;
      }
      return (BATCH * STEPS) / (ms / 1000);
    },
    close: async () => {
      await pool.close();
      opt.dispose();
      model.dispose();
    },
  };
}

const bench: BenchModule = {
  title: 'The train and evaluate stages as run (covers make) against the warm kernels and PyTorch on 2 threads',
  async run(ctx) {
    const config = resolveConfig(CONFIG);
    const dataDir = join(ctx.tmpDir, 'data');
    await buildDataDir(dataDir, config);
    const configFile = join(ctx.tmpDir, 'covers.config.json');
    writeFileSync(configFile, JSON.stringify(CONFIG));
    const spec = resolveModelSpec('AlexNet', '');
    const specFile = join(ctx.tmpDir, 'alexnet-spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    await selectBackend('wasm');
    const rounds = ctx.quick ? 1 : Number(process.env.BENCH_STAGE_ROUNDS ?? 3);
    const warm = await warmPool(spec, config, dataDir, 2);
    const r = { epochs: [] as number[][], warm: [] as number[], torch: [] as number[], evaluate: [] as number[], torchInfer: [] as number[] };
    const loads = [loadText()];
    try {
      for (let i = 0; i < rounds; i++) {
        const steps: (() => Promise<void>)[] = [
          async () => {
            r.epochs.push(epochRates(covers(['make', 'train', '--force', '--data-dir', dataDir, '--config', configFile])));
            r.evaluate.push(inferenceRate(covers(['make', 'evaluate', '--data-dir', dataDir, '--config', configFile])));
          },
          async () => { r.warm.push(await warm.rate()); },
          async () => {
            r.torch.push(torchRate(specFile, 'train', BATCH, STEPS, ctx.log) ?? NaN);
            r.torchInfer.push(torchRate(specFile, 'infer', EVAL_ROWS, Math.ceil(24 / 3), ctx.log) ?? NaN);
          },
        ];
        if (i % 2) steps.reverse();
        for (const s of steps) await s();
        loads.push(loadText());
        ctx.log(`round ${i + 1}: stage epochs ${r.epochs.at(-1)!.map((v) => v.toFixed(2)).join(', ')}, warm pool ${r.warm.at(-1)!.toFixed(2)}, PyTorch ${r.torch.at(-1)!.toFixed(2)} images/s; ` +
          `evaluate ${r.evaluate.at(-1)!.toFixed(1)}, PyTorch inference ${r.torchInfer.at(-1)!.toFixed(1)} crop images/s (load ${loads.at(-1)})`);
      }
    } finally {
      await warm.close();
    }
    const stage = r.epochs.map((e) => e.reduce((a, b) => a + b, 0) / e.length);
    const per = (a: number[], b: number[]) => a.map((v, i) => v / b[i]!).filter(Number.isFinite);
    const fmt = (xs: number[]) => xs.map((v) => v.toFixed(2)).join(', ');
    const vsWarm = per(stage, r.warm);
    const vsTorch = per(stage, r.torch);
    const evalVsTorch = per(r.evaluate, r.torchInfer);
    const notes = `${rounds} interleaved round(s) (order reversing every other round); ratio = median of the per-round ratios; ` +
      `stage rate = mean of the 2 epochs' logged rates (per epoch: ${r.epochs.map((e) => e.map((v) => v.toFixed(2)).join('/')).join('; ')}); ` +
      `AlexNet-224, batch ${BATCH}, ${TRAIN_N} covers per epoch, wasm, ${THREADS} threads; load averages (1/5/15 min) at the start and after each round: ${loads.join('; ')}`;
    const out: BenchResult[] = [
      {
        name: `covers make train (AlexNet-224, ${THREADS} threads, ${TRAIN_N} covers per epoch): logged images/s vs the benchmark's warm ${THREADS}-thread pool`,
        value: median(stage), unit: 'images/s', baseline: { name: `warm pool, ${STEPS} steps per round, same rounds`, value: median(r.warm) },
        ratio: median(vsWarm), target: '≥ 0.9× the warm pool', met: median(vsWarm) >= 0.9, notes: `${notes}; per round: ${fmt(vsWarm)}`,
      },
    ];
    const epoch2VsWarm = per(r.epochs.map((e) => e.at(-1)!), r.warm);
    out.push({
      name: `covers make train, second epoch alone (replicas warm) vs the warm pool`,
      value: median(r.epochs.map((e) => e.at(-1)!)), unit: 'images/s', baseline: { name: 'warm pool, same rounds', value: median(r.warm) },
      ratio: median(epoch2VsWarm), notes: `what is left once a run's first steps have warmed its replicas; per round: ${fmt(epoch2VsWarm)}`,
    });
    if (vsTorch.length) {
      out.push({
        name: `covers make train vs PyTorch CPU on ${THREADS} threads`, value: median(stage), unit: 'images/s',
        baseline: { name: `PyTorch ${THREADS} threads, ${STEPS} steps after 1 warm-up, same rounds`, value: median(r.torch.filter(Number.isFinite)) },
        ratio: median(vsTorch), target: '≥ 0.35× PyTorch', met: median(vsTorch) >= 0.35, notes: `per round: ${fmt(vsTorch)}`,
      });
    }
    if (evalVsTorch.length) {
      out.push({
        name: `covers make evaluate (10 crops per test cover, ${THREADS} threads): logged inference crop images/s vs PyTorch inference on ${THREADS} threads`,
        value: median(r.evaluate), unit: 'images/s',
        baseline: { name: `PyTorch inference, batches of ${EVAL_ROWS}, same rounds`, value: median(r.torchInfer.filter(Number.isFinite)) },
        ratio: median(evalVsTorch), target: '≥ 0.5× PyTorch', met: median(evalVsTorch) >= 0.5, notes: `24 test covers × 10 crops; per round: ${fmt(evalVsTorch)}`,
      });
    }
    return out;
  },
};
export default bench;
