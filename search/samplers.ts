/**
 * Samplers: what configuration a search tries next, given the space and the trials so far. `random` draws every
 * active parameter from its prior (hyperopt/rand.py `suggest`); `tpe` is hyperopt's Tree-structured Parzen
 * Estimator (hyperopt/tpe.py `suggest`, hyperopt commit c49ad14):
 * - `n_startup_jobs` (hyperopt's `_default_n_startup_jobs` 20; ours 10, Optuna's): the first trials are random;
 * - `gamma` (hyperopt's `_default_gamma` 0.25 with ⌈γ·√N⌉, `ap_split_trials`; ours 0.15 with ⌈γ·N⌉, the form of
 *   Optuna's `default_gamma`, whose γ is 0.1): so many lowest-loss trials, at most `LF = 25` (`gamma_cap=DEFAULT_LF`),
 *   are "good", the rest "bad"; failed and unfinished trials have loss +∞ (`suggest`). Ours differ from hyperopt's
 *   because on bench/search.bench.ts's objectives hyperopt's (3 good trials of 100) explored too long to match
 *   Optuna's TPESampler (bench/RESULTS.md "Search samplers"); {@link HYPEROPT_TPE} holds hyperopt's;
 * - `multivariate` (hyperopt: false; ours true, as Optuna 5's TPESampler always is): the unconditional parameters are
 *   drawn and scored as one configuration from per-trial kernels (search/joint.ts) instead of each on its own;
 * - per parameter, over the trials where it is active: an adaptive Parzen estimator of the good values l(x) and of
 *   the bad values g(x), each with the prior as one component of weight `prior_weight = 1.0`
 *   (`_default_prior_weight`) and linear forgetting past 25 observations (`DEFAULT_LF`), in log space for the
 *   log-uniforms, binned for the quantised ones (search/parzen.ts);
 * - `n_EI_candidates = 24` (`_default_n_EI_candidates`) draws from l(x), and the one with the largest
 *   log l(x) − log g(x) is kept (`broadcast_best`), each parameter independently, as in hyperopt (with
 *   `multivariate`, whole configurations of the unconditional parameters instead).
 * Every suggestion draws from its own PRNG, seeded by the search seed and the trial number, so a trial's suggestion
 * depends only on the seed, its number and the trials before it (hyperopt draws a seed per suggestion the same way).
 */
import { Rng } from '../util/rng.ts';
import {
  adaptiveParzenNormal, categoricalPosterior, DEFAULT_LF, drawIndex, EPS, gmmLpdf, logMixtureLpdf, sampleTruncated, type Mixture,
} from './parzen.ts';
import { jointLogDensity, jointMixture, sampleJoint } from './joint.ts';
import { isActive, quantize, type Assignment, type Distribution, type SearchParam, type SearchSpace, type SpaceValue } from './space.ts';

/** A trial as the samplers see it: its configuration and its loss (+∞ when it failed or is still running). */
export interface Observation {
  assignment: Assignment;
  loss: number;
}

/** TPE settings (defaults: hyperopt's, see the module comment). */
export interface TpeOptions {
  nStartupJobs: number;
  gamma: number;
  /**
   * How many trials are "good": `sqrt` ⌈γ·√N⌉ (hyperopt's `ap_split_trials`) or `linear` ⌈γ·N⌉ (Optuna's
   * `default_gamma`, γ = 0.1 there); both at most `lf`.
   */
  split: 'sqrt' | 'linear';
  nEiCandidates: number;
  priorWeight: number;
  /** Linear forgetting: observations beyond the newest `lf` lose weight (hyperopt `DEFAULT_LF`). */
  lf: number;
  /**
   * Model the unconditional parameters jointly (search/joint.ts, Optuna 5's TPE) instead of one by one (hyperopt's);
   * conditional ones stay one by one either way.
   */
  multivariate: boolean;
}

/** hyperopt/tpe.py's defaults (`_default_*`, `DEFAULT_LF`). */
export const HYPEROPT_TPE: TpeOptions = { nStartupJobs: 20, gamma: 0.25, split: 'sqrt', nEiCandidates: 24, priorWeight: 1.0, lf: DEFAULT_LF, multivariate: false };

/**
 * Our defaults (`search.tpe`'s, pipeline/config.ts): hyperopt's but for 10 start-up trials, ⌈0.15·N⌉ good ones and
 * the unconditional parameters modelled jointly, chosen on bench/search.bench.ts's objectives (see the module comment).
 */
