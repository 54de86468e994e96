/**
 * The multivariate ("joint") TPE of Falkner, Klein & Hutter (BOHB, ICML 2018, §3.1) as Optuna's `TPESampler` does it
 * since Optuna 5 (optuna/samplers/_tpe/parzen_estimator.py, `_MixtureOfProductDistribution`): one kernel per trial
 * over all the jointly modelled parameters, plus a prior kernel, so candidates are drawn and scored as whole
 * configurations by l(x)/g(x) instead of parameter by parameter (hyperopt's TPE, search/samplers.ts).
 *
 * The parts are hyperopt's (search/parzen.ts): each numeric parameter's kernel of trial k is the Gaussian hyperopt's
 * `adaptive_parzen_normal` gives that observation (its mean, its clipped neighbour-gap σ; the prior N(mid, high − low)),
 * truncated to the bounds, in log space for log-uniforms, binned for quantised ones; kernel weights are linear
 * forgetting past `lf` trials and `priorWeight` for the prior. A choice's kernel of trial k is Optuna's: mass 1 on the
 * observed option plus `priorWeight`/(kernels) on every option, normalised; the prior kernel's is uniform.
 */
import type { Rng } from '../util/rng.ts';
import { adaptiveParzenNormal, drawIndex, linearForgettingWeights, normalCdf, sampleTruncated, EPS } from './parzen.ts';
import { quantize, type Assignment, type SearchParam, type SpaceValue } from './space.ts';

/** One parameter's kernels: per kernel (trials in order, then the prior) a Gaussian or a categorical row. */
type ParamKernels =
  | { kind: 'numeric'; mus: number[]; sigmas: number[]; low: number; high: number; q: number | null; log: boolean; mass: number[] }
  | { kind: 'choice'; options: readonly SpaceValue[]; rows: number[][] };

/** A product-of-parameters mixture: log weights of the kernels (trials, then the prior) and each parameter's kernels. */
interface JointMixture {
  logWeights: number[];
  params: { param: SearchParam; kernels: ParamKernels }[];
}

/** The numeric bounds of a distribution in the space the kernels live in (ln for log-uniforms). */
function bounds(p: SearchParam): { low: number; high: number; q: number | null; log: boolean } {
  const d = p.dist;
  if (d.kind === 'uniform') return { low: d.low, high: d.high, q: null, log: false };
  if (d.kind === 'quniform') return { low: d.low, high: d.high, q: d.q, log: false };
  if (d.kind === 'loguniform') return { low: Math.log(d.low), high: Math.log(d.high), q: null, log: true };
  if (d.kind === 'qloguniform') return { low: Math.log(d.low), high: Math.log(d.high), q: d.q, log: true };
  throw new Error(`bounds of a ${d.kind}`);
}

/** Per-observation kernels of one numeric parameter: hyperopt's mixture, mapped back from sorted order to trial order. */
function numericKernels(p: SearchParam, values: number[], priorWeight: number, lf: number): ParamKernels {
  const b = bounds(p);
  const xs = values.map((v) => (b.log ? Math.log(Math.max(v, b.q === null ? EPS : Math.exp(b.low))) : v));
  const m = adaptiveParzenNormal(xs, priorWeight, 0.5 * (b.low + b.high), b.high - b.low, lf);
  // adaptiveParzenNormal sorts (stably) and inserts the prior at its sorted place: find each observation's slot.
  const order = xs.map((_, i) => i).sort((a, c) => xs[a]! - xs[c]! || a - c);
  const priorPos = xs.length === 1 ? (0.5 * (b.low + b.high) < xs[0]! ? 0 : 1) : order.filter((i) => xs[i]! < 0.5 * (b.low + b.high)).length;
  const slot = new Array<number>(xs.length);
  order.forEach((i, rank) => (slot[i] = rank + (rank >= priorPos ? 1 : 0)));
  const mus = [...xs.map((_, i) => m.mus[slot[i]!]!), m.mus[priorPos]!];
  const sigmas = [...xs.map((_, i) => m.sigmas[slot[i]!]!), m.sigmas[priorPos]!];
  const mass = mus.map((mu, k) => Math.max(normalCdf(b.high, mu, sigmas[k]!) - normalCdf(b.low, mu, sigmas[k]!), EPS));
  return { kind: 'numeric', mus, sigmas, ...b, mass };
}

