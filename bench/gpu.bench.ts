/**
 * Issue 14: the GPU benchmark (bench/gpu/): packs the self-contained bundle (bench/gpu/pack.sh) and runs it
 * (run.sh): AlexNet-224 training and inference images/s on TensorFlow.js webgpu against PyTorch with the same model
 * and batch. With an NVIDIA GPU (`nvidia-smi` answers) these are the GPU figures (batch 32, 10 steps, PyTorch on
 * CUDA). Without one, the bundle runs end to end against chromium's SwiftShader (software Vulkan) with PyTorch on
 * the CPU at batch 2, one step: a check that the script works, not a GPU figure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const bench: BenchModule = {
  title: 'GPU: AlexNet-224 on webgpu vs PyTorch (bench/gpu) — GPU figures still to be measured unless a row says GPU',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const gpu = spawnSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8' });
    const gpuName = gpu.status === 0 ? gpu.stdout.trim().split('\n')[0]! : null;
    if (!gpuName && !existsSync(SWIFTSHADER_ICD)) {
      ctx.log(`no NVIDIA GPU and no SwiftShader ICD (${SWIFTSHADER_ICD}): nothing to run`);
      return [];
    }
    const dist = join(ctx.tmpDir, 'dist');
    const pack = spawnSync('bash', [join(here, 'gpu', 'pack.sh'), dist], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (pack.status !== 0) throw new Error(`bench/gpu/pack.sh failed (${pack.status})`);
    ctx.log(pack.stdout.trim());
    const bundle = join(dist, 'covers-gpu-bench');
    const out = join(ctx.tmpDir, 'out');
    const args = gpuName
      ? ['--out', out, '--batch', '32', '--steps', '10', '--warmup', '2', '--torch-device', 'cuda', '--note', `GPU: ${gpuName}`]
      : ['--out', out, '--batch', '2', '--steps', '1', '--warmup', '1', '--torch-device', 'cpu', '--note', 'SwiftShader smoke run (software adapter): not GPU figures'];
    const env = gpuName ? process.env : { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD };
    const run = spawnSync('bash', [join(bundle, 'run.sh'), ...args], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], timeout: 3_600_000 });
    if (run.status !== 0) throw new Error(`bench/gpu/run.sh failed (${run.status})`);
    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as {
      webgpu: { details: string; batch: number; trainImagesPerSecond: number; inferImagesPerSecond: number };
      torch: { train: { imagesPerSecond: number; device: string }; infer: { imagesPerSecond: number } };
    };
    const where = gpuName ? `GPU ${gpuName}` : 'SwiftShader (software, on the CPU; smoke run, NOT a GPU figure)';
    const notes = `${r.webgpu.details}; batch ${r.webgpu.batch}; PyTorch on ${r.torch.train.device}; bundle ${pack.stdout.trim().split(': ').pop()}`;
    return [
      { name: `AlexNet-224 training, webgpu on ${where}`, value: r.webgpu.trainImagesPerSecond, unit: 'images/s', baseline: { name: `PyTorch, same model and batch, ${r.torch.train.device}`, value: r.torch.train.imagesPerSecond }, notes },
      { name: `AlexNet-224 inference, webgpu on ${where}`, value: r.webgpu.inferImagesPerSecond, unit: 'images/s', baseline: { name: `PyTorch, same model and batch, ${r.torch.train.device}`, value: r.torch.infer.imagesPerSecond }, notes },
    ];
  },
};
export default bench;
