/**
 * The Bandcamp simulator: a loopback HTTP server that answers like bandcamp.com and f4.bcbits.com do in 2026
 * (docs/BANDCAMP.md#discover_web, BANDCAMP.md#tralbum_details, BANDCAMP.md#album-page-markup, BANDCAMP.md#image-urls, BANDCAMP.md#blocking), with deterministic fault injection and a request log.
 *
 * Endpoints (all on both listeners; `origin` plays bandcamp.com, `imageOrigin` plays f4.bcbits.com):
 * - `POST /api/discover/1/discover_web` (body: the simulator's own `SimDiscoverWebRequestSchema`, written from the
 *   real request bodies in docs/BANDCAMP.md#discover_web: every key required, unknown keys rejected with 400; `tag_norm_names`
 *   ANDed over an item's tags, matched exactly as norm names; `slice` top/new/rand orders deterministically; opaque
 *   base64 `cursor`, `"*"` first; `size`; `include_result_types`). `category_id`, `geoname_id` and `time_facet_id`
 *   are validated and otherwise ignored.
 * - album pages at each result's `item_url` path (`/album/<band>-<slug>`), band pages at `/band/<band>/music`,
 *   404 pages elsewhere; album faults redirect (`redirect` 301 to another album, `band-page` 302 to the band page)
 *   or vary the template (`no-tralbum`, `ld-only`, `props-only`) and the tags (`dup-location`, `no-tags`);
 * - `GET /api/mobile/22/tralbum_details?band_id&tralbum_type=a&tralbum_id`;
 * - `GET|HEAD /img/a<art_id>_<format>.jpg` (zero-padded or not).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { albumPath, Catalog, DEFAULT_SIM_GENRES, dirCatalog, syntheticCatalog, type SimAlbum } from './catalog.ts';
import { FaultPlan, parseFaultSpec, type FaultRates, type TransientFault } from './faults.ts';
import { ImageService } from './images.ts';
import { albumPageHtml, bandMusicHtml, bandMusicUrl, challengeHtml, discoverResult, notFoundHtml, tralbumDetailsJson, varnishErrorHtml, type SiteUrls } from './pages.ts';
import { SIM_DISCOVER_WEB_PATH as DISCOVER_WEB_PATH, SIM_TRALBUM_DETAILS_PATH as TRALBUM_DETAILS_PATH, SimDiscoverWebRequestSchema, type SimDiscoverWebRequest } from './protocol.ts';
import { hash32, unit } from './rng.ts';

/** Options of {@link startSimulator}; every field has a default. */
export interface SimulatorOptions {
  /** Port of the site listener (`origin`); 0 (default) picks a free one. */
  port?: number;
  /** Port of the image listener (`imageOrigin`); default 0 (free port). */
  imagePort?: number;
  /** Interface to listen on (default `127.0.0.1`). */
  host?: string;
  /** `synthetic` (default) or the path of a folder with `labels.tsv` (`path<TAB>genre`). */
  catalog?: string;
  /** Synthetic catalogue genres (tag norm names); default the 2015 study's ten. */
  genres?: string[];
  /** Synthetic albums per genre (default 300). */
  perGenre?: number;
  /** Share of synthetic albums also tagged with one or two other genres (default 0.1). */
  overlap?: number;
  /** Share of synthetic albums without cover art (default 0.02). */
  noArt?: number;
  /** Synthetic merch items per genre, as a share of `perGenre` (default 0.02). */
  merch?: number;
  /** DIR catalogue: keep at most this many rows per genre (default all). */
  dirLimit?: number;
  /** Fault rates, or a `--faults` spec string (see `FAULTS_HELP`). Default none. */
  faults?: FaultRates | string;
  /** Seed of every choice (default 0). */
  seed?: number;
  /** Append every request to this file as a JSON line. */
  logFile?: string;
  /** `Retry-After` of injected 429s, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Delay of the `slow` fault, in ms (default 1500). */
  slowMs?: number;
  /** Encoded-image cache budget, in bytes (default 256 MiB). */
  cacheBytes?: number;
  /** Keep the request log in memory (`Simulator.log`; default true). */
  keepLog?: boolean;
}

