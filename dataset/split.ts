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

/** What {@link assignGroupedSplits} needs of an item: its label and its leak group. */
export interface GroupedSplitItem extends SplitItem {
  /** Items with the same `group` always land in the same split (from {@link leakGroups}). */
  group: number;
}

/**
 * The leak groups of items: the connected components of "same artist" (equal non-null `bandId`, when `byArtist`) and
 * "near-duplicate" (a `nearGroups` group: indices into `items`).
 * @returns for each item, its group number (the index of the group's first item): an item alone is its own group.
 */
export function leakGroups(items: readonly { bandId: number | null }[], byArtist: boolean, nearGroups: readonly (readonly number[])[]): number[] {
  const parent = Int32Array.from({ length: items.length }, (_, k) => k);
  const find = (k: number): number => {
    while (parent[k] !== k) {
      parent[k] = parent[parent[k]!]!;
      k = parent[k]!;
    }
    return k;
  };
  const join = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  if (byArtist) {
    const firstOfBand = new Map<number, number>();
    items.forEach((it, k) => {
      if (it.bandId === null) return;
      const f = firstOfBand.get(it.bandId);
      if (f === undefined) firstOfBand.set(it.bandId, k);
      else join(f, k);
    });
  }
  for (const g of nearGroups) for (let k = 1; k < g.length; k++) join(g[0]!, g[k]!);
  return items.map((_, k) => find(k));
}

/**
 * Assigns every item to a split so that each group lands in one split, stratified by label as closely as the groups
 * allow; with only one-item groups the result equals {@link assignSplits}'s, item for item and in the same order.
 *
 * - Targets: per label, {@link splitCounts} of its items.
 * - Groups of two or more items first, in the order of their smallest {@link rankKey} (seeded; adding an item moves
 *   only its own group): each goes to the split it overfills least (Σ over its labels of the items beyond the
 *   target), ties to the split with the largest share of its target still open for the group's labels, then train,
 *   validation, test.
 * - Then the single items of each label, in rank order, fill what is left of the label's targets: train, then
 *   validation, then test (exactly {@link assignSplits}'s rule when no group took any place). Items beyond every target
 *   (groups overfilled some) go to the split furthest below its target.
 * - Order within splits as {@link assignSplits}: train shuffled (from label-then-rank order), validation and test by
 *   label, then `itemId`.
 * @returns the items in split order, each with its 0-based `order` within its split.
 * @throws Error when an `itemId` repeats.
 */
export function assignGroupedSplits<T extends GroupedSplitItem>(items: readonly T[], ratios: SplitRatios, seed: number): Assigned<T>[] {
  const seen = new Set<number>();
  for (const it of items) {
    if (seen.has(it.itemId)) throw new Error(`item_id ${it.itemId} appears twice`);
    seen.add(it.itemId);
  }
  const keyed = items.map((item) => ({ item, key: rankKey(seed, item.itemId) }));
  const byRank = (a: { item: T; key: number }, b: { item: T; key: number }): number => a.key - b.key || a.item.itemId - b.item.itemId;
  const labels = [...new Set(items.map((i) => i.label))].sort((a, b) => a - b);
  const target = new Map(labels.map((l) => [l, splitCounts(items.filter((i) => i.label === l).length, ratios)]));
  const have = new Map(labels.map((l) => [l, { train: 0, validation: 0, test: 0 } as Record<SplitName, number>]));
  const splitOf = new Map<T, SplitName>();

  const groups = new Map<number, { item: T; key: number }[]>();
  for (const k of keyed) {
    const list = groups.get(k.item.group);
    if (list) list.push(k);
    else groups.set(k.item.group, [k]);
  }
  const multi = [...groups.values()].filter((g) => g.length > 1).map((g) => g.sort(byRank));
  multi.sort((a, b) => byRank(a[0]!, b[0]!));
  for (const g of multi) {
    const perLabel = new Map<number, number>();
    for (const { item } of g) perLabel.set(item.label, (perLabel.get(item.label) ?? 0) + 1);
    let best: SplitName = 'train';
    let bestOver = Infinity;
    let bestOpen = -Infinity;
    for (const s of SPLIT_NAMES) {
      let over = 0;
      let open = 0;
      let want = 0;
      for (const [l, c] of perLabel) {
        const t = target.get(l)![s];
        const h = have.get(l)![s];
        over += Math.max(0, h + c - t) - Math.max(0, h - t);
        open += c * Math.max(0, t - h);
        want += c * t;
      }
      const share = want > 0 ? open / want : -1;
      if (over < bestOver || (over === bestOver && share > bestOpen)) {
        best = s;
        bestOver = over;
        bestOpen = share;
      }
    }
    for (const { item } of g) {
      splitOf.set(item, best);
      have.get(item.label)![best]++;
    }
  }
  for (const l of labels) {
    const singles = keyed.filter((k) => k.item.label === l && groups.get(k.item.group)!.length === 1).sort(byRank);
    const h = have.get(l)!;
    const t = target.get(l)!;
    for (const { item } of singles) {
      let s = SPLIT_NAMES.find((name) => h[name] < t[name]);
      // Every target met (groups overfilled some): the split furthest below its share.
      s ??= [...SPLIT_NAMES].sort((a, b) => h[a] / Math.max(t[a], 1e-9) - h[b] / Math.max(t[b], 1e-9))[0]!;
      splitOf.set(item, s);
      h[s]++;
    }
  }
  const out: Record<SplitName, T[]> = { train: [], validation: [], test: [] };
  for (const l of labels) {
    for (const { item } of keyed.filter((k) => k.item.label === l).sort(byRank)) out[splitOf.get(item)!].push(item);
  }
  shuffleInPlace(out.train, new SplitRng(seed));
  for (const split of ['validation', 'test'] as const) out[split].sort((a, b) => a.label - b.label || a.itemId - b.itemId);
  return SPLIT_NAMES.flatMap((split) => out[split].map((item, order) => ({ ...item, split, order })));
}