/** Per-observation rows of one choice parameter (Optuna's categorical kernels) and the uniform prior row. */
function choiceKernels(options: readonly SpaceValue[], values: SpaceValue[], priorWeight: number): ParamKernels {
  const n = options.length;
  const kernels = values.length + 1;
  const rows = values.map((v) => {
    const row = new Array<number>(n).fill(priorWeight / kernels);
    const i = options.indexOf(v);
    if (i >= 0) row[i]! += 1;
    const total = row.reduce((a, c) => a + c, 0);
    return row.map((x) => x / total);
  });
  rows.push(new Array<number>(n).fill(1 / n));
  return { kind: 'choice', options, rows };
}

/**
 * The joint mixture of `params` over `trials` (assignments, oldest first; every one holds every param).
 */
export function jointMixture(params: readonly SearchParam[], trials: readonly Assignment[], priorWeight: number, lf: number): JointMixture {
  const w = [...linearForgettingWeights(trials.length, lf), priorWeight];
  const total = w.reduce((a, c) => a + c, 0);
  return {
    logWeights: w.map((x) => Math.log(x / total)),
    params: params.map((param) => ({
      param,
      kernels: param.dist.kind === 'choice'
        ? choiceKernels(param.dist.options, trials.map((t) => t[param.key]!), priorWeight)
        : numericKernels(param, trials.map((t) => t[param.key] as number), priorWeight, lf),
    })),
  };
}

/** Draws one configuration of the mixture's parameters: a kernel by weight, then each parameter from that kernel. */
export function sampleJoint(rng: Rng, m: JointMixture): Assignment {
  const k = drawIndex(rng, m.logWeights.map(Math.exp));
  const a: Assignment = {};
  for (const { param, kernels: ks } of m.params) {
    if (ks.kind === 'choice') {
      a[param.key] = ks.options[drawIndex(rng, ks.rows[k]!)]!;
      continue;
    }
    const x = sampleTruncated(rng, { weights: [1], mus: [ks.mus[k]!], sigmas: [ks.sigmas[k]!] }, ks.low, ks.high);
    const v = ks.log ? Math.exp(x) : x;
    a[param.key] = ks.q === null ? v : quantize(v, ks.q);
  }
  return a;
}

/** log of the mixture's density (mass, for quantised and choice parameters) at configuration `a`. */
export function jointLogDensity(m: JointMixture, a: Assignment): number {
  const terms = m.logWeights.map((lw, k) => {
    let s = lw;
    for (const { param, kernels: ks } of m.params) {
      const v = a[param.key]!;
      if (ks.kind === 'choice') {
        s += Math.log(ks.rows[k]![ks.options.indexOf(v)]!);
        continue;
      }
      const mu = ks.mus[k]!;
      const sigma = ks.sigmas[k]!;
      const x = v as number;
      if (ks.q === null) {
        const y = ks.log ? Math.log(x) : x;
        s += -0.5 * ((y - mu) / sigma) ** 2 - Math.log(sigma * Math.sqrt(2 * Math.PI)) - Math.log(ks.mass[k]!);
      } else {
        // The q-bin of x, within the bounds, in the kernel's space.
        const toK = (t: number) => (ks.log ? Math.log(Math.max(t, EPS)) : t);
        const hi = Math.min(toK(x + ks.q / 2), ks.high);
        const lo = Math.max(toK(Math.max(x - ks.q / 2, ks.log ? 0 : -Infinity)), ks.low);
        s += Math.log(Math.max(normalCdf(hi, mu, sigma) - normalCdf(lo, mu, sigma), EPS)) - Math.log(ks.mass[k]!);
      }
    }
    return s;
  });
  const mx = Math.max(...terms);
  return mx + Math.log(terms.reduce((acc, t) => acc + Math.exp(t - mx), 0));
}