/** One request, as logged. */
export interface RequestLogEntry {
  /** Arrival time, ms since the epoch. */
  time: number;
  method: string;
  /** Path and query string. */
  path: string;
  /** HTTP status sent; 0 when the connection was reset (`reset` fault). */
  status: number;
  /** The fault injected (transient or content), or null. */
  fault: string | null;
  /** Which listener: `site` (origin) or `img` (imageOrigin). */
  host: 'site' | 'img';
  /** 0-based attempt number of this request key (method, path, body). */
  attempt: number;
  /** Time to answer, ms. */
  ms: number;
  /**
   * Arrival on the simulator's own clock: `performance.now()` of this process (monotonic, sub-millisecond), ms, taken
   * when the server reads the request's headers. Comparable only with the other `*At` fields of the same simulator.
   */
  arrivedAt: number;
  /**
   * When the answer was sent: its last bytes handed to the socket (the response's `prefinish`), on the same clock as
   * {@link arrivedAt}; null when no answer was sent (a reset, or the client left first).
   */
  answeredAt: number | null;
  /** For a 429: the `Retry-After` sent, in ms; else null. */
  retryAfterMs: number | null;
}

/** A running simulator. */
export interface Simulator {
  /** Same as `origin`. */
  url: string;
  /** `http://127.0.0.1:PORT`: plays `https://bandcamp.com` (config `bandcamp.origin`). */
  origin: string;
  /** `http://127.0.0.1:PORT2`: plays `https://f4.bcbits.com` (config `bandcamp.imageOrigin`). */
  imageOrigin: string;
  /** Every request so far (when `keepLog`). */
  log: RequestLogEntry[];
  catalog: Catalog;
  images: ImageService;
  /** The resolved fault rates. */
  faults: FaultRates;
  /** Stops both listeners and closes open connections. */
  close(): Promise<void>;
}

type Endpoint = 'discover' | 'details' | 'page' | 'image' | 'other';

const TRANSIENT_APPLIES: Record<Endpoint, (f: TransientFault) => boolean> = {
  discover: (f) => f !== 'challenge' && f !== 'stripped',
  details: (f) => f !== 'stripped',
  page: () => true,
  image: (f) => f !== 'challenge' && f !== 'stripped',
  other: () => false,
};

/** A sorted listing: items in cursor order with their sort keys. */
interface Listing {
  items: SimAlbum[];
  keys: number[];
}

const CURSOR_PREFIX = Buffer.from([0x02, 0x83, 0x08]);

/**
 * An opaque cursor like Bandcamp's (`AoMI…`, base64, ending in `a<item_id>`, docs/BANDCAMP.md#discover_web): bytes
 * `02 83 08`, the sort key (float64 BE), `2b`, then `a<item_id>`. It means "after this item".
 */
function encodeCursor(key: number, itemId: number): string {
  const b = Buffer.alloc(12);
  CURSOR_PREFIX.copy(b, 0);
  b.writeDoubleBE(key, 3);
  b[11] = 0x2b;
  return Buffer.concat([b, Buffer.from(`a${itemId}`, 'latin1')]).toString('base64');
}

/** Decodes {@link encodeCursor}; null when the string is not such a cursor. */
export function decodeCursor(cursor: string): { key: number; itemId: number } | null {
  const b = Buffer.from(cursor, 'base64');
  if (b.length < 14 || !b.subarray(0, 3).equals(CURSOR_PREFIX) || b[11] !== 0x2b || b[12] !== 0x61) return null;
  const id = b.subarray(13).toString('latin1');
  if (!/^\d+$/.test(id)) return null;
  return { key: b.readDoubleBE(3), itemId: Number(id) };
}

/** The key of a listing (slice, tags, result types), for its cache and its listing fault. */
function listingKey(q: SimDiscoverWebRequest): string {
  const tags = [...new Set(q.tag_norm_names)].sort();
  const types = [...new Set(q.include_result_types)].sort();
  return `${q.slice}|${tags.join(',')}|${types.join(',')}`;
}

