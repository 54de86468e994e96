/**
 * Reads everything the report shows from a data directory, defensively: each part is either its data or the reason
 * it is absent (the stage that writes it has not run, or its file could not be read), so a partially built data
 * directory still gives a report. Nothing here throws for a missing or malformed input.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../pipeline/config.ts';
import { sha256File } from '../util/fsutil.ts';
import { candidatesFormat, readListingInfo, type ListingInfo } from '../schemas/candidates.ts';
import { labelsFormat } from '../schemas/labels.ts';
import { selectionFormat } from '../schemas/selection.ts';
import { manifestFormat, reasonKey, rejectedFormat, type RejectedRow } from '../schemas/manifest.ts';
import { FOREST_OUTPUT, LINEAR_SVM_OUTPUT, PRETRAINED_FOREST_OUTPUT, PRETRAINED_LINEAR_SVM_OUTPUT, readEvalMetrics, type EpochMetrics, type EvalMetrics } from '../schemas/metrics.ts';
import { metricsPath, readEpochMetrics } from '../schemas/model.ts';
import { LOCK_FILE, readLockFile } from '../pipeline/lock.ts';
import { SPLIT_NAMES, type SplitName } from '../schemas/shards/names.ts';
import { splitsFormat, type SplitRow } from '../schemas/splits.ts';
import { readTrialsFile, SEARCH_TRIALS, type TrialRecord } from '../schemas/search.ts';

/** Resolves a path relative to the data directory to an absolute one (the report stage passes `ctx.path`). */
export type DataPath = (rel: string) => string;

/** A {@link DataPath} from a data directory, or the resolver itself. */
export function dataPath(dataDir: string | DataPath): DataPath {
  return typeof dataDir === 'string' ? (rel) => join(dataDir, rel) : dataDir;
}

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
  /**
   * Candidates `label` did not keep, by reason (`labels.arrow`: `no-tags`, `no-chosen-genre`, `multi-genre`,
   * `not-found`, `not-an-album`, `redirected-to`).
   */
  labelRejected: Record<string, number> | null;
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
  /** How far each genre's listing went (`candidates.arrow` metadata): extra rounds, pages; null when unknown. */
  listing: Record<string, ListingInfo> | null;
  /** Test images per `splits.arrow` (null when unknown). */
  testSplitSize: number | null;
  /** `models/<train.run>/metrics.jsonl`, one entry per epoch; `warnings` lists lines that were skipped. */
  training: Part<{ epochs: EpochMetrics[]; warnings: string[]; path: string }>;
  /** `eval/metrics.json`: the convnet on the test split. */
  evaluation: Part<EvalMetrics>;
  /** `eval/baseline.json`: the random forest on the test split. */
  baseline: Part<EvalMetrics>;
  /** `eval/baseline-linear-svm.json`: the linear SVM on the test split (`baseline.model` = `linear-svm` or `both`). */
  linearSvm: Part<EvalMetrics>;
  /** `eval/baseline-pretrained.json`: the random forest on a pretrained network's features (`baseline.features`). */
  pretrainedForest: Part<EvalMetrics>;
  /** `eval/baseline-linear-svm-pretrained.json`: the linear SVM on a pretrained network's features. */
  pretrainedLinearSvm: Part<EvalMetrics>;
  /** `pipeline.lock.json` stage entries, in pipeline order where known. */
  timings: Part<StageTiming[]>;
  /** `search/trials.tsv`, read when the trained model came from the search (`train.fromSearch`; a declared input then). */
  search: Part<{ keys: string[]; rows: TrialRecord[] }>;
}

function missing<T>(stage: string, file: string): Part<T> {
  return { ok: false, kind: 'missing', stage, message: `${file} not found` };
}

/** A baseline that `baseline.model` leaves out: absent, and not read (it is not among the report's inputs). */
function notConfigured<T>(file: string, config: Config): Part<T> {
  return { ok: false, kind: 'missing', stage: 'baseline', message: `${file} not configured (baseline.model = ${config.baseline.model}, baseline.features = ${config.baseline.features})` };
}

/**
 * A baseline file, read when `baseline.model` and `baseline.features` configure it (the same rule as the stage's
 * outputs, stages/declarations.ts `baselineOutputs`, which report/ may not import).
 */
function readBaseline(p: DataPath, file: string, config: Config): Part<EvalMetrics> {
  const { model, features } = config.baseline;
  const forest = file === FOREST_OUTPUT || file === PRETRAINED_FOREST_OUTPUT;
  const pretrained = file === PRETRAINED_FOREST_OUTPUT || file === PRETRAINED_LINEAR_SVM_OUTPUT;
  const configured = (forest ? model !== 'linear-svm' : model !== 'forest') && (pretrained ? features !== 'pixels' : features !== 'pretrained');
  return configured ? readEval(p, file, 'baseline') : notConfigured(file, config);
}

function failed<T>(stage: string, file: string, e: unknown): Part<T> {
  return { ok: false, kind: 'error', stage, message: `${file}: ${(e as Error).message ?? String(e)}` };
}

