/**
 * The decode pool (dataset/decode-pool.ts) on its own: shared-memory and message transport give the same bytes as
 * decoding in-process; released slots are reused; workers that cannot start fail the pending decodes with an Error
 * naming why (a broken installation, not a bad image); close() rejects what is pending.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DecodePool } from '../dataset/decode-pool.ts';
import { orderedMap, preprocessImage, PreprocessError, type PreprocessOptions } from '../dataset/preprocess.ts';
import { listCovers } from './helpers/dataset.ts';

const opts: PreprocessOptions = { size: 48, fit: 'cover', maxPixels: 50_000_000, decoder: 'auto' };

test('shared memory and message transport both give the in-process bytes, in order, with slots reused', async () => {
  const paths = listCovers().filter((_, i, all) => i % Math.max(1, Math.floor(all.length / 30)) === 0).map((c) => c.path); // about 30 covers
  const expected = await Promise.all(paths.map((p) => preprocessImage(p, opts)));
  for (const sharedMemory of [true, false]) {
    const pool = new DecodePool({ preprocess: opts, workers: 2, inFlightPerWorker: 2, timeoutMs: 30_000, sharedMemory });
    try {
      let i = 0;
      // 8 in flight over 2 × 2: results wait in orderedMap holding their slots until consumed and released.
      for await (const d of orderedMap(paths, 8, (p) => pool.decode(p))) {
        assert.ok(d.image.equals(expected[i]!), `sharedMemory ${sharedMemory}: image ${i}`);
        d.release();
        d.release(); // idempotent
        i++;
      }
      assert.equal(i, paths.length);
    } finally {
      await pool.close();
    }
  }
});

test('bad images are PreprocessErrors from the worker; workers that cannot start fail pending decodes with an Error; close() rejects pending work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'decode-pool-'));
  try {
    const pool = new DecodePool({ preprocess: opts, workers: 1, inFlightPerWorker: 1, timeoutMs: 30_000 });
    writeFileSync(join(dir, 'html.jpg'), '<html>403</html>');
    await assert.rejects(pool.decode(join(dir, 'html.jpg')), (e: unknown) => e instanceof PreprocessError && e.reason === 'unsupported-format');
    await assert.rejects(pool.decode(join(dir, 'missing.jpg')), (e: unknown) => e instanceof PreprocessError && e.reason === 'missing');
    const pending = assert.rejects(pool.decode(listCovers()[0]!.path), /DecodePool: closed/);
    await pool.close();
    await pending;

    const broken = join(dir, 'broken-worker.mjs');
    writeFileSync(broken, 'process.stderr.write("cannot load sharp: libvips missing\\n"); process.exit(3);\n');
    const events: string[] = [];
    const bad = new DecodePool({ preprocess: opts, workers: 1, inFlightPerWorker: 1, timeoutMs: 30_000, workerScript: broken, onEvent: (l) => events.push(l) });
    await assert.rejects(bad.decode(listCovers()[0]!.path), (e: unknown) => !(e instanceof PreprocessError) && /decode workers cannot start \(3 tries; the last exited with code 3: cannot load sharp: libvips missing\)/.test((e as Error).message));
    assert.equal(events.length, 3, events.join(' | '));
    await bad.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
