/**
 * The `search` stage end to end on tiny synthetic shards (wasm backend): the done-when checks, run through
 * the stage contract (runStageOnce, whose abort signal is what Ctrl-C triggers in `covers make`).
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger, memoryLogger } from '../util/log.ts';
import { evaluateStage, searchStage, trainStage } from '../stages/index.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';
import { readSearchBest, readTrials } from '../schemas/search.ts';
import { buildReport } from '../report/render.ts';
import { buildModel } from '../train/models.ts';
import { selectBackend } from '../train/backends.ts';
import { fileSaver } from '../train/model-io.ts';
import { resolveModelSpec } from '../schemas/model-params.ts';

let root: string;
let shardsDir: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'search-stage-'));
  shardsDir = join(root, 'template');
  writeTestShards(shardsDir, { size: 16, perClass: { train: 12, validation: 6, test: 2 }, seed: 5 });
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A fresh data directory holding the same shards and mean. */
function dataDir(name: string): string {
  const d = join(root, name);
  cpSync(shardsDir, d, { recursive: true });
  return d;
}

const SPACE = 'train.optimizer=choice(nesterov,adam); train.momentum=uniform(0.5,0.95) if train.optimizer=nesterov;'
  + 'train.learningRate=loguniform(1e-3,0.3); train.modelParams.ld0_num_units=qloguniform(4,32,4); train.mirror=choice(false,true)';

const config = (search: Record<string, unknown> = {}) =>
  resolveConfig({
    image: { size: 16 },
    train: {
      backend: 'wasm', architecture: 'ConvNet', modelParams: 'num_conv_layers=1:lc0_num_filters=4:lc0_mp=True:ld0_num_units=8',
      crop: 12, batchSize: 12, threads: 1, schedule: 'constant',
    },
    search: { trials: 8, epochs: 2, seed: 7, space: SPACE, pruner: 'asha', asha: { eta: 2, minEpochs: 1 }, ...search },
  });

const KEYS = SPACE.split(';').map((e) => e.trim().split('=')[0]!);
const trialsFile = (d: string) => join(d, 'search', 'trials.tsv');
const workTrials = (d: string) => {
  const base = join(d, '.work', 'search');
  const sub = readdirSync(base).filter((f) => existsSync(join(base, f, 'trials.tsv')));
  assert.equal(sub.length, 1, 'one recorded search');
  return join(base, sub[0]!, 'trials.tsv');
};
const lines = (p: string) => readFileSync(p, 'utf8').split('\n').filter((l) => l !== '');

test('8 trials: 8 rows, complete or pruned, distinct configurations; best.json names the best; 12 adds 4 without retraining', async () => {
  const d = dataDir('a');
  const log = memoryLogger();
  await runStageOnce(searchStage, { config: config(), dataDir: d, log });
  const rows = readTrials(trialsFile(d), KEYS);
  assert.equal(rows.length, 8);
  assert.deepEqual(rows.map((r) => r.trial), [0, 1, 2, 3, 4, 5, 6, 7]);
  for (const r of rows) assert.ok(r.status === 'complete' || r.status === 'pruned', `${r.trial}: ${r.status} ${r.message}`);
  assert.ok(rows.some((r) => r.status === 'pruned'), 'ASHA (η 2, rung at epoch 1) pruned some trial');
  for (const r of rows) assert.equal(r.epochs, r.status === 'pruned' ? 1 : 2);
  assert.equal(new Set(rows.map((r) => JSON.stringify(r.values))).size, 8, 'distinct configurations');
  for (const r of rows) assert.equal('train.momentum' in r.values, r.values['train.optimizer'] === 'nesterov');
  const best = readSearchBest(join(d, 'search', 'best.json'));
  const complete = rows.filter((r) => r.status === 'complete');
  assert.equal(best.validationLoss, Math.min(...complete.map((r) => r.validationLoss!)));
  assert.deepEqual(best.values, rows[best.trial]!.values);

  const before8 = lines(trialsFile(d));
  const log2 = memoryLogger();
  await runStageOnce(searchStage, { config: config({ trials: 12 }), dataDir: d, log: log2 });
  const after12 = lines(trialsFile(d));
  assert.equal(after12.length, 13);
  assert.deepEqual(after12.slice(0, 9), before8, 'the recorded rows are unchanged');
  assert.ok(log2.lines.some((l) => /8 trial\(s\) already recorded/.test(l)));
  assert.equal(log2.lines.filter((l) => /\] trial \d+\/12: /.test(l)).length, 4, 'only 4 trials trained');
});

