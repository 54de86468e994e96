/**
 * `covers make features`: a seeded ResNet-18 (width ×0.25, 64 px) exported by PyTorch (test/python/export_pretrained.py)
 * runs over synthetic 72×72 shards; DATA_DIR/features/<split>/ reads back with `datasets.load_from_disk`, pyarrow and
 * polars, one row per shard row in the same order, and every row equals PyTorch's and onnxruntime's features of the
 * same centre crop within 1e-3 relative (test/python/check_features.py). Also: a bad model file fails the stage with
 * the file named and leaves no features behind. Skipped, with the reason, without python3/torch/onnx/onnxruntime/
 * datasets/polars.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { baselineStage, evaluateStage, featuresStage, trainStage } from '../stages/index.ts';
import { readEvalMetrics } from '../schemas/metrics.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';
import { readFeatureSplit } from '../schemas/features.ts';
import { loadOnnxRuntime } from '../model-import/onnxruntime.ts';
import { loadOnnx } from '../model-import/load.ts';

const PY = join(import.meta.dirname, 'python');
const PYTHON = process.env.PYTHON ?? 'python3';
const SPEC = { arch: 'resnet18', bn: 'kept', width: 0.25, size: 64, seed: 3 };

function pythonMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import numpy, torch, onnx, onnxruntime, datasets, pyarrow, polars'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not found`;
  if (probe.status !== 0) return `python modules missing (${probe.stderr.match(/No module named '([^']+)'/)?.[1] ?? probe.stderr.trim().split('\n').pop()})`;
  return null;
}

describe('features stage', () => {
  const missing = pythonMissing();
  let dir = '';
  let onnx = '';
  const log = createLogger({ level: 'quiet' });
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'features-stage-'));
    writeTestShards(dir, { size: 72, labelNames: ['ambient', 'metal', 'jazz'], perClass: { train: 6, validation: 2, test: 2 }, batchRows: 5 });
    if (missing) return;
    onnx = join(dir, 'resnet18.onnx');
    const run = spawnSync(PYTHON, [join(PY, 'export_pretrained.py'), '--arch', SPEC.arch, '--bn', SPEC.bn, '--width', String(SPEC.width), '--size', String(SPEC.size), '--seed', String(SPEC.seed), '--out', onnx], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr.slice(-2000));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const ortMissing = async (): Promise<string | null> => {
    const r = await loadOnnxRuntime();
    return 'reason' in r ? r.reason : null;
  };
  const featuresByEngine = new Map<string, Float32Array>();
  for (const engine of ['tfjs', 'onnxruntime'] as const) {
    it(`pretrained.engine=${engine}: writes features equal to PyTorch/onnxruntime on the centre crops, readable by datasets, pyarrow and polars`, { skip: missing ?? false }, async (t) => {
      if (engine === 'onnxruntime') {
        const why = await ortMissing();
        if (why) return t.skip(why);
      }
      const lines: string[] = [];
      const config = resolveConfig({ genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64, backend: 'wasm' }, pretrained: { model: onnx, input: 'imagenet', batchSize: 4, engine, threads: 1 } });
      await runStageOnce(featuresStage, { config, dataDir: dir, log: createLogger({ write: (l) => lines.push(l) }) });
      assert.ok(lines.some((l) => l.includes(`; ${engine}: `)), lines.join('\n'));
      const train = readFeatureSplit(join(dir, 'features', 'train'));
      assert.equal(train.rows, 18);
      assert.equal(train.meta.dim, 128);
      assert.equal(train.meta.layer, '/Flatten_output_0');
      featuresByEngine.set(engine, Float32Array.from(train.features));
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'features', 'dataset_dict.json'), 'utf8')), { splits: ['train', 'validation', 'test'] });
      const check = spawnSync(PYTHON, [join(PY, 'check_features.py'), dir, onnx, SPEC.arch, SPEC.bn, String(SPEC.width), String(SPEC.size), String(SPEC.seed)], { encoding: 'utf8' });
      assert.equal(check.status, 0, `${check.stdout}\n${check.stderr.slice(-3000)}`);
      const summary = JSON.parse(check.stdout.trim().split('\n').pop()!) as { splits: Record<string, { rows: number; relative_error: Record<string, number> }>; pyarrow_rows: number; polars_rows: number; columns: string[] };
      assert.deepEqual(Object.fromEntries(Object.entries(summary.splits).map(([k, v]) => [k, v.rows])), { train: 18, validation: 6, test: 6 });
      for (const s of Object.values(summary.splits)) for (const e of Object.values(s.relative_error)) assert.ok(e <= 1e-3, String(e));
      assert.deepEqual(summary.columns, ['features', 'label', 'genre', 'item_id', 'sha256']);
      assert.ok(summary.pyarrow_rows > 0 && summary.pyarrow_rows === summary.polars_rows);
    });
  }

  it('the two engines agree row for row, and onnxruntime also runs a hidden conv map and 10 crops in tfjs\' NHWC order', { skip: missing ?? false }, async (t) => {
    const why = await ortMissing();
    if (why) return t.skip(why);
    const [a, b] = [featuresByEngine.get('tfjs'), featuresByEngine.get('onnxruntime')];
    assert.ok(a && b && a.length === b.length, 'both engine tests ran');
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1e-3, Math.abs(a[i]!)));
    assert.ok(worst <= 1e-3, `max relative difference ${worst}`);
    // A 4-D map (layer4's output before pooling) with the 10 crops: both engines, same numbers in the same order.
    const layer = '/layer4/layer4.1/relu_1/Relu_output_0';
    const got: Float32Array[] = [];
    for (const engine of ['tfjs', 'onnxruntime'] as const) {
      const d = mkdtempSync(join(tmpdir(), `features-${engine}-`));
      try {
        writeTestShards(d, { size: 72, labelNames: ['ambient', 'metal', 'jazz'], perClass: { train: 2, validation: 1, test: 1 }, batchRows: 5 });
        const config = resolveConfig({ genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64, backend: 'wasm' }, pretrained: { model: onnx, layer, crops: 10, batchSize: 3, engine, threads: 1 } });
        await runStageOnce(featuresStage, { config, dataDir: d, log });
        const f = readFeatureSplit(join(d, 'features', 'train'));
        assert.equal(f.meta.dim, 2 * 2 * 128);
        got.push(Float32Array.from(f.features));
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    }
    let worstMap = 0;
    for (let i = 0; i < got[0]!.length; i++) worstMap = Math.max(worstMap, Math.abs(got[0]![i]! - got[1]![i]!) / Math.max(1e-3, Math.abs(got[0]![i]!)));
    assert.ok(worstMap <= 1e-3, `max relative difference ${worstMap}`);
  });

  it('onnxruntime runs a file whose batch dimension is fixed (as model-zoo files often are) in chunks, the last padded', { skip: missing ?? false }, async (t) => {
    const why = await ortMissing();
    if (why) return t.skip(why);
    const fixed = join(dir, 'resnet18-batch2.onnx');
    const py = `import onnx, sys\nm = onnx.load(sys.argv[1])\nfor v in list(m.graph.input) + list(m.graph.output):\n    v.type.tensor_type.shape.dim[0].ClearField('dim_param'); v.type.tensor_type.shape.dim[0].dim_value = 2\nonnx.save(m, sys.argv[2])\n`;
    const r = spawnSync(PYTHON, ['-c', py, onnx, fixed], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const d = mkdtempSync(join(tmpdir(), 'features-fixed-'));
    try {
      writeTestShards(d, { size: 72, labelNames: ['ambient', 'metal', 'jazz'], perClass: { train: 6, validation: 2, test: 2 }, batchRows: 5 });
      const config = resolveConfig({ genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64, backend: 'wasm' }, pretrained: { model: fixed, batchSize: 3, engine: 'onnxruntime', threads: 1 } });
      await runStageOnce(featuresStage, { config, dataDir: d, log });
      const got = readFeatureSplit(join(d, 'features', 'train')).features;
      const want = featuresByEngine.get('onnxruntime');
      assert.ok(want && want.length === got.length, 'the onnxruntime engine test ran on the same shards');
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(1e-3, Math.abs(want[i]!)));
      assert.ok(worst <= 1e-5, `max relative difference ${worst}`);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('pretrained.engine=onnxruntime refuses a tfjs layer name with the key named; auto falls back to tfjs and logs why', { skip: missing ?? false }, async (t) => {
    const why = await ortMissing();
    if (why) return t.skip(why);
    const d = mkdtempSync(join(tmpdir(), 'features-layername-'));
    try {
      writeTestShards(d, { size: 72, labelNames: ['ambient', 'metal', 'jazz'], perClass: { train: 1, validation: 1, test: 1 } });
      const net = await loadOnnx(onnx);
      const tfjsLayer = net.model.layers.find((l) => !net.tensors.has(l.name) && l.getClassName() === 'Conv2D')!.name;
      const base = { genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64, backend: 'wasm' as const } };
      await assert.rejects(
        runStageOnce(featuresStage, { config: resolveConfig({ ...base, pretrained: { model: onnx, layer: tfjsLayer, engine: 'onnxruntime' } }), dataDir: d, log }),
        /pretrained\.engine=onnxruntime: pretrained\.layer '.*' is a tfjs layer name/,
      );
      const lines: string[] = [];
      await runStageOnce(featuresStage, { config: resolveConfig({ ...base, pretrained: { model: onnx, layer: tfjsLayer, engine: 'auto' } }), dataDir: d, log: createLogger({ write: (l) => lines.push(l) }) });
      assert.ok(lines.some((l) => /onnxruntime not used \(pretrained\.layer '.*' is a tfjs layer name/.test(l)), lines.join('\n'));
      assert.ok(lines.some((l) => l.includes('; tfjs: auto: ')), lines.join('\n'));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('baseline.features=both: the forest and the linear SVM on the pretrained features and on pixels', { skip: missing ?? false }, async () => {
    assert.ok(existsSync(join(dir, 'features', 'train')), 'the features test ran first');
    const config = resolveConfig({
      genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64, backend: 'wasm' }, pretrained: { model: onnx },
      baseline: { features: 'both', model: 'both', trees: 5, threads: 1 },
    });
    await runStageOnce(baselineStage, { config, dataDir: dir, log });
    for (const [file, model, source] of [
      ['eval/baseline.json', 'random-forest', 'pixels'], ['eval/baseline-linear-svm.json', 'linear-svm', 'pixels'],
      ['eval/baseline-pretrained.json', 'random-forest', 'pretrained'], ['eval/baseline-linear-svm-pretrained.json', 'linear-svm', 'pretrained'],
    ] as const) {
      const m = readEvalMetrics(join(dir, file));
      assert.equal(m.model, model, file);
      assert.equal(m.n, 6, file);
      assert.ok(String(m.details.source).startsWith(source), `${file}: ${String(m.details.source)}`);
      assert.equal(m.details.features, source === 'pixels' ? 2500 : 128, file);
    }
    // Without features/, baseline.features=pretrained says what to run.
    const empty = mkdtempSync(join(tmpdir(), 'baseline-nofeat-'));
    try {
      writeTestShards(empty, { size: 72, perClass: { train: 2, validation: 1, test: 1 } });
      const c2 = resolveConfig({ genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64 }, baseline: { features: 'pretrained', trees: 2 } });
      await assert.rejects(runStageOnce(baselineStage, { config: c2, dataDir: empty, log }), /run `covers make features`/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('train.init=pretrained fine-tunes the ONNX network (frozen up to a named layer) and evaluate scores it with 10 crops', { skip: missing ?? false }, async () => {
    const config = resolveConfig({
      genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, pretrained: { model: onnx, input: 'imagenet' }, eval: { crops: 10 },
      // train.crop keeps its default (224 > image.size 72): fine-tuning crops at the network's input size (64).
      train: { init: 'pretrained', freeze: 'layer1.0.bn1', pretrainedLearningRateScale: 0.1, optimizer: 'nesterov', learningRate: 0.01, epochs: 2, batchSize: 6, backend: 'wasm', threads: 1, run: 'ft' },
    });
    await runStageOnce(trainStage, { config, dataDir: dir, log });
    const rec = JSON.parse(readFileSync(join(dir, 'models', 'ft', 'config.json'), 'utf8')) as { crop: number; subtractMean: boolean; init: string; pretrained: { preprocessing: { scale: number } } };
    assert.equal(rec.crop, 64, 'the network\'s input size');
    assert.equal(rec.subtractMean, false);
    assert.equal(rec.init, 'pretrained');
    assert.equal(rec.pretrained.preprocessing.scale, 1 / 255);
    await runStageOnce(evaluateStage, { config, dataDir: dir, log });
    const m = readEvalMetrics(join(dir, 'eval', 'metrics.json'));
    assert.equal(m.n, 6);
    assert.equal(m.crops, 10);
    // Scratch-only keys are refused with a fine-tuning key, naming it.
    const scratch = resolveConfig({ genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64, freeze: 'body', backend: 'wasm', run: 'x' } });
    await assert.rejects(runStageOnce(trainStage, { config: scratch, dataDir: dir, log }), /train\.freeze = body applies only with train\.init = pretrained/);
  });

  it('a file that is not a model fails with the file named and writes no features', async () => {
    const bad = join(dir, 'bad.onnx');
    writeFileSync(bad, 'not a model');
    const dataDir = mkdtempSync(join(tmpdir(), 'features-bad-'));
    try {
      writeTestShards(dataDir, { size: 72, perClass: { train: 2, validation: 1, test: 1 } });
      const config = resolveConfig({ genres: ['ambient', 'metal', 'jazz'], image: { size: 72 }, train: { crop: 64, backend: 'wasm' }, pretrained: { model: bad } });
      await assert.rejects(runStageOnce(featuresStage, { config, dataDir, log }), (e: Error) => e.message.includes(bad) && /not (a readable ONNX file|an ONNX model)/.test(e.message));
      assert.ok(!existsSync(join(dataDir, 'features')));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
