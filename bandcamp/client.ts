/**
 * The polite HTTP layer towards Bandcamp hosts (docs/BANDCAMP.md#blocking): one shared request budget per host group
 * (rate limit and concurrency), a host-wide pause on 429 that honours `Retry-After` as a floor (holding requests
 * waiting for a slot, new ones, and ones with a slot not yet on the wire; test/label-faults.test.ts checks it in the
 * simulator's log), exponential backoff with jitter and a cap, retries of transient failures (5xx, resets, timeouts,
 * empty 403s), permanent 404/410, and detection of HTTP-200 challenge/stripped pages (which stop the crawl after
 * `crawl.maxBlockedRetries` in a row).
 *
 * Crawlee does none of this for us (docs/PITFALLS.md #2: it retries a 429 at once and ignores `Retry-After`), so the
 * crawlers in `bandcamp/crawl.ts` run every request through {@link PoliteClient} and keep crawlee's own retries off.
 *
 * Transport: against the real site, crawlee's `ImpitHttpClient` (browser TLS/HTTP2 fingerprint, Firefox, BANDCAMP.md#crawling-politely) when
 * `crawl.impersonate` is true; against a loopback origin (the simulator: `localhost`, `127.0.0.0/8`, `::1`) or with
 * `crawl.impersonate=false`, Node's built-in `fetch` (plain HTTP; impersonation means nothing to our own server).
 */
import { subscribe } from 'node:diagnostics_channel';
import { setTimeout as delay } from 'node:timers/promises';
import { ImpitHttpClient } from '@crawlee/impit-client';
import type { Config } from '../pipeline/config.ts';
import type { Logger } from '../util/log.ts';
import { InterruptedError, UserError } from '../util/errors.ts';

/** A complete HTTP response. `headers` have lower-case names; `body` is the raw bytes. */
export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The final URL (after redirects). */
  url: string;
}

/**
 * One request as the transport sees it. `timeoutMs` bounds the whole exchange, body included (ms); `maxBytes` bounds
 * the response body (bytes): a larger `Content-Length` is refused before the body is read, and a body that grows past
 * it while streaming is cut off ({@link BodyTooLargeError} either way).
 */
export interface TransportRequest {
  method: 'GET' | 'POST' | 'HEAD';
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
  /**
   * Called once when the request goes on the wire (its headers are written to the socket), which can be well after
   * the transport was called (a new connection, a busy event loop). The budget spaces request starts from then.
   */
  onSent?: () => void;
}

/** A response body over the request's byte cap (declared by `Content-Length` or seen while streaming): permanent. */
export class BodyTooLargeError extends UserError {
  constructor(readonly url: string, readonly maxBytes: number, readonly declared: number | null) {
    super(
      declared !== null
        ? `${url}: the response declares ${declared} bytes (Content-Length), more than the cap of ${maxBytes} bytes`
        : `${url}: the response body passed the cap of ${maxBytes} bytes`,
    );
    this.name = 'BodyTooLargeError';
  }
}

/** A URL whose scheme is not `http:` or `https:` (e.g. `file:`, `javascript:`): never fetched, a per-item rejection. */
export class UnsupportedUrlError extends UserError {
  constructor(readonly url: string) {
    super(`${url.slice(0, 200)}: not an http(s) URL; only http:// and https:// URLs are fetched`);
    this.name = 'UnsupportedUrlError';
  }
}

/** True when `url` parses and its scheme is `http:` or `https:`. */
export function isHttpUrl(url: string): boolean {
  try {
    const p = new URL(url).protocol;
    return p === 'http:' || p === 'https:';
  } catch {
    return false;
  }
}

/**
 * Reads a body stream into one Buffer, at most `maxBytes`: refuses a larger declared length before reading, stops
 * reading (and cancels the stream via `cancel`) as soon as the running total passes the cap, and stops when `signal`
 * fires. Memory held is at most `maxBytes` plus one chunk.
 * @throws {@link BodyTooLargeError}; the signal's reason when aborted.
 */
export async function readCapped(
  chunks: AsyncIterable<Uint8Array>,
  opts: { url: string; maxBytes: number; contentLength: string | null | undefined; signal?: AbortSignal; cancel: () => void },
): Promise<Buffer> {
  const declared = opts.contentLength != null && /^\d+$/.test(opts.contentLength.trim()) ? Number(opts.contentLength.trim()) : null;
  if (declared !== null && declared > opts.maxBytes) {
    opts.cancel();
    throw new BodyTooLargeError(opts.url, opts.maxBytes, declared);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const c of chunks) {
      n += c.byteLength;
      if (n > opts.maxBytes) throw new BodyTooLargeError(opts.url, opts.maxBytes, null);
      parts.push(c);
      if (opts.signal?.aborted) throw abortError(opts.signal);
    }
  } catch (e) {
    opts.cancel();
    throw e;
  }
  return Buffer.concat(parts, n);
}

