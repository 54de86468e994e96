/**
 * Resolves `pretrained.model` to a local file: a path as given, or an http(s) URL downloaded once into a cache
 * (`<cacheDir>/<16 hex of the URL's sha256>-<file name>`), resumable (the partial file `….part` is continued with an
 * HTTP `Range` request), verified against `pretrained.sha256` when given, with progress.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RerunLaterError, UserError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { createProgress } from '../util/progress.ts';
import { sha256File } from '../util/fsutil.ts';
import { isModelUrl } from '../schemas/pretrained-names.ts';

export { isModelUrl };

/** Options of {@link resolveModelFile}. */
export interface ResolveModelOptions {
  /** Where downloads are kept. */
  cacheDir: string;
  /** Expected sha256 (hex) of the file; empty: not checked. */
  sha256?: string;
  log: Logger;
  signal?: AbortSignal;
}


/** The cache path of a URL's download. */
export function cachedModelPath(url: string, cacheDir: string): string {
  const name = basename(new URL(url).pathname).replace(/[^A-Za-z0-9_.-]/g, '_') || 'model.onnx';
  return join(cacheDir, `${createHash('sha256').update(url).digest('hex').slice(0, 16)}-${name}`);
}

/**
 * Checks a file against the pinned sha256.
 * @throws UserError naming the file, the expected and the actual digest.
 */
async function verify(path: string, expected: string | undefined, what: string): Promise<void> {
  if (!expected) return;
  const actual = await sha256File(path);
  if (actual !== expected.toLowerCase()) {
    throw new UserError(`pretrained.sha256: ${what} has sha256 ${actual}, expected ${expected}; check pretrained.model and pretrained.sha256`);
  }
}

/**
 * Downloads `url` into `part`, continuing what is there.
 * @throws RerunLaterError (transient) naming the URL and the cache path when the network fails or the connection is
 *   cut (the part is kept and the next run resumes); UserError for an HTTP error status.
 */
async function download(url: string, part: string, final: string, log: Logger, signal?: AbortSignal): Promise<void> {
  const have = existsSync(part) ? statSync(part).size : 0;
  const offline = (why: string) =>
    new RerunLaterError(`pretrained.model: cannot download ${url} (${why}); ${have > 0 || existsSync(part) ? 'what arrived is kept and the next run resumes; ' : ''}without network, fetch it elsewhere and put it at ${final}, or set pretrained.model to a local path`);
  let res: Response;
  try {
    res = await fetch(url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal, redirect: 'follow' });
  } catch (e) {
    const cause = (e as Error & { cause?: Error }).cause;
    throw offline(cause?.message ?? (e as Error).message);
  }
  if (res.status === 416 && have > 0) return; // the part is already whole
  if (res.status !== 200 && res.status !== 206) {
    const msg = `pretrained.model: ${url} answered HTTP ${res.status} ${res.statusText}`;
    if (res.status >= 500 || res.status === 429) throw new RerunLaterError(`${msg}; rerun later`);
    throw new UserError(msg);
  }
  const append = res.status === 206;
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = (append ? have : 0) + (Number.isFinite(length) ? length : 0);
  const mib = (n: number) => Math.max(1, Math.round(n / 2 ** 20));
  const progress = createProgress(`download ${basename(final)} (MiB)`, Number.isFinite(length) ? mib(total) : 0, log);
  let received = append ? have : 0;
  progress.update(Math.floor(received / 2 ** 20));
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      progress.update(Math.floor(received / 2 ** 20));
      done(null, chunk);
    },
  });
  try {
    if (!res.body) throw new Error('empty response');
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), count, createWriteStream(part, { flags: append ? 'a' : 'w' }));
  } catch (e) {
    progress.stop();
    throw offline(`the transfer stopped after ${received} bytes: ${(e as Error).message}`);
  }
  progress.stop();
  if (Number.isFinite(length) && received !== total) throw offline(`received ${received} of ${total} bytes`);
}

/**
 * The local file `pretrained.model` names: a path (resolved, must exist) or a URL's cached download.
 * @throws UserError when the path does not exist or the file does not match `sha256`; RerunLaterError when a
 *   download fails for now (see {@link download}).
 */
export async function resolveModelFile(model: string, opts: ResolveModelOptions): Promise<string> {
  if (!model) throw new UserError('pretrained.model is not set: give the path or the https URL of an ONNX file or a tfjs model.json');
  if (!isModelUrl(model)) {
    const path = resolve(model);
    if (!existsSync(path)) throw new UserError(`pretrained.model: ${path} does not exist`);
    await verify(path, opts.sha256, path);
    return path;
  }
  const final = cachedModelPath(model, opts.cacheDir);
  if (existsSync(final)) {
    await verify(final, opts.sha256, `the cached download of ${model} (${final})`);
    return final;
  }
  mkdirSync(opts.cacheDir, { recursive: true });
  const part = `${final}.part`;
  opts.log.info(`downloading ${model} to ${final}`);
  await download(model, part, final, opts.log, opts.signal);
  try {
    await verify(part, opts.sha256, `the download of ${model}`);
  } catch (e) {
    rmSync(part, { force: true });
    throw e;
  }
  renameSync(part, final);
  return final;
}

/** The download cache: `$COVERS_CACHE_DIR/models`, else `$XDG_CACHE_HOME/bandcamp-covers/models`, else `~/.cache/bandcamp-covers/models`. */
export function defaultModelCacheDir(): string {
  if (process.env.COVERS_CACHE_DIR) return join(process.env.COVERS_CACHE_DIR, 'models');
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'bandcamp-covers', 'models');
}
