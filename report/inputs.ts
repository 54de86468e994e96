/**
 * Reads everything the report shows from a data directory, defensively: each part is either its data or the reason
 * it is absent (the stage that writes it has not run, or its file could not be read), so a partially built data
 * directory still gives a report. Nothing here throws for a missing or malformed input.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../pipeline/config.ts';
import { sha256File } from '../util/fsutil.ts';
import { candidatesFormat } from '../schemas/candidates.ts';
import { labelsFormat } from '../schemas/labels.ts';
import { selectionFormat } from '../schemas/selection.ts';
import { manifestFormat, rejectedFormat, type RejectedRow } from '../schemas/manifest.ts';
import { EpochMetricsSchema, EvalMetricsSchema, type EpochMetrics, type EvalMetrics } from '../schemas/metrics.ts';
import { SPLIT_NAMES, type SplitName } from '../schemas/shards/layout.ts';
import { splitsFormat, type SplitRow } from '../schemas/splits.ts';

/** A part of the report: its data, or why it is absent. */
export type Part<T> =
  | { ok: true; data: T }
  | {
      ok: false;
      /** `missing`: the stage has not run (file absent); `error`: the file exists but could not be read. */
      kind: 'missing' | 'error';
      /** The stage that writes it (the user runs `covers make <stage>`). */
      stage: string;
      /** For `error`: what went wrong, naming the file. */
      message: string;
    };

/** Counts of one genre at each step of the pipeline; null = that stage has not run (or its file is unreadable). */
export interface FunnelCounts {
  /** Albums listed by `discover` under this genre's tag. */
  candidates: number | null;
  /** Albums whose only chosen genre is this one (`label`). */
  exclusive: number | null;
  /** Albums chosen by `select`. */
  selected: number | null;
  /** Covers downloaded and kept (`manifest.tsv` rows). */
  downloaded: number | null;
  /** Covers rejected by `download`, by reason (`rejected.tsv`). */
  rejected: Record<string, number> | null;
  /** Images rejected by `shards` (preprocessing failures), by reason (`shards/rejected.tsv`). */
  shardRejected: Record<string, number> | null;
  /** Images per split (`splits.arrow`). */
  splits: Record<SplitName, number> | null;
}

/** One stage's entry in `pipeline.lock.json`, as far as the report needs it. */
export interface StageTiming {
  stage: string;
  version: number | null;
  durationMs: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** The inputs of the report, except images (see `images.ts`). */
export interface ReportInputs {
  /** Genres in display order: the configured genres, then any others found in the data. */
  genres: string[];
  funnel: Record<string, FunnelCounts>;
  /** Which funnel columns are available, or why not. */
  funnelParts: Record<'candidates' | 'labels' | 'selection' | 'manifest' | 'rejected' | 'shardRejected' | 'splits', Part<true>>;
  /** sha256 of `manifest.tsv`. */
  manifestSha256: Part<string>;
  /** Rows of `manifest.tsv` (images in the dataset). */
  manifestRows: number | null;
  /** Test images per `splits.arrow` (null when unknown). */
  testSplitSize: number | null;
  /** `models/<train.run>/metrics.jsonl`, one entry per epoch; `warnings` lists lines that were skipped. */
  training: Part<{ epochs: EpochMetrics[]; warnings: string[]; path: string }>;
  /** `eval/metrics.json`: the convnet on the test split. */
  evaluation: Part<EvalMetrics>;
  /** `eval/baseline.json`: the random forest on the test split. */
  baseline: Part<EvalMetrics>;
  /** `pipeline.lock.json` stage entries, in pipeline order where known. */
  timings: Part<StageTiming[]>;
}

function missing<T>(stage: string, file: string): Part<T> {
  return { ok: false, kind: 'missing', stage, message: `${file} not found` };
}

function failed<T>(stage: string, file: string, e: unknown): Part<T> {
  return { ok: false, kind: 'error', stage, message: `${file}: ${(e as Error).message ?? String(e)}` };
}

/** Counts rows per non-null `genre`, optionally only those passing `keep`. */
export function countGenres<R extends { genre: string | null }>(rows: readonly R[], keep: (row: R) => boolean = () => true): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rows) if (r.genre !== null && keep(r)) counts[r.genre] = (counts[r.genre] ?? 0) + 1;
  return counts;
}

