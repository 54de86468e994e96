/**
 * Deterministic hashing and random numbers for the simulator: every catalogue choice, cover pixel and fault decision
 * is a pure function of the seed and a key, so two simulators with the same options serve the same bytes.
 */
import { Rng } from '../util/rng.ts';

/** 32-bit FNV-1a hash of a string, then avalanched (murmur3 finalizer). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A number in [0, 1) from the parts of a key (joined with `|`). */
export function unit(...parts: (string | number)[]): number {
  return hash32(parts.join('|')) / 4294967296;
}

/** A seeded generator of numbers in [0, 1): the project's mulberry32 ({@link Rng}, util/rng.ts). */
export function mulberry32(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** A seeded PRNG for a key. */
export function rngFor(...parts: (string | number)[]): () => number {
  return mulberry32(hash32(parts.join('|')));
}

/** Approximately standard-normal draw from a uniform PRNG (sum of 4 uniforms, rescaled). */
export function gauss(rand: () => number): number {
  return (rand() + rand() + rand() + rand() - 2) * 1.7320508;
}

/** A uniformly chosen element. */
export function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}
