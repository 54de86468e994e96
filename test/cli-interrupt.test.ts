import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readLock } from '../pipeline/lock.ts';
import { startSimulator } from '../simulator/server.ts';

test('Ctrl-C during a crawl exits 130 with a resume hint, keeps progress, and a rerun finishes', async () => {
  const sim = await startSimulator({ genres: ['jazz', 'metal'], perGenre: 40, seed: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'covers-int-'));
  try {
    const args = (rate: number) => [
      join(import.meta.dirname, '..', 'bin', 'covers.js'), 'make', 'discover', '--data-dir', dir,
      '--set', 'genres=jazz,metal', '--set', 'perGenre=20', '--set', 'crawl.pageSize=5',
      '--set', `bandcamp.origin=${sim.origin}`, '--set', `bandcamp.imageOrigin=${sim.imageOrigin}`,
      '--set', `crawl.maxRequestsPerMinute=${rate}`,
    ];
    const child = spawn(process.execPath, args(120), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const t0 = Date.now();
    while (sim.log.filter((e) => e.path.startsWith('/api/discover') && e.status === 200).length < 2) {
      assert.ok(Date.now() - t0 < 30_000, 'the crawl never started');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    assert.equal(await exited, 130);
    assert.match(stderr, /interrupted; finished work is kept, and the same command resumes where it stopped/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace for an interruption');
    assert.match(stderr, /discover\s+interrupted in .* rerun to resume/, 'the summary calls it an interruption, not a failure');
    assert.equal(readLock(dir).stages.discover, undefined);
    assert.ok(!existsSync(join(dir, 'candidates.arrow')));
    const before = sim.log.filter((e) => e.path.startsWith('/api/discover') && e.status === 200 && !e.fault).length;

    const rerun = spawn(process.execPath, args(60_000), { stdio: 'ignore' });
    assert.equal(await new Promise((r) => rerun.on('exit', r)), 0);
    assert.ok(existsSync(join(dir, 'candidates.arrow')));
    const total = sim.log.filter((e) => e.path.startsWith('/api/discover') && e.status === 200 && !e.fault).length;
    assert.equal(total, 12, '2 genres × 6 pages of 5 (20 × oversample 1.5), each fetched once across both runs');
    assert.ok(before >= 2);
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
