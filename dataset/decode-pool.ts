/**
 * Decode isolation: a small pool of restartable child processes that preprocess images (dataset/decode-worker.ts,
 * {@link preprocessImageVia}), like img2dataset's subprocess resizers. The covers come from strangers and the fast
 * decoder is our own native code: if a decoder crashes (a signal such as SIGSEGV, an abort, an exit) or hangs on one
 * file, only its worker dies; the file is rejected with `decoder-crash` or `decoder-timeout` and the stage goes on
 * with a fresh worker.
 *
 * - `workers` processes, each with up to `inFlightPerWorker` images at once (its own libuv thread pool decodes them).
 * - A crash with one image in flight rejects that image (`decoder-crash`, detail naming the signal or exit code).
 *   A crash with several in flight cannot say which one did it: each of them is retried alone in a fresh worker
 *   (no other image in flight there), and only the one that crashes alone is rejected; the others decode normally.
 * - A worker that has not answered for an image after `timeoutMs` is killed (SIGKILL). Alone in its worker, that
 *   image is rejected (`decoder-timeout`); with others in flight (a hang may block the whole worker, so any of them
 *   may be the cause) each is retried alone, like after a crash.
 * - Images come back through shared memory when the fastjpeg addon loads: each worker gets a file of
 *   2 × `inFlightPerWorker` slots of S·S·3 bytes mapped by both processes (the addon's `mapShared`; unlinked as soon
 *   as the worker has mapped it). The worker decodes straight into a slot and the caller reads the slot in place
 *   until it releases it ({@link Decoded.release}): no copy, no allocation per image; tasks and results travel in
 *   small IPC messages, batched per turn of the event loop. Without the addon, images travel in the IPC message
 *   (structured clone, ~0.3 ms of the parent's CPU per 256×256 image).
 * - A worker that cannot start (e.g. tsx or sharp missing) three times in a row fails every pending decode with an
 *   Error naming its stderr: that is a broken installation, not a bad image.
 *
 * Cost (bench/preprocess.bench.ts, bench/RESULTS.md): the pool against decoding in the stage's own process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fastJpeg, preprocessCounts, PreprocessError, REJECT_REASONS, type PreprocessOptions, type RejectReason } from './preprocess.ts';
import type { DecodeResult, WorkerReply, WorkerRequest } from './decode-worker.ts';

/** Options of {@link DecodePool}. */
export interface DecodePoolOptions {
  /** What each worker does to an image (`decoder` already resolved, {@link resolveDecoder}). */
  preprocess: PreprocessOptions;
  /** Worker processes (≥ 1). */
  workers: number;
  /** Images in flight per worker (≥ 1). */
  inFlightPerWorker: number;
  /** An image still decoding after this many milliseconds is rejected as `decoder-timeout`. */
  timeoutMs: number;
  /**
   * The worker's script (default dataset/decode-worker.ts, run with tsx). Tests pass stand-ins that crash or hang
   * on purpose; a stand-in calls {@link serveDecodeRequests}.
   */
  workerScript?: string;
  /** Hand images back through shared memory (default: when the fastjpeg addon loads, which provides it). */
  sharedMemory?: boolean;
  /** Called with one line per worker crash, timeout or restart (for the stage's log). */
  onEvent?: (line: string) => void;
}

/** A decoded image and the implementation that decoded it. */
export interface Decoded {
  /**
   * `[S, S, 3]` uint8 RGB, HWC, row-major: S·S·3 bytes. With shared memory this is a view of the worker's slot,
   * valid until {@link Decoded.release}: copy what you keep before releasing.
   */
  image: Buffer;
  via: 'fast' | 'sharp';
  /** Gives the image's slot back to its worker (idempotent). Every decoded image must be released. */
  release(): void;
}

/**
 * Slots per worker, as a multiple of its images in flight: the caller may hold as many decoded images (unreleased,
 * e.g. waiting in {@link orderedMap} for their turn) as there are images in flight.
 */