function isTimeout(e: unknown): boolean {
  return (e as Error | null)?.name === 'TimeoutError';
}

/** The most specific code of a network error: `ECONNREFUSED` from fetch's `TypeError('fetch failed')` and its causes. */
export function networkErrorCode(e: unknown): string {
  const err = e as Error & { code?: string; cause?: Error & { code?: string; errors?: (Error & { code?: string })[] } };
  return err.code ?? err.cause?.code ?? err.cause?.errors?.[0]?.code ?? err.cause?.message ?? err.message;
}

/** Sends one request; rejects on network errors and timeouts, resolves for every HTTP status. */
export type Transport = (req: TransportRequest) => Promise<HttpResult>;

function timeoutSignal(timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([t, signal]) : t;
}

/** The chunks of a web `ReadableStream` as an async iterable (the reader's lock is released at the end). */
async function* webChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Callbacks waiting for their request's headers to be written, by `METHOD origin/path?query`. */
const sentWaiters = new Map<string, (() => void)[]>();
let sentChannel = false;

/**
 * Calls `onSent` when undici writes the headers of the request `method url` to its socket (Node's
 * `undici:client:sendHeaders` diagnostics channel). @returns a function that drops the callback if it has not fired.
 */
function whenSent(method: string, url: string, onSent: () => void): () => void {
  if (!sentChannel) {
    sentChannel = true;
    subscribe('undici:client:sendHeaders', (message) => {
      const r = (message as { request?: { method?: string; origin?: string; path?: string } }).request;
      if (!r) return;
      const key = `${r.method} ${r.origin}${r.path}`;
      const list = sentWaiters.get(key);
      const fn = list?.shift();
      if (list && list.length === 0) sentWaiters.delete(key);
      fn?.();
    });
  }
  const u = new URL(url);
  const key = `${method} ${u.origin}${u.pathname}${u.search}`;
  const list = sentWaiters.get(key) ?? [];
  list.push(onSent);
  sentWaiters.set(key, list);
  return () => {
    const l = sentWaiters.get(key);
    const i = l?.indexOf(onSent) ?? -1;
    if (l && i >= 0) l.splice(i, 1);
    if (l && l.length === 0) sentWaiters.delete(key);
  };
}

/** Plain HTTP through Node's built-in `fetch` (undici), redirects followed. */
export function fetchTransport(): Transport {
  return async (req) => {
    const signal = timeoutSignal(req.timeoutMs, req.signal);
    const drop = req.onSent ? whenSent(req.method, req.url, req.onSent) : () => undefined;
    let res: Response;
    try {
      res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, redirect: 'follow', signal });
    } finally {
      drop();
    }
    const stream = res.body;
    const body = stream
      ? await readCapped(webChunks(stream), { url: req.url, maxBytes: req.maxBytes, contentLength: res.headers.get('content-length'), signal, cancel: () => void stream.cancel().catch(() => undefined) })
      : Buffer.alloc(0);
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => { headers[k.toLowerCase()] = v; });
    return { status: res.status, headers, body, url: res.url || req.url };
  };
}

