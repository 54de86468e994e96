/**
 * One run per data directory (pipeline/run-lock.ts): processes racing for the lock at the same instant (one wins, the
 * others name it), stale locks taken over (also by racing processes: still one winner), and the real CLI: two
 * `covers make` started together on one data directory, then a lock left by a SIGKILLed run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { acquireRunLock, RUN_LOCK_FILE, type RunLockHolder } from '../pipeline/run-lock.ts';
import { UserError } from '../pipeline/stage.ts';
import { startSimulator } from '../simulator/server.ts';

const RACER = join(import.meta.dirname, 'helpers', 'lock-racer.ts');

interface RaceResult { ok: boolean; pid: number; error?: string; lateMs: number }

/** Starts `n` racers that all try to take the lock of `dir` at the same wall-clock instant. */
async function race(dir: string, n: number): Promise<RaceResult[]> {
  const startAt = Date.now() + 6000; // room for every racer to boot (tsx) on a loaded machine
  const runs = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', RACER, dir, String(startAt), '4000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise<RaceResult>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim()) as RaceResult) : reject(new Error(`racer exited ${code}: ${out}`)))));
  });
  return Promise.all(runs);
}

/** A pid that is certainly dead: a process that has exited. */
function deadPid(): number {
  const p = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(p.stdout);
}

function checkOneWinner(results: RaceResult[]): void {
  const winners = results.filter((r) => r.ok);
  assert.equal(winners.length, 1, `exactly one racer takes the lock: ${JSON.stringify(results)}`);
  for (const r of results.filter((x) => !x.ok)) {
    assert.match(r.error!, new RegExp(`another covers process holds .* \\(pid ${winners[0]!.pid}, \`.*lock-racer\\.ts.*\`, since \\d{4}-`), 'the loser names the holder');
  }
}

test('processes taking the lock at the same instant: exactly one wins, the others name it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-lock-'));
  try {
    const results = await race(dir, 5);
    checkOneWinner(results);
    assert.ok(!existsSync(join(dir, RUN_LOCK_FILE)), 'released by the winner');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stale lock (dead pid) is taken over, also by racing processes: still exactly one winner, nothing left behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-lock-'));
  try {
    const stale: RunLockHolder = { pid: deadPid(), hostname: hostname(), command: 'covers make (killed)', since: new Date().toISOString(), token: 'dead' };
    writeFileSync(join(dir, RUN_LOCK_FILE), `${JSON.stringify(stale)}\n`);
    checkOneWinner(await race(dir, 5));
    assert.deepEqual(readdirSync(dir), [], 'no lock nor set-aside stale lock left');

    // In-process: an old-style lock (a bare dead pid) and an empty lock older than a few seconds are stale too.
    writeFileSync(join(dir, RUN_LOCK_FILE), `${deadPid()}\n`);
    const release = acquireRunLock(dir);
    const holder = JSON.parse(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8')) as RunLockHolder;
    assert.equal(holder.pid, process.pid);
    assert.equal(holder.hostname, hostname());
    assert.throws(() => acquireRunLock(dir), (e: Error) => e instanceof UserError && /already holds/.test(e.message));
    release();
    assert.ok(!existsSync(join(dir, RUN_LOCK_FILE)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a live holder is never taken over; a lock from another host is never judged stale; garbage is not a lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-lock-'));
  const path = join(dir, RUN_LOCK_FILE);
  try {
    const live: RunLockHolder = { pid: process.ppid, hostname: hostname(), command: 'covers make train', since: '2026-12-01T00:00:00.000Z', token: 'x' };
    writeFileSync(path, JSON.stringify(live));
    assert.throws(() => acquireRunLock(dir), (e: Error) => e instanceof UserError && e.message.includes(`pid ${process.ppid}, \`covers make train\`, since 2026-12-01T00:00:00.000Z`));
    writeFileSync(path, JSON.stringify({ ...live, pid: deadPid(), hostname: 'elsewhere' }));
    assert.throws(() => acquireRunLock(dir), (e: Error) => e instanceof UserError && / on host elsewhere/.test(e.message));
    writeFileSync(path, 'hello');
    assert.throws(() => acquireRunLock(dir), (e: Error) => e instanceof UserError && /holds something else than a covers lock/.test(e.message));
    assert.equal(readFileSync(path, 'utf8'), 'hello', 'left alone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two `covers make` started together on one data directory: one runs, the other exits naming it; a SIGKILLed run\'s lock is taken over', async () => {
  const sim = await startSimulator({ genres: ['jazz', 'metal'], perGenre: 40, seed: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'covers-lock-'));
  const covers = join(import.meta.dirname, '..', 'bin', 'covers.js');
  const args = (rate: number) => [
    covers, 'make', 'discover', '--data-dir', dir,
    '--set', 'genres=jazz,metal', '--set', 'perGenre=20', '--set', 'crawl.pageSize=5',
    '--set', `bandcamp.origin=${sim.origin}`, '--set', `bandcamp.imageOrigin=${sim.imageOrigin}`,
    '--set', `crawl.maxRequestsPerMinute=${rate}`,
  ];
  const start = (rate: number) => {
    const child = spawn(process.execPath, args(rate), { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stderr: '', code: undefined as number | null | undefined };
    child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r((out.code = code))));
    return { child, out, exited };
  };
  try {
    // Slow crawl (60 requests/min): the winner is still running when the loser gives up.
    const a = start(60);
    const b = start(60);
    const first = await Promise.race([a.exited.then(() => a), b.exited.then(() => b)]);
    const other = first === a ? b : a;
    assert.equal(first.out.code, 75, `the loser exits 75, rerun later: ${first.out.stderr}`);
    assert.match(first.out.stderr, new RegExp(`another covers process holds .* \\(pid ${other.child.pid}, \`.*covers\\.js make discover`), 'names the holder');
    assert.equal(other.out.code, undefined, 'the winner is still running');
    const holder = JSON.parse(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8')) as RunLockHolder;
    assert.equal(holder.pid, other.child.pid);

    other.child.kill('SIGKILL');
    await other.exited;
    assert.ok(existsSync(join(dir, RUN_LOCK_FILE)), 'a killed run leaves its lock');
    const rerun = start(60_000);
    assert.equal(await rerun.exited, 0, `the next run takes the stale lock over and finishes: ${rerun.out.stderr}`);
    assert.ok(existsSync(join(dir, 'candidates.arrow')));
    assert.ok(!existsSync(join(dir, RUN_LOCK_FILE)), 'and releases it');
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
