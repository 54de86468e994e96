/**
 * Issue 26: what the pretrained features' embedding adds to `inspect` (with `pretrained.model` set) at the study's
 * scale: the UMAP (train/embedding.ts, as `inspect` runs it) of 1,000 test covers' AlexNet fc7 features (4,096
 * values each), against the UMAP of the same covers' shrunk pixels (768 values) that `inspect` always runs, timed in
 * interleaved rounds in one process. The vectors are synthetic (10 genre clusters; fc7-like: non-negative, about
 * half zeros after ReLU): UMAP's cost depends on their count and length, not on where the vectors came from.
 * `BENCH_INSPECT_PRETRAINED_N` covers (default 1000, the study's test split), `BENCH_INSPECT_PRETRAINED_ROUNDS`
 * rounds (default 2). Quick mode: 200 covers, 1 round.
 */
import { loadavg } from 'node:os';
import { embed2d } from '../train/embedding.ts';
import { Rng } from '../util/rng.ts';
import type { BenchContext, BenchModule, BenchResult } from './lib.ts';

/** `[n, dims]` vectors in 10 clusters, each value max(0, centre + noise) (ReLU-like). */
function clustered(n: number, dims: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const centres = Array.from({ length: 10 }, () => Float32Array.from({ length: dims }, () => rng.next() * 2 - 1));
  const out = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) {
    const c = centres[i % 10]!;
    for (let k = 0; k < dims; k++) out[i * dims + k] = Math.max(0, c[k]! + (rng.next() - 0.5) * 1.5);
  }
  return out;
}

async function seconds(vectors: Float32Array, n: number, dims: number): Promise<number> {
  const t0 = performance.now();
  await embed2d(vectors, n, dims, { seed: 0 });
  return (performance.now() - t0) / 1000;
}

const bench: BenchModule = {
  title: 'Inspect (issue 26): the pretrained features’ embedding',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const n = ctx.quick ? 200 : Number(process.env.BENCH_INSPECT_PRETRAINED_N ?? 1000);
    const rounds = ctx.quick ? 1 : Number(process.env.BENCH_INSPECT_PRETRAINED_ROUNDS ?? 2);
    const fc7 = clustered(n, 4096, 1);
    const pixels = clustered(n, 768, 2);
    const pre: number[] = [];
    const px: number[] = [];
    const loads: string[] = [];
    for (let r = 0; r < rounds; r++) {
      loads.push(loadavg().map((l) => l.toFixed(1)).join(' / '));
      px.push(await seconds(pixels, n, 768));
      pre.push(await seconds(fc7, n, 4096));
      ctx.log(`round ${r + 1}: pixels ${px.at(-1)!.toFixed(1)} s, fc7 ${pre.at(-1)!.toFixed(1)} s`);
    }
    loads.push(loadavg().map((l) => l.toFixed(1)).join(' / '));
    const best = (xs: number[]) => Math.min(...xs);
    return [{
      name: `UMAP of ${n.toLocaleString('en')} covers' pretrained features (4,096 values, AlexNet fc7-sized)`,
      value: best(pre), unit: 's',
      baseline: { name: `UMAP of the same covers' pixels (768 values), interleaved`, value: best(px) },
      notes: `fastest of ${rounds} interleaved round(s): fc7 ${pre.map((x) => x.toFixed(1)).join(', ')} s; pixels ${px.map((x) => x.toFixed(1)).join(', ')} s; load averages (1/5/15 min): ${loads.join('; ')}`,
    }];
  },
};
export default bench;