/** crawlee's `ImpitHttpClient` (browser TLS and HTTP/2 fingerprint; docs/BANDCAMP.md#crawling-politely advises Firefox). */
export function impitTransport(browser: 'firefox' | 'chrome' = 'firefox'): Transport {
  const client = new ImpitHttpClient({ browser });
  return async (req) => {
    const signal = timeoutSignal(req.timeoutMs, req.signal);
    // impit takes no abort signal: race the response against the signal, and read the body as a capped stream.
    req.onSent?.(); // impit publishes no send event: the nearest moment we know
    const res = await raceSignal(
      client.stream({ url: req.url, method: req.method, headers: req.headers, body: req.body, throwHttpErrors: false, timeout: { request: req.timeoutMs } }),
      signal,
    );
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const onAbort = () => res.stream.destroy(signal.reason instanceof Error ? signal.reason : new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const body = await readCapped(res.stream, { url: req.url, maxBytes: req.maxBytes, contentLength: headers['content-length'], signal, cancel: () => res.stream.destroy() });
      return { status: res.statusCode, headers, body, url: res.url || req.url };
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  };
}

/** Resolves like `p`, or rejects with the signal's reason as soon as it fires. */
function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** True for `localhost`, `127.0.0.0/8` and `::1` origins (the simulator). */
export function isLoopbackOrigin(origin: string): boolean {
  let host: string;
  try {
    host = new URL(origin).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Picks the transport for an origin: impit (Firefox) when `crawl.impersonate` is true and the origin is not
 * loopback, else plain `fetch`. Returns its name for logs.
 */
export function chooseTransport(config: Config, origin: string): { transport: Transport; name: 'impit-firefox' | 'fetch' } {
  if (config.crawl.impersonate && !isLoopbackOrigin(origin)) return { transport: impitTransport('firefox'), name: 'impit-firefox' };
  return { transport: fetchTransport(), name: 'fetch' };
}

/**
 * Resolves after `ms` milliseconds (node:timers/promises), or rejects with {@link abortError} (an
 * {@link AbortedError} unless the signal carries its own reason) when `signal` is aborted.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw abortError(signal);
  if (ms <= 0) return;
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
  } catch (e) {
    if (signal?.aborted) throw abortError(signal);
    throw e;
  }
}

/**
 * The error an aborted operation (the stage's signal fired: Ctrl-C, SIGTERM) rejects with. Its message is just
 * "interrupted" (an {@link InterruptedError}, printed without a stack): the runner and the CLI report the
 * interruption and how to resume.
 */
export class AbortedError extends InterruptedError {
  constructor() {
    super();
    this.name = 'AbortedError';
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error && signal.reason.name !== 'AbortError' ? signal.reason : new AbortedError();
}

/** Options of {@link HostBudget}. */
export interface HostBudgetOptions {
  /** Request starts per minute across all hosts of the group; `Infinity` for no rate limit. */
  maxRequestsPerMinute: number;
  /** Requests in flight at once. */
  maxConcurrency: number;
}

/**
 * A shared request budget for a group of hosts (all `*.bandcamp.com` hosts share one, docs/BANDCAMP.md#crawling-politely): at most
 * `maxConcurrency` requests in flight, request starts spaced by at least `60000 / maxRequestsPerMinute` ms, and a
 * group-wide pause (`pauseUntil`) that holds every request back, e.g. after a 429.
 */
export class HostBudget {
  /** Minimum spacing between request starts, ms. */
  readonly intervalMs: number;
  readonly maxConcurrency: number;
  private nextStartAt = 0;
  private pausedUntil = 0;
  private inFlight = 0;
  private waiters: (() => void)[] = [];
  private readonly pauseListeners = new Set<() => void>();

  constructor(opts: HostBudgetOptions) {
    this.intervalMs = Number.isFinite(opts.maxRequestsPerMinute) ? 60_000 / opts.maxRequestsPerMinute : 0;
    this.maxConcurrency = opts.maxConcurrency;
  }

  /**
   * A request of the group went on the wire now: the next start waits `intervalMs` from now too, so the spacing holds
   * where the site sees it even when a request left later than its slot was granted (connection set-up, a busy
   * event loop).
   */
  markSent(): void {
    this.nextStartAt = Math.max(this.nextStartAt, Date.now() + this.intervalMs);
  }

  /**
   * Holds every request of the group back until `Date.now() >= untilMs` (a later pause wins): requests waiting in
   * {@link acquire}, and, through {@link onPause}, requests that hold a slot but have not gone on the wire yet.
   */
  pause(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
    if (untilMs > Date.now()) for (const fn of [...this.pauseListeners]) fn();
  }

  /**
   * Calls `fn` each time a pause starts (or grows). A request calls this between {@link acquire} and going on the
   * wire, so that a pause begun meanwhile can take it back unsent. @returns the function that stops the calls.
   */
  onPause(fn: () => void): () => void {
    this.pauseListeners.add(fn);
    return () => this.pauseListeners.delete(fn);
  }

  /** When the current pause ends (ms since the epoch; 0 or past when not paused). */
  get pausedUntilMs(): number {
    return this.pausedUntil;
  }

  /**
   * Waits for a slot (concurrency), the end of any pause and the rate spacing; returns the function that frees the
   * slot. @throws the signal's reason when aborted while waiting.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    while (this.inFlight >= this.maxConcurrency) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(abortError(signal!));
        this.waiters.push(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    this.inFlight++;
    try {
      for (;;) {
        const now = Date.now();
        const at = Math.max(this.nextStartAt, this.pausedUntil);
        if (at <= now) break;
        await sleep(at - now, signal);
      }
      this.nextStartAt = Date.now() + this.intervalMs;
    } catch (e) {
      this.release();
      throw e;
    }
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.release();
      }
    };
  }

  private release(): void {
    this.inFlight--;
    this.waiters.shift()?.();
  }
}

/**
 * A request that failed: `transient` when its retries were spent on transient failures (5xx, 429, resets, timeouts:
 * progress is kept and a rerun later continues, {@link isTransientError}), else a permanent status other than 404/410.
 */
export class RequestFailedError extends UserError {
  constructor(readonly url: string, readonly reason: string, readonly attempts: number, readonly transient = false) {
    super(
      `${url}: ${reason} (after ${attempts} attempt${attempts === 1 ? '' : 's'})` +
        (transient ? '. The site or the network is failing for now; progress is kept: rerun the same command later to continue.' : ''),
    );
    this.name = 'RequestFailedError';
  }
}

/**
 * A loopback origin (`localhost`, `127.0.0.0/8`, `[::1]`) refused the connection: nothing listens there (typically a
 * simulator that has stopped, its port still in the config). Not transient: waiting does not start a server.
 */
export class RefusedLoopbackError extends UserError {
  constructor(readonly url: string) {
    const origin = new URL(url).origin;
    super(
      `${url}: connection refused: nothing is listening on ${origin} (a loopback address). If it was a Bandcamp ` +
        'simulator, it has stopped: start it again (`covers simulate`; `covers demo` starts its own) or set ' +
        'bandcamp.origin / bandcamp.imageOrigin to one that runs.',
    );
    this.name = 'RefusedLoopbackError';
  }
}

/** True when `url`'s host is a loopback address or `localhost`. */
function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The site keeps answering with challenge/stripped/403 pages: the crawl stops; progress is kept. */
export class BlockedError extends UserError {
  readonly transient = true;
  constructor(readonly url: string, readonly kind: string, readonly tries: number, what = 'crawl') {
    super(
      `Bandcamp is blocking the ${what}: ${tries} ${kind} response${tries === 1 ? '' : 's'} in a row (last at ${url}). ` +
        'Progress is kept: rerun the same `covers make` command later (after an hour or so, or with a lower ' +
        'crawl.maxRequestsPerMinute); finished pages are not requested again.',
    );
    this.name = 'BlockedError';
  }
}

/** What a caller says about a 2xx response: `null` when it is usable, else why it is a block page. */
export type BlockCheck = (res: HttpResult) => string | null;

/** Options of {@link PoliteClient}. */
export interface PoliteClientOptions {
  transport: Transport;
  budget: HostBudget;
  userAgent: string;
  /** Timeout of one attempt, ms. */
  timeoutMs: number;
  /** Retries of a transient failure (5xx, reset, timeout, 429, empty 403) before the request fails. */
  maxRetries: number;
  /** Block pages in a row before {@link BlockedError}. */
  maxBlockedRetries: number;
  /** Exponential backoff, ms (`crawl.backoff`). */
  backoff: { initialMs: number; maxMs: number; factor: number };
  log?: Logger;
  signal?: AbortSignal;
  /** Random numbers in [0, 1) for jitter (tests pass a fixed one). */
  random?: () => number;
  /** Name for messages (`crawl`, `download`). */
  what?: string;
  /** Default byte cap of a response body ({@link PoliteRequest.maxBytes}); default {@link DEFAULT_MAX_BYTES}. */
  maxBytes?: number;
}

/** Default byte cap of a response body when neither the client nor the request sets one: 64 MiB. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** A request to {@link PoliteClient.request}. */
export interface PoliteRequest {
  method?: 'GET' | 'POST';
  url: string;
  /** JSON-encoded for POSTs with `json`. */
  json?: unknown;
  headers?: Record<string, string>;
  /** Classifies a 2xx response as blocked (challenge/stripped) or fine. */
  blockCheck?: BlockCheck;
  /** Ends this request (and its retries and waits) with {@link AbortedError}, like the client's own signal. */
  signal?: AbortSignal;
  /** Byte cap of the response body (default: the client's `maxBytes`); over it, {@link BodyTooLargeError}, not retried. */
  maxBytes?: number;
}

/** Parses `Retry-After` (seconds or an HTTP date) into ms from now; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}

/** Errors from the transport that are worth retrying (resets, timeouts, refused connections). */
function isTransientNetworkError(e: unknown): boolean {
  return e instanceof Error && e.name !== 'AbortedError' && !(e instanceof BodyTooLargeError) && !(e instanceof UnsupportedUrlError);
}

/** Counters of what a client met, for logs and tests. */
export interface ClientStats {
  requests: number;
  status429: number;
  retries: number;
  blocked: number;
  /** Total ms spent paused on 429 / block pages. */
  pausedMs: number;
  /** Requests taken back unsent because a pause began before they went on the wire (sent again after it). */
  heldBack: number;
}

/**
 * Sends requests through a {@link HostBudget} with retries and backoff.
 *
 * Outcome of {@link PoliteClient.request}: resolves with the response for 2xx, 404 and 410 (permanent; the caller
 * records them, they are never retried); rejects with {@link RequestFailedError} when retries are spent or the
 * status is another 4xx, with {@link BlockedError} after `maxBlockedRetries` block pages in a row, with
 * {@link UnsupportedUrlError} (before any request) for a URL that is not http(s), with {@link BodyTooLargeError} (not
 * retried) for a body over the byte cap, and with {@link AbortedError} when the client's or the request's signal fires.
 */
export class PoliteClient {
  readonly stats: ClientStats = { requests: 0, status429: 0, retries: 0, blocked: 0, pausedMs: 0, heldBack: 0 };
  private blockedInARow = 0;
  private readonly random: () => number;

  constructor(private readonly opts: PoliteClientOptions) {
    this.random = opts.random ?? Math.random;
  }

  /** Backoff before retry number `attempt` (0-based): `initialMs × factor^attempt`, capped, with ±50 % jitter, ms. */
  backoffMs(attempt: number): number {
    const { initialMs, maxMs, factor } = this.opts.backoff;
    const base = Math.min(maxMs, initialMs * factor ** attempt);
    return Math.min(maxMs, Math.round(base * (0.5 + this.random())));
  }

  async request(req: PoliteRequest): Promise<HttpResult> {
    const { budget, transport } = this.opts;
    const signal = req.signal && this.opts.signal ? AbortSignal.any([this.opts.signal, req.signal]) : (req.signal ?? this.opts.signal);
    const method = req.method ?? (req.json !== undefined ? 'POST' : 'GET');
    const headers: Record<string, string> = {
      'user-agent': this.opts.userAgent,
      accept: req.json !== undefined ? 'application/json, text/plain, */*' : 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'accept-language': 'en-US,en;q=0.5',
      ...(req.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...req.headers,
    };
    const body = req.json !== undefined ? JSON.stringify(req.json) : undefined;
    if (!isHttpUrl(req.url)) throw new UnsupportedUrlError(req.url);
    const maxBytes = req.maxBytes ?? this.opts.maxBytes ?? DEFAULT_MAX_BYTES;
    let attempt = 0;
    let lastReason = '';
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const release = await budget.acquire(signal);
      // A pause (a 429 or a block page from another request of the group) that begins after this request got its
      // slot but before it went on the wire (fetch may queue it while a connection opens) takes it back unsent: it
      // waits for the pause like a new request, and the try does not count.
      let sent = false;
      const heldBack = new AbortController();
      const stopHolding = budget.onPause(() => {
        if (!sent) heldBack.abort(new Error('held back by a pause of its host group'));
      });
      const attemptSignal = signal ? AbortSignal.any([signal, heldBack.signal]) : heldBack.signal;
      let res: HttpResult | null = null;
      let netError: unknown = null;
      try {
        this.stats.requests++;
        const onSent = () => {
          sent = true;
          budget.markSent();
        };
        res = await transport({ method, url: req.url, headers, body, timeoutMs: this.opts.timeoutMs, maxBytes, signal: attemptSignal, onSent });
      } catch (e) {
        netError = e;
      } finally {
        stopHolding();
        release();
      }
      if (signal?.aborted) throw abortError(signal);
      if (res === null && heldBack.signal.aborted) {
        this.stats.requests--;
        this.stats.heldBack++;
        continue;
      }
      let waitMs: number;
      if (res === null) {
        if (!isTransientNetworkError(netError)) throw netError;
        if (networkErrorCode(netError) === 'ECONNREFUSED' && isLoopbackUrl(req.url)) throw new RefusedLoopbackError(req.url);
        lastReason = isTimeout(netError) ? `timeout after ${this.opts.timeoutMs} ms` : `network error ${networkErrorCode(netError)}`;
        waitMs = this.backoffMs(attempt);
      } else if (res.status >= 200 && res.status < 300) {
        const blocked = req.blockCheck?.(res) ?? null;
        if (blocked === null) {
          this.blockedInARow = 0;
          return res;
        }
        this.stats.blocked++;
        if (++this.blockedInARow > this.opts.maxBlockedRetries) throw new BlockedError(req.url, blocked, this.blockedInARow, this.opts.what);
        waitMs = this.backoffMs(this.blockedInARow - 1);
        this.opts.log?.warn(`${req.url}: ${blocked} page (HTTP ${res.status}); pausing all requests ${(waitMs / 1000).toFixed(1)} s (${this.blockedInARow}/${this.opts.maxBlockedRetries})`);
        budget.pause(Date.now() + waitMs);
        this.stats.pausedMs += waitMs;
        await sleep(waitMs, signal);
        continue; // block pages count against maxBlockedRetries, not maxRetries
      } else if (res.status === 404 || res.status === 410) {
        return res;
      } else if (res.status === 429) {
        this.stats.status429++;
        const floor = parseRetryAfter(res.headers['retry-after']) ?? 0;
        waitMs = Math.min(this.opts.backoff.maxMs, Math.max(floor, this.backoffMs(attempt)));
        if (floor > waitMs) waitMs = floor; // Retry-After is a floor even above the cap
        lastReason = 'HTTP 429';
        // + 1: Date.now() counts whole milliseconds, so the pause could otherwise end up to 1 ms before Retry-After.
        budget.pause(Date.now() + waitMs + 1);
        this.stats.pausedMs += waitMs;
        this.opts.log?.warn(`${req.url}: HTTP 429 (Retry-After ${res.headers['retry-after'] ?? 'absent'}); pausing all requests ${(waitMs / 1000).toFixed(1)} s`);
      } else if (res.status === 403) {
        if (res.body.length > 0) {
          // A Varnish block page ("Error 54113", TLS fingerprint): treated like a challenge page.
          this.stats.blocked++;
          if (++this.blockedInARow > this.opts.maxBlockedRetries) throw new BlockedError(req.url, 'HTTP 403', this.blockedInARow, this.opts.what);
          waitMs = this.backoffMs(this.blockedInARow - 1);
          budget.pause(Date.now() + waitMs);
          this.stats.pausedMs += waitMs;
          this.opts.log?.warn(`${req.url}: HTTP 403 block page; pausing all requests ${(waitMs / 1000).toFixed(1)} s`);
          await sleep(waitMs, signal);
          continue;
        }
        lastReason = 'HTTP 403';
        waitMs = this.backoffMs(attempt);
      } else if (res.status >= 500 || res.status === 408) {
        lastReason = `HTTP ${res.status}`;
        waitMs = this.backoffMs(attempt);
      } else {
        throw new RequestFailedError(req.url, `HTTP ${res.status}`, attempt + 1);
      }
      if (attempt >= this.opts.maxRetries) throw new RequestFailedError(req.url, lastReason, attempt + 1, true);
      attempt++;
      this.stats.retries++;
      this.opts.log?.debug(`${req.url}: ${lastReason}; retry ${attempt}/${this.opts.maxRetries} in ${waitMs} ms`);
      await sleep(waitMs, signal);
    }
  }
}

/**
 * The client for Bandcamp's site and APIs (`bandcamp.origin`): one budget of `crawl.maxRequestsPerMinute` and
 * `crawl.maxConcurrency`, `crawl.*` retries and backoff, `bandcamp.userAgent`.
 */
export function siteClient(config: Config, opts: { log?: Logger; signal?: AbortSignal; budget?: HostBudget; transport?: Transport } = {}): PoliteClient {
  const budget = opts.budget ?? new HostBudget({ maxRequestsPerMinute: config.crawl.maxRequestsPerMinute, maxConcurrency: config.crawl.maxConcurrency });
  const transport = opts.transport ?? chooseTransport(config, config.bandcamp.origin).transport;
  return new PoliteClient({
    transport,
    budget,
    userAgent: config.bandcamp.userAgent,
    timeoutMs: config.crawl.timeoutMs,
    maxRetries: config.crawl.maxRetries,
    maxBlockedRetries: config.crawl.maxBlockedRetries,
    backoff: config.crawl.backoff,
    log: opts.log,
    signal: opts.signal,
    maxBytes: config.crawl.maxPageBytes,
  });
}