/** The `item_url` of a `bad-scheme` album: `file:` or `javascript:` (by `item_id`). */
function badSchemeUrl(itemId: number): string {
  return itemId % 2 === 0 ? `file:///etc/passwd#${itemId}` : `javascript:alert(${itemId})`;
}

/** The size a `huge-body` cover declares and streams: 2 GiB. */
const HUGE_BODY_BYTES = 2 * 1024 ** 3;

/**
 * Answers 200 `image/jpeg` with zeros: `total` bytes under a matching Content-Length, or (null) chunked without
 * end. Honours backpressure and stops when the client goes away, so the simulator itself stays small.
 */
function streamZeros(res: ServerResponse, total: number | null, head: boolean): void {
  res.writeHead(200, { 'content-type': 'image/jpeg', ...(total !== null ? { 'content-length': String(total) } : {}), server: 'nginx' });
  if (head) {
    res.end();
    return;
  }
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  const pump = (): void => {
    while (!res.destroyed) {
      if (total !== null && sent >= total) {
        res.end();
        return;
      }
      const c = total !== null && total - sent < chunk.length ? chunk.subarray(0, total - sent) : chunk;
      sent += c.length;
      if (!res.write(c)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  res.on('close', () => res.off('drain', pump));
  pump();
}

function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}


/** What the answering functions share: the catalogue, the fault plan, the images, the origins, the listing cache. */
interface SimState {
  catalog: Catalog;
  plan: FaultPlan;
  images: ImageService;
  /** The simulator's own origins (filled in once both listeners are bound). */
  site: SiteUrls;
  seed: number;
  /** Delay of the `slow` fault, ms. */
  slowMs: number;
  /** `Retry-After` of an injected 429, s. */
  retryAfter: number;
  /** Sorted listings by {@link listingKey}, the 64 most recent. */
  listings: Map<string, Listing>;
}

/** One request being answered; `fault` is what the log records for it (set as the answer decides). */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Arrival time, ms since the epoch. */
  time: number;
  /** Arrival time on the simulator's clock (`performance.now()`), ms. */
  arrivedAt: number;
  method: string;
  url: URL;
  endpoint: Endpoint;
  /** The request body (POST), else ''. */
  body: string;
  /** Method, path and body: what repeats of one request share (their attempts are counted by it). */
  key: string;
  fault: string | null;
}

/** Sends a complete answer with the headers Bandcamp's CDN adds; `head`: headers only. */
function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}, head = false): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(buf.length),
    server: 'nginx',
    via: '1.1 varnish, 1.1 varnish',
    'x-served-by': 'cache-sim1, cache-sim2',
    ...headers,
  });
  res.end(head ? undefined : buf);
}

/** Sends `v` as JSON. */
function json(res: ServerResponse, status: number, v: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(v));
}

/** Sends an HTML page. */
function html(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  send(res, status, 'text/html; charset=UTF-8', body, headers);
}

