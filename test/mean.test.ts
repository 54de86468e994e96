/** The per-pixel mean accumulator (dataset/mean.ts) and the `mean` stage's errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { MeanAccumulator } from '../dataset/mean.ts';
import { defaultConfig } from '../pipeline/config-core.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { meanStage } from '../stages/index.ts';
import { meanSchema } from '../schemas/mean.ts';

test('MeanAccumulator: per-pixel mean, channel mean and std equal a direct float64 computation', () => {
  const S = 5, n = 9;
  const images = new Uint8Array(n * S * S * 3);
  let x = 12345;
  for (let i = 0; i < images.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    images[i] = x >>> 24;
  }
  const acc = new MeanAccumulator(S);
  acc.add(images.subarray(0, 4 * S * S * 3), 4);
  acc.add(images.subarray(4 * S * S * 3), 5);
  assert.equal(acc.count, n);
  const mean = acc.mean();
  for (let j = 0; j < S * S * 3; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += images[k * S * S * 3 + j]!;
    assert.equal(mean[j], Math.fround(s / n));
  }
  const { mean: cm, std: cs } = acc.channelStats();
  for (let c = 0; c < 3; c++) {
    const vals = Array.from(images).filter((_, i) => i % 3 === c);
    const m = vals.reduce((a, b) => a + b, 0) / vals.length;
    const sd = Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / vals.length);
    assert.ok(Math.abs(cm[c] - m) < 1e-9);
    assert.ok(Math.abs(cs[c] - sd) < 1e-9);
  }
  const table = arrow.tableFromIPC(acc.toArrowStream());
  assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${f.type}`), meanSchema(S).fields.map((f) => `${f.name}:${f.type}`));
  assert.deepEqual(Array.from((table.getChild('mean')!.get(0) as arrow.Vector).toArray() as Float32Array), Array.from(mean));
  assert.equal(Number(table.getChild('count')!.get(0)), n);
  assert.deepEqual(acc.summary().shape, [S, S, 3]);
  assert.throws(() => acc.add(new Uint8Array(7), 1), /not 1 images/);
  assert.throws(() => new MeanAccumulator(S).mean(), /no images/);
});

test('mean stage: missing shards are a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mean-'));
  try {
    await assert.rejects(runStageOnce(meanStage, { config: defaultConfig(), dataDir: dir, log: createLogger({ level: 'quiet' }) }), /split "train" not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
