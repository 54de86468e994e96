/**
 * Stage `search`: a hyperparameter search on the validation split (issue 23). Trial after trial, the sampler
 * (`search.algorithm`, search/samplers.ts) suggests a configuration of the searched keys (`search.space`, or the
 * study's space for the architecture), the trial trains it on the training split for `search.epochs` epochs with the
 * training loop of `train` (search/trial.ts), the pruner (`search.pruner`, search/asha.ts) may stop it early, and
 * its row is recorded. The test split is never read.
 *
 * Resumable: each finished trial is written at once to `DATA_DIR/.work/search/<hash>/trials.tsv` (atomically; the
 * hash is that of the keys that make recorded trials valid, declarations.ts `SEARCH_RESUMABLE_PARAMS`), so a kill
 * loses only the trial in flight, a rerun never retrains a recorded trial, and a rerun with a larger `search.trials`
 * continues, TPE conditioning on every recorded trial. When `search.trials` trials are recorded, the stage writes
 * `search/trials.tsv` (the first `search.trials` trials) and `search/best.json` (schemas/search.ts).
 *
 * With `train.init = pretrained` every trial fine-tunes `pretrained.model` (resolved once here; crops at its input
 * size, its own preprocessing) and the default space holds only the training keys, not the architecture's layers.
 *
 * `search.parallel` > 1 runs that many trials at once on worker threads (search/pool.ts), each with `train.threads`
 * threads (by default the cores shared out); running trials count as loss +∞ for the sampler, as in hyperopt, so the
 * sequence then depends on timing. A kill then loses every trial in flight, and their numbers stay unused.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hashJson, pickParams, type Config } from '../pipeline/config.ts';
import { UserError, type StageContext, type StageImplementation } from '../pipeline/stage.ts';
import { InterruptedError } from '../util/errors.ts';
import { architectureDefaults, parseModelParams } from '../schemas/model-params.ts';
import { readMean } from '../schemas/mean.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit, type SplitData } from '../schemas/shards/read.ts';
import { bestTrial, readTrials, SEARCH_BEST, SEARCH_TRIALS, writeSearchBest, writeTrials, type TrialRecord } from '../schemas/search.ts';
import { applyAssignment, checkSpaceKeys } from '../search/apply.ts';
import { ashaPrunes, lossesAt, rungEpochs, type AshaOptions } from '../search/asha.ts';
import { suggest, TPE_DEFAULTS, type Observation, type TpeOptions } from '../search/samplers.ts';
import { parseSpace, SpaceError, studySpace, type Assignment, type SearchSpace } from '../search/space.ts';
import { runTrial, type TrialOutcome } from '../search/trial.ts';
import { TrialPool } from '../search/pool.ts';
import { selectBackend } from '../train/backends.ts';
import { defaultThreads } from '../train/data-parallel.ts';
import { fineTuneSettings, resolvePretrainedModel } from '../train/fine-tune.ts';
import { SEARCH_PARAMS, SEARCH_RESUMABLE_PARAMS } from './declarations.ts';

/** The declared keys a trial's configuration is built from (search/apply.ts); the others take their defaults. */
const TRIAL_PARAMS = SEARCH_PARAMS.filter((k) => k !== 'search');

/** The searched space: `search.space`, or the study's for the architecture and its model parameters. @throws UserError naming search.space. */
function searchSpaceOf(c: Config): { space: SearchSpace; text: string } {
  // Fine-tuning trains the imported network: the architecture's layer sizes do not apply, only the training keys.
  const layers = c.train.init === 'pretrained' ? {} : { ...architectureDefaults(c.train.architecture), ...parseModelParams(c.train.modelParams) };
  const text = c.search.space.trim() || studySpace(layers);
  try {
    const space = parseSpace(text);
    checkSpaceKeys(space);
    return { space, text };
  } catch (e) {
    if (e instanceof SpaceError) throw new UserError(`${e.message}${c.search.space.trim() ? '' : ' (the default space)'}`);
    throw e;
  }
}

