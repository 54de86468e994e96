/**
 * hyperopt's adaptive Parzen estimators (hyperopt/tpe.py at hyperopt commit c49ad14, 2026-02 — the functions named below): the
 * Gaussian mixture built from observed values with a prior component, its truncated sampling and log-density, plus
 * quantised and log-space variants, and the categorical estimator with pseudo-counts. Each function follows the one
 * it names; the Python is the specification.
 */
import type { Rng } from '../util/rng.ts';

/** hyperopt/tpe.py `EPS`: floor of σ and of the log's argument. */
export const EPS = 1e-12;
/** hyperopt/tpe.py `DEFAULT_LF`: linear forgetting keeps full weight for the newest 25 observations. */
export const DEFAULT_LF = 25;

/** A 1-D Gaussian mixture: weights (sum 1), means and standard deviations, each of one length. */
export interface Mixture {
  weights: number[];
  mus: number[];
  sigmas: number[];
}

/**
 * The error function, |error| < 1.2e-7 everywhere (Numerical Recipes in C, 2nd ed., §6.2 `erfcc`, Chebyshev fit).
 * JavaScript has no `Math.erf`; hyperopt uses scipy.special.erf.
 */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

/** hyperopt `normal_cdf(x, mu, sigma)`. */
export function normalCdf(x: number, mu: number, sigma: number): number {
  return 0.5 * (1 + erf((x - mu) / Math.max(Math.SQRT2 * sigma, EPS)));
}

/** hyperopt `lognormal_cdf(x, mu, sigma)` (x ≥ 0). */
export function lognormalCdf(x: number, mu: number, sigma: number): number {
  return 0.5 + 0.5 * erf((Math.log(Math.max(x, EPS)) - mu) / Math.max(Math.SQRT2 * sigma, EPS));
}

/** hyperopt `lognormal_lpdf(x, mu, sigma)`. */
export function lognormalLpdf(x: number, mu: number, sigma: number): number {
  const s = Math.max(sigma, EPS);
  const e = 0.5 * ((Math.log(x) - mu) / s) ** 2;
  return -e - Math.log(s * x * Math.sqrt(2 * Math.PI));
}

/** A standard normal draw (Box–Muller on two uniforms of `rng`). */
export function standardNormal(rng: Rng): number {
  const u = 1 - rng.next(); // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Index drawn with probabilities `p` (summing to 1), like numpy's `rng.multinomial(1, p)` argmax. */
export function drawIndex(rng: Rng, p: readonly number[]): number {
  let u = rng.next();
  for (let i = 0; i < p.length - 1; i++) {
    u -= p[i]!;
    if (u < 0) return i;
  }
  return p.length - 1;
}

/** hyperopt `linear_forgetting_weights(N, LF)`: a ramp from 1/N up to 1 for the oldest N − LF, then LF ones. */
export function linearForgettingWeights(n: number, lf: number = DEFAULT_LF): number[] {
  if (n < lf) return new Array<number>(n).fill(1);
  const ramp = n - lf;
  // numpy.linspace(1 / N, 1.0, num=N - LF)
  const out = Array.from({ length: ramp }, (_, i) => (ramp === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (ramp - 1)));
  return [...out, ...new Array<number>(lf).fill(1)];
}

/**
 * hyperopt `adaptive_parzen_normal(mus, prior_weight, prior_mu, prior_sigma, LF)`: one component per observation
 * (in trial order, oldest first) and the prior inserted in sorted position; each σ is the larger gap to its sorted
 * neighbours (one gap at the ends), clipped to [prior_σ / min(100, 1 + components), prior_σ], the prior's σ kept;
 * weights by linear forgetting (more than LF observations) with the prior at `priorWeight`, normalised.
 */
export function adaptiveParzenNormal(obs: readonly number[], priorWeight: number, priorMu: number, priorSigma: number, lf: number = DEFAULT_LF): Mixture {
  let mus: number[];
  let sigmas: number[];
  let priorPos: number;
  let order: number[] = [];
  if (obs.length === 0) {
    mus = [priorMu];
    sigmas = [priorSigma];
    priorPos = 0;
  } else if (obs.length === 1) {
    priorPos = priorMu < obs[0]! ? 0 : 1;
    mus = priorPos === 0 ? [priorMu, obs[0]!] : [obs[0]!, priorMu];
    sigmas = priorPos === 0 ? [priorSigma, priorSigma * 0.5] : [priorSigma * 0.5, priorSigma];
  } else {
    order = obs.map((_, i) => i).sort((a, b) => obs[a]! - obs[b]! || a - b);
    const sorted = order.map((i) => obs[i]!);
    priorPos = searchSortedLeft(sorted, priorMu);
    mus = [...sorted.slice(0, priorPos), priorMu, ...sorted.slice(priorPos)];
    sigmas = mus.map((m, i) => {
      if (i === 0) return mus[1]! - mus[0]!;
      if (i === mus.length - 1) return mus[i]! - mus[i - 1]!;
      return Math.max(m - mus[i - 1]!, mus[i + 1]! - m);
    });
  }
  let weights: number[];
  if (lf && lf < obs.length) {
    const unsorted = linearForgettingWeights(obs.length, lf);
    const w = order.map((i) => unsorted[i]!);
    weights = [...w.slice(0, priorPos), priorWeight, ...w.slice(priorPos)];
  } else {
    weights = mus.map((_, i) => (i === priorPos ? priorWeight : 1));
  }
  const maxSigma = priorSigma;
  const minSigma = priorSigma / Math.min(100, 1 + mus.length);
  sigmas = sigmas.map((s) => Math.min(maxSigma, Math.max(minSigma, s)));
  sigmas[priorPos] = priorSigma;
  const total = weights.reduce((a, b) => a + b, 0);
  return { weights: weights.map((w) => w / total), mus, sigmas };
}

/** numpy.searchsorted(sorted, x) (side left): the first index whose value is ≥ x. */
function searchSortedLeft(sorted: readonly number[], x: number): number {
  let i = 0;
  while (i < sorted.length && sorted[i]! < x) i++;
  return i;
}

/** Draws so many rejections at most before a truncated draw gives up (hyperopt loops forever). */
const MAX_REJECTIONS = 1_000_000;

/**
 * hyperopt `GMM1` with bounds: component by weight, normal draw, kept when low ≤ x < high; then rounded to a
 * multiple of q when q is given. `LGMM1` is the same in log space followed by exp (see {@link sampleLogMixture}).
 * @throws Error when no draw lands in [low, high) after a million tries (a mixture far outside its bounds: a bug).
 */
export function sampleTruncated(rng: Rng, m: Mixture, low: number, high: number): number {
  for (let i = 0; i < MAX_REJECTIONS; i++) {
    const k = drawIndex(rng, m.weights);
    const x = m.mus[k]! + m.sigmas[k]! * standardNormal(rng);
    if (low <= x && x < high) return x;
  }
  throw new Error(`truncated Gaussian mixture: no draw in [${low}, ${high}) after ${MAX_REJECTIONS} tries`);
}

/** Log-sum-exp of `xs` (hyperopt `logsum_rows`, one row). */
function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (!Number.isFinite(m)) return m;
  return Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0)) + m;
}

