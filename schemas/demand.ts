/**
 * `DATA_DIR/.work/discover/demand.json`: what `download` asked `discover` for when it ran short (`MoreInputNeeded`,
 * pipeline/stage.ts); the runner writes it, `discover` reads it at its next run.
 */
import { existsSync, readFileSync } from 'node:fs';

/** What `download` asked `discover` for. */
export interface ListingDemand {
  /** Albums wanted per genre (at least; whole pages are listed). */
  albums: Record<string, number>;
  /** Rounds in which each genre asked for more so far. */
  rounds: Record<string, number>;
}

/** Reads a `demand.json` (an absolute path); null when absent or unreadable (then round 1's target). */
export function readDemand(path: string): ListingDemand | null {
  if (!existsSync(path)) return null;
  try {
    const d = JSON.parse(readFileSync(path, 'utf8')) as ListingDemand;
    return d && typeof d.albums === 'object' && typeof d.rounds === 'object' ? d : null;
  } catch {
    return null;
  }
}