export const TPE_DEFAULTS: TpeOptions = { ...HYPEROPT_TPE, nStartupJobs: 10, gamma: 0.15, split: 'linear', multivariate: true };

/** The sampling algorithms of `search.algorithm`. */
export const ALGORITHMS = ['tpe', 'random'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** The PRNG of trial `trial` (0-based) of a search seeded with `seed`: a mix of both (splitmix-style). */
export function trialRng(seed: number, trial: number): Rng {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(trial + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return new Rng((h ^ (h >>> 16)) >>> 0);
}

/** One draw from a parameter's prior (hyperopt's `hp.*` semantics, bounds as values). */
export function samplePrior(rng: Rng, d: Distribution): SpaceValue {
  switch (d.kind) {
    case 'choice':
      return d.options[rng.int(d.options.length)]!;
    case 'uniform':
      return d.low + (d.high - d.low) * rng.next();
    case 'quniform':
      return quantize(d.low + (d.high - d.low) * rng.next(), d.q);
    case 'loguniform':
      return Math.exp(Math.log(d.low) + (Math.log(d.high) - Math.log(d.low)) * rng.next());
    case 'qloguniform':
      return quantize(Math.exp(Math.log(d.low) + (Math.log(d.high) - Math.log(d.low)) * rng.next()), d.q);
  }
}

/** hyperopt/rand.py `suggest`: every active parameter from its prior, in the space's order. */
export function suggestRandom(space: SearchSpace, rng: Rng): Assignment {
  const a: Assignment = {};
  for (const p of space) if (isActive(p, a)) a[p.key] = samplePrior(rng, p.dist);
  return a;
}

/**
 * hyperopt `ap_split_trials`: the indices (into `history`) of the good trials, the ⌈γ·√N⌉ lowest losses (at most
 * `cap`); ties broken by trial order (numpy's argsort is not stable; ours is, so a rerun agrees).
 */
export function goodTrials(history: readonly Observation[], gamma: number, cap: number, split: TpeOptions['split'] = 'sqrt'): Set<number> {
  const nBelow = Math.min(Math.ceil(gamma * (split === 'sqrt' ? Math.sqrt(history.length) : history.length)), cap);
  const order = history.map((_, i) => i).sort((a, b) => compareLoss(history[a]!.loss, history[b]!.loss) || a - b);
  return new Set(order.slice(0, nBelow));
}

function compareLoss(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/**
 * hyperopt/tpe.py `suggest` (see the module comment): random for the first `nStartupJobs` trials, then per active
 * parameter the best of `nEiCandidates` draws from l(x) by log l − log g.
 * @param history every earlier trial, in trial order (failed and running ones with loss +∞).
 */
export function suggestTpe(space: SearchSpace, history: readonly Observation[], rng: Rng, o: TpeOptions = TPE_DEFAULTS): Assignment {
  if (history.length < o.nStartupJobs) return suggestRandom(space, rng);
  const good = goodTrials(history, o.gamma, o.lf, o.split);
  const a: Assignment = o.multivariate ? suggestJoint(space.filter((p) => p.when === null), history, good, rng, o) : {};
  for (const p of space) {
    if (!isActive(p, a) || p.key in a) continue;
    const below: SpaceValue[] = [];
    const above: SpaceValue[] = [];
    history.forEach((h, i) => {
      const v = h.assignment[p.key];
      if (v !== undefined) (good.has(i) ? below : above).push(v);
    });
    a[p.key] = suggestParam(p, below, above, rng, o);
  }
  return a;
}

/** The best of `nEiCandidates` joint draws of `params` from the good trials' mixture, by log l(x) − log g(x) (search/joint.ts). */
function suggestJoint(params: readonly SearchParam[], history: readonly Observation[], good: Set<number>, rng: Rng, o: TpeOptions): Assignment {
  if (params.length === 0) return {};
  const below = history.filter((_, i) => good.has(i)).map((h) => h.assignment);
  const above = history.filter((_, i) => !good.has(i)).map((h) => h.assignment);
  const l = jointMixture(params, below, o.priorWeight, o.lf);
  const g = jointMixture(params, above, o.priorWeight, o.lf);
  let best: Assignment = {};
  let bestScore = -Infinity;
  for (let c = 0; c < o.nEiCandidates; c++) {
    const x = sampleJoint(rng, l);
    const score = jointLogDensity(l, x) - jointLogDensity(g, x);
    if (c === 0 || score > bestScore) {
      best = x;
      bestScore = Number.isNaN(score) ? -Infinity : score;
    }
  }
  return best;
}

/** The best of `nEiCandidates` draws from the good density of one parameter, by log l(x) − log g(x). */
function suggestParam(p: SearchParam, below: SpaceValue[], above: SpaceValue[], rng: Rng, o: TpeOptions): SpaceValue {
  const est = estimators(p.dist, below, above, o);
  let best: number = NaN;
  let bestScore = -Infinity;
  for (let c = 0; c < o.nEiCandidates; c++) {
    const x = est.sample(rng);
    const score = est.lpdfBelow(x) - est.lpdfAbove(x);
    // np.argmax keeps the first maximum; a NaN score (both densities 0) counts as −∞ here.
    if (Number.isNaN(best) || score > bestScore) {
      best = x;
      bestScore = Number.isNaN(score) ? -Infinity : score;
    }
  }
  return p.dist.kind === 'choice' ? p.dist.options[best]! : best;
}

/** l(x) and g(x) of one parameter, with a sampler of l; choice values are handled as option indices. */
interface Estimators {
  sample(rng: Rng): number;
  lpdfBelow(x: number): number;
  lpdfAbove(x: number): number;
}

function estimators(d: Distribution, below: SpaceValue[], above: SpaceValue[], o: TpeOptions): Estimators {
  if (d.kind === 'choice') {
    const idx = (vs: SpaceValue[]) => vs.map((v) => d.options.indexOf(v)).filter((i) => i >= 0);
    const pb = categoricalPosterior(idx(below), d.options.length, o.priorWeight, o.lf);
    const pa = categoricalPosterior(idx(above), d.options.length, o.priorWeight, o.lf);
    return { sample: (rng) => drawIndex(rng, pb), lpdfBelow: (x) => Math.log(pb[x]!), lpdfAbove: (x) => Math.log(pa[x]!) };
  }
  const nums = (vs: SpaceValue[]) => vs.filter((v): v is number => typeof v === 'number');
  if (d.kind === 'uniform' || d.kind === 'quniform') {
    // hyperopt ap_uniform_sampler / ap_quniform_sampler: prior N((low+high)/2, high−low).
    const q = d.kind === 'quniform' ? d.q : null;
    const mix = (vs: SpaceValue[]) => adaptiveParzenNormal(nums(vs), o.priorWeight, 0.5 * (d.high + d.low), d.high - d.low, o.lf);
    const mb = mix(below);
    const ma = mix(above);
    return {
      sample: (rng) => {
        const x = sampleTruncated(rng, mb, d.low, d.high);
        return q === null ? x : quantize(x, q);
      },
      lpdfBelow: (x) => gmmLpdf(x, mb, d.low, d.high, q),
      lpdfAbove: (x) => gmmLpdf(x, ma, d.low, d.high, q),
    };
  }
  // hyperopt ap_loguniform_sampler / ap_qloguniform_sampler: the same in ln-space, prior N((ln low+ln high)/2, ln high−ln low).
  const q = d.kind === 'qloguniform' ? d.q : null;
  const lo = Math.log(d.low);
  const hi = Math.log(d.high);
  const floor = q === null ? 0 : Math.max(EPS, d.low); // ap_qloguniform_sampler lifts observations below e^low to it
  const mix = (vs: SpaceValue[]): Mixture => adaptiveParzenNormal(nums(vs).map((v) => Math.log(Math.max(v, floor))), o.priorWeight, 0.5 * (lo + hi), hi - lo, o.lf);
  const mb = mix(below);
  const ma = mix(above);
  return {
    sample: (rng) => {
      const x = Math.exp(sampleTruncated(rng, mb, lo, hi));
      return q === null ? x : quantize(x, q);
    },
    lpdfBelow: (x) => logMixtureLpdf(x, mb, lo, hi, q),
    lpdfAbove: (x) => logMixtureLpdf(x, ma, lo, hi, q),
  };
}

/**
 * The configuration trial `trial` (0-based) tries, from the space, the earlier trials and the search seed.
 * @param history the trials numbered 0 … trial − 1 (failed or running ones with loss +∞).
 */
export function suggest(algorithm: Algorithm, space: SearchSpace, history: readonly Observation[], seed: number, trial: number, o: TpeOptions = TPE_DEFAULTS): Assignment {
  const rng = trialRng(seed, trial);
  return algorithm === 'random' ? suggestRandom(space, rng) : suggestTpe(space, history, rng, o);
}
