/** Learning-rate schedules (train/schedule.ts): pure decisions on validation metrics, then the training loop. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Rng } from '../util/rng.ts';
import { selectBackend } from '../train/backends.ts';
import { resolveModelSpec } from '../schemas/model-params.ts';
import {
  afterEpoch, beforeEpoch, DEFAULT_COSINE, DEFAULT_PLATEAU, epochLearningRate, initialScheduleState,
  type ScheduleDecision, type ScheduleName, type ScheduleOptions, type ValidationMetrics,
} from '../train/schedule.ts';
import { readMean } from '../schemas/mean.ts';
import { describeKeptCheckpoint, keptCheckpoint, type EpochMetrics } from '../schemas/metrics.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit, type SplitData } from '../schemas/shards/read.ts';
import { predictSplit } from '../train/predict.ts';
import { trainModel, type TrainOptions } from '../train/train-loop.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

function opts(name: ScheduleName, over: Partial<ScheduleOptions> = {}): ScheduleOptions {
  return { name, learningRate: 0.001, epochs: 40, patience: 3, plateau: { ...DEFAULT_PLATEAU }, cosine: { ...DEFAULT_COSINE }, ...over };
}

/** Runs a schedule over a series of validation metrics; returns each epoch's learning rate and decision. */
function run(o: ScheduleOptions, series: readonly ValidationMetrics[]) {
  const s = initialScheduleState(o);
  const rates: number[] = [];
  const decisions: ScheduleDecision[] = [];
  for (const [i, v] of series.entries()) {
    beforeEpoch(o, s, i + 1);
    rates.push(s.learningRate);
    const d = afterEpoch(o, s, i + 1, v);
    decisions.push(d);
    if (d.stop) break;
  }
  return { rates, decisions, state: s };
}

/**
 * A small validation set of a model that keeps learning: the accuracy jumps around 30% by ±9 points (a few images of
 * 91) without a trend, the loss falls slowly (0.01 nats per epoch) under noise of ±0.015.
 */
function noisyButLearning(epochs: number, seed: number): ValidationMetrics[] {
  const rng = new Rng(seed);
  return Array.from({ length: epochs }, (_, i) => ({
    accuracy: Math.round((0.3 + (rng.next() - 0.5) * 0.18) * 91) / 91,
    loss: 1.9 - 0.01 * i + (rng.next() - 0.5) * 0.03,
  }));
}

test('plateau does not fire on a noisy validation accuracy that never trends down (the study does)', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const series = noisyButLearning(40, seed);
    const plateau = run(opts('plateau'), series);
    assert.ok(plateau.rates.every((r) => r === 0.001), `seed ${seed}: plateau changed the learning rate: ${plateau.rates.join(' ')}`);
    assert.ok(plateau.decisions.every((d) => d.learningRate === null && !d.restoreBest && d.stop === null));
    // The same series makes the study's rule divide the learning rate and roll the weights back, again and again.
    const study = run(opts('study'), series);
    const drops = study.decisions.filter((d) => d.learningRate !== null);
    assert.ok(drops.length >= 3 && drops.every((d) => d.restoreBest), `seed ${seed}: study drops ${drops.length}`);
  }
});

test('plateau: drops by factor after patience epochs without an improvement above minDelta, then cools down; never below minLearningRate, never restores', () => {
  const o = opts('plateau', { plateau: { factor: 0.1, patience: 2, minDelta: 0.01, cooldown: 1, minLearningRate: 2e-6 } });
  // Improvements smaller than minDelta (0.005 per epoch) do not count.
  const losses = [1.0, 0.9, 0.895, 0.89, 0.885, 0.88, 0.875, 0.87, 0.865, 0.86, 0.855, 0.85, 0.845];
  const r = run(o, losses.map((loss) => ({ loss, accuracy: 0.5 })));
  // Epoch 2 improves (0.9 < 1.0 − 0.01); epochs 3, 4 do not → drop after epoch 4; epoch 5 is cooldown; 6, 7 → drop
  // after 7 (1e-5); cooldown 8; 9, 10 → 1e-6 is below the minimum, so 2e-6; then no further change.
  assert.deepEqual(r.rates, [0.001, 0.001, 0.001, 0.001, 0.0001, 0.0001, 0.0001, 0.00001, 0.00001, 0.00001, 0.000002, 0.000002, 0.000002]);
  const events = r.decisions.map((d, i) => (d.reason ? i + 1 : 0)).filter(Boolean);
  assert.deepEqual(events, [4, 7, 10]);
  assert.match(r.decisions[3]!.reason!, /^plateau: validation loss not below 0\.9000 − 0\.01 for 2 epochs: learning rate 0\.001 → 0\.0001$/);
  assert.ok(r.decisions.every((d) => !d.restoreBest && d.stop === null));
  // The best checkpoint still follows the lowest loss (the last epoch here).
  assert.equal(r.state.bestEpoch, losses.length);
});