/** Counts images per genre and split of `splits.arrow` (`schemas/splits.ts`); rows with another split name are ignored. */
export function countSplits(rows: readonly SplitRow[]): Record<string, Record<SplitName, number>> {
  const out: Record<string, Record<SplitName, number>> = {};
  for (const { genre, split } of rows) {
    if (genre === null || split === null || !(SPLIT_NAMES as readonly string[]).includes(split)) continue;
    out[genre] ??= { train: 0, validation: 0, test: 0 };
    out[genre][split as SplitName]++;
  }
  return out;
}

/** Groups rejection reasons: `duplicate-of:123` → `duplicate-of`; empty → `unknown`. */
export function reasonKey(reason: string | null): string {
  const r = (reason ?? '').trim();
  if (!r) return 'unknown';
  const colon = r.indexOf(':');
  return colon > 0 ? r.slice(0, colon) : r;
}

function countRejected(rows: readonly RejectedRow[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const row of rows) {
    const g = row.genre ?? 'unknown';
    const k = reasonKey(row.reason);
    out[g] ??= {};
    out[g][k] = (out[g][k] ?? 0) + 1;
  }
  return out;
}

/**
 * Reads a data directory's pipeline lock file defensively: `{stages: {name: entry}}` (the runner's format) or a
 * flat `{name: entry}` object; fields that are absent or of the wrong type become null.
 * @throws Error when the file is not JSON.
 */
export function readTimings(path: string, order: readonly string[]): StageTiming[] {
  const raw: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (raw === null || typeof raw !== 'object') return [];
  const obj = raw as Record<string, unknown>;
  const stages = obj.stages && typeof obj.stages === 'object' ? (obj.stages as Record<string, unknown>) : obj;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const out: StageTiming[] = [];
  for (const [stage, e] of Object.entries(stages)) {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) continue;
    const entry = e as Record<string, unknown>;
    out.push({ stage, version: num(entry.version), durationMs: num(entry.durationMs), startedAt: str(entry.startedAt), finishedAt: str(entry.finishedAt) });
  }
  const rank = (s: string) => (order.includes(s) ? order.indexOf(s) : order.length);
  return out.sort((a, b) => rank(a.stage) - rank(b.stage) || a.stage.localeCompare(b.stage));
}

