/**
 * `DATA_DIR/pipeline.lock.json`, in the spirit of `dvc.lock`: per stage, the hash of its parameters, of its inputs'
 * content, of its outputs and its version, plus timings. Output hashes are content hashes (sha256); a per-file cache
 * keyed by (size, mtime) in `DATA_DIR/.work/hash-cache.json` avoids rehashing unchanged files, as DVC's state does.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
// Checked without zod (util/shape.ts): every command reads the lock at start-up, and zod takes longer to load than
// the rest of `covers status` (docs/ARCHITECTURE.md, instant CLI).
import { int, literal, nullable, number, object, optional, record, ShapeError, string, unknown, type Infer } from '../util/shape.ts';
import { UserError } from '../util/errors.ts';
import { sha256, sha256File, writeFileAtomic } from '../util/fsutil.ts';

/** The lock file's name under the data directory. */
export const LOCK_FILE = 'pipeline.lock.json';
const HASH_CACHE = join('.work', 'hash-cache.json');

/** The hash of one output path (a file, or a directory hashed over its files' relative paths and contents). */
const OutputHashSchema = object({
  /** sha256 over the content (for a directory: over "relative path\0sha256\n" of each file, sorted). */
  hash: string,
  /** Files under the path (1 for a file). */
  files: int,
  /** Total size, in bytes. */
  bytes: int,
});
export type OutputHash = Infer<typeof OutputHashSchema>;

/** One stage's lock entry. */
const LockEntrySchema = object({
  version: int,
  /** Values of the stage's declared config keys. */
  params: record(unknown),
  paramsHash: string,
  /** For each dependency (not skipped), the combined hash of its outputs when this stage ran. */
  deps: record(string),
  /** Content hashes of files outside the pipeline that the stage read (absolute path → sha256). */
  extraInputs: record(string),
  /**
   * Content hash of each declared input (path relative to the data directory → {@link OutputHash}`.hash`, null when
   * it was absent) when this stage ran. Absent in entries written before stages declared their inputs: those are
   * judged by `deps` alone.
   */
  inputs: optional(record(nullable(string))),
  /** Hashes of the stage's outputs (relative path → hash). */
  outputs: record(OutputHashSchema),
  /** Combined hash of all outputs; dependents record it. */
  outputsHash: string,
  startedAt: string,
  finishedAt: string,
  /** Wall time of the run, in ms. */
  durationMs: number,
  /**
   * Set when the stage finished incomplete (`ctx.incomplete`, e.g. a listing ended early by a misbehaving site): why.
   * Its outputs are committed and used, but the stage counts as stale until a run finishes without it. Absent in
   * entries of complete runs (and of every run before it existed), so older lock files read as before.
   */
  incomplete: optional(string),
});
export type LockEntry = Infer<typeof LockEntrySchema>;

/** The whole lock file (`DATA_DIR/pipeline.lock.json`): format version 1, one {@link LockEntrySchema} per stage name. */
export const LockFileSchema = object({
  lockVersion: literal(1),
  stages: record(LockEntrySchema),
});
export type LockFile = Infer<typeof LockFileSchema>;

/**
 * Reads the lock file; an absent file is an empty lock.
 * @throws UserError naming the file when it exists but is not a valid lock file.
 */
export function readLock(dataDir: string): LockFile {
  const path = join(dataDir, LOCK_FILE);
  if (!existsSync(path)) return { lockVersion: 1, stages: {} };
  return readLockFile(path);
}

/**
 * Reads a lock file at `path`.
 * @throws UserError naming the file when it is absent, not JSON or not a valid lock file (exit 1 with that message,
 *   no stack trace).
 */
export function readLockFile(path: string): LockFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message}); delete it to rebuild every stage`);
  }
  try {
    return LockFileSchema(raw);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new UserError(`${path}: not a pipeline lock file (${e.message}); delete it to rebuild every stage`);
  }
}

/** Writes the lock file atomically, with stable key order. */
export function writeLock(dataDir: string, lock: LockFile): void {
  const stages = Object.fromEntries(Object.entries(lock.stages).sort(([a], [b]) => a.localeCompare(b)));
  writeFileAtomic(join(dataDir, LOCK_FILE), `${JSON.stringify({ lockVersion: 1, stages }, null, 2)}\n`);
}

/** Sets (or with `entry` null, removes) one stage's entry: re-reads the file first, so other entries are kept. */
export function updateLockEntry(dataDir: string, stage: string, entry: LockEntry | null): void {
  const lock = readLock(dataDir);
  if (entry) lock.stages[stage] = entry;
  else delete lock.stages[stage];
  writeLock(dataDir, lock);
}

type CacheEntry = { size: number; mtimeMs: number; sha256: string };

/** Hashes files with a (size, mtime) cache; call `save()` to persist the cache. */
export class Hasher {
  private cache: Record<string, CacheEntry> = {};
  private dirty = false;
  constructor(private readonly dataDir: string) {
    const p = join(dataDir, HASH_CACHE);
    if (existsSync(p)) {
      try {
        this.cache = JSON.parse(readFileSync(p, 'utf8')) as Record<string, CacheEntry>;
      } catch {
        this.cache = {};
      }
    }
  }

  /** sha256 of a file, from the cache when its size and mtime are unchanged. */
  async file(abs: string): Promise<{ sha256: string; size: number }> {
    const st = statSync(abs);
    const key = relative(this.dataDir, abs);
    const hit = this.cache[key];
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return { sha256: hit.sha256, size: st.size };
    const sha = await sha256File(abs);
    this.cache[key] = { size: st.size, mtimeMs: st.mtimeMs, sha256: sha };
    this.dirty = true;
    return { sha256: sha, size: st.size };
  }

  /**
   * Hash of an output path relative to the data directory, or null when it does not exist. Temporary files of
   * atomic writes in progress (`.name.tmp-*`) are ignored.
   */
  async output(rel: string): Promise<OutputHash | null> {
    const abs = join(this.dataDir, rel);
    if (!existsSync(abs)) return null;
    const st = statSync(abs);
    if (st.isFile()) {
      const one = await this.file(abs);
      return { hash: one.sha256, files: 1, bytes: one.size };
    }
    const files = listFiles(abs).sort();
    const h = createHash('sha256');
    let bytes = 0;
    for (const f of files) {
      const one = await this.file(join(abs, f));
      bytes += one.size;
      h.update(`${f.split(sep).join('/')}\0${one.sha256}\n`);
    }
    return { hash: h.digest('hex'), files: files.length, bytes };
  }

  /** Persists the cache (best effort). */
  save(): void {
    if (!this.dirty) return;
    try {
      writeFileAtomic(join(this.dataDir, HASH_CACHE), JSON.stringify(this.cache));
      this.dirty = false;
    } catch {
      /* the cache is only an optimisation */
    }
  }
}

function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    if (/^\..*\.tmp-/.test(ent.name)) continue;
    const rel = prefix ? join(prefix, ent.name) : ent.name;
    if (ent.isDirectory()) out.push(...listFiles(join(dir, ent.name), rel));
    else if (ent.isFile()) out.push(rel);
  }
  return out;
}

/** Combined hash of a stage's output hashes (order-independent). */
export function combineOutputHashes(outputs: Record<string, OutputHash>): string {
  const h = Object.entries(outputs)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}\0${v.hash}`)
    .join('\n');
  return sha256(h);
}
