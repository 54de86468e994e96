/**
 * 2-D embeddings of test covers for the report's scatter plots: UMAP (McInnes et al. 2018) with umap-js, seeded, so
 * the same vectors and seed give the same picture.
 */
import { UMAP } from 'umap-js';
import { Rng } from '../util/rng.ts';

/** Options of {@link embed2d}. */
export interface EmbedOptions {
  seed: number;
  /** Neighbours of the k-NN graph (UMAP's default 15; capped at n − 1). */
  neighbours?: number;
  /** Called with the optimisation epoch done and the total, for a progress display. */
  onEpoch?: (done: number, total: number) => void;
}

/**
 * Embeds `n` vectors of `dims` values in 2-D with UMAP (umap-js: Euclidean distance, 15 neighbours, min_dist 0.1,
 * 200 epochs).
 * @param vectors `[n, dims]` float32, row-major.
 * @returns `[n, 2]` coordinates scaled to [0, 1] on each axis (fewer than 3 vectors are placed on a line).
 */
export async function embed2d(vectors: Float32Array, n: number, dims: number, opts: EmbedOptions): Promise<Float32Array> {
  const out = new Float32Array(n * 2);
  if (n < 3) {
    for (let i = 0; i < n; i++) out[i * 2] = n === 1 ? 0.5 : i;
    for (let i = 0; i < n; i++) out[i * 2 + 1] = 0.5;
    return out;
  }
  const data: number[][] = Array.from({ length: n }, (_, i) => Array.from(vectors.subarray(i * dims, (i + 1) * dims)));
  const rng = new Rng(opts.seed);
  // 200 optimisation epochs (umap-learn's choice for large data; umap-js's default of 500 below 10,000 points costs
  // 2.5× the time for a picture that changes little).
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(opts.neighbours ?? 15, n - 1), minDist: 0.1, nEpochs: 200, random: () => rng.next() });
  const epochs = umap.initializeFit(data);
  for (let e = 0; e < epochs; e++) {
    umap.step();
    if (e % 25 === 24 || e === epochs - 1) {
      opts.onEpoch?.(e + 1, epochs);
      await new Promise((r) => setImmediate(r)); // let Ctrl-C and the progress display through
    }
  }
  const y = umap.getEmbedding();
  for (const axis of [0, 1]) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of y) {
      lo = Math.min(lo, p[axis]!);
      hi = Math.max(hi, p[axis]!);
    }
    const span = hi - lo || 1;
    y.forEach((p, i) => (out[i * 2 + axis] = (p[axis]! - lo) / span));
  }
  return out;
}
