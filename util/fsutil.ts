/**
 * File-system helpers: atomic writes (temporary file in the same directory, fsync, then rename), so a reader never
 * sees a half-written file and a killed process leaves either the old file or the new one.
 */
import { randomBytes, createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync, createReadStream } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** A temporary path next to `path` (same directory, so `rename` is atomic). */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** `fs.writeSync`'s shape: writes `length` bytes of `buffer` from `offset` to `fd`, @returns the bytes written. */
export type WriteSync = (fd: number, buffer: Uint8Array, offset: number, length: number) => number;

/**
 * Writes `data` to `path` atomically, creating parent directories.
 * @param write the write call (default `fs.writeSync`); tests pass one that fails part-way, as a full disk does.
 * @throws the underlying fs error (the temporary file is removed).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, write: WriteSync = writeSync): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < buf.byteLength) off += write(fd, buf, off, buf.byteLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw withPath(e, path);
  }
}

/**
 * Names the file in a file-system error that lacks it (`ENOSPC … write` carries no path): sets `path` on the error
 * when absent. @returns the same error.
 */
export function withPath(e: unknown, path: string): unknown {
  if (e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && !(e as NodeJS.ErrnoException).path) (e as NodeJS.ErrnoException).path = path;
  return e;
}

/** sha256 (hex) of a file's content, streamed (memory stays bounded for large files). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** sha256 (hex) of bytes. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