/** Counts rows per non-null `genre`, optionally only those passing `keep`. */
function countGenres<R extends { genre: string | null }>(rows: readonly R[], keep: (row: R) => boolean = () => true): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rows) if (r.genre !== null && keep(r)) counts[r.genre] = (counts[r.genre] ?? 0) + 1;
  return counts;
}

/** Counts images per genre and split of `splits.arrow` (`schemas/splits.ts`); rows with another split name are ignored. */
function countSplits(rows: readonly SplitRow[]): Record<string, Record<SplitName, number>> {
  const out: Record<string, Record<SplitName, number>> = {};
  for (const { genre, split } of rows) {
    if (genre === null || split === null || !(SPLIT_NAMES as readonly string[]).includes(split)) continue;
    out[genre] ??= { train: 0, validation: 0, test: 0 };
    out[genre][split as SplitName]++;
  }
  return out;
}

function countRejected(rows: readonly Pick<RejectedRow, 'genre' | 'reason'>[]): Record<string, Record<string, number>> {
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
 * The stage timings of a lock file (read by its owner, pipeline/lock.ts), in `order` (stages not in it last, by
 * name; with no order, by start time).
 * @throws Error naming the file when it is not a valid lock file.
 */
export function readTimings(path: string, order: readonly string[]): StageTiming[] {
  const out: StageTiming[] = Object.entries(readLockFile(path).stages).map(([stage, e]) => ({
    stage, version: e.version, durationMs: e.durationMs, startedAt: e.startedAt, finishedAt: e.finishedAt,
  }));
  const rank = (s: string) => (order.includes(s) ? order.indexOf(s) : order.length);
  return out.sort((a, b) => rank(a.stage) - rank(b.stage) || (order.length ? 0 : (a.startedAt ?? '').localeCompare(b.startedAt ?? '')) || a.stage.localeCompare(b.stage));
}

function readEval(p: DataPath, rel: string, stage: string): Part<EvalMetrics> {
  const path = p(rel);
  if (!existsSync(path)) return missing(stage, rel);
  try {
    return { ok: true, data: readEvalMetrics(path) };
  } catch (e) {
    return failed(stage, rel, e);
  }
}

/**
 * Reads the report's inputs (all but images).
 * @param dataDir the data directory, or a resolver of paths in it (the report stage's `ctx.path`, which refuses
 *   undeclared ones).
 * @param config the resolved configuration (genres, `train.run`).
 * @param stageOrder stage names in pipeline order, for the timings table.
 */
export async function readInputs(dataDir: string | DataPath, config: Config, stageOrder: readonly string[] = []): Promise<ReportInputs> {
  const p = dataPath(dataDir);
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
    labels: column('label', 'labels.arrow', (f) => {
      const rows = labelsFormat.read(f);
      put('exclusive', countGenres(rows, (r) => r.exclusive === true));
      put('labelRejected', countRejected(rows.filter((r) => r.exclusive !== true)));
    }),
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
      labelRejected: zeroIfBuilt(funnelParts.labels, c.labelRejected, {}),
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

  const metricsRel = metricsPath(config.train.run);
  let training: ReportInputs['training'] = missing('train', metricsRel);
  if (existsSync(p(metricsRel))) {
    try {
      training = { ok: true, data: { ...readEpochMetrics(p(metricsRel)), path: metricsRel } };
    } catch (e) {
      training = failed('train', metricsRel, e);
    }
  }

  let timings: Part<StageTiming[]> = missing('report', LOCK_FILE);
  if (existsSync(p(LOCK_FILE))) {
    try {
      timings = { ok: true, data: readTimings(p(LOCK_FILE), stageOrder) };
    } catch (e) {
      timings = failed('report', LOCK_FILE, e);
    }
  }

  // Only with train.fromSearch is the search a declared input of the report (stages/declarations.ts).
  let search: ReportInputs['search'] = { ok: false, kind: 'missing', stage: 'search', message: 'train.fromSearch is off (the report shows the search when the model comes from it)' };
  if (config.train.fromSearch) {
    search = missing('search', SEARCH_TRIALS);
    if (existsSync(p(SEARCH_TRIALS))) {
      try {
        search = { ok: true, data: readTrialsFile(p(SEARCH_TRIALS)) };
      } catch (e) {
        search = failed('search', SEARCH_TRIALS, e);
      }
    }
  }

  return {
    genres,
    funnel,
    funnelParts,
    manifestSha256,
    manifestRows,
    listing: (() => {
      try {
        return existsSync(p('candidates.arrow')) ? readListingInfo(p('candidates.arrow')) : null;
      } catch {
        return null;
      }
    })(),
    testSplitSize,
    training,
    evaluation: readEval(p, 'eval/metrics.json', 'evaluate'),
    // Only the baselines `baseline.model` configures are declared inputs of the report (stages/declarations.ts).
    baseline: readBaseline(p, FOREST_OUTPUT, config),
    linearSvm: readBaseline(p, LINEAR_SVM_OUTPUT, config),
    pretrainedForest: readBaseline(p, PRETRAINED_FOREST_OUTPUT, config),
    pretrainedLinearSvm: readBaseline(p, PRETRAINED_LINEAR_SVM_OUTPUT, config),
    timings,
    search,
  };
}
