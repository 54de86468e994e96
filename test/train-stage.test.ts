/** Stages `train` and `evaluate` end to end on tiny synthetic shards (wasm backend). */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { memoryLogger } from '../util/log.ts';
import { EpochMetricsSchema, EvalMetricsSchema } from '../schemas/metrics.ts';
import { evaluateStage, trainStage } from '../stages/index.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'train-stage-'));
  writeTestShards(dir, { size: 16, perClass: { train: 20, validation: 6, test: 8 }, seed: 5 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const config = (over: Record<string, unknown> = {}) =>
  resolveConfig({
    image: { size: 16 },
    train: {
      backend: 'wasm', architecture: 'ConvNet', modelParams: 'num_conv_layers=1:lc0_num_filters=6:lc0_mp=True:ld0_num_units=12',
      crop: 12, epochs: 3, batchSize: 8, snapshotEvery: 2, run: 'tiny', ...over,
    },
    eval: { crops: 10 },
  });

test('train writes the model, config and per-epoch metrics; evaluate scores the test split with 10 crops', async () => {
  const log = memoryLogger();
  await runStageOnce(trainStage, { config: config(), dataDir: dir, log });
  // One final progress line, after the last epoch's line.
  assert.deepEqual(log.lines.filter((l) => /\bepochs\b.*: \d+\/\d+ \(/.test(l)).map((l) => l.replace(/ \(.*/, '')), ['[train] epochs: 3/3']);
  const m = join(dir, 'models', 'tiny');
  for (const f of ['model.json', 'weights.bin', 'config.json', 'metrics.jsonl']) assert.ok(existsSync(join(m, f)), f);
  const lines = readFileSync(join(m, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => EpochMetricsSchema.parse(JSON.parse(l)));
  assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3]);
  assert.ok(log.lines.some((l) => /backend wasm/.test(l)), 'logs the backend');
  // The logged rate is that of the training steps alone, and the line says so (bench/stage-train.bench.ts parses it).
  const epochLines = log.lines.filter((l) => /epoch \d+\/3: /.test(l));
  assert.equal(epochLines.length, 3);
  for (const [i, l] of epochLines.entries()) {
    const m = /, ([\d.]+) images\/s \(([\d.]+) s of training steps; validation and snapshots not counted\)$/.exec(l);
    assert.ok(m, l);
    assert.ok(Math.abs(lines[i]!.imagesPerSecond - Number(m[1])) <= Math.max(0.5, Number(m[1]) * 0.01), 'metrics.jsonl holds the logged rate');
    assert.ok(lines[i]!.seconds >= Number(m[2]) - 0.05, 'the epoch\'s seconds include its training steps');
  }
  assert.ok(log.lines.some((l) => l.includes('ConvNet (train.modelParams num_conv_layers=1:lc0_num_filters=6:lc0_mp=True:ld0_num_units=12) on ')), 'names the model parameters that override the architecture');
  await runStageOnce(evaluateStage, { config: config(), dataDir: dir, log });
  const inference = log.lines.filter((l) => /inference: /.test(l));
  assert.equal(inference.length, 1);
  assert.match(inference[0]!, /inference: 24 test covers × 10 crop\(s\) in [\d.]+ s, [\d.]+ crop images\/s \(loading the model and starting threads not counted\)$/);
  const ev = EvalMetricsSchema.parse(JSON.parse(readFileSync(join(dir, 'eval', 'metrics.json'), 'utf8')));
  assert.equal(ev.n, 24);
  assert.equal(ev.crops, 10);
  assert.equal(ev.backend, 'wasm');
  assert.deepEqual(ev.labels, ['ambient', 'metal', 'jazz']);
  assert.equal(ev.confusionMatrix.flat().reduce((a, b) => a + b, 0), 24);
  assert.deepEqual(ev.confusionMatrix.map((r) => r.reduce((a, b) => a + b, 0)), [8, 8, 8]);
  assert.ok(ev.accuracy > 0.6, `test accuracy ${ev.accuracy} well above chance 1/3`);
  assert.ok(ev.accuracyInterval95[0] <= ev.accuracy && ev.accuracy <= ev.accuracyInterval95[1]);
});

test('resuming a finished run trains nothing and shows no epoch progress', async () => {
  const log = memoryLogger();
  await runStageOnce(trainStage, { config: config(), dataDir: dir, log });
  assert.ok(log.lines.some((l) => /resumed from .* after epoch 3/.test(l)));
  assert.ok(!log.lines.some((l) => /epochs?[ :]/.test(l) && /\d+\/3/.test(l)), log.lines.join('\n'));
  assert.ok(log.lines.some((l) => /training stopped \(epochs\) after 3 epochs/.test(l)));
});

test('an unknown model parameter fails the stage with the valid keys listed', async () => {
  // Config validation rejects it first (test/model-config.test.ts); the stage checks too, for configs built by hand.
  assert.throws(() => config({ modelParams: 'num_conv_layers=1:lc0_num_filters=4:lc0_flavour=3' }), /train\.modelParams = .*valid keys/);
  const c = config();
  await assert.rejects(
    runStageOnce(trainStage, { config: { ...c, train: { ...c.train, modelParams: 'num_conv_layers=1:lc0_num_filters=4:lc0_flavour=3' } }, dataDir: dir, log: memoryLogger() }),
    (e: Error) => e.name === 'UserError' && /unknown key lc0_flavour/.test(e.message) && /lcI_num_filters/.test(e.message),
  );
});
