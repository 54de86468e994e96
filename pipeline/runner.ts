/**
 * The make-style runner: works out which stages a target needs, which of them are stale (from
 * `pipeline.lock.json`, like `dvc repro`), and runs those in dependency order. A stage's outputs are committed and
 * its lock entry written only after it succeeds; a failed or killed stage leaves both as they were.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hashJson, pickParams, type Config } from './config-core.ts';
import { commitOutputs, createStageContext, stageTmpDir, stageWorkDir } from './context.ts';
import { sha256File } from '../util/fsutil.ts';
import { combineOutputHashes, Hasher, LOCK_FILE, readLock, updateLockEntry, type LockEntry, type LockFile, type OutputHash } from './lock.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { acquireRunLock } from './run-lock.ts';
import { InterruptedError, isTransientError, UserError } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fsutil.ts';
import { DEMAND_FILE, MoreInputNeeded, resolveList, type Stage } from './stage.ts';

/** Most rounds ({@link MoreInputNeeded}) in one `make`; the stages bound their own rounds well below this. */
const MAX_MAKE_ROUNDS = 100;

const failedIn = new WeakMap<object, string>();

/** The stage whose `run` threw `e` in {@link make}, for messages; undefined for errors outside a stage. */
export function stageOfError(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null ? failedIn.get(e) : undefined;
}

/** Targets that name other targets. */
export const TARGET_ALIASES: Record<string, string> = { all: 'report' };

/** Where a stage stands. */
export type StageState =
  | { kind: 'fresh' }
  | { kind: 'never-built' }
  | { kind: 'stale'; reasons: string[] }
  | { kind: 'skipped'; reason: string };

/** One stage of a plan. */
export interface PlanStep {
  stage: Stage;
  state: StageState;
  /** Whether `make` will run it (stale, never built, forced, or an upstream stage will rerun). */
  willRun: boolean;
}

/** What happened to one stage in `make`. */
export interface StageOutcome {
  name: string;
  /** `round`: the stage ran but asked an upstream stage for more input ({@link MoreInputNeeded}); the runner went back. */
  /** `paused`: stopped for a reason a later rerun may clear (network, site; exit 75), progress kept. */
  action: 'ran' | 'fresh' | 'skipped' | 'failed' | 'paused' | 'interrupted' | 'not-run' | 'round';
  /** Why it ran or was skipped. */
  reason: string;
  durationMs: number;
  /** Output paths, absolute. */
  outputs: string[];
  /** With `ran`: the stage finished incomplete (`ctx.incomplete`), why; the next `make` reruns it to continue. */
  incomplete?: string;
}

/** Options of {@link make} and {@link plan}. */
export interface MakeOptions {
  /** Target names (stage names or `all`). */
  targets: readonly string[];
  config: Config;
  dataDir: string;
  /** The stages, in pipeline order (the CLI passes the registry, `stages/index.ts`). */
  stages: readonly Stage[];
  log?: Logger;
  /** Rerun the named targets even when fresh, from scratch: their work directories are removed first. */
  force?: boolean;
  /** Print the plan and change nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** An unknown target name: the CLI exits with code 2. */
export class UnknownTargetError extends UserError {
  constructor(name: string, known: readonly string[]) {
    super(`unknown target "${name}"; targets: ${known.join(', ')}, all`);
    this.name = 'UnknownTargetError';
  }
}

/**
 * The stages needed for `targets` (their transitive dependencies under `config` included), in registry order.
 * @throws UnknownTargetError for an unknown target; Error when a stage depends on an unknown stage.
 */
export function closure(stages: readonly Stage[], targets: readonly string[], config: Config): Stage[] {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const need = new Set<string>();
  const visit = (name: string, from?: string) => {
    const s = byName.get(name);
    if (!s) {
      if (from) throw new Error(`stage ${from} depends on unknown stage "${name}"`);
      throw new UnknownTargetError(name, stages.map((x) => x.name));
    }
    if (need.has(name)) return;
    need.add(name);
    for (const d of resolveList(s.deps, config)) visit(d, name);
  };
  for (const t of targets) visit(TARGET_ALIASES[t] ?? t);
  return stages.filter((s) => need.has(s.name));
}

/** Output paths of a stage, relative to the data directory (atomic outputs and in-place ones). */
export function allOutputs(stage: Stage, config: Config): string[] {
  return [...resolveList(stage.outputs, config), ...resolveList(stage.inPlaceOutputs, config)];
}

async function hashOutputs(stage: Stage, config: Config, hasher: Hasher): Promise<{ outputs: Record<string, OutputHash>; missing: string[] }> {
  const outputs: Record<string, OutputHash> = {};
  const missing: string[] = [];
  for (const rel of allOutputs(stage, config)) {
    const h = await hasher.output(rel);
    if (h) outputs[rel] = h;
    else missing.push(rel);
  }
  return { outputs, missing };
}

async function hashExtraInputs(stage: Stage, config: Config): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of stage.extraInputs?.(config) ?? []) {
    const abs = resolve(p);
    if (!existsSync(abs)) throw new UserError(`stage ${stage.name}: input file ${abs} not found`);
    out[abs] = await sha256File(abs);
  }
  return out;
}

