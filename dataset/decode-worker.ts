/**
 * The decode worker: a child process of {@link DecodePool} (dataset/decode-pool.ts) that preprocesses images
 * ({@link preprocessImageVia}) for its parent, so that a decoder that crashes (SIGSEGV in native code) or hangs on a
 * stranger's file takes down only this process, never the stage.
 *
 * Protocol (Node IPC, JSON messages; types {@link WorkerRequest} and {@link WorkerReply}):
 * 1. parent → `init` (preprocess options, and the path of a shared-memory file of `slots` × S·S·3 bytes, or none);
 *    worker → `ready` once it has mapped the file (the parent then unlinks it).
 * 2. parent → `decode` (tasks: id, image path, slot); worker → `done` with, per task, the path taken (`fast` /
 *    `sharp`) and the image in that slot of the shared file (or, without shared memory, inline as `image`), or a
 *    rejection (reason, detail). Several tasks may be in flight; each result names its task id. Tasks handed out
 *    together, and results finished in the same turn of the event loop, share one message (each IPC message costs
 *    both processes tens of microseconds).
 * A worker exits when its IPC channel closes.
 *
 * Run as a script (`node --import tsx dataset/decode-worker.ts`) it serves with {@link preprocessImageVia}; tests start
 * stand-ins that call {@link serveDecodeRequests} with a decoder of their own (one that crashes or hangs on purpose).
 */
import { fileURLToPath } from 'node:url';
import { fastJpeg, preprocessImageVia, PreprocessError, type PreprocessOptions } from './preprocess.ts';

/** A message from the pool to a worker (several decode tasks per message when they are handed out together). */
export type WorkerRequest =
  | { type: 'init'; opts: PreprocessOptions; shm: string | null; slots: number }
  | { type: 'decode'; tasks: { id: number; path: string; slot: number }[] };

/** The outcome of one decode task: the path taken (image in its slot, or inline), or a rejection. */
export type DecodeResult = { id: number; via: 'fast' | 'sharp'; image?: Uint8Array } | { id: number; reason: string; detail: string };

/** A message from a worker to the pool (the results that finished in the same turn of its event loop). */
export type WorkerReply = { type: 'ready' } | { type: 'done'; results: DecodeResult[] };

/**
 * What a worker runs per image: `(path, opts, into)` → the S·S·3 bytes (written into `into` when given, or returned)
 * and the implementation that decoded them ({@link preprocessImageVia}).
 * @throws PreprocessError for a bad image (any other error is reported as `corrupt` with its message).
 */
export type DecodeFn = (path: string, opts: PreprocessOptions, into: Buffer | undefined) => Promise<{ image: Buffer; via: 'fast' | 'sharp' }>;

/**
 * Serves the pool's requests on this process's IPC channel with `decode` until the channel closes.
 * @throws Error when this process has no IPC channel (not started by the pool).
 */
export function serveDecodeRequests(decode: DecodeFn = preprocessImageVia): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('decode-worker: no IPC channel (this process is started by dataset/decode-pool.ts)');
  let opts: PreprocessOptions | null = null;
  let shared: Buffer | null = null;
  let slotBytes = 0;
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C reaches the whole process group: the parent decides (it stops the stage and then its workers).
  process.on('SIGINT', () => undefined);
  process.on('message', (m: WorkerRequest) => {
    if (m.type === 'init') {
      opts = m.opts;
      slotBytes = m.opts.size * m.opts.size * 3;
      const fj = m.shm ? fastJpeg() : null;
      if (m.shm && !fj) throw new Error('decode-worker: shared memory asked for, but the fastjpeg addon did not load');
      shared = m.shm && fj ? fj.mapShared(m.shm, m.slots * slotBytes) : null;
      send({ type: 'ready' } satisfies WorkerReply);
      return;
    }
    for (const t of m.tasks) run(t);
  });
  let pending: DecodeResult[] = [];
  const flush = () => {
    const results = pending;
    pending = [];
    send({ type: 'done', results } satisfies WorkerReply);
  };
  const reply = (r: DecodeResult) => {
    if (pending.length === 0) setImmediate(flush);
    pending.push(r);
  };
  const run = (t: { id: number; path: string; slot: number }) => {
    const into = shared ? shared.subarray(t.slot * slotBytes, (t.slot + 1) * slotBytes) : undefined;
    decode(t.path, opts!, into).then(
      ({ image, via }) => {
        if (into) {
          if (image !== into) image.copy(into);
          reply({ id: t.id, via });
        } else {
          reply({ id: t.id, via, image });
        }
      },
      (e: unknown) => {
        reply(e instanceof PreprocessError ? { id: t.id, reason: e.reason, detail: e.detail } : { id: t.id, reason: 'corrupt', detail: ((e as Error)?.message ?? String(e)).split('\n')[0]! });
      },
    );
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) serveDecodeRequests();
