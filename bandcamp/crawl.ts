/**
 * Resumable crawls on crawlee: a {@link BasicCrawler} over a NAMED request queue (`RequestQueueV1`, without
 * persisted request locks) stored under the stage's work
 * directory (never purged on start, PITFALLS.md #3), every request with an explicit `uniqueKey` (PITFALLS.md #1),
 * crawlee's own retries off (our {@link PoliteClient} retries and backs off, PITFALLS.md #2), and our own append-only
 * progress file ({@link ProgressLog}) as the truth of what is done: crawlee's queue only orders the work.
 */
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BasicCrawler, Configuration, RequestQueueV1, log as crawleeLog } from '@crawlee/basic';
import type { Logger } from '../pipeline/log.ts';
import { AbortedError } from './client.ts';

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
    const fd = openSync(this.path, 'a');
    try {
      appendFileSync(fd, `\n${JSON.stringify(record)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
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
   * crawl and `runQueue` rejects with that error.
   */
  handle(data: D, enqueue: (item: QueueItem<D>) => Promise<void>): Promise<void>;
  log: Logger;
  signal?: AbortSignal;
}

let crawleeLogQuieted = false;

/** Crawler runs before {@link runQueue} gives up on items that crawlee keeps not handing out. */
const MAX_ROUNDS = 4;

/**
 * Runs a crawlee {@link BasicCrawler} over a named, persistent request queue until our progress says all is done.
 *
 * Items that crawlee already marked handled while our progress file lacks them (e.g. a kill between the two writes,
 * or an aborted handler) are enqueued again under `<uniqueKey>#redo-<n>`, since our progress file is the truth;
 * items a killed run left locked (in progress) are unlocked, so they run at once instead of after crawlee's lock
 * timeout.
 * @throws the first error a handler throws (the crawl stops at once), {@link AbortedError} when `signal` fires, or
 * an Error when items stay pending after several crawler runs.
 */
export async function runQueue<D extends Record<string, unknown>>(opts: RunQueueOptions<D>): Promise<void> {
  if (!crawleeLogQuieted) {
    crawleeLog.setLevel(crawleeLog.LEVELS.WARNING);
    crawleeLogQuieted = true;
  }
  for (let round = 0; ; round++) {
    const pending = opts.pending();
    if (pending.length === 0) return;
    if (round >= MAX_ROUNDS) throw new Error(`crawl ${opts.name}: ${pending.length} request(s) still pending after ${MAX_ROUNDS} crawler runs (e.g. ${pending[0]!.uniqueKey})`);
    if (round > 0) opts.log.debug(`crawl ${opts.name}: ${pending.length} request(s) pending after crawler run ${round}; running again`);
    await crawlOnce(opts, pending);
  }
}

async function crawlOnce<D extends Record<string, unknown>>(opts: RunQueueOptions<D>, initial: QueueItem<D>[]): Promise<void> {
  const config = new Configuration({
    storageClientOptions: { localDataDirectory: opts.storageDir, persistStorage: true },
    purgeOnStart: false,
    persistStorage: true,
  });
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
  for (const item of initial) await enqueue(item);

  let fatal: unknown = null;
  let stopCrawler = (): void => {};
  const crawler = new BasicCrawler(
    {
      requestQueue: queue,
      maxConcurrency: opts.maxConcurrency,
      minConcurrency: 1,
      maxRequestRetries: 0,
      useSessionPool: false,
      requestHandlerTimeoutSecs: 7 * 24 * 3600,
      statusMessageLoggingInterval: 3600,
      async requestHandler({ request }) {
        if (fatal) return;
        const data = (request.userData as { data: D }).data;
        try {
          await opts.handle(data, enqueue);
        } catch (e) {
          fatal ??= e;
          stopCrawler();
        }
      },
      failedRequestHandler({ request }, error) {
        fatal ??= error ?? new Error(`request ${request.uniqueKey} failed`);
      },
    },
    config,
  );
  stopCrawler = () => void crawler.autoscaledPool?.abort();
  const onAbort = () => {
    fatal ??= new AbortedError();
    stopCrawler();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (opts.signal?.aborted) throw new AbortedError();
    await crawler.run();
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (fatal) throw fatal;
  if (opts.signal?.aborted) throw new AbortedError();
}

/** Joins the crawlee storage directory for a stage work directory. */
export function crawleeStorageDir(workDir: string): string {
  return join(workDir, 'crawlee');
}
