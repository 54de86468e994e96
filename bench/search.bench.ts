/**
 * The search samplers (issue 23): our TPE (search/samplers.ts, hyperopt's tpe.suggest) against Optuna's TPESampler
 * (bench/optuna_search.py, with Optuna's defaults and with `TPESampler.hyperopt_parameters()`) and against random
 * search, on the synthetic objectives of bench/search-objectives.ts, over the same seeds and the same budget. The
 * figure per objective is the median over seeds of the regret (best value found − the objective's minimum) after the
 * budget; the notes give the quartiles, the regret halfway, and how often ours beats each other sampler over all
 * pairs of seeds (the probability of superiority; 0.5 = as good).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchModule, BenchResult } from './lib.ts';
import { OBJECTIVES, type Objective } from './search-objectives.ts';
import { HYPEROPT_TPE, suggest, suggestRandom, TPE_DEFAULTS, trialRng, type Algorithm, type Observation, type TpeOptions } from '../search/samplers.ts';
import { parseSpace } from '../search/space.ts';

/** Best value so far after each trial of one search with our sampler. */
function ourCurve(o: Objective, algorithm: Algorithm, seed: number, trials: number, tpe: TpeOptions = TPE_DEFAULTS): number[] {
  const space = parseSpace(o.space);
  const history: Observation[] = [];
  const curve: number[] = [];
  for (let t = 0; t < trials; t++) {
    const a = suggest(algorithm, space, history, seed, t, tpe);
    const loss = o.f(a);
    history.push({ assignment: a, loss });
    curve.push(Math.min(loss, curve[t - 1] ?? Infinity));
  }
  return curve;
}

/** Optuna's best-so-far curves for each seed (bench/optuna_search.py), after checking it computes the same objective. */
function optunaCurves(o: Objective, seeds: number[], trials: number, mode: 'default' | 'hyperopt'): { version: string; best: number[][] } {
  const space = parseSpace(o.space);
  const rng = trialRng(12345, 0);
  const check = Array.from({ length: 20 }, () => {
    const a = suggestRandom(space, rng);
    return [a, o.f(a)];
  });
  const r = spawnSync('python3', [join(import.meta.dirname, 'optuna_search.py')], {
    input: JSON.stringify({ objective: o.name, seeds, trials, mode, check }), encoding: 'utf8', maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`bench/optuna_search.py failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return JSON.parse(r.stdout) as { version: string; best: number[][] };
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (pos - lo);
};

/** P(ours < theirs) + ½ P(tie) over all pairs of seeds. */
function superiority(ours: number[], theirs: number[]): number {
  let s = 0;
  for (const a of ours) for (const b of theirs) s += a < b ? 1 : a === b ? 0.5 : 0;
  return s / (ours.length * theirs.length);
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));
const spread = (xs: number[]) => `median ${fmt(quantile(xs, 0.5))} [${fmt(quantile(xs, 0.25))}–${fmt(quantile(xs, 0.75))}]`;

const bench: BenchModule = {
  title: 'Search samplers: our TPE vs Optuna TPESampler vs random (issue 23)',
  async run(ctx) {
    const seedCount = ctx.quick ? 4 : 20;
    const trials = ctx.quick ? 30 : 100;
    const seeds = Array.from({ length: seedCount }, (_, i) => i);
    const results: BenchResult[] = [];
    for (const o of OBJECTIVES) {
      const regret = (curves: number[][], at: number) => curves.map((c) => c[at - 1]! - o.minimum);
      const tpe = seeds.map((s) => ourCurve(o, 'tpe', s, trials));
      const tpeH = seeds.map((s) => ourCurve(o, 'tpe', s, trials, HYPEROPT_TPE));
      const tpeU = seeds.map((s) => ourCurve(o, 'tpe', s, trials, { ...TPE_DEFAULTS, multivariate: false }));
      const rnd = seeds.map((s) => ourCurve(o, 'random', s, trials));
      ctx.log(`${o.name}: ours done; Optuna…`);
      const opt = optunaCurves(o, seeds, trials, 'default');
      const optH = optunaCurves(o, seeds, trials, 'hyperopt');
      const [rt, rr, ro, roh] = [tpe, rnd, opt.best, optH.best].map((c) => regret(c, trials)) as [number[], number[], number[], number[]];
      const half = Math.floor(trials / 2);
      const line = (name: string, c: number[][]) => `${name}: ${spread(regret(c, trials))} after ${trials}, ${spread(regret(c, half))} after ${half}`;
      const notes = [
        `regret (best − minimum ${o.minimum}) over ${seedCount} seeds, median [quartiles]`,
        line('ours TPE (defaults: 10 start-up, ⌈0.15·N⌉ good, joint)', tpe), line('ours TPE one parameter at a time (defaults but multivariate=false)', tpeU), line("ours TPE with hyperopt's settings (20, ⌈0.25·√N⌉, one at a time)", tpeH), line(`Optuna ${opt.version} TPESampler defaults`, opt.best), line('Optuna with hyperopt_parameters()', optH.best), line('ours random', rnd),
        `P(ours TPE better) vs Optuna default ${superiority(rt, ro).toFixed(2)}, vs Optuna hyperopt-parameters ${superiority(rt, roh).toFixed(2)}, vs random ${superiority(rt, rr).toFixed(2)}`,
        `P(ours with hyperopt's settings better than Optuna with hyperopt_parameters()) ${superiority(regret(tpeH, trials), roh).toFixed(2)}`,
        `space: ${o.space}`,
      ].join('; ');
      const mo = quantile(ro, 0.5);
      const mt = quantile(rt, 0.5);
      results.push({
        name: `${o.name}: median regret after ${trials} trials, ours TPE vs Optuna TPESampler`,
        value: mt, unit: 'regret', baseline: { name: `Optuna ${opt.version} TPESampler (defaults)`, value: mo },
        ratio: mt > 0 ? mo / mt : undefined,
        target: 'as good as Optuna (P(ours better) ≥ ~0.4)', met: superiority(rt, ro) >= 0.4, notes,
      });
      const mr = quantile(rr, 0.5);
      results.push({
        name: `${o.name}: median regret after ${trials} trials, ours TPE vs random search`,
        value: mt, unit: 'regret', baseline: { name: 'random search (ours, same seeds)', value: mr },
        ratio: mt > 0 ? mr / mt : undefined, target: 'better than random (P(ours better) > 0.5)', met: superiority(rt, rr) > 0.5,
      });
    }
    return results;
  },
};
export default bench;
