/**
 * Stage `export`: the Arrow shards and the per-pixel mean → `DATA_DIR/export/<format>/` for each of
 * `export.formats` (schemas/export/: Parquet, WebDataset, TFRecord), the same rows in the same order, cut into shards
 * of at most `export.shardSize.rows` samples and `export.shardSize.bytes` encoded image bytes, with `mean.npy`,
 * `dataset.json` and `README.md` beside each format's splits.
 *
 * Resumable per shard: each finished shard (every format's file, written atomically) is recorded in
 * `DATA_DIR/.work/export/progress.json` with its row count, next to its files in `.work/export/out/`; a run that
 * is killed, interrupted or fails (a full disk) goes on at the next unfinished shard, passing over the rows already
 * exported without encoding them again. The record holds for the same parameters and input files (name, size, mtime
 * of each shard file and of `mean.arrow`); other inputs start over. When every shard is written the folders move into
 * the stage's output (`export/`), which the runner renames into place.
 *
 * Byte-stable: the same shards and parameters give byte-identical files (fixed tar headers, Parquet created-by,
 * protobuf field order; images encoded by the same libvips).
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError, type StageContext, type StageImplementation } from '../pipeline/stage.ts';
import { encodeShard, loadProgress, shardIsFull, streamSamples, type DoneShard, type ExportProgress } from '../dataset/export.ts';
import { describeExport, exportReadme } from '../schemas/export/describe.ts';
import { exportShardName, type ExportFormat, type ExportSample } from '../schemas/export/layout.ts';
import { encodeNpyFloat32 } from '../schemas/export/npy.ts';
import { MEAN_ARROW, readMeanRow } from '../schemas/mean.ts';
import { SPLIT_NAMES, splitDir } from '../schemas/shards/names.ts';
import { listShardFiles, streamShardBatches } from '../schemas/shards/read.ts';
import type { ShardLayoutMeta } from '../schemas/shards/layout.ts';
import { sha256, writeFileAtomic } from '../util/fsutil.ts';
import type { Progress } from '../util/progress.ts';

/** Options of {@link createExportStage}. */
export interface ExportStageOptions {
  /** Writes a finished file atomically (default util/fsutil.ts `writeFileAtomic`); tests pass one that fails. */
  writeFile?: (path: string, data: Uint8Array | string) => void;
}

/** The `export` stage's work (declared in stages/declarations.ts). */
export const exportStage: StageImplementation = createExportStage();

/** An `export` stage ({@link exportStage}) writing its files with `options.writeFile`. */
export function createExportStage(options: ExportStageOptions = {}): StageImplementation {
  const writeFile = options.writeFile ?? writeFileAtomic;
  return {
    name: 'export',
    async run(ctx) {
      const cfg = ctx.config.export;
      const splitFiles = Object.fromEntries(SPLIT_NAMES.map((s) => [s, listShardFiles(ctx.path(splitDir(s)))])) as Record<string, string[]>;
      const meanPath = ctx.path(MEAN_ARROW);
      const layout = await readLayout(splitFiles);
      const outRoot = join(ctx.workDir, 'out');
      const progressPath = join(ctx.workDir, 'progress.json');
      const fileOf = (format: ExportFormat, split: string, name: string) => join(outRoot, format, split, name);
      const progress = loadProgress(progressPath, inputFingerprint(cfg, splitFiles, meanPath), fileOf);
      removeUnrecorded(outRoot, progress);
      const resumed = Object.values(progress.splits).flat();
      if (resumed.length) ctx.log.info(`resuming: ${resumed.length} shard(s), ${resumed.reduce((n, s) => n + s.rows, 0)} rows already exported`);
      const bar = ctx.progress('export', estimateRows(splitFiles, layout.shape[0]));
      const run: SplitRun = { ctx, layout, progress, progressPath, fileOf, writeFile, bar };
      try {
        for (const split of SPLIT_NAMES) await exportSplit(run, split, splitFiles[split]!);
      } finally {
        bar.stop();
      }
      publish(ctx, progress, layout, meanPath, outRoot, writeFile);
      rmSync(progressPath, { force: true });
      rmSync(outRoot, { recursive: true, force: true });
      const counts = SPLIT_NAMES.map((s) => `${s} ${progress.splits[s]!.reduce((n, d) => n + d.rows, 0)} rows in ${progress.splits[s]!.length} shard(s)`);
      ctx.log.info(`exported ${cfg.formats.join(', ')}: ${counts.join(', ')}`);
    },
  };
}

/** What exporting one split needs from the run. */
interface SplitRun {
  ctx: StageContext;
  layout: ShardLayoutMeta;
  /** Updated (and written to `progressPath`) after each finished shard. */
  progress: ExportProgress;
  progressPath: string;
  /** Where a format's shard file is written in the work directory. */
  fileOf: (format: ExportFormat, split: string, name: string) => string;
  writeFile: (path: string, data: Uint8Array | string) => void;
  bar: Progress;
}

/**
 * Exports one split: passes over the rows of the shards already recorded, cuts the rest into shards of
 * `export.shardSize` and writes each ({@link writeShard}), recording it once every format's file is written.
 * @throws UserError when the split's shards disagree with the others on S or the label names.
 */
