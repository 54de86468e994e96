/**
 * The stage contract. A stage is a declaration ({@link StageDeclaration}: name, dependencies, the files it reads,
 * parameters, outputs) plus an implementation ({@link StageImplementation}: `run`). The declarations of all stages
 * live in `stages/declarations.ts`; the registry (`stages/index.ts`) imports each implementation module only when
 * its stage runs, so `covers --help` and `covers status` load no stage code. The runner (`pipeline/runner.ts`) is handed the stage
 * list by the CLI, decides from `DATA_DIR/pipeline.lock.json` which stages are stale and runs them in dependency
 * order.
 *
 * Atomicity: a stage writes each declared output to the temporary path that `ctx.out(rel)` returns; only after
 * `run` resolves does the runner move them into place (rename) and record the lock entry. A stage that throws or is
 * killed therefore leaves the previous outputs and lock entry untouched. Long stages keep resumable progress in
 * `ctx.workDir`, which survives failures and is removed only by `covers clean`.
 */
import type { Config } from './config-core.ts';
import type { Logger } from '../util/log.ts';
import type { Progress } from '../util/progress.ts';

export { EXIT_RERUN_LATER, InterruptedError, isTransientError, RerunLaterError, UserError } from '../util/errors.ts';

/** What a stage's `run` receives. */
export interface StageContext {
  /**
   * The resolved configuration as this stage may read it (`configView`, pipeline/config-view.ts): only the keys its declaration lists in
   * `params` and `tuning`; reading any other key throws, naming it.
   */
  readonly config: Config;
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
  /**
   * Absolute path of a file under the data directory, for reading: `rel` must be one of the stage's declared
   * `inputs` or outputs, or lie inside one of them (`images/jazz/a1.jpg` inside `images`).
   * @throws Error naming the stage and the path when `rel` is not declared.
   */
  path(rel: string): string;
  /** Logging (respects `--quiet` / `--verbose`). */
  readonly log: Logger;
  /** Starts a progress display for `total` items (a bar on a terminal, periodic log lines otherwise). */
  progress(label: string, total: number): Progress;
  /** Names of the pipeline's stages, in pipeline order (the runner's stage list), e.g. for ordering a table. */
  readonly stageNames: readonly string[];
  /** Aborted on SIGINT/SIGTERM; long loops should check it and stop. */
  readonly signal: AbortSignal;
  /**
   * Marks this run as finished but incomplete (e.g. a listing a misbehaving site ended early): the runner commits the
   * outputs and lets the later stages go on with them, but records `reason` in the stage's lock entry
   * (`incomplete`), so the next `covers make` reruns the stage to continue where it stopped. The stage must resume
   * from its work directory then, not start over; when that rerun gives byte-identical outputs, the dependents stay
   * fresh. Call it once per reason; the reasons are joined.
   */
  incomplete(reason: string): void;
}

/**
 * What a stage is, without its code: a make-style target.
 *
 * Staleness (like `dvc.lock`): a stage is stale when it was never built, its `version` changed, the values of its
 * `params` changed, the content of an input changed (its dependencies' outputs, its declared `inputs` and
 * `extraInputs`), or one of its outputs is missing or was modified.
 */
export interface StageDeclaration {
  /** Target name. */
  readonly name: string;
  /** One line for `covers --help` and `covers status`. */
  readonly description: string;
  /**
   * Stages whose outputs this stage reads; a function when that depends on the configuration (e.g. `train` reads
   * `search`'s best configuration only with `train.fromSearch`). The function sees the whole configuration.
   */
  readonly deps: readonly string[] | ((config: Config) => readonly string[]);
  /**
   * Paths (files or directories) under the data directory that this stage reads: other stages' outputs, e.g.
   * `splits.arrow`, `images`, `shards/train`. `ctx.path()` refuses any other path, and the lock records each one's
   * content hash (an absent one as null). Each must lie inside an output of a stage this one depends on
   * (directly or not), or be `pipeline.lock.json` (hashed without the reading stage's own entry).
   */
  readonly inputs: readonly string[] | ((config: Config) => readonly string[]);
  /**
   * Dotted config keys that decide this stage's outputs (`seed`, `image.size`, or a whole section such as `eval`): the
   * lock records their values, and a change makes the stage stale. The stage reads them through `ctx.config`.
   */
  readonly params: readonly string[] | ((config: Config) => readonly string[]);
  /**
   * Dotted config keys the stage also reads that cannot change what it writes, only how fast or how patiently it gets
   * there, or what it logs: request rates, concurrency, timeouts, retries, threads, the backend. They are not recorded
   * in the lock, so changing them leaves the stage fresh. `ctx.config` holds these and {@link params}, nothing else.
   */
  readonly tuning?: readonly string[];
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
}

/** What a stage's implementation module exports (as `<name>Stage`): the work of one declared stage. */
export interface StageImplementation {
  /** The declared stage's name (the registry checks it). */
  readonly name: string;
  /** Does the work. Throws to fail the stage (its outputs and lock entry are then left as they were). */
  run(ctx: StageContext): Promise<void>;
}

/** A declared stage with its work: what the runner runs. */
export interface Stage extends StageDeclaration {
  /** Does the work. Throws to fail the stage (its outputs and lock entry are then left as they were). */
  run(ctx: StageContext): Promise<void>;
}

/**
 * A {@link Stage} whose implementation module is imported on its first run.
 * @param load imports the implementation, e.g. `() => import('./train.ts').then((m) => m.trainStage)`.
 * @throws Error (from `run`) when the module's stage has another name than the declaration.
 */
export function lazyStage(declaration: StageDeclaration, load: () => Promise<StageImplementation>): Stage {
  return {
    ...declaration,
    async run(ctx: StageContext) {
      const impl = await load();
      if (impl.name !== declaration.name) throw new Error(`stage ${declaration.name}: its implementation module exports stage "${impl.name}"`);
      await impl.run(ctx);
    },
  };
}

/** Resolves a stage's possibly config-dependent list (`deps`, `params`, `outputs`). */
export function resolveList(list: readonly string[] | ((config: Config) => readonly string[]) | undefined, config: Config): readonly string[] {
  if (!list) return [];
  return typeof list === 'function' ? list(config) : list;
}

/** The file, in an upstream stage's work directory, where the runner records what a downstream stage asked of it. */
export const DEMAND_FILE = 'demand.json';

/**
 * Thrown by a stage that needs more input from an upstream stage before it can finish (e.g. `download` short of
 * `perGenre` images while the listing goes on). The runner ({@link make}) writes `demand` as JSON to
 * `DATA_DIR/.work/<stage>/demand.json`, reruns `stage` and everything after it, and counts a round. The upstream
 * stage reads the file from its `ctx.workDir`; its outputs must be a function of its params and that demand only.
 */
export class MoreInputNeeded extends Error {
  constructor(readonly stage: string, readonly demand: unknown, message: string) {
    super(message);
    this.name = 'MoreInputNeeded';
  }
}
