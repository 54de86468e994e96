/**
 * `covers make search` and `covers make evaluate --set train.fromSearch=true` as a user runs them: child processes of
 * bin/covers.js on a small simulator dataset (discover … mean made once, then copied per scenario). A real SIGINT
 * after the second trial, then a rerun that finishes the budget without retraining the recorded trials; and
 * `make evaluate` with `train.fromSearch`, which now runs the search, trains its best configuration and scores it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readLock } from '../pipeline/lock.ts';
import { readSearchBest, readTrials } from '../schemas/search.ts';
import { startSimulator, type Simulator } from '../simulator/server.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'covers.js');
const SPACE = 'train.optimizer=choice(nesterov,adam); train.learningRate=loguniform(1e-3,0.3); train.modelParams.ld0_num_units=qloguniform(4,32,4)';
const KEYS = ['train.optimizer', 'train.learningRate', 'train.modelParams.ld0_num_units'];

let sim: Simulator;
let root: string;
let base: string;

/** The same `--set`s for every run (so the stages made once stay fresh), plus `extra`. */
const args = (dir: string, targets: string[], extra: string[] = []): string[] => [
  BIN, 'make', ...targets, '--data-dir', dir,
  ...[
    'genres=jazz,metal', 'perGenre=15', 'crawl.pageSize=10', 'crawl.maxRequestsPerMinute=60000', 'crawl.oversample=2',
    `bandcamp.origin=${sim.origin}`, `bandcamp.imageOrigin=${sim.imageOrigin}`, 'splits.train=0.6', 'splits.validation=0.3', 'splits.test=0.1',
    'image.size=16', 'train.backend=wasm', 'train.architecture=ConvNet', 'train.threads=1', 'train.batchSize=8', 'train.crop=12',
    'train.modelParams=num_conv_layers=1:lc0_num_filters=4:lc0_mp=True:ld0_num_units=8', 'train.schedule=constant', 'train.epochs=1',
    'eval.crops=1', 'search.epochs=2', 'search.seed=7', `search.space=${SPACE}`, 'search.asha.eta=2', 'search.asha.minEpochs=1',
    ...extra,
  ].flatMap((s) => ['--set', s]),
];

/** Runs the CLI to its end. @returns exit code and output. */
function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((r) => child.on('exit', (code) => r({ code, stdout, stderr })));
}

/** The search's work trials file (one recorded search per data directory), or null before the first trial. */
function workTrials(dir: string): string | null {
  const w = join(dir, '.work', 'search');
  if (!existsSync(w)) return null;
  const sub = readdirSync(w).filter((f) => existsSync(join(w, f, 'trials.tsv')));
  return sub.length ? join(w, sub[0]!, 'trials.tsv') : null;
}

before(async () => {
  sim = await startSimulator({ genres: ['jazz', 'metal'], perGenre: 40, seed: 4 });
  root = mkdtempSync(join(tmpdir(), 'search-cli-'));
  base = join(root, 'base');
  const r = await run(args(base, ['mean']));
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await sim?.close();
  rmSync(root, { recursive: true, force: true });
});

test('a SIGINT after the second trial loses only the trial in flight; the rerun finishes the 8 without retraining recorded ones', async () => {
  const dir = join(root, 'interrupt');
  cpSync(base, dir, { recursive: true });
  const child = spawn(process.execPath, args(dir, ['search'], ['search.trials=8']), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const t0 = Date.now();
  for (;;) {
    const f = workTrials(dir);
    if (f && readTrials(f, KEYS).length >= 2) break;
    assert.ok(Date.now() - t0 < 120_000, `two trials never finished: ${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');
  assert.equal(await exited, 130, stderr.slice(-2000));
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace for an interruption');
  assert.equal(readLock(dir).stages.search, undefined, 'an interrupted search is not recorded as made');
  const file = workTrials(dir)!;
  const kept = readTrials(file, KEYS);
  assert.ok(kept.length >= 2 && kept.length < 8, `${kept.length} trials recorded before the interrupt`);
  const keptLines = readFileSync(file, 'utf8').split('\n').slice(1, 1 + kept.length);

  const rerun = await run(args(dir, ['search'], ['search.trials=8']));
  assert.equal(rerun.code, 0, rerun.stderr.slice(-2000));
  assert.match(rerun.stderr, new RegExp(`${kept.length} trial\\(s\\) already recorded`));
  const rows = readTrials(join(dir, 'search', 'trials.tsv'), KEYS);
  assert.deepEqual(rows.map((r) => r.trial), [0, 1, 2, 3, 4, 5, 6, 7]);
  for (const r of rows) assert.ok(r.status === 'complete' || r.status === 'pruned', `${r.trial}: ${r.status} ${r.message}`);
  assert.deepEqual(readFileSync(workTrials(dir)!, 'utf8').split('\n').slice(1, 1 + kept.length), keptLines, 'recorded rows unchanged');
  // Each trial is reported once across both runs: the rerun trains only the trials not yet recorded.
  for (let t = 1; t <= kept.length; t++) assert.doesNotMatch(rerun.stderr, new RegExp(`(?<!best: )trial ${t}/8: `), `trial ${t} retrained`);
  for (let t = kept.length + 1; t <= 8; t++) assert.match(rerun.stderr, new RegExp(`trial ${t}/8: `), `trial ${t} not run`);
});

test('make evaluate --set train.fromSearch=true runs the search, trains its best configuration and scores it', async () => {
  const dir = join(root, 'from-search');
  cpSync(base, dir, { recursive: true });
  const extra = ['search.trials=3', 'train.fromSearch=true', 'train.run=searched'];
  const dry = await run([...args(dir, ['evaluate'], extra), '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /run\s+search[\s\S]*run\s+train[\s\S]*run\s+evaluate/, `plan: ${dry.stdout}`);
  assert.doesNotMatch(dry.stdout, /run\s+(discover|download|shards|mean)\b/, 'the stages made once stay fresh');
  const plain = await run([...args(dir, ['evaluate'], ['search.trials=3', 'train.run=searched']), '--dry-run']);
  assert.doesNotMatch(plain.stdout, /^\s*(run|skip)\s+search\b/m, 'without train.fromSearch, evaluate does not pull in search');

  const r = await run(args(dir, ['evaluate'], extra));
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const lock = readLock(dir);
  for (const s of ['search', 'train', 'evaluate']) assert.ok(lock.stages[s], `${s} made`);
  assert.equal(lock.stages.train!.deps.search, lock.stages.search!.outputsHash, 'train records the search as its input');
  const best = readSearchBest(join(dir, 'search', 'best.json'));
  assert.equal(readTrials(join(dir, 'search', 'trials.tsv'), KEYS).length, 3);
  const record = JSON.parse(readFileSync(join(dir, 'models', 'searched', 'config.json'), 'utf8')) as { config: { train: Record<string, unknown> } };
  assert.equal(record.config.train.learningRate, best.values['train.learningRate']);
  assert.equal(record.config.train.optimizer, best.values['train.optimizer']);
  assert.ok(existsSync(join(dir, 'eval', 'metrics.json')));

  const again = await run([...args(dir, ['evaluate'], extra), '--dry-run']);
  assert.doesNotMatch(again.stdout, /run /, `all fresh after the make: ${again.stdout}`);
});
