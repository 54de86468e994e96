/**
 * Benchmark: feature extraction by both `pretrained.engine`s of `covers make features` — the TensorFlow.js import
 * (model-import/onnx-to-tfjs.ts, wasm) and onnxruntime-node's CPU build (model-import/onnxruntime.ts, what `auto`
 * picks when it loads) — against onnxruntime's CPU build from Python (bench/onnx_features.py) on the same file, batch,
 * input and thread count (1: tfjs' wasm backend runs single-threaded in Node), in the same run, interleaved
 * tfjs / onnxruntime-node / Python / onnxruntime-node / tfjs. The network is a seeded torchvision ResNet-18 at 224 px exported by PyTorch (test/python/export_pretrained.py,
 * batch norm folded, as `torch.onnx.export` writes by default); quick mode: width ×0.25 at 64 px. Images/s is the best
 * of the timed rounds of a batch of 8, preprocessing excluded on both sides.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { selectBackend } from '../train/backends.ts';
import { readFile } from 'node:fs/promises';
import { loadOnnx } from '../model-import/load.ts';
import { decodeOnnx } from '../model-import/onnx-read.ts';
import { truncatedModel } from '../model-import/onnx-to-tfjs.ts';
import { loadOnnxRuntime, OrtFeatureExtractor } from '../model-import/onnxruntime.ts';
import { INPUT_PRESETS } from '../model-import/preprocess.ts';
import type { Crop } from '../model-import/extract.ts';

const PYTHON = process.env.PYTHON ?? 'python3';
const BATCH = 8;

function oursImagesPerSecond(model: ReturnType<typeof truncatedModel>, size: number, rounds: number): number {
  const x = tf.randomNormal([BATCH, size, size, 3], 0, 1, 'float32', 0);
  for (let i = 0; i < 2; i++) tf.dispose((model.predict(x) as tf.Tensor).dataSync());
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const y = model.predict(x) as tf.Tensor;
    y.dataSync();
    y.dispose();
    best = Math.max(best, BATCH / ((performance.now() - t0) / 1000));
  }
  x.dispose();
  return best;
}

/**
 * onnxruntime-node through the `features` stage's extractor, on `[BATCH, size, size, 3]` random images: the time of a
 * run includes our crop copy and NHWC → NCHW transpose (as the stage does), the preprocessing of the uint8 pixels too.
 */
async function ortNodeImagesPerSecond(ort: OrtFeatureExtractor, size: number, rounds: number): Promise<number> {
  const images = new Uint8Array(BATCH * size * size * 3).map((_, i) => (i * 2654435761) >>> 24);
  const crops: Crop[] = [[0, 0, 0]];
  const run = () => ort.extract(images, BATCH, size, size, crops, INPUT_PRESETS.imagenet);
  for (let i = 0; i < 2; i++) await run();
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await run();
    best = Math.max(best, BATCH / ((performance.now() - t0) / 1000));
  }
  return best;
}

const bench: BenchModule = {
  title: 'Feature extraction: imported ONNX network (onnxruntime-node and tfjs wasm engines) vs onnxruntime',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const [width, size, rounds] = ctx.quick ? [0.25, 64, 3] : [1, 224, 5];
    const onnx = join(ctx.tmpDir, 'resnet18.onnx');
    const exported = spawnSync(PYTHON, [join(import.meta.dirname, '..', 'test', 'python', 'export_pretrained.py'), '--arch', 'resnet18', '--width', String(width), '--size', String(size), '--out', onnx], { encoding: 'utf8' });
    if (exported.status !== 0) {
      ctx.log(`skipped: exporting the network needs python3 with torch and onnx (${exported.error?.message ?? exported.stderr.trim().split('\n').pop()})`);
      return [];
    }
    const backend = await selectBackend('wasm');
    const net = await loadOnnx(onnx);
    const model = truncatedModel(net);
    const loaded = await loadOnnxRuntime();
    const bytes = await readFile(onnx);
    const ortNode = 'reason' in loaded ? null : await OrtFeatureExtractor.open(loaded.ort, bytes, decodeOnnx(bytes, onnx), net.featureTensor, 1);
    const a = oursImagesPerSecond(model, size, rounds);
    const n1 = ortNode ? await ortNodeImagesPerSecond(ortNode, size, rounds) : 0;
    const o = spawnSync(PYTHON, [join(import.meta.dirname, 'onnx_features.py'), onnx, net.featureTensor, String(BATCH), String(size), String(rounds), '1'], { encoding: 'utf8' });
    const n2 = ortNode ? await ortNodeImagesPerSecond(ortNode, size, rounds) : 0;
    const b = oursImagesPerSecond(model, size, rounds);
    await ortNode?.release();
    const tfjs = Math.max(a, b);
    const node = Math.max(n1, n2);
    ctx.log(`tfjs import (${backend.name}, ${backend.details}): ${a.toFixed(1)}, ${b.toFixed(1)} images/s`);
    ctx.log(ortNode ? `onnxruntime-node ${'version' in loaded ? loaded.version : ''}: ${n1.toFixed(1)}, ${n2.toFixed(1)} images/s` : `onnxruntime-node unavailable: ${'reason' in loaded ? loaded.reason : ''}`);
    const what = `ResNet-18${width === 1 ? '' : ` ×${width}`} to its pooled features, ${size}×${size}, batch ${BATCH}, 1 thread`;
    if (o.status !== 0) {
      ctx.log(`onnxruntime (Python) unavailable: ${o.stderr.trim().split('\n').pop()}`);
      return [
        { name: `${what}, tfjs import`, value: tfjs, unit: 'images/s', notes: 'onnxruntime (Python) unavailable: no baseline' },
        ...(ortNode ? [{ name: `${what}, onnxruntime-node`, value: node, unit: 'images/s', notes: 'onnxruntime (Python) unavailable: no baseline' }] : []),
      ];
    }
    const py = JSON.parse(o.stdout.trim().split('\n').pop()!) as { onnxruntime: string; images_per_s: number };
    ctx.log(`onnxruntime ${py.onnxruntime} (Python): ${py.images_per_s.toFixed(1)} images/s`);
    const baseline = { name: `onnxruntime ${py.onnxruntime} CPU (Python), same file, 1 intra-op thread`, value: py.images_per_s };
    const results: BenchResult[] = [];
    if (ortNode) {
      const ratio = node / py.images_per_s;
      results.push({
        name: `${what}, pretrained.engine=onnxruntime (auto's choice)`, value: node, unit: 'images/s', baseline, ratio, target: '≥ 0.5× onnxruntime', met: ratio >= 0.5,
        notes: `onnxruntime-node ${'version' in loaded ? loaded.version : ''} CPU, 1 intra-op thread, through the stage's extractor (crop copy, preprocessing and NCHW transpose included; the Python side times the network alone); best of ${rounds} rounds after 2 warm-ups, before and after Python (${n1.toFixed(1)}, ${n2.toFixed(1)})`,
      });
    } else {
      ctx.log('onnxruntime-node is not installed: only the tfjs engine is measured');
    }
    const ratio = tfjs / py.images_per_s;
    results.push({
      name: `${what}, pretrained.engine=tfjs`, value: tfjs, unit: 'images/s', baseline, ratio, target: '≥ 0.5× onnxruntime', met: ratio >= 0.5,
      notes: `tfjs backend ${backend.name} (${backend.details}); best of ${rounds} rounds after 2 warm-ups, network only; first and last in the run (${a.toFixed(1)}, ${b.toFixed(1)})`,
    });
    return results;
  },
};

export default bench;