/**
 * The stages upstream of `stage`: its declared dependencies and, through their lock entries' recorded `deps`, theirs.
 */
function upstreamInLock(stage: Stage, config: Config, lock: LockFile): Set<string> {
  const out = new Set<string>();
  const visit = (name: string) => {
    if (out.has(name)) return;
    out.add(name);
    for (const d of Object.keys(lock.stages[name]?.deps ?? {})) visit(d);
  };
  for (const d of resolveList(stage.deps, config)) visit(d);
  return out;
}

/**
 * The content hash of each declared input of `stage` (null when absent). `pipeline.lock.json` is hashed over the
 * entries of the stages upstream of it only ({@link upstreamInLock}), so a stage that reads the lock (the report) is
 * made stale neither by its own entry nor by a stage it does not depend on (`export`, run after it).
 */
export async function hashInputs(stage: Stage, config: Config, lock: LockFile, hasher: Hasher): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const rel of resolveList(stage.inputs, config)) {
    if (rel === LOCK_FILE) {
      const upstream = upstreamInLock(stage, config, lock);
      const others = Object.fromEntries(Object.entries(lock.stages).filter(([name]) => upstream.has(name)).sort(([a], [b]) => a.localeCompare(b)));
      out[rel] = hashJson(others);
    } else out[rel] = (await hasher.output(rel))?.hash ?? null;
  }
  return out;
}

/**
 * What changed in a parameter, one `key: before → after` per changed setting: a section (`train`) is compared key by
 * key down to its settings, so the reason names `train.epochs: 20 → 5` rather than two cut-off objects.
 */
function describeChanges(key: string, before: unknown, after: unknown): string[] {
  const isSection = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isSection(before) && isSection(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.filter((k) => hashJson(before[k] ?? null) !== hashJson(after[k] ?? null)).flatMap((k) => describeChanges(`${key}.${k}`, before[k], after[k]));
  }
  const fmt = (v: unknown) => {
    const s = JSON.stringify(v);
    return s === undefined ? 'unset' : s.length > 60 ? `${s.slice(0, 57)}...` : s;
  };
  return [`${key}: ${fmt(before)} → ${fmt(after)}`];
}

/**
 * Where a stage stands by its lock entry alone, given the dependencies' current output hashes.
 * @param depHashes current combined output hash of each non-skipped dependency (absent: never built).
 */
async function lockState(
  stage: Stage,
  config: Config,
  entry: LockEntry | undefined,
  depHashes: Map<string, string | null>,
  hasher: Hasher,
  lock: LockFile,
): Promise<StageState> {
  const skip = stage.skipWhen?.(config);
  if (skip) return { kind: 'skipped', reason: skip };
  if (!entry) return { kind: 'never-built' };
  const reasons: string[] = [];
  if (entry.incomplete) reasons.push(`incomplete last time: ${entry.incomplete}; this run continues it`);
  if (entry.version !== stage.version) reasons.push(`stage version ${entry.version} → ${stage.version}`);
  const params = pickParams(config, resolveList(stage.params, config));
  if (hashJson(params) !== entry.paramsHash) {
    for (const k of new Set([...Object.keys(params), ...Object.keys(entry.params)])) {
      if (hashJson(params[k] ?? null) !== hashJson(entry.params[k] ?? null)) reasons.push(...describeChanges(k, entry.params[k], params[k]).map((c) => `parameter ${c}`));
    }
  }
  for (const [dep, h] of depHashes) {
    if (h === null) reasons.push(`input ${dep} not built`);
    else if (entry.deps[dep] !== h) reasons.push(`input ${dep} changed`);
  }
  for (const dep of Object.keys(entry.deps)) if (!depHashes.has(dep)) reasons.push(`input ${dep} no longer used`);
  if (entry.inputs) {
    const inputs = await hashInputs(stage, config, lock, hasher);
    for (const [rel, h] of Object.entries(inputs)) {
      if (!(rel in entry.inputs)) reasons.push(`input file ${rel} not in the lock`);
      else if (entry.inputs[rel] !== h) reasons.push(h === null ? `input file ${rel} missing` : `input file ${rel} changed`);
    }
    for (const rel of Object.keys(entry.inputs)) if (!(rel in inputs)) reasons.push(`input file ${rel} no longer used`);
  }
  try {
    const extra = await hashExtraInputs(stage, config);
    for (const [p, h] of Object.entries(extra)) if (entry.extraInputs[p] !== h) reasons.push(`input file ${p} changed`);
    for (const p of Object.keys(entry.extraInputs)) if (!(p in extra)) reasons.push(`input file ${p} no longer used`);
  } catch (e) {
    reasons.push((e as Error).message);
  }
  const { outputs, missing } = await hashOutputs(stage, config, hasher);
  for (const m of missing) reasons.push(`output ${m} missing`);
  for (const [rel, h] of Object.entries(outputs)) {
    const rec = entry.outputs[rel];
    if (!rec) reasons.push(`output ${rel} not in the lock`);
    else if (rec.hash !== h.hash) reasons.push(`output ${rel} was modified`);
  }
  return reasons.length ? { kind: 'stale', reasons } : { kind: 'fresh' };
}