test('best checkpoint (all but study): lowest validation loss, ties broken by the higher accuracy', () => {
  for (const name of ['plateau', 'cosine', 'constant'] as const) {
    const r = run(opts(name), [
      { loss: 1.5, accuracy: 0.2 }, { loss: 1.2, accuracy: 0.3 }, { loss: 1.3, accuracy: 0.6 }, { loss: 1.2, accuracy: 0.35 }, { loss: 1.2, accuracy: 0.3 },
    ]);
    assert.deepEqual(r.decisions.map((d) => d.newBest), [true, true, false, true, false], name);
    assert.equal(r.state.bestEpoch, 4);
    assert.equal(r.state.bestLoss, 1.2);
    assert.equal(r.state.bestAccuracy, 0.35);
  }
});

test('the report and the log name the checkpoint the schedule keeps (keptCheckpoint agrees with afterEpoch)', () => {
  const series: ValidationMetrics[] = [
    { loss: 1.5, accuracy: 0.2 }, { loss: 1.2, accuracy: 0.3 }, { loss: 1.3, accuracy: 0.6 }, { loss: 1.2, accuracy: 0.35 }, { loss: 1.25, accuracy: 0.6 },
  ];
  const records: EpochMetrics[] = series.map((v, i) => ({
    epoch: i + 1, trainLoss: 1, trainAccuracy: 0.5, validationLoss: v.loss, validationAccuracy: v.accuracy, learningRate: 0.01, seconds: 1, imagesPerSecond: 1,
  }));
  for (const name of ['plateau', 'cosine', 'constant', 'study'] as const) {
    const r = run(opts(name, { patience: 10 }), series);
    const k = keptCheckpoint(records, name)!;
    assert.equal(k.epoch, r.state.bestEpoch, name);
  }
  assert.equal(describeKeptCheckpoint(keptCheckpoint(records, 'plateau')), 'epoch 4, the lowest validation loss (validation loss 1.2000; validation accuracy 35.0%)');
  assert.equal(describeKeptCheckpoint(keptCheckpoint(records, 'study')), 'epoch 3, the highest validation accuracy (validation accuracy 60.0%; validation loss 1.3000)');
  assert.equal(describeKeptCheckpoint(keptCheckpoint(records.map((e) => ({ ...e, validationLoss: null, validationAccuracy: null })), 'plateau')), "the last epoch's weights (no validation split)");
});

test('cosine: linear warm-up, then a half cosine to the minimum; logged as changes', () => {
  const o = opts('cosine', { learningRate: 0.1, epochs: 8, cosine: { warmupEpochs: 3, minLearningRate: 0.01 } });
  const rates = Array.from({ length: 8 }, (_, i) => epochLearningRate(o, i + 1)!);
  const want = [0.1 / 3, 0.2 / 3, 0.1, ...[0, 1, 2, 3, 4].map((k) => 0.01 + 0.09 * (1 + Math.cos((Math.PI * k) / 5)) / 2)];
  rates.forEach((r, i) => assert.ok(Math.abs(r - want[i]!) < 1e-12, `epoch ${i + 1}: ${r} vs ${want[i]}`));
  const s = initialScheduleState(o);
  assert.ok(Math.abs(s.learningRate - 0.1 / 3) < 1e-12);
  assert.equal(beforeEpoch(o, s, 1), null);
  assert.match(beforeEpoch(o, s, 2)!.reason, /warm-up, epoch 2 of 3/);
  beforeEpoch(o, s, 3);
  assert.match(beforeEpoch(o, s, 5)!.reason, /cosine schedule: epoch 5 of 8/);
  // Validation metrics never change the cosine's rate.
  assert.equal(afterEpoch(o, s, 5, { loss: 9, accuracy: 0 }).learningRate, null);
});

test('constant: the learning rate never changes', () => {
  const r = run(opts('constant'), noisyButLearning(20, 9).map((v, i) => ({ ...v, loss: v.loss + i * 0.1 })));
  assert.ok(r.rates.every((x) => x === 0.001));
  assert.ok(r.decisions.every((d) => d.reason === null));
});