const SLOTS_PER_IN_FLIGHT = 2;

interface Task {
  id: number;
  path: string;
  resolve: (d: Decoded) => void;
  reject: (e: Error) => void;
  /** Was in flight in a worker that crashed with other images: must run alone next time. */
  suspect: boolean;
}

interface Worker {
  proc: ChildProcess;
  ready: boolean;
  /** Shared slots (SLOTS_PER_IN_FLIGHT × inFlightPerWorker × S·S·3 bytes), or null when images travel in messages. */
  shared: Buffer | null;
  shmPath: string | null;
  freeSlots: number[];
  running: Map<number, { task: Task; slot: number; timer: NodeJS.Timeout }>;
  /** Tasks handed to this worker in the current turn, sent together as one message. */
  outbox: { id: number; path: string; slot: number }[];
  /** Runs a suspect task alone: takes no other task until it finishes. */
  exclusive: boolean;
  /** Set once we decided its end (timeout kill, close), so that `exit` is not taken for a crash. */
  killedFor: 'timeout' | 'close' | null;
  stderrTail: string;
}

const DEFAULT_WORKER = fileURLToPath(new URL('./decode-worker.ts', import.meta.url));
const MAX_START_FAILURES = 3;

/** The directory for shared-memory files: /dev/shm (RAM) where it exists, else the OS temp directory. */
function shmDir(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

/**
 * A pool of decode worker processes; see the module comment. Use one per stage run and {@link DecodePool.close} it.
 */
export class DecodePool {
  private readonly opts: DecodePoolOptions;
  private readonly slotBytes: number;
  private readonly useShm: boolean;
  private readonly queue: Task[] = [];
  private readonly workers = new Set<Worker>();
  private nextId = 0;
  private startFailures = 0;
  private closed = false;
  private fatal: Error | null = null;

  constructor(opts: DecodePoolOptions) {
    if (!(opts.workers >= 1 && opts.inFlightPerWorker >= 1 && opts.timeoutMs > 0)) throw new RangeError('DecodePool: workers and inFlightPerWorker must be ≥ 1, timeoutMs > 0');
    this.opts = opts;
    this.slotBytes = opts.preprocess.size * opts.preprocess.size * 3;
    this.useShm = (opts.sharedMemory ?? true) && fastJpeg() !== null;
  }

  /**
   * Preprocesses the image at `path` in a worker.
   * @throws PreprocessError for a bad image (its reason, or `decoder-crash` / `decoder-timeout`); Error when the
   *   workers cannot start or the pool is closed.
   */
  decode(path: string): Promise<Decoded> {
    if (this.closed) return Promise.reject(new Error('DecodePool: closed'));
    if (this.fatal) return Promise.reject(this.fatal);
    return new Promise<Decoded>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, path, resolve, reject, suspect: false });
      this.pump();
    });
  }

  /** Process ids of the running workers (benchmarks read their CPU time from /proc). */
  workerPids(): number[] {
    return [...this.workers].map((w) => w.proc.pid!).filter((pid) => pid !== undefined);
  }

  /**
   * Starts the workers now instead of at the first {@link decode}, and resolves when they are ready.
   * @throws Error when they cannot start.
   */
  async warmUp(): Promise<void> {
    while (this.workers.size < this.opts.workers && !this.fatal) this.start();
    while (!this.fatal && [...this.workers].some((w) => !w.ready)) await new Promise((r) => setTimeout(r, 5));
    if (this.fatal) throw this.fatal;
  }

  /** Stops every worker; pending decodes reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('DecodePool: closed');
    for (const t of this.queue.splice(0)) t.reject(err);
    const exits: Promise<void>[] = [];
    for (const w of this.workers) {
      for (const r of w.running.values()) {
        clearTimeout(r.timer);
        r.task.reject(err);
      }
      w.running.clear();
      w.killedFor = 'close';
      if (w.proc.exitCode === null && w.proc.signalCode === null) {
        exits.push(new Promise((res) => w.proc.once('exit', () => res())));
        w.proc.kill('SIGKILL');
      }
      this.dropShm(w);
    }
    this.workers.clear();
    await Promise.all(exits);
  }

  /** Hands queued tasks to workers in order (a suspect task waits for an idle worker), starting workers as needed. */
  private pump(): void {
    if (this.closed) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const w = [...this.workers].find((x) => x.ready && !x.exclusive && x.freeSlots.length > 0 && (head.suspect ? x.running.size === 0 : x.running.size < this.opts.inFlightPerWorker));
      if (!w) break;
      this.queue.shift();
      this.send(w, head);
    }
    while (this.queue.length > 0 && this.workers.size < this.opts.workers && !this.fatal) this.start();
  }

  private send(w: Worker, task: Task): void {
    const slot = w.freeSlots.pop()!;
    if (task.suspect) w.exclusive = true;
    const timer = setTimeout(() => this.onTimeout(w, task.id), this.opts.timeoutMs);
    w.running.set(task.id, { task, slot, timer });
    if (w.outbox.length === 0) {
      queueMicrotask(() => {
        const tasks = w.outbox.splice(0);
        if (tasks.length > 0 && this.workers.has(w)) w.proc.send({ type: 'decode', tasks } satisfies WorkerRequest);
      });
    }
    w.outbox.push({ id: task.id, path: task.path, slot });
  }

  private start(): void {
    const shmPath = this.useShm ? join(shmDir(), `covers-decode-${process.pid}-${randomBytes(6).toString('hex')}`) : null;
    const slots = this.opts.inFlightPerWorker * SLOTS_PER_IN_FLIGHT;
    let shared: Buffer | null = null;
    if (shmPath) shared = fastJpeg()!.mapShared(shmPath, slots * this.slotBytes);
    const proc = fork(this.opts.workerScript ?? DEFAULT_WORKER, [], {
      execArgv: ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: shmPath ? 'json' : 'advanced',
    });
    const w: Worker = { proc, ready: false, shared, shmPath, freeSlots: [...Array(slots).keys()].reverse(), running: new Map(), outbox: [], exclusive: false, killedFor: null, stderrTail: '' };
    this.workers.add(w);
    proc.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk); // libvips warnings and sanitizer reports stay visible, as when decoding in-process
      w.stderrTail = (w.stderrTail + chunk.toString('utf8')).slice(-2000);
    });
    proc.on('message', (m: WorkerReply) => this.onMessage(w, m));
    proc.on('error', (e) => {
      // A process that never started (spawn failed) gets no 'exit': count it as a failed start. Otherwise 'exit'
      // follows and says what happened.
      if (proc.pid === undefined) {
        w.stderrTail += `\n${e.message}`;
        this.onExit(w, null, null);
      }
    });
    proc.on('exit', (code, signal) => this.onExit(w, code, signal));
    proc.send({ type: 'init', opts: this.opts.preprocess, shm: shmPath, slots } satisfies WorkerRequest);
  }

  private onMessage(w: Worker, m: WorkerReply): void {
    if (m.type === 'ready') {
      w.ready = true;
      this.startFailures = 0;
      this.dropShm(w); // both processes have it mapped
      this.pump();
      return;
    }
    if (!this.workers.has(w)) return; // retired (timed out) before its answer arrived
    for (const result of m.results) this.onResult(w, result);
    this.pump();
  }

  private onResult(w: Worker, m: DecodeResult): void {
    const r = w.running.get(m.id);
    if (!r) return; // already timed out
    clearTimeout(r.timer);
    w.running.delete(m.id);
    if (r.task.suspect) w.exclusive = false;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      w.freeSlots.push(r.slot);
      this.pump();
    };
    if ('reason' in m) {
      const reason: RejectReason = REJECT_REASONS.includes(m.reason as RejectReason) ? (m.reason as RejectReason) : 'corrupt';
      released = true;
      w.freeSlots.push(r.slot);
      r.task.reject(new PreprocessError(reason, m.detail));
    } else {
      let image: Buffer;
      if (w.shared) image = w.shared.subarray(r.slot * this.slotBytes, (r.slot + 1) * this.slotBytes);
      else image = Buffer.from(m.image!.buffer, m.image!.byteOffset, m.image!.byteLength);
      preprocessCounts[m.via]++;
      r.task.resolve({ image, via: m.via, release });
    }
  }

  private onTimeout(w: Worker, id: number): void {
    const r = w.running.get(id);
    if (!r) return;
    w.killedFor = 'timeout';
    w.proc.kill('SIGKILL');
    if (w.running.size === 1 || r.task.suspect) {
      w.running.delete(id);
      r.task.reject(new PreprocessError('decoder-timeout', `still decoding after ${this.opts.timeoutMs} ms (alone in its decode worker, which was killed)`));
      this.opts.onEvent?.(`decode worker pid ${w.proc.pid} killed: ${r.task.path} took longer than ${this.opts.timeoutMs} ms`);
      this.retire(w, false);
    } else {
      // A hang can block the whole worker (its main thread, or every thread of its pool): which of the images in
      // flight did it is unknown, so each is retried alone, and only one that times out alone is rejected.
      this.opts.onEvent?.(`decode worker pid ${w.proc.pid} killed: no answer after ${this.opts.timeoutMs} ms with ${w.running.size} images in flight; each is retried alone`);
      this.retire(w, true);
    }
  }

  private onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (!this.workers.has(w)) return; // already retired (timeout, close)
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    if (!w.ready) {
      this.workers.delete(w);
      this.dropShm(w);
      this.startFailures++;
      const tail = w.stderrTail.trim().split('\n').slice(-5).join(' | ');
      this.opts.onEvent?.(`decode worker pid ${w.proc.pid} ${how} before it was ready${tail ? `: ${tail}` : ''}`);
      if (this.startFailures >= MAX_START_FAILURES) {
        this.fatal = new Error(`decode workers cannot start (${MAX_START_FAILURES} tries; the last ${how}${tail ? `: ${tail}` : ''})`);
        for (const t of this.queue.splice(0)) t.reject(this.fatal);
        return;
      }
      this.pump();
      return;
    }
    const n = w.running.size;
    if (n === 1 || [...w.running.values()].some((r) => r.task.suspect)) {
      // Alone in the worker: this image did it.
      for (const r of w.running.values()) {
        clearTimeout(r.timer);
        r.task.reject(new PreprocessError('decoder-crash', `the decode worker ${how} on this file`));
        this.opts.onEvent?.(`decode worker pid ${w.proc.pid} ${how} on ${r.task.path}`);
      }
      w.running.clear();
    } else if (n > 1) {
      this.opts.onEvent?.(`decode worker pid ${w.proc.pid} ${how} with ${n} images in flight: each is retried alone`);
    } else {
      this.opts.onEvent?.(`decode worker pid ${w.proc.pid} ${how} while idle`);
    }
    this.retire(w, true);
  }

  /** Removes `w` and requeues what it still had in flight (at the front, in id order; `suspect` when asked). */
  private retire(w: Worker, suspect: boolean): void {
    this.workers.delete(w);
    this.dropShm(w);
    const back = [...w.running.values()].sort((a, b) => a.task.id - b.task.id);
    for (const r of back) {
      clearTimeout(r.timer);
      if (suspect) r.task.suspect = true;
    }
    w.running.clear();
    this.queue.unshift(...back.map((r) => r.task));
    this.pump();
  }

  private dropShm(w: Worker): void {
    if (w.shmPath) rmSync(w.shmPath, { force: true });
    w.shmPath = null;
  }
}
