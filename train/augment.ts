/**
 * Crops, mirroring and mean subtraction: uint8 `[S, S, 3]` records → float32 `[crop, crop, 3]` network inputs, and
 * epoch plans (shuffles and random crops drawn from util/rng.ts). Pure functions, shared by the main thread and
 * loader workers.
 */
import type { Rng } from '../util/rng.ts';

/** Network input scale: (pixel − mean) / 255, so inputs lie in about [−1, 1]. */
export const INPUT_SCALE = 1 / 255;

/** Which records go into one batch and how each is cropped. */
export interface BatchPlan {
  /** Record indices into the split. */
  indices: Int32Array;
  /** Top and left crop offsets, pixels. */
  oy: Int32Array;
  ox: Int32Array;
  /** 1 = mirror horizontally. */
  mirror: Uint8Array;
}

/**
 * Fills `out` (`[plan.indices.length, crop, crop, 3]` float32 HWC) from the records.
 * @param images `[n, S, S, 3]` uint8 HWC. @param mean `[S, S, 3]` float32 (uint8 units) or null: subtracted per
 *   pixel at the crop's source position (the mean is cropped and mirrored with the image).
 */
export function fillBatch(out: Float32Array, images: Uint8Array, size: number, crop: number, plan: BatchPlan, mean: Float32Array | null): void {
  const rec = size * size * 3;
  const row = size * 3;
  const w3 = crop * 3;
  const k = INPUT_SCALE;
  // (x − mean)·k as x·k − mean·k with mean·k computed once per mean array: one multiply-subtract per value.
  const km = mean ? scaledMean(mean, k) : null;
  let o = 0;
  for (let b = 0; b < plan.indices.length; b++) {
    const base = plan.indices[b]! * rec;
    const oy = plan.oy[b]!;
    const ox = plan.ox[b]!;
    const mirror = plan.mirror[b] === 1;
    for (let y = 0; y < crop; y++) {
      const srcRow = (oy + y) * row + ox * 3;
      let si = base + srcRow;
      if (!mirror) {
        const end = o + w3;
        if (km) for (let mi = srcRow; o < end; o++, si++, mi++) out[o] = images[si]! * k - km[mi]!;
        else for (; o < end; o++, si++) out[o] = images[si]! * k;
      } else if (km) {
        // Walk the source row right to left, pixel by pixel, keeping R, G, B order.
        si += w3 - 3;
        for (let x = 0, mi = srcRow + w3 - 3; x < crop; x++, si -= 3, mi -= 3, o += 3) {
          out[o] = images[si]! * k - km[mi]!;
          out[o + 1] = images[si + 1]! * k - km[mi + 1]!;
          out[o + 2] = images[si + 2]! * k - km[mi + 2]!;
        }
      } else {
        si += w3 - 3;
        for (let x = 0; x < crop; x++, si -= 3, o += 3) {
          out[o] = images[si]! * k;
          out[o + 1] = images[si + 1]! * k;
          out[o + 2] = images[si + 2]! * k;
        }
      }
    }
  }
}

const scaledMeans = new WeakMap<Float32Array, { k: number; km: Float32Array }>();

/** `mean · k` (float32), cached per mean array and scale. */
function scaledMean(mean: Float32Array, k: number): Float32Array {
  const hit = scaledMeans.get(mean);
  if (hit && hit.k === k) return hit.km;
  const km = new Float32Array(mean.length);
  for (let i = 0; i < mean.length; i++) km[i] = mean[i]! * k;
  scaledMeans.set(mean, { k, km });
  return km;
}

/**
 * Plans one training epoch: a shuffled order and a random crop offset and mirror flag per record, all drawn from
 * `rng` up front (so the plan does not depend on prefetching, and the PRNG state after an epoch is well defined).
 */
export function planEpoch(rng: Rng, n: number, batchSize: number, size: number, crop: number, mirror: boolean): BatchPlan[] {
  const order = rng.permutation(n);
  const oy = new Int32Array(n);
  const ox = new Int32Array(n);
  const mir = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    oy[i] = rng.int(size - crop + 1);
    ox[i] = rng.int(size - crop + 1);
    mir[i] = mirror && rng.next() < 0.5 ? 1 : 0;
  }
  const plans: BatchPlan[] = [];
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    plans.push({ indices: order.slice(s, e), oy: oy.slice(s, e), ox: ox.slice(s, e), mirror: mir.slice(s, e) });
  }
  return plans;
}

/**
 * The deterministic evaluation crops of one image: centre only (1), or centre + four corners, each also mirrored (10),
 * as in Krizhevsky et al. (2012). @returns [oy, ox, mirror] triples.
 */
export function evalCrops(size: number, crop: number, count: 1 | 10): [number, number, 0 | 1][] {
  const c = Math.floor((size - crop) / 2);
  const m = size - crop;
  if (count === 1) return [[c, c, 0]];
  const pos: [number, number][] = [[c, c], [0, 0], [0, m], [m, 0], [m, m]];
  return [...pos.map(([y, x]) => [y, x, 0] as [number, number, 0]), ...pos.map(([y, x]) => [y, x, 1] as [number, number, 1])];
}

/** Plans evaluation batches over records `0..n-1` in order: each image expanded to its crops (consecutive). */
export function planEval(n: number, imagesPerBatch: number, size: number, crop: number, count: 1 | 10): BatchPlan[] {
  const crops = evalCrops(size, crop, count);
  const plans: BatchPlan[] = [];
  for (let s = 0; s < n; s += imagesPerBatch) {
    const e = Math.min(n, s + imagesPerBatch);
    const len = (e - s) * crops.length;
    const p: BatchPlan = { indices: new Int32Array(len), oy: new Int32Array(len), ox: new Int32Array(len), mirror: new Uint8Array(len) };
    let j = 0;
    for (let i = s; i < e; i++) {
      for (const [y, x, mi] of crops) {
        p.indices[j] = i; p.oy[j] = y; p.ox[j] = x; p.mirror[j] = mi; j++;
      }
    }
    plans.push(p);
  }
  return plans;
}
