/**
 * Benchmark: feature extraction with an imported ONNX network (model-import/, what `covers make features` runs)
 * against onnxruntime's CPU build (Python `onnxruntime`, bench/onnx_features.py) on the same file, batch, input and
 * thread count (1: tfjs' wasm backend runs single-threaded in Node), in the same run, interleaved ours / onnxruntime /
 * ours. The network is a seeded torchvision ResNet-18 at 224 px exported by PyTorch (test/python/export_pretrained.py,
 * batch norm folded, as `torch.onnx.export` writes by default); quick mode: width ×0.25 at 64 px. Images/s is the best
 * of the timed rounds of a batch of 8, preprocessing excluded on both sides.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';
import { selectBackend } from '../train/backends.ts';
import { loadOnnx } from '../model-import/load.ts';
import { truncatedModel } from '../model-import/onnx-to-tfjs.ts';

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

const bench: BenchModule = {
  title: 'Feature extraction: imported ONNX network (tfjs wasm) vs onnxruntime',
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
    const a = oursImagesPerSecond(model, size, rounds);
    const o = spawnSync(PYTHON, [join(import.meta.dirname, 'onnx_features.py'), onnx, net.featureTensor, String(BATCH), String(size), String(rounds), '1'], { encoding: 'utf8' });
    const b = oursImagesPerSecond(model, size, rounds);
    const ours = Math.max(a, b);
    ctx.log(`ours (tfjs ${backend.name}, ${backend.details}): ${a.toFixed(1)}, ${b.toFixed(1)} images/s`);
    const what = `ResNet-18${width === 1 ? '' : ` ×${width}`} to its pooled features, ${size}×${size}, batch ${BATCH}, 1 thread`;
    if (o.status !== 0) {
      ctx.log(`onnxruntime unavailable: ${o.stderr.trim().split('\n').pop()}`);
      return [{ name: what, value: ours, unit: 'images/s', notes: 'onnxruntime (Python) unavailable: no baseline' }];
    }
    const ort = JSON.parse(o.stdout.trim().split('\n').pop()!) as { onnxruntime: string; images_per_s: number };
    ctx.log(`onnxruntime ${ort.onnxruntime}: ${ort.images_per_s.toFixed(1)} images/s`);
    const ratio = ours / ort.images_per_s;
    return [{
      name: what,
      value: ours,
      unit: 'images/s',
      baseline: { name: `onnxruntime ${ort.onnxruntime} CPU (Python), same file, 1 intra-op thread`, value: ort.images_per_s },
      ratio,
      target: '≥ 0.5× onnxruntime',
      met: ratio >= 0.5,
      notes: `tfjs backend ${backend.name} (${backend.details}); best of ${rounds} rounds after 2 warm-ups, each side; ours measured before and after onnxruntime (${a.toFixed(1)}, ${b.toFixed(1)})`,
    }];
  },
};

export default bench;