/** Which endpoint a path is. */
function endpointOf(path: string): Endpoint {
  if (path === DISCOVER_WEB_PATH) return 'discover';
  if (path === TRALBUM_DETAILS_PATH) return 'details';
  if (/^\/img\//.test(path)) return 'image';
  if (/^\/(album|merch|band)\//.test(path)) return 'page';
  return 'other';
}

/** Reads a request (its body when POST) into an {@link Exchange}; null when it was answered already (413, body too large). */
async function readExchange(req: IncomingMessage, res: ServerResponse): Promise<Exchange | null> {
  const time = Date.now();
  const arrivedAt = performance.now();
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://sim');
  let body = '';
  if (method === 'POST') {
    try {
      body = await readBody(req);
    } catch {
      json(res, 413, { error: true, error_message: 'body too large' });
      return null;
    }
  }
  const key = `${method} ${req.url ?? '/'}${body ? ` ${body}` : ''}`;
  return { req, res, time, arrivedAt, method, url, endpoint: endpointOf(url.pathname), body, key, fault: null };
}

/**
 * Answers with the request's transient fault, if it has one that ends it (429, 503, reset, challenge): true then.
 * `slow` only delays the answer (false after the delay; true when the client left meanwhile).
 */
async function answeredByTransientFault(sim: SimState, ex: Exchange): Promise<boolean> {
  const { req, res } = ex;
  switch (ex.fault) {
    case '429':
      send(res, 429, 'application/json; charset=utf-8', JSON.stringify({ error: true, error_message: 'Too Many Requests' }), { 'retry-after': String(sim.retryAfter) });
      return true;
    case '503':
      html(res, 503, varnishErrorHtml(503, 'Service Unavailable', 54113), { 'retry-after': '0' });
      return true;
    case 'reset':
      req.socket.destroy();
      return true;
    case 'challenge':
      html(res, 200, challengeHtml(hash32(ex.key).toString(36)), { 'cache-control': 'no-store' });
      return true;
    case 'slow': {
      // Ends early when the connection closes (the client gave up, or close() dropped it), so that a closed
      // simulator leaves no timer keeping its process alive for --slow-ms.
      const gone = new AbortController();
      const onClose = () => gone.abort();
      req.socket.once('close', onClose);
      try {
        await sleep(sim.slowMs, undefined, { signal: gone.signal });
      } catch {
        return true;
      } finally {
        req.socket.off('close', onClose);
      }
      return false;
    }
    default:
      return false;
  }
}

/** The sorted listing a `discover_web` request walks (cached by {@link listingKey}). */
function listingFor(sim: SimState, q: SimDiscoverWebRequest): Listing {
  const tags = [...new Set(q.tag_norm_names)].sort();
  const types = [...new Set(q.include_result_types)].sort();
  const k = listingKey(q);
  const cached = sim.listings.get(k);
  if (cached) return cached;
  const sortKey = (a: SimAlbum): number => (q.slice === 'new' ? -a.releaseDate : unit(q.slice, sim.seed, a.itemId));
  const items = sim.catalog.albums
    .filter((a) => types.includes(a.resultType))
    .filter((a) => {
      const have = new Set([...a.tags.map((t) => t.normName), ...(a.location ? [a.location.tag.normName] : [])]);
      return tags.every((t) => have.has(t));
    })
    .map((a) => ({ a, key: sortKey(a) }))
    .sort((x, y) => x.key - y.key || x.a.itemId - y.a.itemId);
  const listing = { items: items.map((x) => x.a), keys: items.map((x) => x.key) };
  if (sim.listings.size >= 64) sim.listings.delete(sim.listings.keys().next().value!);
  sim.listings.set(k, listing);
  return listing;
}

/** The first position of `listing` strictly after a cursor's (key, item_id), by binary search. */
function positionAfter(listing: Listing, c: { key: number; itemId: number }): number {
  let lo = 0;
  let hi = listing.items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const k = listing.keys[mid]!;
    if (k < c.key || (k === c.key && listing.items[mid]!.itemId <= c.itemId)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One page of a listing from `start`, with the cursor to the next (null at the end), and the listing fault that shaped it. */
function listingPage(sim: SimState, q: SimDiscoverWebRequest, listing: Listing, start: number): { page: SimAlbum[]; cursor: string | null; fault: string | null } {
  const n = listing.items.length;
  const listingFault = sim.plan.listing(listingKey(q));
  const page = listing.items.slice(start, start + q.size);
  const end = start + page.length;
  const last = page.at(-1);
  if (listingFault === 'cursor-cycle' && n >= 2 * q.size && start >= 2 * q.size) {
    // A -> B -> A: the third page's cursor is the one the first page gave (pointing at the second page).
    return { page, cursor: encodeCursor(listing.keys[q.size - 1]!, listing.items[q.size - 1]!.itemId), fault: listingFault };
  }
  if (listingFault === 'cursor-endless' && n > 0 && end >= n) {
    // Past the end: the last page again, under a cursor never sent before ("after" an item_id counting up).
    const tail = listing.items.at(-1)!;
    const c = q.cursor === '*' ? null : decodeCursor(q.cursor);
    const k = c && c.key === listing.keys.at(-1) ? Math.max(1, c.itemId - tail.itemId + 1) : 1;
    return { page: listing.items.slice(Math.max(0, n - q.size)), cursor: encodeCursor(listing.keys.at(-1)!, tail.itemId + k), fault: listingFault };
  }
  return { page, cursor: last && end < n ? encodeCursor(listing.keys[end - 1]!, last.itemId) : null, fault: null };
}

/** `POST discover_web`: validates the body, then answers a page of the listing (`bad-scheme` albums get a bad `item_url`). */
function answerDiscover(sim: SimState, ex: Exchange): void {
  const { res } = ex;
  if (ex.method !== 'POST') return json(res, 405, { error: true, error_message: 'POST only' });
  let raw: unknown;
  try {
    raw = JSON.parse(ex.body || '{}');
  } catch {
    return json(res, 400, { error: true, error_message: 'invalid JSON body' });
  }
  const parsed = SimDiscoverWebRequestSchema.safeParse(raw);
  if (!parsed.success) return json(res, 400, { error: true, error_message: parsed.error.message });
  const q = parsed.data;
  const listing = listingFor(sim, q);
  let start = 0;
  if (q.cursor !== '*') {
    const c = decodeCursor(q.cursor);
    if (!c) return json(res, 400, { error: true, error_message: `invalid cursor ${JSON.stringify(q.cursor)}` });
    start = positionAfter(listing, c);
  }
  const { page, cursor, fault } = listingPage(sim, q, listing, start);
  if (fault) ex.fault = fault;
  const results = page.map((a) => {
    const r = discoverResult(sim.site, a);
    if (sim.plan.scheme(a.itemId)) {
      ex.fault ??= 'bad-scheme';
      r.item_url = badSchemeUrl(a.itemId);
    }
    return r;
  });
  json(res, 200, { results, result_count: listing.items.length, batch_result_count: page.length, cursor });
}

/** `GET tralbum_details`: an album's details, or 404 for what the API does not know (removed albums, faults). */
function answerDetails(sim: SimState, ex: Exchange): void {
  const { res, url } = ex;
  const { catalog } = sim;
  const id = Number(url.searchParams.get('tralbum_id'));
  const a = catalog.byItemId.get(id);
  const bandId = url.searchParams.get('band_id');
  const type = url.searchParams.get('tralbum_type') ?? 'a';
  const noSuch = () => json(res, 404, { error: true, error_message: `No such tralbum: tralbum_id=${url.searchParams.get('tralbum_id')} tralbum_type=${type}` });
  if (a && sim.plan.scheme(a.itemId)) {
    ex.fault = 'bad-scheme'; // the label stage then falls back to the (bad) item_url
    return noSuch();
  }
  // Removed albums (404, redirect, band-page) and the details-404 fault: the API has no such tralbum.
  const gone = a ? [...catalog.albumFaultsOf(a.itemId), ...(catalog.detailsFaultOf(a.itemId) ? ['details-404'] : [])] : [];
  if (!a || a.resultType !== 'a' || type !== 'a' || (bandId !== null && Number(bandId) !== a.bandId) || gone.length > 0) {
    if (gone.length > 0) ex.fault = gone[0]!;
    return noSuch();
  }
  const tagFault = catalog.tagFaultOf(a.itemId);
  if (tagFault) ex.fault ??= tagFault;
  json(res, 200, tralbumDetailsJson(sim.site, a, tagFault));
}

/** A band's `/music` page, an album page (with its album fault: 404, redirect, band page, markup, tags), or 404. */
function answerPage(sim: SimState, ex: Exchange): void {
  const { res } = ex;
  const { catalog, site } = sim;
  const path = ex.url.pathname;
  const band = /^\/band\/([^/]+)\/music$/.exec(path);
  if (band) {
    const albums = catalog.albums.filter((x) => x.bandSlug === band[1]);
    if (albums.length === 0) return html(res, 404, notFoundHtml(site), { 'x-robots-tag': 'noindex' });
    if (ex.fault === 'stripped') ex.fault = null; // band pages have no album data to strip
    return html(res, 200, bandMusicHtml(site, band[1]!, albums));
  }
  const a = catalog.albumAt(path);
  if (!a || a.resultType !== 'a') return html(res, 404, notFoundHtml(site), { 'x-robots-tag': 'noindex' });
  const albumFault = catalog.albumFaultsOf(a.itemId)[0];
  if (albumFault === '404') {
    ex.fault = '404';
    return html(res, 404, notFoundHtml(site), { 'x-robots-tag': 'noindex' });
  }
  if (albumFault === 'redirect') {
    ex.fault = 'redirect';
    const to = catalog.redirectTarget(a.itemId)!;
    return send(res, 301, 'text/html; charset=UTF-8', '', { location: `${site.origin}${albumPath(to)}` });
  }
  if (albumFault === 'band-page') {
    ex.fault = 'band-page';
    return send(res, 302, 'text/html; charset=UTF-8', '', { location: bandMusicUrl(site, a.bandSlug) });
  }
  const markup = catalog.markupOf(a.itemId);
  const tagFault = catalog.tagFaultOf(a.itemId);
  const stripped = ex.fault === 'stripped';
  ex.fault ??= markup ?? tagFault;
  html(res, 200, albumPageHtml(site, a, { stripped, markup, tags: tagFault }));
}

/** `GET|HEAD /img/a<art_id>_<format>.jpg`: the cover (with its image fault), an endless or huge body, or 404. */
async function answerImage(sim: SimState, ex: Exchange): Promise<void> {
  const { res, method } = ex;
  const { catalog } = sim;
  const m = /^\/img\/a(\d{1,12})_(\d+)\.(?:jpg|jpeg|png|webp)$/.exec(ex.url.pathname);
  if (!m || (method !== 'GET' && method !== 'HEAD')) return send(res, 404, 'text/plain', 'Not Found');
  const artId = Number(m[1]);
  const bodyFault = catalog.byArtId.has(artId) ? sim.plan.body(artId) : null;
  if (bodyFault) {
    ex.fault = bodyFault;
    return streamZeros(res, bodyFault === 'huge-body' ? HUGE_BODY_BYTES : null, method === 'HEAD');
  }
  const img = await sim.images.get(artId, Number(m[2]));
  if (!img) {
    const album = catalog.byArtId.get(artId);
    if (album && catalog.albumFaultsOf(album.itemId).includes('404')) ex.fault = '404';
    return send(res, 404, 'text/plain', 'Not Found', {}, method === 'HEAD');
  }
  ex.fault ??= img.fault;
  send(res, 200, img.contentType, img.bytes, { 'cache-control': 'public, max-age=31536000', 'accept-ranges': 'bytes' }, method === 'HEAD');
}

/** Any other path: the simulator's home page at `/`, else Bandcamp's 404 page. */
function answerOther(sim: SimState, ex: Exchange): void {
  const path = ex.url.pathname;
  if (path === '/' || path === '') return html(ex.res, 200, '<!DOCTYPE html><html><head><title>Bandcamp simulator</title></head><body>Bandcamp simulator</body></html>');
  html(ex.res, 404, notFoundHtml(sim.site), { 'x-robots-tag': 'noindex' });
}

/** The answering function of each endpoint. */
const ANSWER: Record<Endpoint, (sim: SimState, ex: Exchange) => void | Promise<void>> = {
  discover: answerDiscover,
  details: answerDetails,
  page: answerPage,
  image: answerImage,
  other: answerOther,
};

/**
 * Starts the simulator on 127.0.0.1 (two listeners: site and images).
 * @throws Error when the catalogue folder or the faults spec is invalid, or a port is taken.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const seed = options.seed ?? 0;
  const rates = typeof options.faults === 'string' ? parseFaultSpec(options.faults) : { ...(options.faults ?? {}) };
  const plan = new FaultPlan(rates, seed);
  const catalogOpt = options.catalog ?? 'synthetic';
  const catalog =
    catalogOpt === 'synthetic'
      ? syntheticCatalog(
          {
            genres: options.genres ?? DEFAULT_SIM_GENRES,
            perGenre: options.perGenre ?? 300,
            overlap: options.overlap ?? 0.1,
            noArt: options.noArt ?? 0.02,
            merch: options.merch ?? 0.02,
            seed,
          },
          plan,
        )
      : dirCatalog(catalogOpt, seed, plan, options.dirLimit);
  const images = new ImageService(catalog, { seed, cacheBytes: options.cacheBytes });
  const retryAfter = options.retryAfterSeconds ?? 1;
  const slowMs = options.slowMs ?? 1500;
  const keepLog = options.keepLog ?? true;
  const log: RequestLogEntry[] = [];
  const logStream: WriteStream | null = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : null;
  const site: SiteUrls = { origin: '', imageOrigin: '' };

  const sim: SimState = { catalog, plan, images, site, seed, slowMs, retryAfter, listings: new Map() };
  const attempts = new Map<string, number>();

  /** One request: read it, decide its transient fault, answer it from its endpoint, and log it when it closes. */
  const handle = async (req: IncomingMessage, res: ServerResponse, host: 'site' | 'img'): Promise<void> => {
    const ex = await readExchange(req, res);
    if (!ex) return;
    const attempt = attempts.get(ex.key) ?? 0;
    attempts.set(ex.key, attempt + 1);
    ex.fault = plan.transient(ex.key, attempt, TRANSIENT_APPLIES[ex.endpoint]);
    let answeredAt: number | null = null;
    // 'prefinish': the response's last bytes were handed to its socket (emitted inside `res.end()` when the socket is
    // free, else when the queued answer is flushed); 'finish' comes later, once the write has completed.
    res.once('prefinish', () => {
      answeredAt = performance.now();
    });
    res.on('close', () => {
      const status = res.headersSent ? res.statusCode : 0;
      const entry: RequestLogEntry = {
        time: ex.time, method: ex.method, path: req.url ?? '/', status, fault: ex.fault, host, attempt, ms: Date.now() - ex.time,
        arrivedAt: ex.arrivedAt, answeredAt, retryAfterMs: status === 429 ? sim.retryAfter * 1000 : null,
      };
      if (keepLog) log.push(entry);
      logStream?.write(`${JSON.stringify(entry)}\n`);
    });
    if (await answeredByTransientFault(sim, ex)) return;
    await ANSWER[ex.endpoint](sim, ex);
  };

  const makeServer = (host: 'site' | 'img'): Server =>
    createServer((req, res) => {
      handle(req, res, host).catch((e: unknown) => {
        if (!res.headersSent) send(res, 500, 'text/plain', `simulator error: ${(e as Error).message}`);
        else res.destroy();
      });
    });
  const listen = (server: Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const siteServer = makeServer('site');
  const imgServer = makeServer('img');
  const bindHost = options.host ?? '127.0.0.1';
  const sitePort = await listen(siteServer, options.port ?? 0);
  let imgPort: number;
  try {
    imgPort = await listen(imgServer, options.imagePort ?? 0);
  } catch (e) {
    siteServer.close();
    throw e;
  }
  site.origin = `http://${bindHost}:${sitePort}`;
  site.imageOrigin = `http://${bindHost}:${imgPort}`;

  const closeServer = (s: Server): Promise<void> =>
    new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  return {
    url: site.origin,
    origin: site.origin,
    imageOrigin: site.imageOrigin,
    log,
    catalog,
    images,
    faults: rates,
    async close() {
      await Promise.all([closeServer(siteServer), closeServer(imgServer)]);
      if (logStream) await new Promise<void>((r) => logStream.end(() => r()));
    },
  };
}
