/**
 * The train/validation/test assignment (stage `split`): stratified by genre, exact per-genre counts by
 * largest-remainder rounding, and a seeded, portable order, so the same manifest and seed give the same split on any
 * machine and in any Node.js version.
 */
import { createHash } from 'node:crypto';
import { SPLIT_NAMES, type SplitName } from '../schemas/shards/names.ts';

/** Split ratios (config `splits`); they add up to 1. */
export type SplitRatios = Record<SplitName, number>;

/**
 * Per-split counts for `n` items by largest-remainder (Hamilton) rounding: each split gets the floor of its quota
 * `n·ratio`, and the items left over go to the largest fractional parts (ties: train, then validation, then test).
 * The counts add up to `n` exactly.
 */
export function splitCounts(n: number, ratios: SplitRatios): Record<SplitName, number> {
  // Quotas rounded to 1e-9 so that 0.1·30 (3.0000000000000004) and 0.29·100 (28.999999999999996) floor as intended.
  const quotas = SPLIT_NAMES.map((s) => Math.round(n * ratios[s] * 1e9) / 1e9);
  const counts = quotas.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const byRemainder = SPLIT_NAMES.map((_, i) => i).sort((a, b) => quotas[b]! - counts[b]! - (quotas[a]! - counts[a]!) || a - b);
  for (const i of byRemainder) {
    if (left <= 0) break;
    counts[i]!++;
    left--;
  }
  return { train: counts[0]!, validation: counts[1]!, test: counts[2]! };
}

/**
 * The rank key of an item for a seed: the first 48 bits of sha256(`<seed>:<item_id>`), a number in [0, 2^48).
 * Independent of the manifest's row order.
 */
export function rankKey(seed: number, itemId: number): number {
  return parseInt(createHash('sha256').update(`${seed}:${itemId}`).digest('hex').slice(0, 12), 16);
}

/**
 * A small, portable, seeded PRNG: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator), seeded from
 * sha256(`<purpose>:<seed>`). Same sequence on every platform.
 */
export class SplitRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number, purpose = 'split-shuffle') {
    const h = createHash('sha256').update(`${purpose}:${seed}`).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12);
    for (let i = 0; i < 12; i++) this.nextUint32();
  }
  /** Next value, an unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** A uniform integer in [0, n), n ≤ 2^32, without modulo bias (rejection sampling). */
  below(n: number): number {
    const limit = Math.floor(0x100000000 / n) * n;
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }
}

/** Shuffles `items` in place (Fisher–Yates) with `rng`; returns it. */
export function shuffleInPlace<T>(items: T[], rng: SplitRng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** What {@link assignSplits} needs of an item. */
export interface SplitItem {
  itemId: number;
  /** Index of the item's genre in config `genres`. */
  label: number;
}

/** An item with its assignment. */
export type Assigned<T extends SplitItem> = T & { split: SplitName; order: number };

/**
 * Assigns every item to a split, stratified by label: within each label, items are ranked by {@link rankKey} (ties by
 * `itemId`) and the first `train` ranks go to train, the next `validation` to validation, the rest to test, with the
 * counts of {@link splitCounts}. Then each split is ordered: train shuffled with {@link SplitRng} (from label-then-rank
 * order, so the shuffle is independent of the input order), validation and test by label, then `itemId`.
 * @returns the items in split order (train, validation, test), each with its 0-based `order` within its split.
 * @throws Error when an `itemId` repeats.
 */
export function assignSplits<T extends SplitItem>(items: readonly T[], ratios: SplitRatios, seed: number): Assigned<T>[] {
  const seen = new Set<number>();
  for (const it of items) {
    if (seen.has(it.itemId)) throw new Error(`item_id ${it.itemId} appears twice`);
    seen.add(it.itemId);
  }
  const byLabel = new Map<number, { item: T; key: number }[]>();
  for (const item of items) {
    const list = byLabel.get(item.label) ?? [];
    list.push({ item, key: rankKey(seed, item.itemId) });
    byLabel.set(item.label, list);
  }
  const out: Record<SplitName, T[]> = { train: [], validation: [], test: [] };
  for (const label of [...byLabel.keys()].sort((a, b) => a - b)) {
    const ranked = byLabel.get(label)!.sort((a, b) => a.key - b.key || a.item.itemId - b.item.itemId);
    const counts = splitCounts(ranked.length, ratios);
    let at = 0;
    for (const split of SPLIT_NAMES) {
      for (let k = 0; k < counts[split]; k++) out[split].push(ranked[at++]!.item);
    }
  }
  shuffleInPlace(out.train, new SplitRng(seed));
  for (const split of ['validation', 'test'] as const) out[split].sort((a, b) => a.label - b.label || a.itemId - b.itemId);
  return SPLIT_NAMES.flatMap((split) => out[split].map((item, order) => ({ ...item, split, order })));
}
