/**
 * `DATA_DIR/split/audit.json`: the leakage audit of the split, written by `split`, read by the report. It says, per
 * held-out split, how many covers share an artist (Bandcamp `band_id`) or a near-duplicate group (perceptual hashes
 * within `dedupe.maxDistance`, dataset/near-dup.ts) with the training split — zero with the defaults — the achieved
 * split fractions, the largest artist groups, and every near-duplicate group with its members and pairwise distances.
 * JSON, UTF-8, 2-space indented.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/fsutil.ts';
import type { SplitName } from './shards/names.ts';

/** The audit's path, relative to the data directory. */
export const SPLIT_AUDIT = 'split/audit.json';

/** A cover in the audit. `path` is relative to the data directory (`images/<genre>/a<art_id>.jpg`). */
export interface AuditCover {
  item_id: number;
  genre: string;
  art_id: number;
  split: SplitName;
  path: string;
  /** 16 hex digits, or null when not hashed. */
  phash: string | null;
}

/** The leakage audit (see the module comment). Counts are covers. */
export interface SplitAudit {
  auditVersion: 1;
  /** The settings the split ran with. */
  groupBy: 'artist' | 'none';
  near: 'group' | 'drop' | 'off';
  /** Bits of Hamming distance. */
  maxDistance: number;
  covers: number;
  /** Covers with a known `band_id` (artist grouping is possible only for those). */
  withBandId: number;
  /** Covers with a perceptual hash. */
  withPhash: number;
  /** Requested and achieved fractions of all covers, and covers per genre and split. */
  fractions: {
    requested: Record<SplitName, number>;
    achieved: Record<SplitName, number>;
    perGenre: Record<string, Record<SplitName, number>>;
  };
  /** Per held-out split: its covers, and how many of them share an artist / a near-duplicate group with train. */
  leaks: Record<'validation' | 'test', { covers: number; shareArtistWithTrain: number; shareNearDuplicateWithTrain: number }>;
  /** Artists with more than one cover, largest first (at most 20), with their covers per genre and per split. */
  largestArtists: { band_id: number; covers: number; genres: Record<string, number>; splits: Partial<Record<SplitName, number>> }[];
  /** Artists with more than one cover. */
  multiCoverArtists: number;
  /** Every near-duplicate group: its covers and the distance (bits) of each pair of them within `maxDistance`. */
  nearDuplicateGroups: { covers: AuditCover[]; pairs: { a: number; b: number; distance: number }[]; splits: SplitName[] }[];
}

/** Writes the audit atomically. */
export function writeSplitAudit(path: string, audit: SplitAudit): void {
  writeFileAtomic(path, `${JSON.stringify(audit, null, 2)}\n`);
}

/**
 * Reads an audit.
 * @throws Error naming the file when it is not JSON or not an audit of version 1.
 */
export function readSplitAudit(path: string): SplitAudit {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a split audit (${(e as Error).message})`);
  }
  const a = parsed as Partial<SplitAudit> | null;
  if (!a || a.auditVersion !== 1 || !a.leaks || !Array.isArray(a.nearDuplicateGroups) || !Array.isArray(a.largestArtists)) {
    throw new Error(`${path}: not a split audit of version 1 (auditVersion, leaks, largestArtists, nearDuplicateGroups expected)`);
  }
  return a as SplitAudit;
}