test('study: the 2015 rule, epoch by epoch (÷10 and the best weights back after `patience` epochs without a better accuracy; stop below 1e-10)', () => {
  const o = opts('study', { learningRate: 0.01, patience: 2 });
  const acc = [0.2, 0.3, 0.25, 0.3, 0.28, 0.35, 0.1];
  const r = run(o, acc.map((accuracy) => ({ accuracy, loss: 1 })));
  // e1, e2 better; e3 (1), e4 (2: equal is not better) → ÷10 and epoch 2 restored; e5 (1); e6 better; e7 (1).
  assert.deepEqual(r.decisions.map((d) => d.newBest), [true, true, false, false, false, true, false]);
  assert.deepEqual(r.rates, [0.01, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001]);
  assert.equal(r.decisions[3]!.reason, 'no better validation accuracy for 2 epochs: learning rate → 0.001, weights of epoch 2 restored');
  assert.ok(r.decisions[3]!.restoreBest);
  assert.equal(r.state.bestEpoch, 6);
  // Stops once the rate falls below 1e-10: 0.01 → 1e-11 takes 9 drops of 2 epochs each after the first epoch.
  const stop = run(o, Array.from({ length: 30 }, () => ({ accuracy: 0.5, loss: 1 })));
  const at = stop.decisions.findIndex((d) => d.stop !== null);
  assert.equal(at + 1, 19);
  assert.equal(stop.decisions[at]!.stop, 'learning rate below 1e-10');
  assert.equal(stop.state.learningRate, 1e-11);
});

test('no validation split: nothing is monitored, the rate stays (plateau, study)', () => {
  for (const name of ['plateau', 'study'] as const) {
    const o = opts(name);
    const s = initialScheduleState(o);
    for (let e = 1; e <= 10; e++) assert.deepEqual(afterEpoch(o, s, e, null), { newBest: false, learningRate: null, reason: null, restoreBest: false, stop: null });
    assert.equal(s.learningRate, 0.001);
  }
});

// ---- the training loop ----

