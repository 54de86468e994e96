/**
 * Builds the {@link StageContext} a stage runs with, and commits its outputs afterwards. The runner uses these; tests
 * of a single stage can too (`runStageOnce`).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import type { Config } from './config-core.ts';
import { configView } from './config-view.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { createProgress } from '../util/progress.ts';
import { resolveList, type Stage, type StageContext } from './stage.ts';

/** Where a stage's temporary outputs go before they are committed: `DATA_DIR/.tmp/<stage>/`. */
export function stageTmpDir(dataDir: string, stage: string): string {
  return join(dataDir, '.tmp', stage);
}

/** A stage's persistent work directory: `DATA_DIR/.work/<stage>/`. */
export function stageWorkDir(dataDir: string, stage: string): string {
  return join(dataDir, '.work', stage);
}

/** Options of {@link createStageContext}. */
export interface ContextOptions {
  config: Config;
  dataDir: string;
  log?: Logger;
  signal?: AbortSignal;
  /** Names of the pipeline's stages in order (default: just this stage). */
  stageNames?: readonly string[];
  /** Called with the reason when the stage calls `ctx.incomplete(reason)`. */
  onIncomplete?: (reason: string) => void;
}

/**
 * Creates the context for one run of `stage`: an empty temporary output directory, the work directory, a logger
 * prefixed with the stage name.
 */
export function createStageContext(stage: Stage, opts: ContextOptions): StageContext {
  const dataDir = resolve(opts.dataDir);
  const tmp = stageTmpDir(dataDir, stage.name);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const workDir = stageWorkDir(dataDir, stage.name);
  mkdirSync(workDir, { recursive: true });
  // The stage's own view of the configuration decides its paths too: a declaration whose paths depend on a key it
  // does not declare fails here, on its first run, as its code would.
  const config = configView(opts.config, declaredKeys(stage, opts.config), stage.name);
  const outputs = new Set(resolveList(stage.outputs, config));
  const readable = [...resolveList(stage.inputs, config), ...outputs, ...resolveList(stage.inPlaceOutputs, config)];
  const log = (opts.log ?? createLogger()).child(stage.name);
  return {
    config,
    workDir,
    log,
    signal: opts.signal ?? new AbortController().signal,
    stageNames: opts.stageNames ?? [stage.name],
    out(rel: string) {
      if (!outputs.has(rel)) throw new Error(`stage ${stage.name}: "${rel}" is not a declared output (${[...outputs].join(', ')})`);
      const p = join(tmp, rel);
      mkdirSync(dirname(p), { recursive: true });
      return p;
    },
    path(rel: string) {
      if (!isInside(rel, readable)) throw new Error(`stage ${stage.name}: "${rel}" is not a declared input (inputs and outputs: ${readable.join(', ') || 'none'})`);
      return join(dataDir, rel);
    },
    progress: (label: string, total: number) => createProgress(label, total, log),
    incomplete(reason: string) {
      opts.onIncomplete?.(reason);
    },
  };
}

/** Every config key `stage` may read for `config`: its `params` and its `tuning`. */
export function declaredKeys(stage: Stage, config: Config): string[] {
  return [...resolveList(stage.params, config), ...(stage.tuning ?? [])];
}

/**
 * Whether a data-directory-relative path is one of `declared` or lies inside one of them (`images/jazz/a1.jpg`
 * inside `images`). Paths are compared in normalised POSIX form; one that leaves the data directory (`..`) never is.
 */
export function isInside(rel: string, declared: readonly string[]): boolean {
  const p = posix.normalize(rel.split('\\').join('/'));
  if (p.startsWith('../') || p === '..' || posix.isAbsolute(p)) return false;
  return declared.some((d) => {
    const n = posix.normalize(d).replace(/\/$/, '');
    return p === n || p.startsWith(`${n}/`);
  });
}

/**
 * Moves a stage's temporary outputs into place (each by rename; an existing output is replaced) and removes the
 * temporary directory.
 * @throws Error naming the output when a declared output was not written.
 */
export function commitOutputs(stage: Stage, config: Config, dataDir: string): void {
  const root = resolve(dataDir);
  const tmp = stageTmpDir(root, stage.name);
  const outs = resolveList(stage.outputs, config);
  for (const rel of outs) {
    if (!existsSync(join(tmp, rel))) throw new Error(`stage ${stage.name} finished without writing its output "${rel}"`);
  }
  for (const rel of outs) {
    const dest = join(root, rel);
    mkdirSync(dirname(dest), { recursive: true });
    const trash = `${dest}.old-${process.pid}`;
    if (existsSync(dest)) renameSync(dest, trash);
    renameSync(join(tmp, rel), dest);
    rmSync(trash, { recursive: true, force: true });
  }
  rmSync(tmp, { recursive: true, force: true });
}

/** Runs one stage and commits its outputs, without the lock file or dependencies: for tests of a single stage. */
export async function runStageOnce(stage: Stage, opts: ContextOptions): Promise<void> {
  const ctx = createStageContext(stage, opts);
  await stage.run(ctx);
  commitOutputs(stage, opts.config, opts.dataDir);
}
