/** The report's parts of the experiment protocol: the learning-rate chart with the schedule's reasons, repeats over seeds, the linear SVM. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveConfig } from '../pipeline/config.ts';
import { summariseRepeats, type EpochMetrics, type EvalMetrics } from '../schemas/metrics.ts';
import { buildReport } from '../report/render.ts';
import { writeReportFixture } from './helpers/report-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'report-protocol-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('learning-rate chart with the reason of each change; repeats (mean ± std) and the linear SVM in the evaluation', async () => {
  const f = await writeReportFixture(join(dir, 'full'));
  const config = resolveConfig({ ...structuredClone(f.config), train: { ...f.config.train, repeats: 3 }, baseline: { ...f.config.baseline, model: 'both' } }, 'test');
  const metricsPath = join(f.dataDir, 'models', 'fixture', 'metrics.jsonl');
  const epochs = readFileSync(metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochMetrics);
  // The fixture's rate drops from 0.01 to 0.001 after epoch 5: give that epoch the plateau's reason.
  epochs[4]!.scheduleEvent = 'plateau: validation loss not below 1.2345 − 0.001 for 5 epochs: learning rate 0.01 → 0.001';
  writeFileSync(metricsPath, epochs.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const evalPath = join(f.dataDir, 'eval', 'metrics.json');
  const convnet = JSON.parse(readFileSync(evalPath, 'utf8')) as EvalMetrics;
  convnet.repeats = summariseRepeats([0.25, 0.5, 0.75].map((accuracy, seed) => ({ seed, n: 12, accuracy, accuracyInterval95: [accuracy - 0.2, accuracy + 0.2] as [number, number] })));
  writeFileSync(evalPath, JSON.stringify(convnet));
  const forest = JSON.parse(readFileSync(join(f.dataDir, 'eval', 'baseline.json'), 'utf8')) as EvalMetrics;
  writeFileSync(join(f.dataDir, 'eval', 'baseline-linear-svm.json'), JSON.stringify({ ...forest, model: 'linear-svm', backend: 'train/linear-svm.ts (liblinear algorithm)' }));
  const page = await buildReport({ dataDir: f.dataDir, config });
  assert.match(page, /aria-label="Learning rate per epoch"/);
  assert.match(page, /learning rate 0\.01 → 0\.001 from epoch 6 \(plateau: validation loss not below 1\.2345 − 0\.001 for 5 epochs/);
  assert.match(page, /Repeats over training seeds/);
  // mean 50.0%, sample standard deviation 25.0%.
  assert.match(page, /50\.0% ± 25\.0%/);
  assert.match(page, /linear SVM \(baseline\)/);
  assert.match(page, /linear SVM: train\/linear-svm\.ts/);
  // Without the SVM's file, a configuration that asks for it says which stage builds it.
  rmSync(join(f.dataDir, 'eval', 'baseline-linear-svm.json'));
  const missing = await buildReport({ dataDir: f.dataDir, config });
  assert.match(missing, /linear-SVM baseline/);
  assert.doesNotMatch(await buildReport({ dataDir: f.dataDir, config: f.config }), /linear-SVM baseline/);
});
