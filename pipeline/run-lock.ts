/**
 * One `covers` run per data directory: `DATA_DIR/.covers.pid`, taken atomically.
 *
 * - Taking: the file is created with `O_CREAT | O_EXCL` (`openSync(path, 'wx')`), so of two runs started at the same
 *   instant exactly one creates it; the other reads who holds it and stops with a message naming the holder (pid,
 *   host, command, since when).
 * - Content: one JSON line, {@link RunLockHolder}, written and fsync'ed right after the create. A reader that finds
 *   the file still empty (the holder is between its create and its write) waits briefly and reads again.
 * - Stale lock: a lock whose pid is dead on this host (`kill(pid, 0)` fails with ESRCH), or that stayed empty for
 *   {@link EMPTY_LOCK_STALE_MS} (its creator died between create and write), is taken over: renamed away to a unique
 *   name (atomic: of several takers exactly one rename succeeds), checked to be the very lock judged stale (its
 *   token), removed, and then created again with `O_EXCL` like a fresh take. A lock from another host is never
 *   judged stale (its pid means nothing here).
 * - Release: removes the file only if it still holds this run's token.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RerunLaterError, UserError } from './stage.ts';

/** The lock's file name inside the data directory. */
export const RUN_LOCK_FILE = '.covers.pid';

/** An empty lock older than this (ms) is stale: its creator died before writing it. */
const EMPTY_LOCK_STALE_MS = 5_000;

/** What the lock file says about the run holding it. */
export interface RunLockHolder {
  pid: number;
  hostname: string;
  /** The holder's command line (`process.argv`, joined by spaces). */
  command: string;
  /** ISO 8601, when the lock was taken. */
  since: string;
  /** Random, unique to this take: tells one take of the lock from another by the same pid. */
  token: string;
}

type Seen = { kind: 'holder'; holder: RunLockHolder; raw: string } | { kind: 'empty'; ageMs: number; raw: string } | { kind: 'unreadable'; raw: string } | { kind: 'absent' };

function readLock(path: string): Seen {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = readFileSync(path, 'utf8');
    mtimeMs = statSync(path).mtimeMs;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw e;
  }
  if (raw.trim() === '') return { kind: 'empty', ageMs: Date.now() - mtimeMs, raw };
  try {
    const h = JSON.parse(raw) as RunLockHolder;
    if (Number.isInteger(h.pid) && h.pid > 0 && typeof h.token === 'string') return { kind: 'holder', holder: h, raw };
  } catch {
    // An old-style lock (a bare pid, written by earlier versions) reads below.
  }
  const pid = Number(raw.trim());
  if (Number.isInteger(pid) && pid > 0) return { kind: 'holder', holder: { pid, hostname: hostname(), command: '(unknown)', since: '(unknown)', token: `legacy:${raw}` }, raw };
  return { kind: 'unreadable', raw };
}

/** Whether `pid` is a live process on this host (EPERM: alive, owned by someone else). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describe(h: RunLockHolder): string {
  return `pid ${h.pid}${h.hostname === hostname() ? '' : ` on host ${h.hostname}`}, \`${h.command}\`, since ${h.since}`;
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Takes the run lock of `dataDir` (which must exist).
 * @returns a function that releases it (idempotent; leaves a lock that is no longer this run's alone).
 * @throws UserError naming the holder (pid, host, command, since) when another live run holds it, or when the lock
 *   file cannot be read as a lock.
 */
export function acquireRunLock(dataDir: string): () => void {
  const path = join(dataDir, RUN_LOCK_FILE);
  const me: RunLockHolder = { pid: process.pid, hostname: hostname(), command: process.argv.join(' '), since: new Date().toISOString(), token: randomBytes(12).toString('hex') };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 50; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const seen = readLock(path);
      if (seen.kind === 'absent') continue; // released or taken over meanwhile: try again
      if (seen.kind === 'unreadable') throw new UserError(`the run lock ${path} holds something else than a covers lock (${JSON.stringify(seen.raw.slice(0, 80))}); remove it if no covers process works in ${dataDir}`);
      if (seen.kind === 'empty' && seen.ageMs < EMPTY_LOCK_STALE_MS) {
        sleepSync(20); // its creator is about to write it
        continue;
      }
      if (seen.kind === 'holder') {
        const h = seen.holder;
        if (h.pid === process.pid && h.hostname === me.hostname) throw new UserError(`this process (pid ${h.pid}) already holds the run lock ${path}`);
        if (h.hostname !== me.hostname || pidAlive(h.pid)) {
          // Exit 75, rerun later: the same command succeeds once the other run has finished.
          throw new RerunLaterError(`another covers process holds ${dataDir} (${describe(h)}); wait for it or stop it, then rerun (the lock is ${path})`);
        }
      }
      takeOver(path, seen.raw);
      continue;
    }
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = readLock(path);
      if (now.kind === 'holder' && now.holder.token === me.token) rmSync(path, { force: true });
    };
  }
  throw new UserError(`could not take the run lock ${path}: other processes keep taking and releasing it`);
}

/**
 * Moves the stale lock whose content is `staleRaw` out of the way. Rename is atomic: of several processes taking
 * over, one moves it; the others find the path absent, or holding the winner's new lock. A moved file that turns out
 * not to be the stale one (another taker replaced it between our read and our rename) is linked back (link fails if
 * a third lock appeared meanwhile; that one then wins and ours is dropped).
 */
function takeOver(path: string, staleRaw: string): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  let moved = '';
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    /* unreadable: treat as not ours */
  }
  if (moved !== staleRaw) {
    try {
      linkSync(aside, path);
    } catch {
      /* a newer lock is in place */
    }
  }
  rmSync(aside, { force: true });
}