test('interrupted after 2 trials, a rerun finishes the 8 without retraining the recorded ones; the same seed in a fresh directory gives the same configurations', async () => {
  const d = dataDir('b');
  const ac = new AbortController();
  let done = 0;
  // Aborts (as Ctrl-C does) once the second trial's line is logged.
  const watching = createLogger({ level: 'normal', write: (l) => { if (/trial \d+\/8: /.test(l) && ++done === 2) ac.abort(); } });
  await assert.rejects(runStageOnce(searchStage, { config: config(), dataDir: d, log: watching, signal: ac.signal }), (e: Error) => e.name === 'InterruptedError');
  assert.ok(!existsSync(trialsFile(d)), 'no output before the search is done');
  const recorded = lines(workTrials(d));
  assert.equal(recorded.length, 3, 'two trials recorded, the one in flight lost');
  const log2 = memoryLogger();
  await runStageOnce(searchStage, { config: config(), dataDir: d, log: log2 });
  const all = lines(trialsFile(d));
  assert.equal(all.length, 9);
  assert.deepEqual(all.slice(0, 3), recorded, 'recorded rows unchanged');
  assert.equal(log2.lines.filter((l) => /\] trial \d+\/8: /.test(l)).length, 6);

  const a = readTrials(trialsFile(dataDir('a')), KEYS).slice(0, 8);
  const b = readTrials(trialsFile(d), KEYS);
  assert.deepEqual(b.map((r) => r.values), a.map((r) => r.values), 'same seed, same configuration sequence');
});

test('a trial whose configuration is invalid is recorded as failed with the message, and the search goes on', async () => {
  const d = dataDir('c');
  const space = 'train.modelParams.lc0_filter_size=choice(3,0); train.learningRate=loguniform(1e-3,0.1)';
  await runStageOnce(searchStage, { config: config({ space, trials: 4, pruner: 'none', algorithm: 'random', seed: 1 }), dataDir: d, log: memoryLogger() });
  const rows = readTrials(trialsFile(d), ['train.modelParams.lc0_filter_size', 'train.learningRate']);
  assert.equal(rows.length, 4);
  for (const r of rows) {
    if (r.values['train.modelParams.lc0_filter_size'] === 0) {
      assert.equal(r.status, 'failed');
      assert.ok(r.message.length > 10, r.message);
      assert.equal(r.validationLoss, null);
    } else assert.equal(r.status, 'complete');
  }
  assert.ok(rows.some((r) => r.status === 'failed'), 'seed 1 draws the bad filter size at least once');
});

test('a bad search.space fails with the entry named, before any training', async () => {
  await assert.rejects(
    runStageOnce(searchStage, { config: config({ space: 'train.epochs=quniform(1,5,1)' }), dataDir: dataDir('d'), log: memoryLogger() }),
    (e: Error) => e.name === 'UserError' && /train\.epochs cannot be searched/.test(e.message),
  );
  await assert.rejects(
    runStageOnce(searchStage, { config: config({ space: 'train.learningRat=uniform(0,1)' }), dataDir: dataDir('e'), log: memoryLogger() }),
    (e: Error) => e.name === 'UserError' && /train\.learningRat is not a train setting/.test(e.message),
  );
});

test('train.fromSearch trains the best configuration of the search, and evaluate scores it', async () => {
  const d = join(root, 'a'); // searched by the first test
  const best = readSearchBest(join(d, 'search', 'best.json'));
  const c = config();
  const fromSearch = { ...c, train: { ...c.train, fromSearch: true, epochs: 1, run: 'searched' } };
  const log = memoryLogger();
  await runStageOnce(trainStage, { config: fromSearch, dataDir: d, log });
  assert.ok(log.lines.some((l) => l.includes(`training the search's best configuration (trial ${best.trial + 1}`)));
  const record = JSON.parse(readFileSync(join(d, 'models', 'searched', 'config.json'), 'utf8')) as { config: { train: Record<string, unknown> } };
  assert.equal(record.config.train.learningRate, best.values['train.learningRate']);
  assert.equal(record.config.train.optimizer, best.values['train.optimizer']);
  assert.ok(String(record.config.train.modelParams).includes(`ld0_num_units=${best.values['train.modelParams.ld0_num_units']}`));
  await runStageOnce(evaluateStage, { config: fromSearch, dataDir: d, log });
  assert.ok(existsSync(join(d, 'eval', 'metrics.json')));
  // The report's search section: progress chart, one scatter per searched key, pruned trials visible.
  const page = await buildReport({ dataDir: d, config: fromSearch });
  const sectionHtml = /<section id="search"[^>]*>([\s\S]*?)<\/section>/.exec(page)?.[1] ?? '';
  assert.match(page, /<section id="search" class="section" data-state="ok">/);
  assert.match(sectionHtml, /12 trials on the validation split: \d+ complete, \d+ pruned, 0 failed/); // the first test extended it to 12
  assert.match(sectionHtml, /Best validation accuracy so far/);
  assert.match(sectionHtml, /<title>best so far, trial 12: /);
  for (const k of KEYS) assert.ok(sectionHtml.includes(`${k} against validation accuracy`), k);
  assert.match(sectionHtml, /<title>trial \d+ \(pruned, 1 epochs\)/);
  const plain = await buildReport({ dataDir: d, config: c });
  assert.ok(!plain.includes('id="search"'), 'without train.fromSearch the report has no search section');
  await assert.rejects(
    runStageOnce(trainStage, { config: fromSearch, dataDir: dataDir('f'), log: memoryLogger() }),
    (e: Error) => e.name === 'UserError' && /search\/best\.json is missing: run `covers make search` first/.test(e.message),
  );
});