/** Reads `metrics.jsonl`: one {@link EpochMetrics} per line; bad lines are skipped with a warning naming the line. */
export function readEpochMetrics(path: string): { epochs: EpochMetrics[]; warnings: string[] } {
  const epochs: EpochMetrics[] = [];
  const warnings: string[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const parsed = EpochMetricsSchema.safeParse(JSON.parse(line));
        if (parsed.success) epochs.push(parsed.data);
        else warnings.push(`line ${i + 1}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      } catch (e) {
        warnings.push(`line ${i + 1}: not JSON (${(e as Error).message})`);
      }
    });
  // A resumed run may append an epoch again: the last record of an epoch wins.
  const byEpoch = new Map(epochs.map((e) => [e.epoch, e]));
  return { epochs: [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch), warnings };
}

function readEval(dataDir: string, rel: string, stage: string): Part<EvalMetrics> {
  const path = join(dataDir, rel);
  if (!existsSync(path)) return missing(stage, rel);
  try {
    const parsed = EvalMetricsSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) throw new Error(parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; '));
    const m = parsed.data;
    const k = m.labels.length;
    if (m.confusionMatrix.length !== k || m.confusionMatrix.some((r) => r.length !== k)) {
      throw new Error(`confusionMatrix is not ${k}×${k} for ${k} labels`);
    }
    return { ok: true, data: m };
  } catch (e) {
    return failed(stage, rel, e);
  }
}

/** Pipeline order of the stages, for sorting timings. */
export const STAGE_ORDER = ['discover', 'label', 'select', 'download', 'split', 'shards', 'mean', 'train', 'evaluate', 'baseline', 'report'] as const;

/**
 * Reads the report's inputs (all but images) from `dataDir`.
 * @param config the resolved configuration (genres, `train.run`).
 */
export async function readInputs(dataDir: string, config: Config): Promise<ReportInputs> {
  const p = (rel: string) => join(dataDir, rel);
  const genreSet = new Set<string>(config.genres);
  const per: Record<string, Partial<FunnelCounts>> = {};
  const put = <K extends keyof FunnelCounts>(key: K, counts: Record<string, FunnelCounts[K]>) => {
    for (const [g, c] of Object.entries(counts)) {
      genreSet.add(g);
      (per[g] ??= {})[key] = c;
    }
  };

  /** Runs one funnel reader; its column becomes available (zeros for genres without rows) or records why not. */
  const column = (stage: string, rel: string, read: (path: string) => void): Part<true> => {
    const path = p(rel);
    if (!existsSync(path)) return missing(stage, rel);
    try {
      read(path);
      return { ok: true, data: true };
    } catch (e) {
      return failed(stage, rel, e);
    }
  };

  let manifestRows: number | null = null;
  let testSplitSize: number | null = null;
  const funnelParts: ReportInputs['funnelParts'] = {
    candidates: column('discover', 'candidates.arrow', (f) => put('candidates', countGenres(candidatesFormat.read(f)))),
    labels: column('label', 'labels.arrow', (f) => put('exclusive', countGenres(labelsFormat.read(f), (r) => r.exclusive === true))),
    selection: column('select', 'selection.arrow', (f) => put('selected', countGenres(selectionFormat.read(f)))),
    manifest: column('download', 'manifest.tsv', (f) => {
      const rows = manifestFormat.read(f);
      manifestRows = rows.length;
      put('downloaded', countGenres(rows));
    }),
    rejected: column('download', 'rejected.tsv', (f) => put('rejected', countRejected(rejectedFormat.read(f)))),
    shardRejected: column('shards', 'shards/rejected.tsv', (f) => put('shardRejected', countRejected(rejectedFormat.read(f)))),
    splits: column('split', 'splits.arrow', (f) => {
      const s = countSplits(splitsFormat.read(f));
      testSplitSize = Object.values(s).reduce((a, x) => a + x.test, 0);
      put('splits', s);
    }),
  };

  const genres = [...genreSet];
  const zeroIfBuilt = <T>(part: Part<true>, v: T | null | undefined, zero: T): T | null => (part.ok ? (v ?? zero) : null);
  const funnel: Record<string, FunnelCounts> = {};
  for (const g of genres) {
    const c = per[g] ?? {};
    funnel[g] = {
      candidates: zeroIfBuilt(funnelParts.candidates, c.candidates, 0),
      exclusive: zeroIfBuilt(funnelParts.labels, c.exclusive, 0),
      selected: zeroIfBuilt(funnelParts.selection, c.selected, 0),
      downloaded: zeroIfBuilt(funnelParts.manifest, c.downloaded, 0),
      rejected: zeroIfBuilt(funnelParts.rejected, c.rejected, {}),
      shardRejected: zeroIfBuilt(funnelParts.shardRejected, c.shardRejected, {}),
      splits: zeroIfBuilt(funnelParts.splits, c.splits, { train: 0, validation: 0, test: 0 }),
    };
  }

  let manifestSha256: Part<string> = missing('download', 'manifest.tsv');
  if (existsSync(p('manifest.tsv'))) {
    try {
      manifestSha256 = { ok: true, data: await sha256File(p('manifest.tsv')) };
    } catch (e) {
      manifestSha256 = failed('download', 'manifest.tsv', e);
    }
  }

  const metricsRel = `models/${config.train.run}/metrics.jsonl`;
  let training: ReportInputs['training'] = missing('train', metricsRel);
  if (existsSync(p(metricsRel))) {
    try {
      training = { ok: true, data: { ...readEpochMetrics(p(metricsRel)), path: metricsRel } };
    } catch (e) {
      training = failed('train', metricsRel, e);
    }
  }

  let timings: Part<StageTiming[]> = missing('report', 'pipeline.lock.json');
  if (existsSync(p('pipeline.lock.json'))) {
    try {
      timings = { ok: true, data: readTimings(p('pipeline.lock.json'), STAGE_ORDER) };
    } catch (e) {
      timings = failed('report', 'pipeline.lock.json', e);
    }
  }

  return {
    genres,
    funnel,
    funnelParts,
    manifestSha256,
    manifestRows,
    testSplitSize,
    training,
    evaluation: readEval(dataDir, 'eval/metrics.json', 'evaluate'),
    baseline: readEval(dataDir, 'eval/baseline.json', 'baseline'),
    timings,
  };
}

/** Lists a split's shard files (`shards/<split>/data-*.arrow`), sorted; empty when the split has none. */
export function shardFiles(dataDir: string, split: string): string[] {
  const dir = join(dataDir, 'shards', split);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^data-.*\.arrow$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}
