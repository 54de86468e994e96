/** Stage `baseline`: random forest on downsampled grayscale pixels. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { memoryLogger } from '../pipeline/log.ts';
import { EvalMetricsSchema } from '../schemas/metrics.ts';
import { baselineStage } from '../stages/baseline.ts';
import { pixelFeatures } from '../train/baseline.ts';
import { writeTestShards } from './helpers/shards.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'baseline-'));
  writeTestShards(dir, { size: 16, perClass: { train: 15, validation: 2, test: 6 }, seed: 8 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('pixel features are the downsampled grayscale image, in order', async () => {
  const f = await pixelFeatures(join(dir, 'shards'), 'test', 4, true);
  assert.equal(f.rows.length, 18);
  assert.equal(f.rows[0]!.length, 16);
  assert.deepEqual(f.labels.slice(0, 3), [0, 1, 2]);
  // Class 0 is reddish (200,40,40), class 1 greenish: luminance differs accordingly.
  const avg = (r: number[]) => r.reduce((a, b) => a + b, 0) / r.length;
  assert.ok(avg(f.rows[1]!) > avg(f.rows[0]!), 'green is brighter than red in luminance');
  const rgb = await pixelFeatures(join(dir, 'shards'), 'test', 4, false);
  assert.equal(rgb.rows[0]!.length, 48);
});

test('baseline trains on train, scores test, and writes EvalMetrics', async () => {
  const config = resolveConfig({ image: { size: 16, }, train: { crop: 16 }, baseline: { trees: 5, pixels: 8, maxFeatures: 0.5, maxSamples: null } });
  await runStageOnce(baselineStage, { config, dataDir: dir, log: memoryLogger() });
  const m = EvalMetricsSchema.parse(JSON.parse(readFileSync(join(dir, 'eval', 'baseline.json'), 'utf8')));
  assert.equal(m.model, 'random-forest');
  assert.equal(m.n, 18);
  assert.equal(m.crops, null);
  assert.equal(m.details.features, 64);
  assert.ok(m.accuracy > 0.6, `accuracy ${m.accuracy} on colour-coded classes`);
});
