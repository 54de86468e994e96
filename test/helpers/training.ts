/**
 * Set-up shared by the training tests: tiny synthetic shards in a temporary directory, read back, with the backend
 * selected; and deterministic test values.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { selectBackend, type BackendName } from '../../train/backends.ts';
import { readMean } from '../../schemas/mean.ts';
import { splitDir } from '../../schemas/shards/names.ts';
import { readSplit, type SplitData } from '../../schemas/shards/read.ts';
import { writeTestShards, type TestShardOptions } from '../../dataset/synthetic-shards.ts';
import type { TrainResult } from '../../train/train-loop.ts';

/** What {@link tinyShards} provides once its `before` hook has run. */
export interface TinyShards {
  /** The temporary data directory (removed after the file's tests). */
  dir: string;
  train: SplitData;
  validation: SplitData;
  test: SplitData;
  /** Per-pixel mean `[size, size, 3]` float32. */
  mean: Float32Array;
}

/**
 * Registers `before`/`after` hooks that write synthetic shards (dataset/synthetic-shards.ts, `opts`) to a fresh
 * temporary directory named `prefix…`, read every split and the mean, and select `backend` (default wasm); the
 * directory is removed after the file's tests. Returns an object whose fields are filled in by the `before` hook.
 */
export function tinyShards(prefix: string, opts: TestShardOptions & { size: number }, backend: BackendName | null = 'wasm'): TinyShards {
  const s = {} as TinyShards;
  before(async () => {
    s.dir = mkdtempSync(join(tmpdir(), prefix));
    writeTestShards(s.dir, opts);
    s.train = await readSplit(join(s.dir, splitDir('train')));
    s.validation = await readSplit(join(s.dir, splitDir('validation')));
    s.test = await readSplit(join(s.dir, splitDir('test')));
    s.mean = readMean(join(s.dir, 'shards', 'mean.arrow'), opts.size);
    if (backend) await selectBackend(backend);
  });
  after(() => rmSync(s.dir, { recursive: true, force: true }));
  return s;
}

/** `n` deterministic pseudo-random values in [-1, 1) (xorshift32 from `seed`). */
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Every weight of a model (trainable and not, e.g. batch norm's moving statistics), in order. */
export function weightsOf(m: { getWeights(): { dataSync(): unknown }[] }): Float32Array[] {
  return m.getWeights().map((w) => w.dataSync() as Float32Array);
}

/** The largest absolute difference between `a` and `b`, tensor by tensor relative to `b`'s largest magnitude (≥ 1e-6). */
export function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  a.forEach((x, i) => {
    let scale = 1e-6;
    let err = 0;
    for (let j = 0; j < x.length; j++) {
      scale = Math.max(scale, Math.abs(b[i]![j]!));
      err = Math.max(err, Math.abs(x[j]! - b[i]![j]!));
    }
    d = Math.max(d, err / scale);
  });
  return d;
}

/**
 * Asserts that a data-parallel training result equals the 1-thread one up to float summation order: each epoch's
 * training loss within 1e-4 (relative above 1), the same training accuracy, weights within 1e-4 relative.
 * @returns the weights' largest relative difference.
 */
export function assertSameTraining(r: TrainResult, one: TrainResult, label: string): number {
  assert.equal(r.metrics.length, one.metrics.length, `${label}: epochs`);
  r.metrics.forEach((m, i) => {
    const e = one.metrics[i]!;
    assert.ok(Math.abs(m.trainLoss - e.trainLoss) < 1e-4 * Math.max(1, e.trainLoss), `${label}, epoch ${i + 1}: train loss ${m.trainLoss} vs ${e.trainLoss}`);
    assert.equal(m.trainAccuracy, e.trainAccuracy, `${label}, epoch ${i + 1}: train accuracy`);
  });
  const d = maxRelDiff(weightsOf(r.model), weightsOf(one.model));
  assert.ok(d < 1e-4, `${label}: weights differ from 1 thread by ${d} (relative to each tensor's largest)`);
  return d;
}
