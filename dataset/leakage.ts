/**
 * The leakage audit of a split (stage `split`, schemas/split-audit.ts): which held-out covers share an artist or a
 * near-duplicate group with the training split.
 */
import { SPLIT_NAMES, type SplitName } from '../schemas/shards/names.ts';
import type { AuditCover, SplitAudit } from '../schemas/split-audit.ts';
import type { NearPair } from './near-dup.ts';

/** A cover as the audit needs it. */
export interface AuditInput extends AuditCover {
  band_id: number | null;
}

/** The split's settings and what it found, for {@link auditSplit}. */
export interface AuditSettings {
  groupBy: SplitAudit['groupBy'];
  near: SplitAudit['near'];
  maxDistance: number;
  requested: Record<SplitName, number>;
}

/**
 * Builds the audit.
 * @param covers every cover with its split.
 * @param nearGroups near-duplicate groups as indices into `covers` (dataset/near-dup.ts `groupsOf`).
 * @param pairs the near pairs those groups came from (indices into `covers`).
 */
export function auditSplit(covers: readonly AuditInput[], nearGroups: readonly (readonly number[])[], pairs: readonly NearPair[], s: AuditSettings): SplitAudit {
  const n = covers.length;
  const count = (f: (c: AuditInput) => boolean): number => covers.reduce((a, c) => a + (f(c) ? 1 : 0), 0);
  const achieved = Object.fromEntries(SPLIT_NAMES.map((sp) => [sp, n ? count((c) => c.split === sp) / n : 0])) as Record<SplitName, number>;
  const perGenre: Record<string, Record<SplitName, number>> = {};
  for (const c of covers) (perGenre[c.genre] ??= { train: 0, validation: 0, test: 0 })[c.split]++;

  const trainBands = new Set(covers.filter((c) => c.split === 'train' && c.band_id !== null).map((c) => c.band_id!));
  const groupOf = new Map<number, number>();
  nearGroups.forEach((g, gi) => g.forEach((k) => groupOf.set(k, gi)));
  const groupHasTrain = nearGroups.map((g) => g.some((k) => covers[k]!.split === 'train'));
  const leaks = {} as SplitAudit['leaks'];
  for (const sp of ['validation', 'test'] as const) {
    const idx = covers.map((c, k) => (c.split === sp ? k : -1)).filter((k) => k >= 0);
    leaks[sp] = {
      covers: idx.length,
      shareArtistWithTrain: idx.filter((k) => covers[k]!.band_id !== null && trainBands.has(covers[k]!.band_id!)).length,
      shareNearDuplicateWithTrain: idx.filter((k) => groupOf.has(k) && groupHasTrain[groupOf.get(k)!]).length,
    };
  }

  const bands = new Map<number, AuditInput[]>();
  for (const c of covers) if (c.band_id !== null) (bands.get(c.band_id) ?? bands.set(c.band_id, []).get(c.band_id)!).push(c);
  const multi = [...bands.entries()].filter(([, cs]) => cs.length > 1).sort((a, b) => b[1].length - a[1].length || a[0] - b[0]);
  const largestArtists = multi.slice(0, 20).map(([band_id, cs]) => {
    const genres: Record<string, number> = {};
    const splits: Partial<Record<SplitName, number>> = {};
    for (const c of cs) {
      genres[c.genre] = (genres[c.genre] ?? 0) + 1;
      splits[c.split] = (splits[c.split] ?? 0) + 1;
    }
    return { band_id, covers: cs.length, genres, splits };
  });

  const pairsOf = new Map<number, { a: number; b: number; distance: number }[]>();
  for (const p of pairs) {
    const gi = groupOf.get(p.i)!;
    (pairsOf.get(gi) ?? pairsOf.set(gi, []).get(gi)!).push({ a: covers[p.i]!.item_id, b: covers[p.j]!.item_id, distance: p.distance });
  }
  const nearDuplicateGroups = nearGroups.map((g, gi) => {
    const members: AuditCover[] = g.map((k) => {
      const { band_id: _band, ...cover } = covers[k]!;
      return cover;
    });
    return { covers: members, pairs: pairsOf.get(gi) ?? [], splits: [...new Set(members.map((m) => m.split))] };
  });

  return {
    auditVersion: 1,
    groupBy: s.groupBy,
    near: s.near,
    maxDistance: s.maxDistance,
    covers: n,
    withBandId: count((c) => c.band_id !== null),
    withPhash: count((c) => c.phash !== null),
    fractions: { requested: s.requested, achieved, perGenre },
    leaks,
    largestArtists,
    multiCoverArtists: multi.length,
    nearDuplicateGroups,
  };
}
