/**
 * The search core (search/): the space syntax, hyperopt's Parzen estimators against values printed by hyperopt's own
 * tpe.py (bench/hyperopt_fixtures.py, hyperopt commit c49ad14), the samplers' behaviour, ASHA's rule and the trials file.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  adaptiveParzenNormal, categoricalPosterior, erf, gmmLpdf, linearForgettingWeights, logMixtureLpdf,
} from '../search/parzen.ts';
import { goodTrials, HYPEROPT_TPE, samplePrior, suggest, suggestRandom, suggestTpe, trialRng, TPE_DEFAULTS, type Observation } from '../search/samplers.ts';
import { defaultConfig } from '../pipeline/config-core.ts';
import { formatParam, parseSpace, SpaceError, studySpace } from '../search/space.ts';
import { jointLogDensity, jointMixture, sampleJoint } from '../search/joint.ts';
import { Rng } from '../util/rng.ts';
import { ashaPrunes, lossesAt, rungEpochs } from '../search/asha.ts';
import { formatTrials, parseTrials, type TrialRecord } from '../schemas/search.ts';

const close = (a: readonly number[], b: readonly number[], tol = 1e-6, what = '') => {
  assert.equal(a.length, b.length, `${what}: length`);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)), `${what}[${i}]: ${x} vs ${b[i]}`));
};

describe('space syntax', () => {
  test('parses every distribution, conditions and e^x bounds, and writes them back', () => {
    const s = parseSpace('train.optimizer=choice(nesterov,adam); train.momentum=uniform(0.5,1) if train.optimizer=nesterov;'
      + 'train.learningRate=loguniform(e^-12,e^-5); train.modelParams.ld0_num_units=qloguniform(64,1024,16); train.batchSize=quniform(8,64,8); train.mirror=choice(false,true)');
    assert.deepEqual(s.map((p) => p.dist.kind), ['choice', 'uniform', 'loguniform', 'qloguniform', 'quniform', 'choice']);
    assert.deepEqual(s[1]!.when, { key: 'train.optimizer', value: 'nesterov' });
    assert.equal(s[2]!.dist.kind === 'loguniform' && s[2]!.dist.low, Math.exp(-12));
    assert.deepEqual(s[5]!.dist.kind === 'choice' && s[5]!.dist.options, [false, true]);
    assert.deepEqual(parseSpace(s.map(formatParam).join(';')), s);
  });
  test('a bad entry is named with the reason', () => {
    const bad: [string, RegExp][] = [
      ['train.learningRate=loguniform(-12,-5)', /"train\.learningRate=loguniform\(-12,-5\)".*low > 0 \(the bounds are values/],
      ['x=uniform(1,0)', /low < high/],
      ['x=normal(0,1)', /unknown distribution "normal"/],
      ['x=uniform(0)', /takes 2 numbers, not 1/],
      ['x=uniform(0,abc)', /"abc" is not a number/],
      ['x=choice(a,a)', /twice/],
      ['x=uniform(0,1) if y=a', /must name a choice\(\) entry listed before it/],
      ['y=choice(a,b); x=uniform(0,1) if y=c', /y never takes "c"/],
      ['x=uniform(0,1); x=uniform(0,2)', /x is searched twice/],
      [' ; ', /no parameter to search/],
    ];
    for (const [text, re] of bad) assert.throws(() => parseSpace(text), (e: Error) => e instanceof SpaceError && re.test(e.message), text);
  });
  test("the study's space for AlexNet parses, with a dropout and units per dense layer and filters per conv layer", () => {
    const s = parseSpace(studySpace({ lc0_num_filters: 48, lc1_num_filters: 128, ld0_num_units: 2048, ld1_num_units: 2048, lc0_mp: true }));
    const keys = s.map((p) => p.key);
    for (const k of ['train.optimizer', 'train.momentum', 'train.adam.beta1', 'train.adam.beta2', 'train.learningRate', 'train.mirror',
      'train.modelParams.ld0_dropout', 'train.modelParams.ld1_num_units', 'train.modelParams.lc1_num_filters']) assert.ok(keys.includes(k), k);
    assert.ok(!keys.some((k) => k.includes('_mp')));
  });
});

describe("hyperopt's Parzen estimators (reference values from hyperopt's tpe.py)", () => {
  test('erf to 1.2e-7', () => {
    close([erf(0), erf(0.5), erf(-1.5), erf(3)], [0, 0.5204998778130465, -0.9661051464753108, 0.9999779095030014], 2e-7, 'erf');
  });
  test('adaptive_parzen_normal: four observations with the prior among them', () => {
    const m = adaptiveParzenNormal([0.3, 0.9, 0.1, 0.5], 1, 0.5, 1);
    close(m.weights, [0.2, 0.2, 0.2, 0.2, 0.2], 1e-12, 'w');
    close(m.mus, [0.1, 0.3, 0.5, 0.5, 0.9], 1e-12, 'mu');
    close(m.sigmas, [0.2, 0.2, 1.0, 0.4, 0.4], 1e-12, 'sigma');
  });
  test('adaptive_parzen_normal: one observation', () => {
    const m = adaptiveParzenNormal([0.7], 1, 0.5, 1);
    close(m.weights, [0.5, 0.5], 1e-12, 'w');
    close(m.mus, [0.5, 0.7], 1e-12, 'mu');
    close(m.sigmas, [1.0, 0.5], 1e-12, 'sigma');
  });
  test('adaptive_parzen_normal: 30 observations, linear forgetting and the σ floor', () => {
    const obs = Array.from({ length: 30 }, (_, i) => ((i * 37) % 29) / 29);
    const m = adaptiveParzenNormal(obs, 1, 0.5, 1);
    close(linearForgettingWeights(30, 25).slice(0, 5), [0.03333333333333333, 0.275, 0.5166666666666667, 0.7583333333333333, 1], 1e-12, 'lf');
    close(m.weights.slice(0, 10), [0.0011661807580174927, 0.03498542274052478, 0.03498542274052478, 0.03498542274052478, 0.03498542274052478,
      0.03498542274052478, 0.03498542274052478, 0.03498542274052478, 0.03498542274052478, 0.009620991253644316], 1e-12, 'w');
    assert.equal(m.weights[18], 0.01807580174927114);
    assert.equal(m.weights[26], 0.026530612244897958);
    close(m.sigmas.slice(0, 3), [0.03125, 0.034482758620689655, 0.034482758620689655], 1e-12, 'sigma');
    assert.equal(m.sigmas[16], 1);
    assert.equal(m.mus[16], 0.5);
  });
  test('GMM1_lpdf and LGMM1_lpdf, plain and quantised; the categorical pseudo-counts', () => {
    const m = adaptiveParzenNormal([0.3, 0.9, 0.1, 0.5], 1, 0.5, 1);
    close([gmmLpdf(0.2, m, 0, 1, null), gmmLpdf(0.95, m, 0, 1, null)], [0.36458970369460686, -0.5819420445934282], 1e-6, 'gmm');
    close([gmmLpdf(0.2, m, 0, 1, 0.1), gmmLpdf(1.0, m, 0, 1, 0.1)], [-1.9435900872481504, -3.6069596656507663], 1e-6, 'gmmq');
    const l = adaptiveParzenNormal([1e-4, 3e-3, 2e-5].map(Math.log), 1, -8.5, 7);
    close([logMixtureLpdf(1e-4, l, -12, -5, null), logMixtureLpdf(5e-6, l, -12, -5, null)], [7.173221931946074, 9.5223006300985], 1e-6, 'lgmm');
    const lq = adaptiveParzenNormal([32, 64, 128].map(Math.log), 1, 0.5 * (Math.log(16) + Math.log(256)), Math.log(256) - Math.log(16));
    close([logMixtureLpdf(48, lq, Math.log(16), Math.log(256), 16), logMixtureLpdf(256, lq, Math.log(16), Math.log(256), 16)], [-1.8880962263887362, -5.111490868551375], 1e-6, 'lgmmq');
    close(categoricalPosterior([0, 2, 2, 1, 2], 3, 1), [0.25, 0.25, 0.5], 1e-12, 'cat');
  });
});

describe('samplers', () => {
  const space = parseSpace('o=choice(a,b); m=uniform(0.5,1) if o=a; b1=uniform(0,0.9) if o=b; lr=loguniform(e^-12,e^-5); u=qloguniform(16,256,16); k=quniform(1,9,1)');
  test('prior draws stay in bounds and on their grid; a conditional key appears only with its branch', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 500; i++) {
      const a = suggestRandom(space, rng);
      assert.equal('m' in a, a.o === 'a');
      assert.equal('b1' in a, a.o === 'b');
      assert.ok((a.lr as number) >= Math.exp(-12) && (a.lr as number) < Math.exp(-5));
      assert.ok(Number.isInteger(a.u) && (a.u as number) % 16 === 0 && (a.u as number) >= 16 && (a.u as number) <= 256, String(a.u));
      assert.ok(Number.isInteger(a.k) && (a.k as number) >= 1 && (a.k as number) <= 9);
    }
    assert.equal(samplePrior(new Rng(1), { kind: 'choice', options: [true] }), true);
  });
  test('the good trials are the ⌈γ·√N⌉ lowest losses, capped at 25, failed ones (+∞) never among them', () => {
    const h = (losses: number[]): Observation[] => losses.map((loss) => ({ assignment: {}, loss }));
    assert.deepEqual([...goodTrials(h([3, 1, Infinity, 2]), 0.25, 25)], [1]); // ⌈0.25·2⌉ = 1
    assert.deepEqual([...goodTrials(h(Array.from({ length: 100 }, (_, i) => 100 - i)), 0.25, 25)].sort((a, b) => a - b), [97, 98, 99]); // ⌈2.5⌉
    assert.equal(goodTrials(h(Array.from({ length: 20000 }, (_, i) => i)), 0.25, 25).size, 25);
  });
  test("with the linear split (Optuna's form) the good trials are the ⌈γ·N⌉ lowest losses, capped at 25", () => {
    const h = (losses: number[]): Observation[] => losses.map((loss) => ({ assignment: {}, loss }));
    assert.deepEqual([...goodTrials(h([3, 1, Infinity, 2]), 0.15, 25, 'linear')], [1]); // ⌈0.6⌉ = 1
    assert.deepEqual([...goodTrials(h(Array.from({ length: 20 }, (_, i) => 20 - i)), 0.15, 25, 'linear')].sort((a, b) => a - b), [17, 18, 19]); // ⌈3⌉
    assert.equal(goodTrials(h(Array.from({ length: 100 }, (_, i) => i)), 0.15, 25, 'linear').size, 15);
    assert.equal(goodTrials(h(Array.from({ length: 200 }, (_, i) => i)), 0.15, 25, 'linear').size, 25);
  });
  test("search.tpe's defaults are the samplers' TPE_DEFAULTS, and hyperopt's settings stay available", () => {
    const t = defaultConfig().search.tpe;
    assert.deepEqual({ nStartupJobs: t.startupTrials, gamma: t.gamma, split: t.split, multivariate: t.multivariate }, { nStartupJobs: TPE_DEFAULTS.nStartupJobs, gamma: TPE_DEFAULTS.gamma, split: TPE_DEFAULTS.split, multivariate: TPE_DEFAULTS.multivariate });
    assert.deepEqual({ n: HYPEROPT_TPE.nStartupJobs, g: HYPEROPT_TPE.gamma, s: HYPEROPT_TPE.split, c: HYPEROPT_TPE.nEiCandidates, w: HYPEROPT_TPE.priorWeight, lf: HYPEROPT_TPE.lf, mv: HYPEROPT_TPE.multivariate }, { n: 20, g: 0.25, s: 'sqrt', c: 24, w: 1, lf: 25, mv: false });
  });
  test('TPE is random search for the start-up trials, then follows the good trials; suggestions are reproducible', () => {
    const f = (a: Record<string, unknown>) => (Math.log(a.lr as number) + 7) ** 2 + ((a.k as number) - 7) ** 2 + (a.o === 'b' ? 0 : 3);
    const history: Observation[] = [];
    for (let t = 0; t < 60; t++) {
      const a = suggest('tpe', space, history, 11, t);
      if (t < TPE_DEFAULTS.nStartupJobs) assert.deepEqual(a, suggestRandom(space, trialRng(11, t)));
      assert.deepEqual(a, suggestTpe(space, history, trialRng(11, t)), 'same seed, same trial, same history → same suggestion');
      history.push({ assignment: a, loss: f(a) });
    }
    const best = (from: number, to: number) => Math.min(...history.slice(from, to).map((h) => h.loss));
    const mean = (from: number, to: number) => history.slice(from, to).reduce((s, h) => s + h.loss, 0) / (to - from);
    assert.ok(mean(40, 60) < 0.75 * mean(0, 20), `TPE's later trials (mean loss ${mean(40, 60)}) are clearly better than the random start (${mean(0, 20)})`);
    assert.ok(best(0, 60) < best(0, 20));
    assert.ok(history.slice(40).filter((h) => h.assignment.o === 'b').length > 10, 'more often the better branch');
  });
});

describe('successive halving and the trials file', () => {
  test('rungs at minEpochs·η^k below the budget; a trial goes on only in the best ⌊n/η⌋ (at least the best one)', () => {
    const o = { eta: 3, minEpochs: 1, maxEpochs: 10 };
    assert.deepEqual(rungEpochs(o), [1, 3, 9]);
    assert.deepEqual(rungEpochs({ eta: 2, minEpochs: 2, maxEpochs: 2 }), []);
    assert.equal(ashaPrunes(o, 1, 5, []), false, 'the first trial at a rung goes on');
    assert.equal(ashaPrunes(o, 1, 5, [1]), true, 'two at the rung: only the best goes on');
    assert.equal(ashaPrunes(o, 1, 0.5, [1, 2]), false);
    assert.equal(ashaPrunes(o, 2, 99, [1, 2]), false, 'epoch 2 is not a rung');
    assert.equal(ashaPrunes(o, 3, 2, [1, 1.5, 3, 4, 5]), true, '6 at the rung: the best 2 go on');
    assert.equal(ashaPrunes(o, 3, 2, [1, 2, 3, 4, 5]), false, 'a tie with the second goes on');
    assert.equal(ashaPrunes(o, 3, 2, [1, 3, 4, 5, 6]), false);
    assert.deepEqual(lossesAt([[3, 2, 1], [4], [5, 4]], 2), [2, 4]);
  });
  test('trials.tsv round-trips every field; a header of another space is refused, naming the file', () => {
    const keys = ['train.optimizer', 'train.momentum', 'train.learningRate', 'train.mirror'];
    const rows: TrialRecord[] = [
      { trial: 0, status: 'complete', epochs: 2, validationLoss: 0.1 + 0.2, validationAccuracy: 2 / 3, seconds: 1.5, values: { 'train.optimizer': 'nesterov', 'train.momentum': 0.9, 'train.learningRate': Math.exp(-7), 'train.mirror': true }, validationLosses: [1.25, 0.1 + 0.2], message: '' },
      { trial: 1, status: 'failed', epochs: 0, validationLoss: null, validationAccuracy: null, seconds: 0, values: { 'train.optimizer': 'adam', 'train.learningRate': 1e-3, 'train.mirror': false }, validationLosses: [], message: 'bad\tmodel\nparams' },
    ];
    const back = parseTrials(formatTrials(keys, rows), keys, 'trials.tsv');
    assert.deepEqual(back, [rows[0], { ...rows[1]!, message: 'bad model params' }]);
    assert.throws(() => parseTrials(formatTrials(keys, rows), ['train.learningRate'], 'x/trials.tsv'), (e: Error) => e.name === 'UserError' && /^x\/trials\.tsv: its columns/.test(e.message) && /covers clean search/.test(e.message));
    assert.throws(() => parseTrials(formatTrials(keys, rows).replace('complete', 'done'), keys, 't.tsv'), /t\.tsv line 2: status "done"/);
  });
});

describe('joint (multivariate) TPE kernels (search/joint.ts)', () => {
  const space = parseSpace('x=uniform(-2,3); n=quniform(1,6,1); c=choice(a,b,c); lr=loguniform(1e-3,1)');
  const trials = [
    { x: 0.5, n: 2, c: 'a', lr: 0.01 }, { x: -1.5, n: 5, c: 'b', lr: 0.5 }, { x: 2.5, n: 3, c: 'a', lr: 0.002 },
  ];
  test('each trial is one kernel at its own values, with the σ hyperopt gives that observation; the prior is the last kernel', () => {
    const m = jointMixture(space, trials, 1, 25);
    assert.equal(m.logWeights.length, 4);
    close([m.logWeights.reduce((s, w) => s + Math.exp(w), 0)], [1], 1e-12, 'weights');
    const x = m.params[0]!.kernels;
    assert.equal(x.kind, 'numeric');
    if (x.kind !== 'numeric') return;
    const ref = adaptiveParzenNormal([0.5, -1.5, 2.5], 1, 0.5, 5);
    // Kernels in trial order, then the prior (mean 0.5 = (−2 + 3)/2, which here equals trial 0's value).
    close(x.mus, [0.5, -1.5, 2.5, 0.5], 1e-12, 'mus');
    for (let k = 0; k < 3; k++) assert.ok(ref.sigmas.some((s, j) => ref.mus[j] === x.mus[k] && Math.abs(s - x.sigmas[k]!) < 1e-12), `σ of trial ${k}`);
    assert.equal(x.sigmas[3], 5, 'the prior σ is high − low');
  });
  test('the joint density is a density: it integrates to 1 over the space (x continuous, lr in log space, n and c as masses)', () => {
    const m = jointMixture(space, trials, 1, 25);
    let total = 0;
    const steps = 200;
    for (const c of ['a', 'b', 'c']) {
      for (let n = 1; n <= 6; n++) {
        for (let i = 0; i < steps; i++) {
          const x = -2 + (5 * (i + 0.5)) / steps;
          for (let j = 0; j < steps; j++) {
            const llr = Math.log(1e-3) + (Math.log(1000) * (j + 0.5)) / steps;
            // The density of lr is per unit of ln(lr) (kernels live in log space).
            total += Math.exp(jointLogDensity(m, { x, n, c, lr: Math.exp(llr) })) * (5 / steps) * (Math.log(1000) / steps);
          }
        }
      }
    }
    assert.ok(Math.abs(total - 1) < 0.01, `∫ = ${total}`);
  });
  test('draws stay in the space and are reproducible from the PRNG', () => {
    const m = jointMixture(space, trials, 1, 25);
    const draw = (seed: number) => Array.from({ length: 50 }, ((r) => () => sampleJoint(r, m))(new Rng(seed)));
    for (const a of draw(3)) {
      assert.ok((a.x as number) >= -2 && (a.x as number) < 3);
      assert.ok(Number.isInteger(a.n) && (a.n as number) >= 1 && (a.n as number) <= 6);
      assert.ok(['a', 'b', 'c'].includes(a.c as string));
      assert.ok((a.lr as number) >= 1e-3 && (a.lr as number) <= 1);
    }
    assert.deepEqual(draw(3), draw(3));
  });
  test('multivariate and one-at-a-time TPE both beat their own random start on a joint valley; conditional keys still follow their branch', () => {
    const sp = parseSpace('u=uniform(0,1); v=uniform(0,1); o=choice(p,q); w=uniform(0,1) if o=q');
    // A narrow diagonal valley: good only when u ≈ v.
    const f = (a: Record<string, unknown>) => 10 * ((a.u as number) - (a.v as number)) ** 2 + ((a.u as number) - 0.3) ** 2 + (a.o === 'q' ? ((a.w as number) - 0.5) ** 2 : 0.2);
    for (const multivariate of [true, false]) {
      const h: Observation[] = [];
      for (let t = 0; t < 60; t++) {
        const a = suggest('tpe', sp, h, 5, t, { ...TPE_DEFAULTS, multivariate });
        assert.equal('w' in a, a.o === 'q', 'w only with o=q');
        h.push({ assignment: a, loss: f(a) });
      }
      const mean = (from: number, to: number) => h.slice(from, to).reduce((s, x) => s + x.loss, 0) / (to - from);
      assert.ok(mean(40, 60) < 0.5 * mean(0, 10), `multivariate=${multivariate}: later mean ${mean(40, 60)} vs start ${mean(0, 10)}`);
    }
  });
});