/** One line per finished trial. */
function describe(r: TrialRecord, total: number): string {
  const score = r.validationLoss === null ? '' : `, validation loss ${r.validationLoss.toFixed(4)} accuracy ${r.validationAccuracy!.toFixed(3)}`;
  const values = Object.entries(r.values).map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(4)) : v}`).join(' ');
  return `trial ${r.trial + 1}/${total}: ${r.status}${score}, ${r.epochs} epoch(s), ${r.seconds.toFixed(1)} s; ${values}${r.message ? ` (${r.message})` : ''}`;
}

/** The validation split, which the search scores on. @throws UserError when there is none. */
async function readValidation(ctx: StageContext): Promise<SplitData> {
  try {
    return await readSplit(ctx.path(splitDir('validation')));
  } catch (e) {
    throw new UserError(`search needs the validation split (${(e as Error).message}); give splits.validation a share`);
  }
}

/** The `search` stage (see the module comment). */
export const searchStage: StageImplementation = {
  name: 'search',
  async run(ctx: StageContext) {
    const c = ctx.config;
    const s = c.search;
    const { space, text } = searchSpaceOf(c);
    const keys = space.map((p) => p.key);
    await selectBackend(c.train.backend, (l) => ctx.log.info(l));
    const train = await readSplit(ctx.path(splitDir('train')));
    const validation = await readValidation(ctx);
    const mean = readMean(ctx.path('shards/mean.arrow'), train.size);
    // train.init = pretrained: every trial fine-tunes pretrained.model (downloaded and read once, here).
    const pretrained = fineTuneSettings(c, '') ? await resolvePretrainedModel(c.pretrained, { log: ctx.log, signal: ctx.signal }) : null;
    if (pretrained) ctx.log.info(`trials fine-tune ${c.pretrained.model} (${pretrained.crop}×${pretrained.crop} input, train.freeze ${c.train.freeze})`);
    const dir = join(ctx.workDir, hashJson(pickParams(c, SEARCH_RESUMABLE_PARAMS)).slice(0, 16));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'trials.tsv');
    const rows: TrialRecord[] = existsSync(file) ? readTrials(file, keys) : [];
    const seed = s.seed ?? c.seed;
    const tpe: TpeOptions = { ...TPE_DEFAULTS, nStartupJobs: s.tpe.startupTrials, gamma: s.tpe.gamma, split: s.tpe.split, multivariate: s.tpe.multivariate };
    const ashaOptions: AshaOptions = { eta: s.asha.eta, minEpochs: s.asha.minEpochs, maxEpochs: s.epochs };
    ctx.log.info(`${s.algorithm} search of ${keys.length} keys (${text}), ${s.epochs} epochs per trial, pruner ${s.pruner}${s.pruner === 'asha' ? ` (η ${ashaOptions.eta}, rungs at epochs ${rungEpochs(ashaOptions).join(', ') || 'none'})` : ''}; ${train.n} training and ${validation.n} validation images`);
    if (rows.length) ctx.log.info(`${rows.length} trial(s) already recorded in ${file}${rows.length >= s.trials ? '' : `; continuing to ${s.trials}`}`);
    const parallel = s.parallel ?? Math.max(1, Math.floor(defaultThreads() / (c.train.threads ?? 1)));
    const threads = c.train.threads ?? Math.max(1, Math.floor(defaultThreads() / parallel));
    if (parallel > 1) ctx.log.info(`${parallel} trials at once, ${threads} thread(s) each`);
    const first = rows.length;
    const progress = first < s.trials ? ctx.progress('trials', s.trials - first) : null;
    const pool = parallel > 1 && first < s.trials
      ? await TrialPool.start(parallel, { backend: c.train.backend, trainDir: ctx.path(splitDir('train')), validationDir: ctx.path(splitDir('validation')), meanFile: ctx.path('shards/mean.arrow') }, (l) => ctx.log.debug(l))
      : null;
    /** Runs one trial: in this thread (search.parallel = 1), or on a pool worker. */
    const start = (trial: number, config: Config | Error): Promise<TrialOutcome> => {
      const snapshotDir = join(dir, `trial-${trial}`);
      const asha = s.pruner === 'asha' ? ashaOptions : null;
      if (pool) {
        const curves: Record<number, number[]> = { ...pool.curves };
        for (const r of rows) curves[r.trial] = r.validationLosses;
        return pool.run({ trial, config: config instanceof Error ? { error: config.message } : config, epochs: s.epochs, threads, snapshotDir, asha, curves, pretrained });
      }
      return runTrial({
        config, train, validation, mean, pretrained, epochs: s.epochs, threads, snapshotDir, signal: ctx.signal,
        log: (l) => ctx.log.debug(`trial ${trial + 1}: ${l}`),
        prune: (epoch, loss) => asha !== null && ashaPrunes(asha, epoch, loss, lossesAt(rows.map((r) => r.validationLosses), epoch)),
      });
    };
    const inflight = new Map<number, { values: Assignment; done: Promise<{ trial: number; outcome: TrialOutcome }> }>();
    let next = rows.reduce((m, r) => Math.max(m, r.trial + 1), 0);
    const interrupted = new Promise<never>((_, reject) => {
      const stop = () => reject(new InterruptedError());
      if (ctx.signal.aborted) stop();
      else ctx.signal.addEventListener('abort', stop, { once: true });
    });
    interrupted.catch(() => {});
    try {
      while (rows.length < s.trials) {
        while (inflight.size < parallel && rows.length + inflight.size < s.trials) {
          const t = next++;
          // In trial order (linear forgetting weighs the newest most), running trials with loss +∞ (hyperopt's rule).
          const history = [...rows.map((r) => [r.trial, r.values, r.validationLoss ?? Infinity] as const), ...[...inflight].map(([k, f]) => [k, f.values, Infinity] as const)]
            .sort((a, b) => a[0] - b[0]).map(([, assignment, loss]): Observation => ({ assignment, loss }));
          const values = suggest(s.algorithm, space, history, seed, t, tpe);
          let config: Config | Error;
          try {
            config = applyAssignment(c, values, TRIAL_PARAMS);
          } catch (e) {
            config = e as Error;
          }
          inflight.set(t, { values, done: start(t, config).then((outcome) => ({ trial: t, outcome })) });
        }
        const { trial, outcome } = await Promise.race([interrupted, ...[...inflight.values()].map((f) => f.done)]);
        const row: TrialRecord = { trial, values: inflight.get(trial)!.values, ...outcome };
        inflight.delete(trial);
        rows.push(row);
        writeTrials(file, keys, rows);
        ctx.log.info(describe(row, s.trials));
        progress?.update(rows.length - first);
      }
    } finally {
      progress?.stop();
      await pool?.close();
    }
    const kept = [...rows].sort((a, b) => a.trial - b.trial).slice(0, s.trials);
    const best = bestTrial(kept);
    if (!best) throw new UserError(`all ${kept.length} trials failed (first: ${kept[0]?.message}); see ${file}`);
    writeTrials(ctx.out(SEARCH_TRIALS), keys, kept);
    writeSearchBest(ctx.out(SEARCH_BEST), {
      trial: best.trial, status: best.status, validationLoss: best.validationLoss!, validationAccuracy: best.validationAccuracy!, epochs: best.epochs,
      values: best.values, trials: kept.length,
    });
    ctx.log.info(`best: ${describe(best, s.trials)}`);
  },
};