/** Besides the lock, what makes a fresh stage run: `--force` on a target, or a rerun the runner needs (with its reason). */
interface RunReasons {
  /** `--force` was given and the stage is one of the targets. */
  forced: boolean;
  /** Why the runner reruns the stage although its lock entry is fresh (an upstream stage reruns, a round), or null. */
  rerun: string | null;
}

/**
 * Decides a stage's state: the one decision behind both {@link plan} (`--dry-run`) and {@link make}. A stage its lock
 * calls fresh still runs when the runner needs it to (`why.rerun`) or `--force` names it; a skipped or stale stage
 * stays so.
 */
async function decideState(stage: Stage, config: Config, lock: LockFile, depHashes: Map<string, string | null>, hasher: Hasher, why: RunReasons): Promise<StageState> {
  const state = await lockState(stage, config, lock.stages[stage.name], depHashes, hasher, lock);
  if (state.kind !== 'fresh') return state;
  if (why.rerun) return { kind: 'stale', reasons: [why.rerun] };
  if (why.forced) return { kind: 'stale', reasons: ['--force'] };
  return state;
}

/** Current combined output hash of each stage in the lock, or null when never built or skipped. */
function depHashesFor(stage: Stage, config: Config, byName: Map<string, Stage>, current: Map<string, string | null>): Map<string, string | null> {
  const m = new Map<string, string | null>();
  for (const d of resolveList(stage.deps, config)) {
    const dep = byName.get(d);
    if (dep?.skipWhen?.(config)) continue;
    m.set(d, current.get(d) ?? null);
  }
  return m;
}

/**
 * Works out what `make` would do, without changing anything.
 * @throws UnknownTargetError for an unknown target.
 */
export async function plan(opts: MakeOptions): Promise<PlanStep[]> {
  const stages = opts.stages;
  const dataDir = resolve(opts.dataDir);
  const needed = closure(stages, opts.targets, opts.config);
  const targets = new Set(opts.targets.map((t) => TARGET_ALIASES[t] ?? t));
  const byName = new Map(stages.map((s) => [s.name, s]));
  const lock = readLock(dataDir);
  const hasher = new Hasher(dataDir);
  const current = new Map<string, string | null>(Object.entries(lock.stages).map(([k, v]) => [k, v.outputsHash]));
  const steps: PlanStep[] = [];
  const rerun = new Set<string>();
  for (const stage of needed) {
    const upstream = resolveList(stage.deps, opts.config).filter((d) => rerun.has(d));
    const state = await decideState(stage, opts.config, lock, depHashesFor(stage, opts.config, byName, current), hasher, {
      forced: !!opts.force && targets.has(stage.name),
      rerun: upstream.length ? `upstream ${upstream.join(', ')} will rerun` : null,
    });
    const willRun = state.kind === 'stale' || state.kind === 'never-built';
    if (willRun) rerun.add(stage.name);
    steps.push({ stage, state, willRun });
  }
  hasher.save();
  return steps;
}