test('search.parallel=2 runs trials on two worker threads and records each once', async () => {
  const d = dataDir('g');
  const log = memoryLogger();
  await runStageOnce(searchStage, { config: config({ trials: 4, parallel: 2 }), dataDir: d, log });
  assert.ok(log.lines.some((l) => /2 trials at once, 1 thread\(s\) each/.test(l)));
  const rows = readTrials(trialsFile(d), KEYS);
  assert.deepEqual(rows.map((r) => r.trial), [0, 1, 2, 3]);
  for (const r of rows) assert.ok(r.status === 'complete' || r.status === 'pruned', `${r.trial}: ${r.status} ${r.message}`);
  assert.equal(new Set(rows.map((r) => JSON.stringify(r.values))).size, 4);
});

test("an empty search.space searches the study's space for the architecture", async () => {
  const d = dataDir('h');
  const log = memoryLogger();
  await runStageOnce(searchStage, { config: config({ space: '', trials: 2, epochs: 1, pruner: 'none' }), dataDir: d, log });
  const keys = ['train.optimizer', 'train.momentum', 'train.adam.beta1', 'train.adam.beta2', 'train.learningRate', 'train.mirror',
    'train.modelParams.lc0_num_filters', 'train.modelParams.ld0_dropout', 'train.modelParams.ld0_num_units'];
  const rows = readTrials(trialsFile(d), keys);
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.equal(r.status, 'complete', r.message);
    const lr = r.values['train.learningRate'] as number;
    assert.ok(lr >= Math.exp(-12) && lr <= Math.exp(-5), String(lr));
    assert.equal('train.adam.beta2' in r.values, r.values['train.optimizer'] === 'adam');
  }
});

test('train.init=pretrained: the trials fine-tune the imported network (on worker threads too), the default space leaves out the architecture, and train.fromSearch fine-tunes the best', async () => {
  const d = dataDir('pretrained');
  await selectBackend('wasm');
  // The "pretrained" network: a seeded ConvNet at 12 px saved as a tfjs layers model.json (what fine-tuning imports).
  const built = buildModel(resolveModelSpec('ConvNet', 'num_conv_layers=1:lc0_num_filters=4:lc0_mp=True:ld0_num_units=8'), 12, 3, 9);
  const netDir = join(root, 'net');
  await built.model.save(fileSaver(netDir));
  built.model.dispose();
  const file = join(netDir, 'model.json');
  // train.crop stays at its default (224 > image.size 16): fine-tuning crops at the network's input size (12).
  const c = resolveConfig({
    image: { size: 16 }, pretrained: { model: file, input: 'caffe', channelOrder: 'rgb', mean: [0, 0, 0] },
    train: { init: 'pretrained', freeze: 'body', backend: 'wasm', batchSize: 12, threads: 1, schedule: 'constant' },
    search: { trials: 3, epochs: 1, seed: 7, space: '', pruner: 'none', parallel: 2 },
  });
  const log = memoryLogger();
  await runStageOnce(searchStage, { config: c, dataDir: d, log });
  assert.ok(log.lines.some((l) => l.includes(`trials fine-tune ${file} (12×12 input, train.freeze body)`)), log.lines.join('\n'));
  const keys = ['train.optimizer', 'train.momentum', 'train.adam.beta1', 'train.adam.beta2', 'train.learningRate', 'train.mirror'];
  const rows = readTrials(trialsFile(d), keys);
  assert.equal(rows.length, 3);
  for (const r of rows) assert.equal(r.status, 'complete', r.message);
  assert.ok(!readFileSync(trialsFile(d), 'utf8').includes('modelParams'), 'no architecture keys searched');
  assert.equal(log.lines.filter((l) => /fine-tuning .*model\.json: 12×12 input, \d+ imported layer\(s\) frozen/.test(l)).length, 3, log.lines.join('\n'));
  const fromSearch = { ...c, train: { ...c.train, fromSearch: true, epochs: 1, run: 'searched' } };
  const trainLog = memoryLogger();
  await runStageOnce(trainStage, { config: fromSearch, dataDir: d, log: trainLog });
  const record = JSON.parse(readFileSync(join(d, 'models', 'searched', 'config.json'), 'utf8')) as { init: string; crop: number };
  assert.equal(record.init, 'pretrained');
  assert.equal(record.crop, 12);
});
