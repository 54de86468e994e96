/**
 * The experiment protocol through the stages, on tiny synthetic shards: `train.repeats` (each seed's model, the
 * per-seed evaluation with mean ± std, `train.seed` giving the same model in another process), both baselines with
 * repeats, and the new configuration keys.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { applyOverrides, ConfigError, resolveConfig } from '../pipeline/config.ts';
import { defaultConfig } from '../pipeline/config-core.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { memoryLogger } from '../util/log.ts';
import { EvalMetricsSchema } from '../schemas/metrics.ts';
import { baselineStage, evaluateStage, trainStage } from '../stages/index.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'protocol-'));
  writeTestShards(join(dir, 'a'), { size: 16, perClass: { train: 20, validation: 6, test: 8 }, seed: 5 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const config = (train: Record<string, unknown> = {}, baseline: Record<string, unknown> = {}) =>
  resolveConfig({
    image: { size: 16 },
    train: {
      backend: 'wasm', architecture: 'ConvNet', modelParams: 'num_conv_layers=1:lc0_num_filters=6:lc0_mp=True:ld0_num_units=12',
      crop: 12, epochs: 2, batchSize: 8, snapshotEvery: 1, run: 'rep', ...train,
    },
    eval: { crops: 1 },
    baseline: { trees: 5, pixels: 8, ...baseline },
  });

test('config: the protocol keys, their defaults and errors', () => {
  const d = defaultConfig();
  assert.equal(d.train.schedule, 'plateau');
  assert.deepEqual(d.train.plateau, { factor: 0.1, patience: 5, minDelta: 0.001, cooldown: 2, minLearningRate: 1e-6 });
  assert.deepEqual([d.train.weightDecay, d.train.repeats, d.train.seed, d.baseline.model], [0, 1, null, 'forest']);
  const c = resolveConfig(applyOverrides({}, ['train.seed=3', 'train.schedule=study', 'train.plateau.factor=0.5', 'baseline.model=both']));
  assert.deepEqual([c.train.seed, c.train.schedule, c.train.plateau.factor, c.baseline.model], [3, 'study', 0.5, 'both']);
  assert.throws(() => resolveConfig({ train: { schedule: 'step' } }), (e: Error) => e instanceof ConfigError && /train\.schedule = "step": expected one of "plateau"\|"cosine"\|"study"\|"constant"/.test(e.message));
  assert.throws(() => resolveConfig({ train: { plateau: { factor: 1 } } }), /train\.plateau\.factor = 1/);
  assert.throws(() => resolveConfig({ baseline: { model: 'svm' } }), /baseline\.model = "svm"/);
});

test('train.repeats trains one model per seed on one split; evaluate reports each and mean ± std; train.seed gives the same model alone', async () => {
  const a = join(dir, 'a');
  cpSync(a, join(dir, 'b'), { recursive: true });
  const log = memoryLogger();
  await runStageOnce(trainStage, { config: config({ repeats: 2 }), dataDir: a, log });
  const m = join(a, 'models', 'rep');
  for (const f of ['model.json', 'weights.bin', 'metrics.jsonl', 'seed-1/model.json', 'seed-1/weights.bin', 'seed-1/config.json', 'seed-1/metrics.jsonl']) assert.ok(existsSync(join(m, f)), f);
  const rec = JSON.parse(readFileSync(join(m, 'config.json'), 'utf8')) as { repeats: { seed: number; dir: string }[] };
  assert.deepEqual(rec.repeats.map((r) => [r.seed, r.dir]), [[0, '.'], [1, 'seed-1']]);
  assert.ok(log.lines.some((l) => /seed 1, model 2 of 2/.test(l)));
  assert.ok(!readFileSync(join(m, 'weights.bin')).equals(readFileSync(join(m, 'seed-1', 'weights.bin'))), 'the seeds differ');
  await runStageOnce(evaluateStage, { config: config({ repeats: 2 }), dataDir: a, log });
  const ev = EvalMetricsSchema.parse(JSON.parse(readFileSync(join(a, 'eval', 'metrics.json'), 'utf8')));
  assert.deepEqual(ev.repeats!.seeds.map((s) => s.seed), [0, 1]);
  assert.equal(ev.repeats!.seeds[0]!.accuracy, ev.accuracy, 'the top-level figures are the first seed\'s');
  const accs = ev.repeats!.seeds.map((s) => s.accuracy);
  assert.ok(Math.abs(ev.repeats!.mean - (accs[0]! + accs[1]!) / 2) < 1e-12);
  assert.ok(Math.abs(ev.repeats!.std - Math.abs(accs[0]! - accs[1]!) / Math.SQRT2) < 1e-12, 'sample standard deviation');
  // Seed 1 alone, in another data directory (another process), is the same model as repeat 2 above.
  await runStageOnce(trainStage, { config: config({ seed: 1 }), dataDir: join(dir, 'b'), log: memoryLogger() });
  assert.ok(readFileSync(join(dir, 'b', 'models', 'rep', 'weights.bin')).equals(readFileSync(join(m, 'seed-1', 'weights.bin'))));
});

test('baseline.model = both with repeats: the forest and the linear SVM, each seed and mean ± std', async () => {
  const a = join(dir, 'a');
  const log = memoryLogger();
  await runStageOnce(baselineStage, { config: config({ repeats: 2 }, { model: 'both' }), dataDir: a, log });
  const forest = EvalMetricsSchema.parse(JSON.parse(readFileSync(join(a, 'eval', 'baseline.json'), 'utf8')));
  const svm = EvalMetricsSchema.parse(JSON.parse(readFileSync(join(a, 'eval', 'baseline-linear-svm.json'), 'utf8')));
  assert.equal(forest.model, 'random-forest');
  assert.equal(svm.model, 'linear-svm');
  for (const e of [forest, svm]) {
    assert.deepEqual(e.repeats!.seeds.map((s) => s.seed), [0, 1]);
    assert.equal(e.n, 24);
  }
  // The synthetic classes differ in colour: a linear model on 8×8 grayscale pixels separates them well.
  assert.ok(svm.accuracy > 0.6, `linear SVM accuracy ${svm.accuracy}`);
  assert.equal(svm.details.scaling, 'min-max to [0, 1] per feature (training split)');
  assert.ok(log.lines.some((l) => /linear-svm over 2 seeds: .*% ± .*%/.test(l)));
});
