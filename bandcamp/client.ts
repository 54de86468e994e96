/**
 * The polite HTTP layer towards Bandcamp hosts (REFERENCE.md §5): one shared request budget per host group
 * (rate limit and concurrency), a host-wide pause on 429 that honours `Retry-After` as a floor, exponential backoff
 * with jitter and a cap, retries of transient failures (5xx, resets, timeouts, empty 403s), permanent 404/410, and
 * detection of HTTP-200 challenge/stripped pages (which stop the crawl after `crawl.maxBlockedRetries` in a row).
 *
 * Crawlee does none of this for us (PITFALLS.md #2: it retries a 429 at once and ignores `Retry-After`), so the
 * crawlers in `bandcamp/crawl.ts` run every request through {@link PoliteClient} and keep crawlee's own retries off.
 *
 * Transport: against the real site, crawlee's `ImpitHttpClient` (browser TLS/HTTP2 fingerprint, Firefox, §5.3) when
 * `crawl.impersonate` is true; against a loopback origin (the simulator: `localhost`, `127.0.0.0/8`, `::1`) or with
 * `crawl.impersonate=false`, Node's built-in `fetch` (plain HTTP; impersonation means nothing to our own server).
 */
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

/** One request as the transport sees it. `timeoutMs` bounds the whole exchange, body included (ms). */
export interface TransportRequest {
  method: 'GET' | 'POST' | 'HEAD';
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal;
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

/** Plain HTTP through Node's built-in `fetch` (undici), redirects followed. */
export function fetchTransport(): Transport {
  return async (req) => {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: 'follow',
      signal: timeoutSignal(req.timeoutMs, req.signal),
    });
    const body = Buffer.from(await res.arrayBuffer());
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => { headers[k.toLowerCase()] = v; });
    return { status: res.status, headers, body, url: res.url || req.url };
  };
}

/** crawlee's `ImpitHttpClient` (browser TLS and HTTP/2 fingerprint; REFERENCE.md §5.3 advises Firefox). */
export function impitTransport(browser: 'firefox' | 'chrome' = 'firefox'): Transport {
  const client = new ImpitHttpClient({ browser });
  return async (req) => {
    const res = await client.sendRequest({
      url: req.url,
      method: req.method,
      headers: req.headers,
      body: req.body,
      responseType: 'buffer',
      throwHttpErrors: false,
      signal: timeoutSignal(req.timeoutMs, req.signal),
      timeout: { request: req.timeoutMs },
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    return { status: res.statusCode, headers, body: Buffer.from(res.body), url: res.url || req.url };
  };
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

/** Resolves after `ms` milliseconds, or rejects with the signal's reason when it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
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
 * A shared request budget for a group of hosts (all `*.bandcamp.com` hosts share one, REFERENCE.md §5.3): at most
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

  constructor(opts: HostBudgetOptions) {
    this.intervalMs = Number.isFinite(opts.maxRequestsPerMinute) ? 60_000 / opts.maxRequestsPerMinute : 0;
    this.maxConcurrency = opts.maxConcurrency;
  }

  /** Holds every request of the group back until `Date.now() >= untilMs` (a later pause wins). */
  pause(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
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

/** A request that failed for good (retries spent, or a permanent status other than 404/410). */
export class RequestFailedError extends Error {
  constructor(readonly url: string, readonly reason: string, readonly attempts: number) {
    super(`${url}: ${reason} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`);
    this.name = 'RequestFailedError';
  }
}

/** The site keeps answering with challenge/stripped/403 pages: the crawl stops; progress is kept. */
export class BlockedError extends UserError {
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
}

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
  return e instanceof Error && e.name !== 'AbortedError';
}

/** Counters of what a client met, for logs and tests. */
export interface ClientStats {
  requests: number;
  status429: number;
  retries: number;
  blocked: number;
  /** Total ms spent paused on 429 / block pages. */
  pausedMs: number;
}

/**
 * Sends requests through a {@link HostBudget} with retries and backoff.
 *
 * Outcome of {@link PoliteClient.request}: resolves with the response for 2xx, 404 and 410 (permanent; the caller
 * records them, they are never retried); rejects with {@link RequestFailedError} when retries are spent or the
 * status is another 4xx, with {@link BlockedError} after `maxBlockedRetries` block pages in a row, and with
 * {@link AbortedError} when the client's or the request's signal fires.
 */
export class PoliteClient {
  readonly stats: ClientStats = { requests: 0, status429: 0, retries: 0, blocked: 0, pausedMs: 0 };
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
    let attempt = 0;
    let lastReason = '';
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const release = await budget.acquire(signal);
      let res: HttpResult | null = null;
      let netError: unknown = null;
      try {
        this.stats.requests++;
        res = await transport({ method, url: req.url, headers, body, timeoutMs: this.opts.timeoutMs, signal });
      } catch (e) {
        netError = e;
      } finally {
        release();
      }
      if (signal?.aborted) throw abortError(signal);
      let waitMs: number;
      if (res === null) {
        if (!isTransientNetworkError(netError)) throw netError;
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
        budget.pause(Date.now() + waitMs);
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
      if (attempt >= this.opts.maxRetries) throw new RequestFailedError(req.url, lastReason, attempt + 1);
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
  });
}