let dir: string;
let train: SplitData;
let validation: SplitData;
let mean: Float32Array;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'schedule-test-'));
  // Noisy images (noise 120), as the golden run below was recorded with.
  writeTestShards(dir, { size: 16, perClass: { train: 24, validation: 8, test: 8 }, seed: 11, noise: 120 });
  train = await readSplit(join(dir, splitDir('train')));
  validation = await readSplit(join(dir, splitDir('validation')));
  mean = readMean(join(dir, 'shards', 'mean.arrow'), 16);
  await selectBackend('wasm');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function trainOptions(over: Partial<TrainOptions>): TrainOptions {
  return {
    train, validation, mean,
    spec: resolveModelSpec('ConvNet', 'num_conv_layers=2:lc0_num_filters=8:lc0_filter_size=3:lc0_mp=True:lc1_num_filters=8:lc1_stride=2:ld0_num_units=16'),
    crop: 12, mirror: true, optimizer: 'nesterov', learningRate: 0.05, momentum: 0.9, adam: { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    batchSize: 8, epochs: 8, schedule: 'study', patience: 1, snapshotEvery: 100, seed: 5, snapshotDir: join(dir, `snap-${Math.random()}`), log: () => {}, workerLoader: false,
    ...over,
  };
}

interface Golden {
  metrics: { epoch: number; trainLoss: number; trainAccuracy: number; validationLoss: number; validationAccuracy: number; learningRate: number }[];
  bestEpoch: number;
  bestAccuracy: number;
  stopReason: string;
  weightSum: number;
  weightAbsSum: number;
  scheduleLog: string[];
}

test('study reproduces the training loop as it was before train.schedule (golden run recorded at commit 4481278)', async () => {
  const golden = JSON.parse(readFileSync(new URL('./fixtures/study-schedule-golden.json', import.meta.url), 'utf8')) as Golden;
  const logs: string[] = [];
  const r = await trainModel(trainOptions({ schedule: 'study', log: (l) => logs.push(l) }));
  // The learning rate of every epoch, the drop messages (with the epoch whose weights came back), the best epoch and
  // the stop reason are exactly the recorded ones; the numbers agree to float32 rounding (a faster kernel may sum in
  // another order).
  assert.deepEqual(r.metrics.map((m) => m.learningRate), golden.metrics.map((m) => m.learningRate));
  assert.deepEqual(logs.filter((l) => l.startsWith('no better')), golden.scheduleLog);
  assert.equal(r.state.bestEpoch, golden.bestEpoch);
  assert.equal(r.state.bestAccuracy, golden.bestAccuracy);
  assert.equal(r.stopReason, golden.stopReason);
  r.metrics.forEach((m, i) => {
    const g = golden.metrics[i]!;
    assert.equal(m.validationAccuracy, g.validationAccuracy, `epoch ${m.epoch} validation accuracy`);
    assert.ok(Math.abs(m.trainLoss - g.trainLoss) < 1e-3 && Math.abs(m.validationLoss! - g.validationLoss) < 1e-3, `epoch ${m.epoch}: losses ${m.trainLoss}, ${m.validationLoss} vs ${g.trainLoss}, ${g.validationLoss}`);
  });
  const w = r.model.getWeights().flatMap((t) => Array.from(t.dataSync()));
  const sum = w.reduce((a, b) => a + b, 0);
  const abs = w.reduce((a, b) => a + Math.abs(b), 0);
  assert.ok(Math.abs(sum - golden.weightSum) < 1e-2 && Math.abs(abs - golden.weightAbsSum) < 1e-2, `weights ${sum}, ${abs} vs ${golden.weightSum}, ${golden.weightAbsSum}`);
  r.model.dispose();
});

test('plateau in the loop: never rolls back mid-run, logs each change, restores the best checkpoint (lowest validation loss) at the end', async () => {
  const logs: string[] = [];
  // Seed 6: the validation loss is lowest at epoch 6 of 8, and the rate drops after epoch 7.
  const r = await trainModel(trainOptions({ seed: 6, schedule: 'plateau', plateau: { factor: 0.5, patience: 1, minDelta: 0, cooldown: 0, minLearningRate: 0 }, log: (l) => logs.push(l) }));
  const changes = r.metrics.filter((m) => m.scheduleEvent);
  assert.ok(changes.length >= 1, 'with patience 1 the rate drops at least once');
  assert.deepEqual(logs.filter((l) => l.startsWith('plateau:')), changes.map((m) => m.scheduleEvent));
  assert.ok(!logs.some((l) => /restored/.test(l)));
  // Each drop halves the rate from the next epoch on.
  for (const m of changes) if (m.epoch < r.metrics.length) assert.equal(r.metrics[m.epoch]!.learningRate, m.learningRate / 2);
  const bestLoss = Math.min(...r.metrics.map((m) => m.validationLoss!));
  assert.equal(r.metrics[r.state.bestEpoch - 1]!.validationLoss, bestLoss);
  assert.ok(r.state.bestEpoch < r.metrics.length, 'this run\'s best epoch is not its last, so the restore is visible');
  // The model returned is the best epoch's: its validation cross-entropy (centre crops) is that epoch's.
  const { probabilities } = await predictSplit(r.model, validation, 12, mean, 1, 8);
  const k = validation.labelNames.length;
  let ce = 0;
  for (let i = 0; i < validation.n; i++) ce -= Math.log(probabilities[i * k + validation.labels[i]!]!);
  assert.ok(Math.abs(ce / validation.n - bestLoss) < 1e-4, `the kept model's validation loss ${ce / validation.n} is the best epoch's ${bestLoss}`);
  r.model.dispose();
});

test('a schedule change reaches the optimizer, Adam and Nesterov alike: at rate 0 the weights stop moving', async () => {
  for (const optimizer of ['adam', 'nesterov'] as const) {
    // minDelta 10: no epoch ever improves, so with patience 1 the rate drops after every epoch but the first; factor
    // 0 makes the first drop go to 0.
    const p = await trainModel(trainOptions({ optimizer, learningRate: 0.01, epochs: 5, schedule: 'plateau', plateau: { factor: 0, patience: 1, minDelta: 10, cooldown: 0, minLearningRate: 0 }, seed: 7 }));
    assert.deepEqual(p.metrics.map((m) => m.learningRate), [0.01, 0.01, 0, 0, 0], optimizer);
    // Epochs 3–5 train at 0: Adam's and Nesterov's steps are 0 whatever their moments, so the validation loss (centre
    // crops, no dropout) stays exactly that of the weights after epoch 2.
    const v = p.metrics.map((m) => m.validationLoss);
    assert.notEqual(v[1], v[0]);
    assert.equal(v[3], v[2], optimizer);
    assert.equal(v[4], v[2], optimizer);
    p.model.dispose();
  }
});
