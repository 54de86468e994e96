/**
 * Declared file inputs: `ctx.path()` refuses what a stage did not declare, the lock records each declared input's
 * hash and a changed input makes the stage stale, older lock entries (without input hashes) stay fresh, and every
 * registered stage declares only files that its dependencies write.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { hashJson, loadConfig, pickParams, resolveConfig, type Config } from '../pipeline/config.ts';
import { defaultConfig } from '../pipeline/config-core.ts';
import { createStageContext, isInside } from '../pipeline/context.ts';
import { LOCK_FILE, readLock, writeLock } from '../pipeline/lock.ts';
import { allOutputs, closure, make, plan } from '../pipeline/runner.ts';
import { resolveList, type Stage } from '../pipeline/stage.ts';
import { STAGES, reportStage } from '../stages/index.ts';
import { memoryLogger } from '../util/log.ts';
import { TOY_STAGES, takeRuns } from './helpers/toy-stages.ts';

let dir: string;
const log = memoryLogger();
const build = (targets: string[], sets: string[] = []) => make({ targets, config: loadConfig({ sets, cwd: dir }), dataDir: dir, stages: TOY_STAGES, log });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'covers-inputs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('declared inputs', () => {
  it('ctx.path() gives declared inputs and outputs (and paths inside them) and refuses anything else', () => {
    const stage: Stage = {
      name: 'reader', description: 'test', deps: [], inputs: ['splits.arrow', 'images'], params: [], outputs: ['out.txt'], inPlaceOutputs: ['cache'], version: 1,
      run: async () => {},
    };
    const ctx = createStageContext(stage, { config: defaultConfig(), dataDir: dir, log });
    assert.equal(ctx.path('splits.arrow'), join(dir, 'splits.arrow'));
    assert.equal(ctx.path('images/jazz/a1.jpg'), join(dir, 'images/jazz/a1.jpg'));
    assert.equal(ctx.path('out.txt'), join(dir, 'out.txt'));
    assert.equal(ctx.path('cache/x'), join(dir, 'cache/x'));
    assert.throws(() => ctx.path('manifest.tsv'), /stage reader: "manifest.tsv" is not a declared input/);
    assert.throws(() => ctx.path('imagesX/a.jpg'), /not a declared input/);
    assert.throws(() => ctx.path('images/../manifest.tsv'), /not a declared input/);
    assert.throws(() => ctx.path('../elsewhere'), /not a declared input/);
    assert.throws(() => ctx.path('.'), /not a declared input/);
    assert.throws(() => ctx.path(''), /not a declared input/);
    assert.throws(() => ctx.path(dir), /not a declared input/);
    assert.equal(isInside('shards/train', ['shards']), true);
  });

  it('the context exposes no way to the data directory but ctx.path() and ctx.out(): no root path among its values', () => {
    const stage: Stage = {
      name: 'reader', description: 'test', deps: [], inputs: ['splits.arrow'], params: [], outputs: ['out.txt'], version: 1,
      run: async () => {},
    };
    const ctx = createStageContext(stage, { config: defaultConfig(), dataDir: dir, log });
    assert.equal('dataDir' in ctx, false);
    // Every string the context hands out lies below a declared path or the stage's own work directory.
    for (const [key, value] of Object.entries(ctx)) {
      if (typeof value !== 'string') continue;
      assert.notEqual(value, dir, `ctx.${key} is the data directory`);
      assert.ok(value.startsWith(join(dir, '.work', 'reader')), `ctx.${key} = ${value} is outside the stage's work directory`);
    }
    assert.equal(isInside('shards', ['shards/train']), false);
  });

  it('the lock records each declared input; changing one makes the stage stale, naming the file', async () => {
    await build(['d']);
    takeRuns(dir);
    const lock = readLock(dir);
    assert.deepEqual(Object.keys(lock.stages.d!.inputs!).sort(), ['b.txt', 'c.txt']);
    assert.match(lock.stages.d!.inputs!['b.txt']!, /^[0-9a-f]{64}$/);
    assert.deepEqual(lock.stages.a!.inputs, {});
    writeFileSync(join(dir, 'c.txt'), 'edited by hand');
    const steps = await plan({ targets: ['d'], config: loadConfig({ cwd: dir }), dataDir: dir, stages: TOY_STAGES });
    const d = steps.find((s) => s.stage.name === 'd')!;
    assert.equal(d.state.kind, 'stale');
    assert.match(JSON.stringify(d.state), /input file c\.txt changed/);
  });

  it('a lock entry written before inputs were declared (no input hashes) stays fresh', async () => {
    await build(['d']);
    const lock = readLock(dir);
    for (const e of Object.values(lock.stages)) delete e.inputs;
    writeLock(dir, lock);
    const steps = await plan({ targets: ['d'], config: loadConfig({ cwd: dir }), dataDir: dir, stages: TOY_STAGES });
    assert.deepEqual(steps.map((s) => s.state.kind), ['fresh', 'fresh', 'fresh', 'fresh']);
    // The rewritten lock is still the same format the runner reads back.
    assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).lockVersion, 1);
  });

  it('a stage that reads the lock file is not made stale by its own entry', async () => {
    const reader: Stage = {
      name: 'e', description: 'reads the lock', deps: ['d'], inputs: ['d.txt', LOCK_FILE], params: [], outputs: ['e.txt'], version: 1,
      run: async (ctx) => writeFileSync(ctx.out('e.txt'), readFileSync(ctx.path(LOCK_FILE))),
    };
    const stages = [...TOY_STAGES, reader];
    await make({ targets: ['e'], config: loadConfig({ cwd: dir }), dataDir: dir, stages, log });
    let steps = await plan({ targets: ['e'], config: loadConfig({ cwd: dir }), dataDir: dir, stages });
    assert.equal(steps.at(-1)!.state.kind, 'fresh');
    // Another stage's entry changing (here: rebuilt with a new parameter) does make it stale.
    await make({ targets: ['d'], config: loadConfig({ sets: ['perGenre=7'], cwd: dir }), dataDir: dir, stages, log });
    steps = await plan({ targets: ['e'], config: loadConfig({ sets: ['perGenre=7'], cwd: dir }), dataDir: dir, stages });
    assert.match(JSON.stringify(steps.at(-1)!.state), /input file pipeline\.lock\.json changed/);
  });
});

describe('the stage registry', () => {
  const configs: [string, Config][] = [
    ['default', defaultConfig()],
    ['rebuild from a manifest', resolveConfig({ select: { fromManifest: '/tmp/manifest.tsv' } })],
    // train then reads search/best.json, so it must depend on search (its deps are a function of the configuration).
    ['train from the search', resolveConfig({ train: { fromSearch: true } })],
    // inspect then reads features/test, so it must depend on features.
    ['inspect with pretrained features', resolveConfig({ pretrained: { model: '/models/net.onnx' } })],
    // baseline then reads features/, so it must depend on the features stage.
    ['baseline on pretrained features', resolveConfig({ baseline: { features: 'both' }, pretrained: { model: 'net.onnx' } })],
  ];
  for (const [what, config] of configs) {
    it(`every declared input is written by a stage the reader depends on (${what})`, () => {
      for (const stage of STAGES) {
        const upstream = closure(STAGES, [stage.name], config).filter((s) => s !== stage && !s.skipWhen?.(config));
        const written = upstream.flatMap((s) => allOutputs(s, config));
        for (const rel of resolveList(stage.inputs, config)) {
          if (rel === LOCK_FILE) continue;
          const skippedWriter = closure(STAGES, [stage.name], config).some((s) => s.skipWhen?.(config) && isInside(rel, allOutputs(s, config)));
          assert.ok(isInside(rel, written) || skippedWriter, `stage ${stage.name} declares input ${rel}, which no stage it depends on writes`);
        }
      }
    });
  }

  it('baseline pulls in features only when baseline.features is pretrained or both', () => {
    const names = (c: Config) => closure(STAGES, ['baseline'], c).map((s) => s.name);
    assert.ok(!names(defaultConfig()).includes('features'), 'pixels: no features');
    for (const features of ['pretrained', 'both'] as const) {
      const order = names(resolveConfig({ baseline: { features }, pretrained: { model: 'net.onnx' } }));
      assert.ok(order.indexOf('features') >= 0 && order.indexOf('features') < order.indexOf('baseline'), `${features}: ${order.join(' ')}`);
    }
  });

  it('the report declares the whole configuration it prints: changing train.backend makes it stale', async () => {
    const base = resolveConfig({ train: { backend: 'cpu' } });
    const params = pickParams(base, resolveList(reportStage.params, base));
    const lock = readLock(dir);
    lock.stages.report = {
      version: reportStage.version, params, paramsHash: hashJson(params), deps: {}, extraInputs: {}, inputs: {}, outputs: {}, outputsHash: '',
      startedAt: '', finishedAt: '', durationMs: 0,
    };
    writeLock(dir, lock);
    const stateWith = async (config: Config) => (await plan({ targets: ['report'], config, dataDir: dir, stages: STAGES })).at(-1)!.state;
    assert.doesNotMatch(JSON.stringify(await stateWith(base)), /parameter/);
    assert.match(JSON.stringify(await stateWith(resolveConfig({ train: { backend: 'wasm' } }))), /parameter train\.backend: /);
    const inputs = resolveList(reportStage.inputs, base);
    for (const f of ['candidates.arrow', 'labels.arrow', 'selection.arrow', 'manifest.tsv', 'rejected.tsv', 'splits.arrow', 'shards/rejected.tsv', 'shards/train', 'shards/mean.arrow', `models/${base.train.run}/metrics.jsonl`, 'eval/metrics.json', 'eval/baseline.json', LOCK_FILE]) {
      assert.ok(inputs.includes(f), `report does not declare ${f}`);
    }
  });
});
