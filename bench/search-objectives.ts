/**
 * Synthetic objectives for the sampler benchmark (bench/search.bench.ts), each over a space of mixed choice,
 * continuous, log-uniform and integer parameters, with a known minimum. bench/optuna_search.py holds the same
 * functions in Python; the benchmark checks that both give the same values on the same points before comparing.
 */
import type { Assignment } from '../search/space.ts';

/** An objective: its space (search/space.ts syntax), the function (lower is better) and its minimum. */
export interface Objective {
  name: string;
  space: string;
  f(a: Assignment): number;
  /** The function's minimum over the space (the regret is the best value found minus this), to within 1e-4. */
  minimum: number;
}

const num = (a: Assignment, k: string): number => a[k] as number;

/** Branin–Hoo (Dixon & Szegő 1978), minimum 0.397887. */
function branin(x1: number, x2: number): number {
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}

/** The benchmark's objectives. */
export const OBJECTIVES: Objective[] = [
  {
    // A separable bowl: a categorical offset, a continuous, a log-scale and an integer coordinate.
    name: 'mixed-bowl',
    space: 'c=choice(a,b,c,d); x=uniform(-5,5); lr=loguniform(1e-5,1); n=quniform(1,32,1)',
    f: (a) => ({ a: 1, b: 2, c: 0, d: 0.5 })[a.c as string]! + (num(a, 'x') - 1.3) ** 2 / 4 + (Math.log10(num(a, 'lr')) + 2) ** 2 + ((num(a, 'n') - 7) / 8) ** 2,
    minimum: 0,
  },
  {
    // Branin on a continuous and an integer axis, plus a log-scale nuisance and a choice.
    name: 'branin-mixed',
    space: 'x1=uniform(-5,10); x2=quniform(0,15,1); scale=loguniform(0.1,10); mode=choice(plain,shifted)',
    f: (a) => branin(num(a, 'x1'), num(a, 'x2')) + Math.log(num(a, 'scale')) ** 2 + (a.mode === 'shifted' ? 1 : 0),
    minimum: 0.4323, // Branin with x2 an integer: 0.43234 at x2 = 12, x1 ≈ −3.2 (a grid of 300,001 x1 per x2)
  },
  {
    // A surrogate of the study's space: optimizer branches with their own parameters, a learning rate on e^-12…e^-5,
    // mirroring, hidden units (quantised log-uniform) and dropout, with an interaction between dropout and rate.
    name: 'training-like',
    space: 'opt=choice(nesterov,adam); m=uniform(0.5,1) if opt=nesterov; b1=uniform(0,0.9) if opt=adam; b2=uniform(0.99,1) if opt=adam;'
      + 'lr=loguniform(e^-12,e^-5); mirror=choice(false,true); units=qloguniform(64,4096,64); dropout=uniform(0,0.75)',
    f: (a) => {
      const llr = Math.log(num(a, 'lr'));
      const branch = a.opt === 'nesterov'
        ? (llr + 6.5) ** 2 / 4 + 8 * (num(a, 'm') - 0.9) ** 2
        : (llr + 9) ** 2 / 4 + 4 * (num(a, 'b1') - 0.8) ** 2 + 400 * (num(a, 'b2') - 0.999) ** 2 - 0.1;
      const d = num(a, 'dropout');
      return 1 + branch + (a.mirror ? 0 : 0.3) + ((Math.log2(num(a, 'units')) - 9) / 3) ** 2 + 2 * (d - 0.45) ** 2 + 0.2 * (d - 0.45) * (llr + 9);
    },
    minimum: 0.9, // adam at lr e^-9, b1 0.8, b2 0.999, mirror, 512 units, dropout 0.45 (the interaction term is 0 there)
  },
];