async function exportSplit(run: SplitRun, split: string, files: readonly string[]): Promise<void> {
  const cfg = run.ctx.config.export;
  const done = (run.progress.splits[split] ??= []);
  const skipRows = done.reduce((n, s) => n + s.rows, 0);
  run.bar.tick(skipRows);
  const flush = async (samples: ExportSample[]) => {
    done.push(await writeShard(run, split, done.length, samples));
    run.writeFile(run.progressPath, `${JSON.stringify(run.progress)}\n`);
  };
  let shard: ExportSample[] = [];
  let bytes = 0;
  for await (const s of streamSamples(files, { image: cfg.image, skipRows, signal: run.ctx.signal })) {
    if (s.labelNames.join('\n') !== run.layout.labelNames.join('\n') || s.size !== run.layout.shape[0]) {
      throw new UserError(`export: the ${split} shards disagree with the others on the image size or label names (rebuild them: covers make shards --force)`);
    }
    if (shardIsFull(shard.length, bytes, s.image.length, cfg.shardSize)) {
      await flush(shard);
      shard = [];
      bytes = 0;
    }
    shard.push(s);
    bytes += s.image.length;
    run.bar.tick();
  }
  if (shard.length) await flush(shard);
}

/** Encodes shard `index` of `split` in every configured format and writes each file atomically. */
async function writeShard(run: SplitRun, split: string, index: number, samples: ExportSample[]): Promise<DoneShard> {
  const files: DoneShard['files'] = {};
  for (const format of run.ctx.config.export.formats) {
    if (run.ctx.signal.aborted) throw new Error('export: interrupted');
    const data = await encodeShard(format, samples, run.layout.labelNames);
    const name = exportShardName(split, index, format);
    const path = run.fileOf(format, split, name);
    mkdirSync(dirname(path), { recursive: true });
    run.writeFile(path, data);
    files[format] = { name, size: data.length };
  }
  return { rows: samples.length, files };
}

/** The layout (S, label names) of the shards: from the first record batch of any split. @throws UserError when every split is empty. */
async function readLayout(splitFiles: Record<string, string[]>): Promise<ShardLayoutMeta> {
  for (const files of Object.values(splitFiles)) {
    for await (const batch of streamShardBatches(files)) return batch.meta;
  }
  throw new UserError('export: the shards hold no images (run `covers make shards`)');
}

/**
 * sha256 of what decides the export: its parameters and each input file's name, size and mtime (the shards and
 * `mean.arrow` are replaced, never edited in place, so a rebuild changes the mtime).
 */
function inputFingerprint(params: unknown, splitFiles: Record<string, string[]>, meanPath: string): string {
  const files = [...Object.values(splitFiles).flat(), meanPath].map((p) => {
    const st = statSync(p);
    return [`${basename(dirname(p))}/${basename(p)}`, st.size, st.mtimeMs];
  });
  return sha256(JSON.stringify({ params, files }));
}

/** Removes from `outRoot` every file that the progress record does not list (a shard cut short by a kill). */
function removeUnrecorded(outRoot: string, progress: ExportProgress): void {
  const keep = new Set<string>();
  for (const [split, shards] of Object.entries(progress.splits)) {
    for (const s of shards) for (const [format, f] of Object.entries(s.files)) keep.add(join(outRoot, format, split, f!.name));
  }
  let entries;
  try {
    entries = readdirSync(outRoot, { recursive: true, withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(e.parentPath, e.name);
    if (e.isFile() && !keep.has(p)) rmSync(p, { force: true });
  }
}

/** Rough row count of the splits (for the progress bar): each row takes about S·S·3 image bytes plus ~160 of ids. */
function estimateRows(splitFiles: Record<string, string[]>, size: number): number {
  const bytes = Object.values(splitFiles).flat().reduce((n, p) => n + statSync(p).size, 0);
  return Math.max(1, Math.round(bytes / (size * size * 3 + 160)));
}

/** Moves each format's shards into the stage output and writes `mean.npy`, `dataset.json` and `README.md` beside them. */
function publish(ctx: StageContext, progress: ExportProgress, layout: ShardLayoutMeta, meanPath: string, outRoot: string, writeFile: (path: string, data: Uint8Array | string) => void): void {
  const cfg = ctx.config.export;
  const mean = readMeanRow(meanPath);
  if (mean.size !== layout.shape[0]) throw new UserError(`export: ${meanPath} is ${mean.size}×${mean.size}, the shards ${layout.shape[0]}×${layout.shape[0]} (rebuild it: covers make mean --force)`);
  const npy = encodeNpyFloat32(mean.mean, [mean.size, mean.size, 3]);
  const outDir = ctx.out('export');
  mkdirSync(outDir, { recursive: true });
  for (const format of cfg.formats) {
    const dest = join(outDir, format);
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(join(outRoot, format), { recursive: true });
    renameSync(join(outRoot, format), dest);
    const splits = Object.fromEntries(
      SPLIT_NAMES.map((s) => {
        const shards = progress.splits[s] ?? [];
        return [s, { files: shards.map((d) => `${s}/${d.files[format]!.name}`), rows: shards.map((d) => d.rows) }];
      }),
    );
    const description = describeExport({ format, size: layout.shape[0], labelNames: layout.labelNames, imageFormat: cfg.image.format, splits });
    writeFile(join(dest, 'mean.npy'), npy);
    writeFile(join(dest, 'dataset.json'), `${JSON.stringify(description, null, 2)}\n`);
    writeFile(join(dest, 'README.md'), exportReadme(description));
  }
}
