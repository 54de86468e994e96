/**
 * Near-duplicate covers: pairs of perceptual hashes (dataset/phash.ts) within a Hamming distance, and the groups they
 * form (stages `download` and `split`). Hashes are packed as two uint32 words per cover (`[hi0, lo0, hi1, lo1, …]`),
 * compared with a 32-bit popcount: no BigInt.
 *
 * Two searches with the same answer:
 * - {@link nearPairs}: every pair, n·(n−1)/2 comparisons (10,000 covers: 5·10⁷ pairs, well under a second here);
 * - {@link MultiIndex}: multi-index hashing (Norouzi, Punjani & Fleet, "Fast search in Hamming space with multi-index
 *   hashing", CVPR 2012): the 64 bits are cut into m = 4 blocks of 16; two hashes within distance d agree within
 *   ⌊d / m⌋ bits on at least one block (pigeonhole), so each query looks up, in each block's table, the keys within
 *   that radius and checks only those candidates. For 100,000 to 1,000,000 covers (bench/phash.bench.ts).
 * Groups are the connected components of the "within d" graph (single linkage: a chain of near pairs is one group).
 */
import { popcount32, type PHash } from './phash.ts';

/** A pair of covers (indices into the hash list, `i < j`) and their Hamming distance, bits. */
export interface NearPair {
  i: number;
  j: number;
  distance: number;
}

/** Packs hashes as `[hi0, lo0, hi1, lo1, …]`. */
export function packHashes(hashes: readonly PHash[]): Uint32Array {
  const out = new Uint32Array(hashes.length * 2);
  hashes.forEach((h, k) => {
    out[2 * k] = h.hi;
    out[2 * k + 1] = h.lo;
  });
  return out;
}

/**
 * Every pair of packed hashes within `maxDistance` bits, by comparing all pairs.
 * @param packed [n, 2] uint32 ({@link packHashes}).
 * @param maxDistance Hamming distance, 0…64 bits.
 * @returns the pairs, sorted by `i`, then `j`.
 */
export function nearPairs(packed: Uint32Array, maxDistance: number): NearPair[] {
  const n = packed.length >> 1;
  const out: NearPair[] = [];
  for (let i = 0; i < n; i++) {
    const hi = packed[2 * i]!;
    const lo = packed[2 * i + 1]!;
    for (let j = i + 1; j < n; j++) {
      const d = popcount32(hi ^ packed[2 * j]!) + popcount32(lo ^ packed[2 * j + 1]!);
      if (d <= maxDistance) out.push({ i, j, distance: d });
    }
  }
  return out;
}

/** Block `b` (0–3, 16 bits each, most significant first) of packed hash `k`. */
function blockOf(packed: Uint32Array, k: number, b: number): number {
  const w = packed[2 * k + (b >> 1)]!;
  return b & 1 ? w & 0xffff : w >>> 16;
}

/** The XOR masks of 16 bits with at most `radius` bits set (0 first). */
function masksWithin(radius: number): Uint32Array {
  const out = [0];
  const flip = (from: number, start: number, left: number): void => {
    for (let b = start; b < 16; b++) {
      out.push(from | (1 << b));
      if (left > 1) flip(from | (1 << b), b + 1, left - 1);
    }
  };
  if (radius > 0) flip(0, 0, radius);
  return Uint32Array.from(out);
}

/**
 * Multi-index hashing over 64-bit hashes (4 blocks of 16 bits; see the module comment). Same pairs as
 * {@link nearPairs}, in a time that grows with the candidates per query rather than with n². Each block's table is a
 * counting-sorted index (offsets by 16-bit key, then member indices ascending): no per-entry allocation.
 */
export class MultiIndex {
  private readonly offsets: Uint32Array[] = [];
  private readonly members: Uint32Array[] = [];
  /** @param packed [n, 2] uint32 ({@link packHashes}); indexed at construction. */
  constructor(private readonly packed: Uint32Array) {
    const n = packed.length >> 1;
    for (let b = 0; b < 4; b++) {
      const off = new Uint32Array(65537);
      for (let k = 0; k < n; k++) off[blockOf(packed, k, b) + 1]!++;
      for (let key = 0; key < 65536; key++) off[key + 1]! += off[key]!;
      const fill = off.slice(0, 65536);
      const mem = new Uint32Array(n);
      for (let k = 0; k < n; k++) mem[fill[blockOf(packed, k, b)]!++] = k;
      this.offsets.push(off);
      this.members.push(mem);
    }
  }

  /**
   * Every pair within `maxDistance` bits.
   * @returns the pairs, sorted by `i`, then `j` (as {@link nearPairs}).
   */
  pairs(maxDistance: number): NearPair[] {
    const packed = this.packed;
    const n = packed.length >> 1;
    const masks = masksWithin(Math.floor(maxDistance / 4));
    const out: NearPair[] = [];
    const seenBy = new Int32Array(n).fill(-1);
    const found: NearPair[] = [];
    for (let i = 0; i < n; i++) {
      const hi = packed[2 * i]!;
      const lo = packed[2 * i + 1]!;
      found.length = 0;
      for (let b = 0; b < 4; b++) {
        const key = blockOf(packed, i, b);
        const off = this.offsets[b]!;
        const mem = this.members[b]!;
        for (let m = 0; m < masks.length; m++) {
          const kk = key ^ masks[m]!;
          for (let at = off[kk]!, end = off[kk + 1]!; at < end; at++) {
            const j = mem[at]!;
            if (j <= i || seenBy[j] === i) continue;
            seenBy[j] = i;
            const d = popcount32(hi ^ packed[2 * j]!) + popcount32(lo ^ packed[2 * j + 1]!);
            if (d <= maxDistance) found.push({ i, j, distance: d });
          }
        }
      }
      if (found.length > 1) found.sort((a, b) => a.j - b.j);
      for (const p of found) out.push(p);
    }
    return out;
  }
}

/**
 * The connected components of `n` items joined by `pairs` (union–find), only those with two or more members.
 * @returns each group's member indices ascending; groups ordered by their smallest member.
 */
export function groupsOf(n: number, pairs: readonly { i: number; j: number }[]): number[][] {
  const parent = Int32Array.from({ length: n }, (_, k) => k);
  const find = (k: number): number => {
    while (parent[k] !== k) {
      parent[k] = parent[parent[k]!]!;
      k = parent[k]!;
    }
    return k;
  };
  for (const { i, j } of pairs) {
    const a = find(i);
    const b = find(j);
    if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
  }
  const byRoot = new Map<number, number[]>();
  for (let k = 0; k < n; k++) {
    const r = find(k);
    const list = byRoot.get(r);
    if (list) list.push(k);
    else byRoot.set(r, [k]);
  }
  return [...byRoot.values()].filter((g) => g.length > 1).sort((a, b) => a[0]! - b[0]!);
}
