/**
 * The GPU benchmark's Node side (bench/gpu/README.md): AlexNet-224 (the study's defaults, schemas/model-params.ts)
 * training (forward, backward, Nesterov update) and inference images/s on a TensorFlow.js backend, `webgpu` by
 * default; and the report that merges its JSON with PyTorch's (bench/torch_train.py) into a JSON and a Markdown
 * table. Bundled by bench/gpu/pack.sh into a self-contained directory with its own Node binary.
 *
 * Usage:
 *   node gpu-bench.mjs measure --out webgpu.json [--backend webgpu] [--batch 32] [--steps 10] [--warmup 2] [--size 224]
 *   node gpu-bench.mjs report --out results --webgpu webgpu.json --torch-train t.json --torch-infer i.json [--note TEXT]
 *     (writes results.json and results.md)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, release } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendChoice } from '../../train/backends.ts';
import { resolveModelSpec } from '../../schemas/model-params.ts';
import { buildModel } from '../../train/models.ts';

/** What `measure` writes. */
export interface WebgpuFigures {
  backend: string;
  details: string;
  batch: number;
  size: number;
  steps: number;
  trainImagesPerSecond: number;
  inferImagesPerSecond: number;
  node: string;
  machine: string;
}

async function measure(o: { backend: BackendChoice; batch: number; steps: number; warmup: number; size: number }): Promise<WebgpuFigures> {
  const sel = await selectBackend(o.backend, (l) => console.error(l));
  const spec = resolveModelSpec('AlexNet', '');
  const classes = 10;
  const { model, logits } = buildModel(spec, o.size, classes, 1);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const opt = tf.train.momentum(0.001, 0.9, true);
  const x = tf.randomUniform([o.batch, o.size, o.size, 3], -1, 1, 'float32', 1);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: o.batch }, (_, i) => i % classes), 'int32'), classes);
  const train = async () => {
    const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, logits.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!;
    await cost.data(); // waits for the GPU
    cost.dispose();
  };
  const infer = async () => {
    const p = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1));
    await p.data();
    p.dispose();
  };
  const rate = async (f: () => Promise<void>, what: string) => {
    for (let i = 0; i < o.warmup; i++) await f();
    const t0 = performance.now();
    for (let i = 0; i < o.steps; i++) await f();
    const r = (o.batch * o.steps) / ((performance.now() - t0) / 1000);
    console.error(`${sel.name} ${what}: ${r.toFixed(2)} images/s`);
    return r;
  };
  const trainImagesPerSecond = await rate(train, 'training');
  const inferImagesPerSecond = await rate(infer, 'inference');
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
  return {
    backend: sel.name, details: sel.details, batch: o.batch, size: o.size, steps: o.steps, trainImagesPerSecond, inferImagesPerSecond,
    node: process.version, machine: `${platform()} ${release()} ${arch()}, ${cpus()[0]?.model ?? '?'} × ${cpus().length}`,
  };
}

interface TorchFigures {
  imagesPerSecond: number;
  device: string;
  torch: string;
  mode: string;
  batch: number;
  threads: number;
  gpu?: string;
}

function report(o: { out: string; webgpu: string; torchTrain: string; torchInfer: string; note?: string }): void {
  const w = JSON.parse(readFileSync(o.webgpu, 'utf8')) as WebgpuFigures;
  const tt = JSON.parse(readFileSync(o.torchTrain, 'utf8')) as TorchFigures;
  const ti = JSON.parse(readFileSync(o.torchInfer, 'utf8')) as TorchFigures;
  const result = { date: new Date().toISOString(), note: o.note ?? null, webgpu: w, torch: { train: tt, infer: ti } };
  writeFileSync(`${o.out}.json`, JSON.stringify(result, null, 2) + '\n');
  const f = (v: number) => v.toFixed(v < 10 ? 2 : 1);
  const md = [
    `# AlexNet-224 on ${w.details}`,
    '',
    `${result.date}; batch ${w.batch}, ${w.size}×${w.size}, Nesterov momentum; ${w.steps} timed steps after warm-up. Node ${w.node}, ${w.machine}.`,
    `PyTorch ${tt.torch} on ${tt.device}${tt.gpu ? ` (${tt.gpu})` : ''}.${o.note ? ` ${o.note}` : ''}`,
    '',
    '| images/s | ours (TensorFlow.js ' + w.backend + ') | PyTorch (same model and batch) | ours / PyTorch |',
    '|---|---|---|---|',
    `| training | ${f(w.trainImagesPerSecond)} | ${f(tt.imagesPerSecond)} | ${(w.trainImagesPerSecond / tt.imagesPerSecond).toFixed(3)}× |`,
    `| inference | ${f(w.inferImagesPerSecond)} | ${f(ti.imagesPerSecond)} | ${(w.inferImagesPerSecond / ti.imagesPerSecond).toFixed(3)}× |`,
    '',
  ].join('\n');
  writeFileSync(`${o.out}.md`, md);
  process.stdout.write(md);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'measure') {
  const { values: v } = parseArgs({
    args: rest,
    options: {
      out: { type: 'string' }, backend: { type: 'string', default: 'webgpu' }, batch: { type: 'string', default: '32' },
      steps: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' }, size: { type: 'string', default: '224' },
    },
  });
  const figures = await measure({ backend: v.backend as BackendChoice, batch: Number(v.batch), steps: Number(v.steps), warmup: Number(v.warmup), size: Number(v.size) });
  const text = JSON.stringify(figures, null, 2) + '\n';
  if (v.out) writeFileSync(v.out, text);
  else process.stdout.write(text);
  process.exit(0); // Dawn's device keeps the event loop alive
} else if (cmd === 'report') {
  const { values: v } = parseArgs({
    args: rest,
    options: { out: { type: 'string' }, webgpu: { type: 'string' }, 'torch-train': { type: 'string' }, 'torch-infer': { type: 'string' }, note: { type: 'string' } },
  });
  if (!v.out || !v.webgpu || !v['torch-train'] || !v['torch-infer']) throw new Error('report needs --out, --webgpu, --torch-train and --torch-infer');
  report({ out: v.out, webgpu: v.webgpu, torchTrain: v['torch-train'], torchInfer: v['torch-infer'], note: v.note });
} else {
  console.error('usage: gpu-bench.mjs measure|report … (see bench/gpu/README.md)');
  process.exit(2);
}