/** Human-readable state: `fresh`, `never built`, `stale (reason; reason)`, `skipped (reason)`. */
export function describeState(state: StageState): string {
  switch (state.kind) {
    case 'fresh': return 'fresh';
    case 'never-built': return 'never built';
    case 'stale': return `stale (${state.reasons.join('; ')})`;
    case 'skipped': return `skipped (${state.reason})`;
  }
}

/**
 * Builds the targets: runs every needed stage that is stale, in dependency order, and records each in the lock.
 * A stage whose inputs reran but came out byte-identical is not rerun.
 * With `dryRun`, works out the plan ({@link plan}) and changes nothing.
 * @returns one outcome per needed stage, in order. On a failure the outcomes (`failed`, then `not-run` for the rest)
 *   still reach `onOutcome`, and the stage's error is thrown.
 * @throws the failing stage's error (UserError for user-fixable problems, `interrupted` on abort); UnknownTargetError;
 *   UserError when the data directory is a file or another covers process holds it.
 */
export async function make(opts: MakeOptions & { onOutcome?: (o: StageOutcome) => void }): Promise<StageOutcome[]> {
  const stages = opts.stages;
  const log = opts.log ?? createLogger();
  const dataDir = resolve(opts.dataDir);
  if (opts.dryRun) {
    const steps = await plan({ ...opts, stages });
    return steps.map((s) => ({
      name: s.stage.name,
      action: s.willRun ? 'not-run' : s.state.kind === 'skipped' ? 'skipped' : 'fresh',
      reason: describeState(s.state),
      durationMs: 0,
      outputs: allOutputs(s.stage, opts.config).map((o) => join(dataDir, o)),
    }));
  }
  // Each stage's state is decided just before it would run (an upstream rerun may or may not change its inputs),
  // so the plan is only the needed stages in order.
  const needed = closure(stages, opts.targets, opts.config);
  if (existsSync(dataDir) && !statSync(dataDir).isDirectory()) throw new UserError(`data directory ${dataDir} is not a directory`);
  mkdirSync(dataDir, { recursive: true });
  const release = acquireRunLock(dataDir);
  // When the signal fires, for the "stopped N ms after the interrupt" line (what Ctrl-C's latency is made of).
  let abortedAt: number | null = opts.signal?.aborted ? performance.now() : null;
  const onAbort = () => (abortedAt ??= performance.now());
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const outcomes: StageOutcome[] = [];
  const report = (o: StageOutcome) => {
    outcomes.push(o);
    opts.onOutcome?.(o);
  };
  try {
    rmSync(join(dataDir, '.tmp'), { recursive: true, force: true });
    const targets = new Set(opts.targets.map((t) => TARGET_ALIASES[t] ?? t));
    const byName = new Map(stages.map((s) => [s.name, s]));
    const hasher = new Hasher(dataDir);
    let round = 1;
    /** A stage to rerun once (an upstream stage a downstream one asked for more input), with the reason. */
    let rerunOnce = null as { name: string; reason: string } | null;
    for (let i = 0; i < needed.length; i++) {
      const stage = needed[i]!;
      const lock = readLock(dataDir);
      const current = new Map<string, string | null>(Object.entries(lock.stages).map(([k, v]) => [k, v.outputsHash]));
      const depHashes = depHashesFor(stage, opts.config, byName, current);
      const forced = opts.force === true && targets.has(stage.name);
      const state = await decideState(stage, opts.config, lock, depHashes, hasher, {
        forced,
        rerun: rerunOnce?.name === stage.name ? rerunOnce.reason : null,
      });
      if (rerunOnce?.name === stage.name) rerunOnce = null;
      const outputs = allOutputs(stage, opts.config).map((o) => join(dataDir, o));
      if (state.kind === 'skipped' || state.kind === 'fresh') {
        report({ name: stage.name, action: state.kind === 'fresh' ? 'fresh' : 'skipped', reason: describeState(state), durationMs: 0, outputs });
        continue;
      }
      if (opts.signal?.aborted) throw new InterruptedError();
      const reason = describeState(state);
      log.info(`${stage.name}: running (${state.kind === 'never-built' ? 'never built' : state.reasons.join('; ')})`);
      // --force starts the stage over, as `covers clean` then `make` would: its work directory (snapshots, crawl
      // queues, partial results) goes, so nothing is resumed from an earlier run.
      if (forced) rmSync(stageWorkDir(dataDir, stage.name), { recursive: true, force: true });
      const started = new Date();
      const t0 = performance.now();
      try {
        const extraInputs = await hashExtraInputs(stage, opts.config);
        const inputs = await hashInputs(stage, opts.config, lock, hasher);
        const incomplete: string[] = [];
        const ctx = createStageContext(stage, { config: opts.config, dataDir, log, signal: opts.signal, stageNames: stages.map((s) => s.name), onIncomplete: (r) => incomplete.push(r) });
        await stage.run(ctx);
        if (opts.signal?.aborted) throw new InterruptedError();
        commitOutputs(stage, opts.config, dataDir);
        const { outputs: hashes, missing } = await hashOutputs(stage, opts.config, hasher);
        if (missing.length) throw new Error(`stage ${stage.name} finished without its output(s) ${missing.join(', ')}`);
        const params = pickParams(opts.config, resolveList(stage.params, opts.config));
        const durationMs = performance.now() - t0;
        updateLockEntry(dataDir, stage.name, {
          version: stage.version,
          params,
          paramsHash: hashJson(params),
          deps: Object.fromEntries([...depHashes].filter((e): e is [string, string] => e[1] !== null)),
          extraInputs,
          inputs,
          outputs: hashes,
          outputsHash: combineOutputHashes(hashes),
          startedAt: started.toISOString(),
          finishedAt: new Date().toISOString(),
          durationMs: Math.round(durationMs),
          ...(incomplete.length ? { incomplete: incomplete.join('; ') } : {}),
        });
        hasher.save();
        if (incomplete.length) {
          log.warn(`${stage.name}: finished incomplete (${incomplete.join('; ')}); the later stages go on with what it has, and the next \`covers make\` reruns ${stage.name} to continue where it stopped`);
        }
        report({ name: stage.name, action: 'ran', reason, durationMs, outputs, ...(incomplete.length ? { incomplete: incomplete.join('; ') } : {}) });
      } catch (e) {
        rmSync(stageTmpDir(dataDir, stage.name), { recursive: true, force: true });
        const back = e instanceof MoreInputNeeded && !opts.signal?.aborted ? needed.findIndex((s) => s.name === e.stage) : -1;
        if (e instanceof MoreInputNeeded && back >= 0 && back < i && round < MAX_MAKE_ROUNDS) {
          writeFileAtomic(join(stageWorkDir(dataDir, e.stage), DEMAND_FILE), `${JSON.stringify(e.demand)}\n`);
          round++;
          log.info(`${stage.name}: ${e.message}; round ${round} reruns ${e.stage} and what follows it`);
          report({ name: stage.name, action: 'round', reason: `${e.message} (round ${round} follows)`, durationMs: performance.now() - t0, outputs: [] });
          rerunOnce = { name: e.stage, reason: `round ${round}: ${stage.name} asked for more (${e.message})` };
          i = back - 1;
          continue;
        }
        if (typeof e === 'object' && e !== null && !failedIn.has(e)) failedIn.set(e, stage.name);
        const stopped = e instanceof InterruptedError || opts.signal?.aborted === true;
        if (stopped && abortedAt !== null) log.debug(`${stage.name}: stopped ${Math.round(performance.now() - abortedAt)} ms after the interrupt (work in flight ended)`);
        const paused = !stopped && isTransientError(e);
        const action = stopped ? 'interrupted' : paused ? 'paused' : 'failed';
        report({ name: stage.name, action, reason: stopped ? 'rerun to resume' : (e as Error).message, durationMs: performance.now() - t0, outputs });
        for (const rest of needed.slice(i + 1)) {
          const why = stopped ? 'was interrupted' : paused ? 'paused (rerun later)' : 'failed';
          report({ name: rest.name, action: 'not-run', reason: `${stage.name} ${why}`, durationMs: 0, outputs: [] });
        }
        throw e;
      }
    }
    return outcomes;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    rmdirIfEmpty(join(dataDir, '.tmp'));
    release();
  }
}

function rmdirIfEmpty(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
  } catch {
    /* absent */
  }
}

/**
 * Removes a stage's outputs (atomic and in-place), its work directory and its lock entry.
 * @returns the paths removed (absolute).
 */
export function clean(stage: Stage, config: Config, dataDir: string): string[] {
  const root = resolve(dataDir);
  const removed: string[] = [];
  for (const rel of [...allOutputs(stage, config)]) {
    const p = join(root, rel);
    if (existsSync(p)) {
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    }
  }
  for (const p of [stageWorkDir(root, stage.name), stageTmpDir(root, stage.name)]) {
    if (existsSync(p)) {
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    }
  }
  if (readLock(root).stages[stage.name]) updateLockEntry(root, stage.name, null);
  return removed;
}
