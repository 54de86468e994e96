/**
 * Stage `inspect` with `pretrained.model` set: it depends on `features`, declares `features/test` (the lock makes it
 * stale when those features change), embeds the test covers' pretrained features as a third scatter beside the
 * network's activations and the raw pixels, and refuses features that do not line up with the test shards.
 *
 * On the planted dataset (test/helpers/planted.ts, small): `train` (2 epochs), `evaluate`, then `inspect` on
 * - features written directly (schemas/features.ts writer: one-hot genre plus noise, so they separate the genres);
 * - the `features` stage's output of a tiny ResNet-18 exported by PyTorch (test/python/export_pretrained.py), the
 *   report then rendered in headless Chromium: three scatters, each point's hover thumbnail decodes, no console
 *   error. Skipped, with the reason, without python3/torch/onnx or Chromium.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { hoverThumbnail } from './helpers/scatter-hover.ts';
import { resolveConfig, type Config, type ConfigInput } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { Hasher, readLock, writeLock } from '../pipeline/lock.ts';
import { closure, hashInputs, plan } from '../pipeline/runner.ts';
import { resolveList } from '../pipeline/stage.ts';
import { FeatureSplitWriter } from '../schemas/features.ts';
import { readInspection } from '../schemas/inspect.ts';
import { readPredictions, type Prediction } from '../schemas/predictions.ts';
import { buildReport } from '../report/render.ts';
import { evaluateStage, featuresStage, inspectStage, STAGES, trainStage } from '../stages/index.ts';
import { memoryLogger } from '../util/log.ts';
import { Rng } from '../util/rng.ts';
import { PLANTED_GENRES, PLANTED_SIZE, writePlantedDataset } from './helpers/planted.ts';

const PY = join(import.meta.dirname, 'python');
const PYTHON = process.env.PYTHON ?? 'python3';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function pythonMissing(): string | false {
  const probe = spawnSync(PYTHON, ['-c', 'import numpy, torch, onnx'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not found`;
  if (probe.status !== 0) return `python modules missing (${probe.stderr.match(/No module named '([^']+)'/)?.[1] ?? probe.stderr.trim().split('\n').pop()})`;
  return false;
}
const noChromium = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" (Debian) or set CHROMIUM_PATH`;

const BASE: ConfigInput = {
  genres: PLANTED_GENRES,
  image: { size: PLANTED_SIZE },
  train: {
    backend: 'wasm', architecture: 'ConvNet', crop: PLANTED_SIZE, mirror: false, optimizer: 'adam', learningRate: 0.002, epochs: 2, batchSize: 16, run: 'planted',
    modelParams: 'num_conv_layers=1:lc0_num_filters=8:lc0_filter_size=5:lc0_mp=True:ld0_num_units=16',
  },
  eval: { crops: 1 },
  inspect: { saliency: 1, examples: 1 },
};
const withModel = (model: string): Config => resolveConfig({ ...BASE, pretrained: { model, batchSize: 16 } });

/** Writes `features/test` as the features stage would: one row per test image, `dim` values each. */
function writeFeatures(dir: string, model: string, rows: readonly Prediction[], dim: number, seed: number): void {
  rmSync(join(dir, 'features', 'test'), { recursive: true, force: true });
  const w = new FeatureSplitWriter({
    dir: join(dir, 'features', 'test'), split: 'test', maxShardBytes: 1 << 20, batchRows: 8,
    meta: { dim, labelNames: PLANTED_GENRES, model, layer: 'fc7', input: 'imagenet', crops: 1 },
  });
  const rng = new Rng(seed);
  for (const p of rows) {
    const f = Float32Array.from({ length: dim }, (_, k) => (k === p.label ? 4 : 0) + rng.next());
    w.add({ features: f, label: p.label, genre: PLANTED_GENRES[p.label]!, itemId: p.itemId ?? 0, sha256: '' });
  }
  w.finish();
}

