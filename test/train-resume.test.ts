/**
 * A continued run is the run it continues (issue 25): on the demo's training configuration (cli/demo.ts: the demo's
 * convnet, optimizer, schedule and snapshot interval; 72-pixel synthetic shards cropped to 64), a run extended from 5
 * to 8 epochs, a run interrupted at an epoch boundary and one interrupted inside an epoch each give, once rerun, the
 * same `metrics.jsonl` records (timings aside) and the same weights as a straight 8-epoch run. Also: lowering
 * `train.epochs` below a snapshot starts over and says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { demoConfig } from '../cli/demo.ts';
import { resolveConfig, type Config } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { memoryLogger } from '../util/log.ts';
import { InterruptedError } from '../util/errors.ts';
import { trainStage } from '../stages/index.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

let root: string;
const dirs: string[] = [];
before(() => {
  root = mkdtempSync(join(tmpdir(), 'train-resume-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A data directory holding the same small synthetic shards (72×72, 3 classes) every time. */
function dataDir(name: string): string {
  const d = join(root, name);
  writeTestShards(d, { size: 72, perClass: { train: 12, validation: 4, test: 2 }, seed: 25 });
  dirs.push(d);
  return d;
}

/** The demo's configuration with `train.epochs` = `epochs`. */
function config(epochs: number): Config {
  const input = demoConfig('http://127.0.0.1:9', 'http://127.0.0.1:9');
  return resolveConfig({ ...input, train: { ...input.train, epochs } }, 'demo');
}

/** An AbortSignal that reads as aborted from its `after`+1-th read on (the loop reads it once per batch). */
function abortAfterReads(after: number): AbortSignal & { reads: number } {
  const s = { reads: 0, get aborted() { return ++this.reads > after; } };
  return s as unknown as AbortSignal & { reads: number };
}

/** What must be equal: every epoch's record without its timings, and the kept model's weights. */
function result(d: string): { metrics: unknown[]; weights: Buffer } {
  const metrics = readFileSync(join(d, 'models', 'default', 'metrics.jsonl'), 'utf8').trim().split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
  return { metrics, weights: readFileSync(join(d, 'models', 'default', 'weights.bin')) };
}

async function train(d: string, epochs: number, signal?: AbortSignal): Promise<string[]> {
  const log = memoryLogger();
  await runStageOnce(trainStage, { config: config(epochs), dataDir: d, log, signal });
  return log.lines;
}

let straight: { metrics: unknown[]; weights: Buffer };
let batchesPerEpoch: number;

test('straight 8-epoch run of the demo configuration (the reference)', async () => {
  const d = dataDir('straight');
  const counter = abortAfterReads(Number.POSITIVE_INFINITY);
  await train(d, 8, counter);
  straight = result(d);
  assert.equal(straight.metrics.length, 8);
  batchesPerEpoch = counter.reads / 8;
  assert.ok(Number.isInteger(batchesPerEpoch) && batchesPerEpoch >= 2, `batches per epoch: ${counter.reads} / 8`);
});

test('a finished 5-epoch run raised to train.epochs = 8 continues to the straight run, record for record', async () => {
  const d = dataDir('extended');
  await train(d, 5);
  assert.equal(result(d).metrics.length, 5);
  const lines = await train(d, 8);
  assert.ok(lines.some((l) => /resumed from .* after epoch 5/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /continuing the finished 5-epoch run to train\.epochs = 8/.test(l)), lines.join('\n'));
  const got = result(d);
  assert.deepEqual(got.metrics, straight.metrics);
  assert.ok(got.weights.equals(straight.weights), 'the kept weights equal the straight run\'s');
});

test('interrupted at an epoch boundary (after the epoch-5 snapshot) and rerun: the straight run', async () => {
  const d = dataDir('boundary');
  await assert.rejects(train(d, 8, abortAfterReads(5 * batchesPerEpoch)), InterruptedError);
  const lines = await train(d, 8);
  assert.ok(lines.some((l) => /resumed from .* after epoch 5/.test(l)), lines.join('\n'));
  const got = result(d);
  assert.deepEqual(got.metrics, straight.metrics);
  assert.ok(got.weights.equals(straight.weights));
});

test('interrupted inside epoch 7 and rerun (it resumes from epoch 5): the straight run', async () => {
  const d = dataDir('mid-epoch');
  await assert.rejects(train(d, 8, abortAfterReads(6 * batchesPerEpoch + 1)), InterruptedError);
  const lines = await train(d, 8);
  assert.ok(lines.some((l) => /resumed from .* after epoch 5/.test(l)), lines.join('\n'));
  const got = result(d);
  assert.deepEqual(got.metrics, straight.metrics);
  assert.ok(got.weights.equals(straight.weights));
});

test('lowering train.epochs below a snapshot starts over and says so; the result is a straight run of that length', async () => {
  const d = dirs.find((x) => x.endsWith('extended'))!; // its snapshot is after epoch 8
  const lines = await train(d, 5);
  assert.ok(lines.some((l) => /is after epoch 8, past train\.epochs = 5: training starts over from epoch 0/.test(l)), lines.join('\n'));
  assert.deepEqual(result(d).metrics, straight.metrics.slice(0, 5));
});
