/**
 * Resumable crawls on crawlee: a {@link BasicCrawler} over a NAMED request queue (`RequestQueueV1`, without
 * persisted request locks) stored under the stage's work
 * directory (never purged on start, docs/PITFALLS.md #3), every request with an explicit `uniqueKey` (docs/PITFALLS.md #1),
 * crawlee's own retries off (our {@link PoliteClient} retries and backs off, docs/PITFALLS.md #2), and our own append-only
 * progress file ({@link ProgressLog}) as the truth of what is done: crawlee's queue only orders the work.
 */
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BasicCrawler, Configuration, Log, LogLevel, RequestQueueV1, log as crawleeLog } from '@crawlee/basic';
import { withPath } from '../util/fsutil.ts';
import type { Logger } from '../util/log.ts';
import { AbortedError, sleep } from './client.ts';

/**
 * An append-only JSON-lines file of finished work items, fsynced per line, so a killed process loses at most the
 * line being written (a torn last line is ignored on read).
 */
export class ProgressLog<T> {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  /** Every complete record, in order of writing. */
  read(): T[] {
    if (!existsSync(this.path)) return [];
    const out: T[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as T);
      } catch {
        // a torn last line from a killed run
      }
    }
    return out;
  }

  /** Appends one record durably. */
  append(record: T): void {
    try {
      const fd = openSync(this.path, 'a');
      try {
        appendFileSync(fd, `\n${JSON.stringify(record)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw withPath(e, this.path);
    }
  }
}

/** A request of a {@link runQueue} crawl. `uniqueKey` must be stable across restarts. */
export interface QueueItem<D extends Record<string, unknown>> {
  uniqueKey: string;
  /** The URL (for crawlee's bookkeeping and logs; the handler sends the request itself). */
  url: string;
  method?: 'GET' | 'POST';
  data: D;
}

/** Options of {@link runQueue}. */
export interface RunQueueOptions<D extends Record<string, unknown>> {
  /** Queue name, e.g. `discover-<hash>`: one per stage and run parameters. */
  name: string;
  /** Directory for crawlee's storage (its request queue files). */
  storageDir: string;
  /**
   * The items still to do, computed from OUR progress (not crawlee's): called at start and again after each crawler
   * run, so work that crawlee's queue lost or marked handled without our record is done anyway.
   */
  pending(): QueueItem<D>[];
  /** Requests in flight at once (the budget in the client limits further). */
  maxConcurrency: number;
  /**
   * Handles one item; `enqueue` adds follow-up items (e.g. the next `discover_web` page). Throwing stops the whole
   * crawl and `runQueue` rejects with that error. `signal` fires when the crawl stops (`opts.signal` fired or another
   * handler threw): pass it to requests so the handler ends at once, since `runQueue` waits for every handler.
   */
  handle(data: D, enqueue: (item: QueueItem<D>) => Promise<void>, signal: AbortSignal): Promise<void>;
  log: Logger;
  signal?: AbortSignal;
}

/**
 * The start of the warning crawlee's `BasicCrawler.run()` prints from its own SIGINT listener (crawlee 3.18,
 * `basic-crawler.js`): "Pausing... Press CTRL+C again to force exit. To resume, do: CRAWLEE_PURGE_ON_START=0 npm
 * start". It does not apply here (there is no `npm start`; the `covers` CLI prints its own resume hint), and crawlee
 * has no option to leave the listener out.
 */
const CRAWLEE_SIGINT_WARNING = 'Pausing... Press CTRL+C again';

/**
 * The crawler's logger: crawlee's own (level and format as set on `crawleeLog`), less {@link CRAWLEE_SIGINT_WARNING}.
 * Every other crawler message is kept.
 */
class CrawlerLog extends Log {
  override internal(level: LogLevel, message: string, data?: unknown, exception?: unknown): void {
    if (level === LogLevel.WARNING && message.startsWith(CRAWLEE_SIGINT_WARNING)) return;
    super.internal(level, message, data, exception);
  }
}

let crawleeLogQuieted = false;

type StorageClient = ReturnType<Configuration['getStorageClient']>;

/** Crawler runs before {@link runQueue} gives up on items that crawlee keeps not handing out. */
const MAX_ROUNDS = 4;

/** Longest wait, ms, for crawlee tasks left running by a crawler run that failed (normally none are left). */
const DRAIN_LIMIT_MS = 30_000;

/**
 * Runs a crawlee {@link BasicCrawler} over a named, persistent request queue until our progress says all is done.
 *
 * Items that crawlee already marked handled while our progress file lacks them (e.g. a kill between the two writes,
 * or an aborted handler) are enqueued again under `<uniqueKey>#redo-<n>`, since our progress file is the truth;
 * items a killed run left locked (in progress) are unlocked, so they run at once instead of after crawlee's lock
 * timeout.
 *
 * Stopping (the signal fires or a handler throws): no new item starts, the handlers' `signal` fires, and `runQueue`
 * settles only after every handler has returned and crawlee has finished its bookkeeping and flushed its storage, so
 * nothing under `storageDir` changes afterwards.
 * @throws {@link AbortedError} ("interrupted") when `signal` fires; else the first error a handler throws; or an
 * Error when items stay pending after several crawler runs.
 */
export async function runQueue<D extends Record<string, unknown>>(opts: RunQueueOptions<D>): Promise<void> {
  if (!crawleeLogQuieted) {
    crawleeLog.setLevel(crawleeLog.LEVELS.WARNING);
    crawleeLogQuieted = true;
  }
  for (let round = 0; ; round++) {
    if (opts.signal?.aborted) throw new AbortedError();
    const pending = opts.pending();
    if (pending.length === 0) return;
    if (round >= MAX_ROUNDS) throw new Error(`crawl ${opts.name}: ${pending.length} request(s) still pending after ${MAX_ROUNDS} crawler runs (e.g. ${pending[0]!.uniqueKey})`);
    if (round > 0) opts.log.debug(`crawl ${opts.name}: ${pending.length} request(s) pending after crawler run ${round}; running again`);
    await crawlOnce(opts, pending);
  }
}

async function crawlOnce<D extends Record<string, unknown>>(opts: RunQueueOptions<D>, initial: QueueItem<D>[]): Promise<void> {
  const { config, storage } = crawlerConfiguration(opts.storageDir);
  let fatal: unknown = null;
  /** Fires when the crawl stops; handlers get it. */
  const stopping = new AbortController();
  let crawler: BasicCrawler | null = null;
  const stop = (cause: unknown) => {
    fatal ??= cause;
    if (stopping.signal.aborted) return;
    stopping.abort(new AbortedError());
    // Graceful stop: no new task starts, and run() resolves once the running ones finished (unlike
    // autoscaledPool.abort(), which resolves at once and leaves tasks writing to the queue afterwards).
    crawler?.stop('stopping');
  };
  const onAbort = () => stop(new AbortedError());
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.signal?.aborted) onAbort();
    // RequestQueueV1: no request locks. RequestQueue (v2) persists a lock on every prefetched request for the handler
    // timeout, so after a kill the crawler waits for requests no live process holds.
    const queue = await RequestQueueV1.open(opts.name, { config });
    const toRequest = (item: QueueItem<D>, key = item.uniqueKey) => ({
      url: item.url,
      method: item.method ?? 'GET',
      uniqueKey: key,
      userData: { data: item.data },
    });
    const enqueue = async (item: QueueItem<D>) => {
      let key = item.uniqueKey;
      for (let n = 1; ; n++) {
        const r = await queue.addRequest(toRequest(item, key));
        if (!r.wasAlreadyHandled) {
          // Left locked by a killed run (crawlee persists the lock for the handler timeout): release it now.
          if (r.wasAlreadyPresent) await queue.client.deleteRequestLock(r.requestId).catch(() => undefined);
          return;
        }
        key = `${item.uniqueKey}#redo-${n}`;
      }
    };
    for (const item of initial) {
      if (stopping.signal.aborted) break;
      await enqueue(item);
    }

    crawler = new BasicCrawler(
      {
        requestQueue: queue,
        maxConcurrency: opts.maxConcurrency,
        minConcurrency: 1,
        maxRequestRetries: 0,
        useSessionPool: false,
        requestHandlerTimeoutSecs: 7 * 24 * 3600,
        statusMessageLoggingInterval: 3600,
        // crawler.stop() waits for the running tasks by polling every maybeRunIntervalSecs (crawlee's default 0.5 s):
        // half of Ctrl-C's one-second budget. A tenth of a second costs nothing measurable.
        autoscaledPoolOptions: { maybeRunIntervalSecs: 0.1 },
        log: new CrawlerLog({ ...crawleeLog.getOptions(), prefix: 'BasicCrawler' }),
        async requestHandler({ request }) {
          if (fatal) return;
          const data = (request.userData as { data: D }).data;
          try {
            await opts.handle(data, enqueue, stopping.signal);
          } catch (e) {
            stop(e);
          }
        },
        failedRequestHandler({ request }, error) {
          stop(error ?? new Error(`request ${request.uniqueKey} failed`));
        },
      },
      config,
    );
    // stop() before run() also works (crawler.stop() makes run() finish at once), but skip the start-up.
    if (!stopping.signal.aborted) await crawler.run();
  } catch (e) {
    stop(e);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await drain(crawler, storage);
  }
  if (opts.signal?.aborted) throw new AbortedError();
  if (fatal) throw fatal;
}

/**
 * Waits until crawlee is idle: no task of `crawler` still running (only a run() that rejected can leave some, and
 * only for up to {@link DRAIN_LIMIT_MS}), then every pending write of the storage client (queue metadata) is flushed.
 */
async function drain(crawler: BasicCrawler | null, storage: StorageClient): Promise<void> {
  const deadline = Date.now() + DRAIN_LIMIT_MS;
  while ((crawler?.autoscaledPool?.currentConcurrency ?? 0) > 0 && Date.now() < deadline) await sleep(10);
  await storage.teardown?.();
}

/**
 * crawlee's configuration for one crawler run: persistent storage under `storageDir` (crawlee's shared
 * `MemoryStorage` for that directory), seen through a view without `teardown`.
 *
 * Why the view: when its storage client has a `teardown`, `BasicCrawler.run()` (crawlee 3.18, `basic-crawler.js`)
 * arms a one-second, referenced `setTimeout` for a "Waiting for the storage…" message before awaiting the teardown,
 * and never clears it. Every crawler run thus kept the process alive for up to a second after the crawl ended: after
 * Ctrl-C, `covers make discover` exited 1.2–1.9 s after the signal although discover had stopped in ~0.1 s. Without
 * `teardown` crawlee skips that block; {@link drain} calls the real client's teardown (the same flush) itself after
 * every run (before `runQueue` returns), so nothing is left unwritten.
 */
function crawlerConfiguration(storageDir: string): { config: Configuration; storage: StorageClient } {
  const storage = new Configuration({
    storageClientOptions: { localDataDirectory: storageDir, persistStorage: true },
    persistStorage: true,
  }).getStorageClient();
  const view = new Proxy(storage, {
    get(target, key) {
      if (key === 'teardown') return undefined;
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
    has: (target, key) => key !== 'teardown' && Reflect.has(target, key),
  });
  return { config: new Configuration({ storageClient: view, purgeOnStart: false, persistStorage: true }), storage };
}

/** Joins the crawlee storage directory for a stage work directory. */
export function crawleeStorageDir(workDir: string): string {
  return join(workDir, 'crawlee');
}