/** Probability mass of the mixture inside [low, high) (hyperopt's `p_accept`). */
function acceptance(m: Mixture, low: number, high: number): number {
  return m.weights.reduce((s, w, k) => s + w * (normalCdf(high, m.mus[k]!, m.sigmas[k]!) - normalCdf(low, m.mus[k]!, m.sigmas[k]!)), 0);
}

/** hyperopt `GMM1_lpdf(x, weights, mus, sigmas, low, high, q)`: log-density (q null) or log-mass of x's q-bin, truncated to [low, high). */
export function gmmLpdf(x: number, m: Mixture, low: number, high: number, q: number | null): number {
  const pAccept = acceptance(m, low, high);
  if (q === null) {
    return logSumExp(m.weights.map((w, k) => {
      const s = m.sigmas[k]!;
      const mahal = ((x - m.mus[k]!) / Math.max(s, EPS)) ** 2;
      return -0.5 * mahal + Math.log(w / Math.sqrt(2 * Math.PI * s * s) / pAccept);
    }));
  }
  const ub = Math.min(x + q / 2, high);
  const lb = Math.max(x - q / 2, low);
  const prob = m.weights.reduce((s, w, k) => s + w * normalCdf(ub, m.mus[k]!, m.sigmas[k]!) - w * normalCdf(lb, m.mus[k]!, m.sigmas[k]!), 0);
  return Math.log(prob) - Math.log(pAccept);
}

/**
 * hyperopt `LGMM1_lpdf(x, weights, mus, sigmas, low, high, q)`, the mixture in log space with bounds `low`, `high`
 * as logarithms. Without q it is hyperopt's mixture of log-normal densities, which (as in hyperopt) is not divided
 * by the mass inside the bounds; with q, the log-mass of x's bin [x − q/2, x + q/2] within [e^low, e^high], divided by it.
 */
export function logMixtureLpdf(x: number, m: Mixture, low: number, high: number, q: number | null): number {
  if (q === null) return logSumExp(m.weights.map((w, k) => lognormalLpdf(x, m.mus[k]!, m.sigmas[k]!) + Math.log(w)));
  const pAccept = acceptance(m, low, high);
  const ub = Math.min(x + q / 2, Math.exp(high));
  const lb = Math.max(0, Math.max(x - q / 2, Math.exp(low)));
  const prob = m.weights.reduce((s, w, k) => s + w * lognormalCdf(ub, m.mus[k]!, m.sigmas[k]!) - w * lognormalCdf(lb, m.mus[k]!, m.sigmas[k]!), 0);
  return Math.log(prob) - Math.log(pAccept);
}

/**
 * hyperopt `ap_categorical_sampler` / `tpe_cat_pseudocounts`: the probability of each of `size` options from the
 * observed option indices (oldest first) weighted by linear forgetting, plus `size · priorWeight · p` pseudo-counts
 * for the uniform prior p = 1/size, normalised.
 */
export function categoricalPosterior(obs: readonly number[], size: number, priorWeight: number, lf: number = DEFAULT_LF): number[] {
  const w = linearForgettingWeights(obs.length, lf);
  const counts = new Array<number>(size).fill(0);
  obs.forEach((o, i) => (counts[o]! += w[i]!));
  const pseudo = counts.map((c) => c + size * (priorWeight * (1 / size)));
  const total = pseudo.reduce((a, b) => a + b, 0);
  return pseudo.map((c) => c / total);
}