describe('inspect with pretrained features', () => {
  let dir: string;
  let preds: Prediction[];
  const log = memoryLogger('quiet');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inspect-features-'));
    await writePlantedDataset(dir, { train: 24, validation: 6, test: 10 });
    const config = resolveConfig(BASE);
    for (const stage of [trainStage, evaluateStage]) await runStageOnce(stage, { config, dataDir: dir, log });
    preds = readPredictions(join(dir, 'eval', 'predictions.arrow')).predictions;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('depends on features and declares features/test only when pretrained.model is set', () => {
    const inspect = STAGES.find((s) => s.name === 'inspect')!;
    const without = resolveConfig(BASE);
    const withIt = withModel('/models/net.onnx');
    assert.ok(!closure(STAGES, ['inspect'], without).some((s) => s.name === 'features'));
    assert.ok(!resolveList(inspect.inputs, without).includes('features/test'));
    assert.ok(closure(STAGES, ['inspect'], withIt).some((s) => s.name === 'features'));
    assert.ok(resolveList(inspect.inputs, withIt).includes('features/test'));
    assert.ok(resolveList(inspect.params, withIt).includes('pretrained.model'));
  });

  it('embeds the pretrained features as a third set, between the activations and the pixels', async () => {
    writeFeatures(dir, 'nets/fake.onnx', preds, 6, 1);
    await runStageOnce(inspectStage, { config: withModel('nets/fake.onnx'), dataDir: dir, log });
    const ins = readInspection(join(dir, 'eval', 'inspect'));
    assert.deepEqual(ins.embeddings.map((e) => e.name), ['penultimate', 'pretrained', 'pixels']);
    const e = ins.embeddings[1]!;
    assert.equal(e.inputDims, 6);
    assert.equal(e.title, 'Pretrained features: fake.onnx at fc7 (6 values per cover)');
    // Same covers in the same order as the other sets (tile i of the sprite = point i in every scatter).
    assert.deepEqual(e.points.map((p) => p.row), ins.embeddings[0]!.points.map((p) => p.row));
    assert.ok(e.points.every((p) => p.label === preds[p.row]!.label && p.x >= 0 && p.x <= 1 && p.y >= 0 && p.y <= 1));
    // The written features put each genre in its own corner of feature space: UMAP keeps each point's nearest
    // neighbour in its genre for nearly every point.
    const sameGenreNeighbour = e.points.filter((p, i) => {
      let best = -1;
      let bestD = Infinity;
      e.points.forEach((q, j) => {
        const d = (p.x - q.x) ** 2 + (p.y - q.y) ** 2;
        if (j !== i && d < bestD) [best, bestD] = [j, d];
      });
      return e.points[best]!.label === p.label;
    }).length;
    assert.ok(sameGenreNeighbour >= 0.9 * e.points.length, `${sameGenreNeighbour} of ${e.points.length} points next to their genre`);
  });

  it('without pretrained.model it embeds activations and pixels only, even when features/ exists', async () => {
    await runStageOnce(inspectStage, { config: resolveConfig(BASE), dataDir: dir, log });
    assert.deepEqual(readInspection(join(dir, 'eval', 'inspect')).embeddings.map((e) => e.name), ['penultimate', 'pixels']);
  });

  it('refuses features that are missing, of another model, or out of line with the test shards, naming the directory', async () => {
    const run = (model: string) => runStageOnce(inspectStage, { config: withModel(model), dataDir: dir, log });
    writeFeatures(dir, 'nets/fake.onnx', preds, 6, 1);
    await assert.rejects(run('nets/other.onnx'), /inspect: .*features\/test holds the features of nets\/fake\.onnx, not of pretrained\.model \(nets\/other\.onnx\); rerun `covers make features`/);
    writeFeatures(dir, 'nets/fake.onnx', preds.slice(1), 6, 1);
    await assert.rejects(run('nets/fake.onnx'), new RegExp(`features/test has ${preds.length - 1} rows, the test shards ${preds.length} images`));
    writeFeatures(dir, 'nets/fake.onnx', [...preds].reverse(), 6, 1);
    await assert.rejects(run('nets/fake.onnx'), /row 0 of .*features\/test \(item_id \d+\) is not test image 0/);
    rmSync(join(dir, 'features'), { recursive: true });
    await assert.rejects(run('nets/fake.onnx'), /pretrained\.model is set but .*features\/test is not built/);
  });

  it('the lock makes inspect stale when features/test changes', async () => {
    const config = withModel('nets/fake.onnx');
    const inspect = STAGES.find((s) => s.name === 'inspect')!;
    writeFeatures(dir, 'nets/fake.onnx', preds, 6, 1);
    const lock = readLock(dir);
    lock.stages.inspect = {
      version: inspect.version, params: {}, paramsHash: '', deps: {}, extraInputs: {}, outputs: {}, outputsHash: '',
      inputs: await hashInputs(inspect, config, lock, new Hasher(dir)), startedAt: '', finishedAt: '', durationMs: 0,
    };
    writeLock(dir, lock);
    const reasons = async () => {
      const step = (await plan({ targets: ['inspect'], config, dataDir: dir, stages: STAGES })).find((s) => s.stage.name === 'inspect')!;
      return step.state.kind === 'stale' ? step.state.reasons : [];
    };
    assert.ok(!(await reasons()).some((r) => r.includes('features/test')));
    writeFeatures(dir, 'nets/fake.onnx', preds, 6, 2);
    assert.ok((await reasons()).includes('input file features/test changed'));
  });

  it('embeds a tiny ONNX network’s features (the features stage), and the report shows three scatters with hover thumbnails', { skip: pythonMissing() }, async (t) => {
    const onnx = join(dir, 'resnet18.onnx');
    const exp = spawnSync(PYTHON, [join(PY, 'export_pretrained.py'), '--arch', 'resnet18', '--bn', 'folded', '--width', '0.25', '--size', String(PLANTED_SIZE), '--seed', '3', '--out', onnx], { encoding: 'utf8' });
    assert.equal(exp.status, 0, exp.stderr.slice(-2000));
    const config = withModel(onnx);
    await runStageOnce(featuresStage, { config, dataDir: dir, log });
    await runStageOnce(inspectStage, { config, dataDir: dir, log });
    const ins = readInspection(join(dir, 'eval', 'inspect'));
    const e = ins.embeddings.find((x) => x.name === 'pretrained');
    assert.ok(e, 'a pretrained embedding');
    assert.equal(e.inputDims, 128, 'ResNet-18 ×0.25: 128 pooled features');
    assert.match(e.title, /^Pretrained features: resnet18\.onnx at \S+ \(128 values per cover\)$/);
    assert.equal(e.points.length, preds.length);
    if (noChromium) return t.skip(noChromium);
    const file = join(dir, 'report.html');
    writeFileSync(file, await buildReport({ dataDir: dir, config }));
    const url = pathToFileURL(file).href;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(url, { waitUntil: 'load' });
      assert.deepEqual(await page.$$eval('section#embedding .scatter-wrap', (els) => els.map((el) => el.getAttribute('data-embedding'))), ['penultimate', 'pretrained', 'pixels']);
      assert.match(await page.locator('section#embedding p.lead').innerText(), /pretrained network/);
      const points = page.locator('section#embedding [data-embedding="pretrained"] .pt');
      assert.equal(await points.count(), preds.length);
      for (const i of [0, preds.length - 1]) {
        assert.equal(await hoverThumbnail(points.nth(i)), 'ok', `hovering point ${i} shows its cover`);
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
