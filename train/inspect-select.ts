/**
 * Which test covers `inspect` shows, and accuracy by group: pure functions over the per-image predictions
 * (schemas/predictions.ts).
 */
import type { Prediction } from '../schemas/predictions.ts';
import { Rng } from '../util/rng.ts';

/** Rows sorted by descending confidence, then by row (stable, deterministic). */
function byConfidence(ps: readonly Prediction[]): Prediction[] {
  return [...ps].sort((a, b) => b.confidence - a.confidence || a.row - b.row);
}

/**
 * Per genre (label order), the `k` test covers predicted right with the highest confidence, and the `k` predicted
 * wrong with the highest confidence in the wrong genre.
 * @returns per label, test-split rows in descending confidence.
 */
export function pickExamples(ps: readonly Prediction[], classes: number, k: number): { label: number; right: number[]; wrong: number[] }[] {
  return Array.from({ length: classes }, (_, label) => {
    const mine = ps.filter((p) => p.label === label);
    return {
      label,
      right: byConfidence(mine.filter((p) => p.predicted === label)).slice(0, k).map((p) => p.row),
      wrong: byConfidence(mine.filter((p) => p.predicted !== label)).slice(0, k).map((p) => p.row),
    };
  });
}

/**
 * Every non-empty off-diagonal cell of the confusion matrix: its count and its `k` covers predicted with the
 * highest confidence, ordered by descending count (the genres confused most first), then by label.
 */
export function pickConfusions(ps: readonly Prediction[], k: number): { label: number; predicted: number; count: number; rows: number[] }[] {
  const cells = new Map<string, Prediction[]>();
  for (const p of ps) {
    if (p.predicted === p.label) continue;
    const key = `${p.label},${p.predicted}`;
    cells.set(key, [...(cells.get(key) ?? []), p]);
  }
  return [...cells.values()]
    .map((c) => ({ label: c[0]!.label, predicted: c[0]!.predicted, count: c.length, rows: byConfidence(c).slice(0, k).map((p) => p.row) }))
    .sort((a, b) => b.count - a.count || a.label - b.label || a.predicted - b.predicted);
}

/**
 * The covers whose saliency is drawn: per genre, up to `k` test covers, the most confident right ones first, then
 * the most confident wrong ones.
 */
export function pickSaliencyRows(ps: readonly Prediction[], classes: number, k: number): number[] {
  const out: number[] = [];
  for (let label = 0; label < classes; label++) {
    const mine = byConfidence(ps.filter((p) => p.label === label));
    const ordered = [...mine.filter((p) => p.predicted === label), ...mine.filter((p) => p.predicted !== label)];
    out.push(...ordered.slice(0, k).map((p) => p.row));
  }
  return out;
}

/** At most `max` of `n` rows, a seeded sample in ascending order (all rows when n ≤ max). */
export function sampleRows(n: number, max: number, seed: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  return [...new Rng(seed).permutation(n).subarray(0, max)].sort((a, b) => a - b);
}

/** Correct and total predictions per group value, by descending count then value; rows without a group are left out. */
export function accuracyByGroup(ps: readonly Prediction[], groupOf: (p: Prediction) => string | null): { value: string; n: number; correct: number }[] {
  const acc = new Map<string, { n: number; correct: number }>();
  for (const p of ps) {
    const g = groupOf(p);
    if (g === null) continue;
    const a = acc.get(g) ?? { n: 0, correct: 0 };
    a.n++;
    if (p.predicted === p.label) a.correct++;
    acc.set(g, a);
  }
  return [...acc.entries()].map(([value, a]) => ({ value, ...a })).sort((a, b) => b.n - a.n || a.value.localeCompare(b.value));
}

/** Most distinct exact sizes shown as their own class; beyond it, sizes are grouped by their longer side. */
export const MAX_EXACT_SIZES = 8;

/** Size classes by longer side, pixels (upper bounds, exclusive). */
const SIZE_BOUNDS = [300, 600, 1000, 2000];

/**
 * The size class of each downloaded image: `W×H` when there are at most {@link MAX_EXACT_SIZES} distinct sizes, else
 * a range of the longer side (`< 300 px`, `300–599 px`, …, `≥ 2000 px`).
 * @param sizes width and height in pixels per key (null when unknown).
 * @returns the class per key (null when the size is unknown).
 */
export function sizeClasses<K>(sizes: ReadonlyMap<K, { width: number | null; height: number | null }>): Map<K, string | null> {
  const exact = new Set<string>();
  for (const s of sizes.values()) if (s.width !== null && s.height !== null) exact.add(`${s.width}×${s.height}`);
  const out = new Map<K, string | null>();
  for (const [k, s] of sizes) {
    if (s.width === null || s.height === null) out.set(k, null);
    else if (exact.size <= MAX_EXACT_SIZES) out.set(k, `${s.width}×${s.height}`);
    else {
      const side = Math.max(s.width, s.height);
      const i = SIZE_BOUNDS.findIndex((b) => side < b);
      out.set(k, i === 0 ? `< ${SIZE_BOUNDS[0]} px` : i < 0 ? `≥ ${SIZE_BOUNDS[SIZE_BOUNDS.length - 1]} px` : `${SIZE_BOUNDS[i - 1]}–${SIZE_BOUNDS[i]! - 1} px`);
    }
  }
  return out;
}
