/**
 * Every file in dataset/native/fuzz/regressions/ (inputs that crashed the fast decoder once, or that the fuzzer found;
 * dataset/native/fuzz/run.sh) goes through the `shards` stage's decoder in a decode worker (dataset/decode-pool.ts):
 * each must decode or be rejected with a reason of its own, never crash or hang the worker.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DecodePool } from '../dataset/decode-pool.ts';
import { fastJpeg, PreprocessError } from '../dataset/preprocess.ts';

const DIR = join(import.meta.dirname, '..', 'dataset', 'native', 'fuzz', 'regressions');

test('fuzz regressions: each file decodes or is rejected with its reason, none crashes or hangs the decoder', { skip: fastJpeg() ? false : 'fastjpeg addon not built' }, async () => {
  const files = readdirSync(DIR).sort();
  assert.ok(files.length >= 5, `regression files: ${files.join(', ')}`);
  const pool = new DecodePool({ preprocess: { size: 64, fit: 'cover', maxPixels: 50_000_000, decoder: 'fast' }, workers: 1, inFlightPerWorker: 1, timeoutMs: 20_000 });
  const events: string[] = [];
  let firstPid: number[] | null = null;
  try {
    for (const name of files) {
      const outcome = await pool.decode(join(DIR, name)).then(
        (d) => {
          d.release();
          return `decoded via ${d.via}`;
        },
        (e: unknown) => {
          assert.ok(e instanceof PreprocessError, `${name}: ${String(e)}`);
          return e.reason;
        },
      );
      assert.ok(!['decoder-crash', 'decoder-timeout'].includes(outcome), `${name}: ${outcome}`);
      events.push(`${name}: ${outcome}`);
      firstPid ??= pool.workerPids();
    }
    // The original crash: the IFD0 offset 0xFFFFFFFE made `ifd + 2` wrap to 0 and the read run off by ~4 GiB.
    assert.ok(events.includes('exif-ifd-offset-near-232.jpg: exif-unreadable'), events.join('; '));
    assert.deepEqual(pool.workerPids(), firstPid, 'the one worker never restarted');
  } finally {
    await pool.close();
  }
});
