/**
 * The stage contract. Every module in `stages/` exports one {@link Stage}; the runner (`pipeline/runner.ts`) decides
 * from `DATA_DIR/pipeline.lock.json` which stages are stale and runs them in dependency order.
 *
 * Atomicity: a stage writes each declared output to the temporary path that `ctx.out(rel)` returns; only after
 * `run` resolves does the runner move them into place (rename) and record the lock entry. A stage that throws or is
 * killed therefore leaves the previous outputs and lock entry untouched. Long stages keep resumable progress in
 * `ctx.workDir`, which survives failures and is removed only by `covers clean`.
 */
import type { Config } from './config.ts';
import type { Logger } from '../util/log.ts';
import type { Progress } from '../util/progress.ts';

/** What a stage's `run` receives. */
export interface StageContext {
  /** The resolved configuration. */
  readonly config: Config;
  /** Absolute path of the data directory (default `./data`). */
  readonly dataDir: string;
  /**
   * Absolute path of this stage's private, persistent work directory (`DATA_DIR/.work/<stage>/`), for resumable
   * progress (request queues, partial downloads). It survives failed and killed runs.
   */
  readonly workDir: string;
  /**
   * The temporary path to write a declared output to (`rel` relative to the data directory, as in
   * `Stage.outputs`). The parent directory exists. The runner renames it into place after `run` succeeds.
   * @throws Error when `rel` is not one of the stage's declared outputs.
   */
  out(rel: string): string;
  /** Absolute path of a file under the data directory: for reading inputs (other stages' outputs). */
  path(rel: string): string;
  /** Logging (respects `--quiet` / `--verbose`). */
  readonly log: Logger;
  /** Starts a progress display for `total` items (a bar on a terminal, periodic log lines otherwise). */
  progress(label: string, total: number): Progress;
  /** Aborted on SIGINT/SIGTERM; long loops should check it and stop. */
  readonly signal: AbortSignal;
}

/**
 * A pipeline stage: a make-style target.
 *
 * Staleness (like `dvc.lock`): a stage is stale when it was never built, its `version` changed, the values of its
 * `params` changed, the content of an input changed (its dependencies' outputs and `extraInputs`), or one of its
 * outputs is missing or was modified.
 */
export interface Stage {
  /** Target name. */
  readonly name: string;
  /** One line for `covers --help` and `covers status`. */
  readonly description: string;
  /** Stages whose outputs this stage reads. */
  readonly deps: readonly string[];
  /** Dotted config keys this stage reads (`seed`, `image.size`, or a whole section such as `crawl`). */
  readonly params: readonly string[] | ((config: Config) => readonly string[]);
  /** Paths (files or directories) this stage writes, relative to the data directory. */
  readonly outputs: readonly string[] | ((config: Config) => readonly string[]);
  /**
   * Paths this stage writes in place, relative to the data directory, outside the atomic `ctx.out` mechanism:
   * content-addressed caches whose every file is itself written atomically (e.g. `images/`). They are hashed as
   * outputs (so modifying them makes the stage stale) but are not removed when the stage fails.
   */
  readonly inPlaceOutputs?: readonly string[] | ((config: Config) => readonly string[]);
  /** Files outside the pipeline that the stage reads (absolute paths), e.g. `select.fromManifest`. Their content is hashed. */
  readonly extraInputs?: (config: Config) => readonly string[];
  /** Bump when the stage's code changes its output, so old outputs become stale. */
  readonly version: number;
  /**
   * When set and it returns a reason, the stage is skipped (and counts as fresh) for this configuration, e.g. `discover`
   * when `select.fromManifest` is set. The dependents then ignore this stage's outputs.
   */
  readonly skipWhen?: (config: Config) => string | null;
  /** Does the work. Throws to fail the stage (its outputs and lock entry are then left as they were). */
  run(ctx: StageContext): Promise<void>;
}

/** Resolves a stage's possibly config-dependent list (`params`, `outputs`). */
export function resolveList(list: readonly string[] | ((config: Config) => readonly string[]) | undefined, config: Config): readonly string[] {
  if (!list) return [];
  return typeof list === 'function' ? list(config) : list;
}

/** An error the user caused or can fix (bad input, blocked by the site, not enough albums): printed without a stack trace. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** A run stopped by SIGINT/SIGTERM (its abort signal): finished work is kept and a rerun resumes. */
export class InterruptedError extends UserError {
  constructor() {
    super('interrupted');
    this.name = 'InterruptedError';
  }
}
