/**
 * Stage `discover`: lists albums per genre through `POST {bandcamp.origin}/api/discover/1/discover_web`
 * (docs/BANDCAMP.md#discover_web), paging with the opaque `cursor` until the genre has `perGenre × crawl.oversample` albums (or
 * more, when `download` asked for more: `.work/discover/demand.json`, written by the runner) in whole pages, or the
 * listing ends, and writes `DATA_DIR/candidates.arrow` (metadata `listing`: per genre, pages, albums, extra rounds
 * and why the listing ended, {@link ListingInfo}).
 *
 * Bounded: a listing ends at the site's end, at a cursor already seen in it (a cycle, with a warning), after
 * `crawl.maxEmptyPages` pages in a row without a new album (an endless cursor), or at `crawl.maxPagesPerGenre`
 * pages; every answer is read up to `crawl.maxListingBytes`. A listing that a guard ended (a cycle, pages without new
 * albums) still gives its candidates, so the later stages go on, but the run is recorded as incomplete
 * (`ctx.incomplete`): the next `covers make` reruns discover, which asks again from the page that misbehaved.
 *
 * Resumable: each finished page is appended to `.work/discover/pages-<hash>.jsonl` (the truth of what is done;
 * `<hash>` covers origin, slice and page size), and crawlee's named request queue `discover-<hash>` lives in
 * `.work/discover/crawlee/`. A killed crawl restarts at the first page its progress file lacks: finished pages are
 * never requested again. Every POST has the `uniqueKey` `<genre>|<slice>|<cursor>` (docs/PITFALLS.md #1).
 */
import { hashJson, type Config } from '../pipeline/config.ts';
import { DEMAND_FILE, UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { DISCOVER_WEB_PATH } from '../bandcamp/api.ts';
import { parseDiscoverWebResponse } from '../bandcamp/parse.ts';
import { jsonBlockCheck } from '../bandcamp/block-checks.ts';
import { BodyTooLargeError, chooseTransport, RequestFailedError, siteClient } from '../bandcamp/client.ts';
import { crawleeStorageDir, ProgressLog, runQueue } from '../bandcamp/crawl.ts';
import { readDemand } from '../schemas/demand.ts';
import { candidatesFormat, type CandidateRow, type ListingEnd, type ListingInfo } from '../schemas/candidates.ts';

export { endedByGuard, readListingInfo, type ListingEnd, type ListingInfo } from '../schemas/candidates.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One album of a listing page, as kept in the progress file. */
export interface ListedAlbum {
  item_id: number;
  art_id: number | null;
  item_url: string;
  title: string;
  band_name: string;
  band_id: number;
  result_type: string;
}

/** One finished `discover_web` page in the progress file. */
export interface PageRecord {
  genre: string;
  cursor: string;
  /** The response's `cursor` (null/empty: the listing ended). */
  next: string | null;
  results: ListedAlbum[];
}

/** Albums to list per genre: `ceil(perGenre × crawl.oversample)`. */
function listingTarget(config: Config): number {
  return Math.ceil(config.perGenre * config.crawl.oversample);
}

/** The `discover_web` request body for one page (docs/BANDCAMP.md#discover_web; albums only). */
export function discoverPayload(config: Config, genre: string, cursor: string): Record<string, unknown> {
  return {
    category_id: 0,
    tag_norm_names: [genre],
    geoname_id: 0,
    slice: config.crawl.slice,
    time_facet_id: null,
    cursor,
    size: config.crawl.pageSize,
    include_result_types: ['a'],
  };
}

/** The stable crawlee `uniqueKey` of a page: `<genre>|<slice>|<cursor>`. */
function pageKey(genre: string, slice: string, cursor: string): string {
  return `${genre}|${slice}|${cursor}`;
}

/** Limits of a walk ({@link walkGenre}). */
export interface WalkLimits {
  /** Pages in a row without a new album that end the listing (`crawl.maxEmptyPages`). */
  maxEmptyPages: number;
  /** Most pages walked (`crawl.maxPagesPerGenre`). */
  maxPages: number;
}

/** Where a genre's listing stands ({@link walkGenre}). */
export interface GenreWalk {
  /** Albums of every walked page, in listing order, each `item_id` once (whole pages: may pass the target). */
  albums: ListedAlbum[];
  /** The cursor of the next page to fetch; null when the target is reached or the listing ended. */
  nextCursor: string | null;
  /** Pages walked. */
  pagesUsed: number;
  /** Why the listing ended, or null while it goes on. */
  ended: ListingEnd | null;
  /** The cursor that came back when `ended` is `cursor-cycle`. */
  cycleAt?: string;
  /** The cursors of the walked pages, in order. */
  chain: string[];
}

/**
 * The cursors of the pages to ask again when a guard ended the listing ({@link endedByGuard}), first to last: the
 * page whose next cursor came back (a cycle), or the run of pages without a new album and the page before it (whose
 * next cursor led there); none otherwise. The first of them is where the next run resumes.
 */
function pagesToAskAgain(w: GenreWalk, maxEmptyPages: number): string[] {
  if (w.ended === 'cursor-cycle') return w.chain.slice(-1);
  if (w.ended === 'no-new-items') return w.chain.slice(-(maxEmptyPages + 1));
  return [];
}

/**
 * Walks one genre's page chain from `"*"` through the recorded pages until `target` albums, the first page not yet
 * fetched, or the end of the listing: no next cursor or an empty page (`end`), a cursor seen before in this listing
 * (`cursor-cycle`), `maxEmptyPages` pages in a row without a new album (`no-new-items`), or `maxPages` pages
 * (`page-limit`). Every page it visits is distinct, so it ends on any recorded chain.
 */
export function walkGenre(pages: Map<string, PageRecord>, target: number, limits: WalkLimits = { maxEmptyPages: 3, maxPages: 500 }): GenreWalk {
  const albums: ListedAlbum[] = [];
  const seen = new Set<number>();
  const cursors = new Set<string>();
  let cursor = '*';
  let used = 0;
  let emptyRun = 0;
  const chain: string[] = [];
  for (;;) {
    if (cursors.has(cursor)) return { albums, nextCursor: null, pagesUsed: used, ended: 'cursor-cycle', cycleAt: cursor, chain };
    cursors.add(cursor);
    if (used >= limits.maxPages) return { albums, nextCursor: null, pagesUsed: used, ended: 'page-limit', chain };
    const rec = pages.get(cursor);
    if (!rec) return { albums, nextCursor: cursor, pagesUsed: used, ended: null, chain };
    used++;
    chain.push(cursor);
    let fresh = 0;
    for (const r of rec.results) {
      if (r.result_type !== 'a' || seen.has(r.item_id)) continue;
      seen.add(r.item_id);
      albums.push(r);
      fresh++;
    }
    emptyRun = fresh === 0 ? emptyRun + 1 : 0;
    if (!rec.next || rec.results.length === 0) return { albums, nextCursor: null, pagesUsed: used, ended: 'end', chain };
    if (albums.length >= target) return { albums, nextCursor: null, pagesUsed: used, ended: null, chain };
    if (emptyRun >= limits.maxEmptyPages) return { albums, nextCursor: null, pagesUsed: used, ended: 'no-new-items', chain };
    cursor = rec.next;
  }
}

async function run(ctx: StageContext): Promise<void> {
  const { config, log } = ctx;
  const origin = config.bandcamp.origin;
  const baseTarget = listingTarget(config);
  const demand = readDemand(join(ctx.workDir, DEMAND_FILE));
  const targetOf = (genre: string) => Math.max(baseTarget, demand?.albums[genre] ?? 0);
  const limits: WalkLimits = { maxEmptyPages: config.crawl.maxEmptyPages, maxPages: config.crawl.maxPagesPerGenre };
  const walk = (genre: string, target = targetOf(genre)) => walkGenre(byGenre.get(genre)!, target, limits);
  const stateKey = hashJson({ origin, slice: config.crawl.slice, size: config.crawl.pageSize }).slice(0, 16);
  const progress = new ProgressLog<PageRecord>(join(ctx.workDir, `pages-${stateKey}.jsonl`));
  const byGenre = new Map<string, Map<string, PageRecord>>(config.genres.map((g) => [g, new Map()]));
  let resumed = 0;
  for (const rec of progress.read()) {
    const m = byGenre.get(rec.genre);
    if (m) {
      m.set(rec.cursor, rec);
      resumed++;
    }
  }
  if (resumed) log.info(`resuming: ${resumed} page(s) already fetched (${progress.path})`);
  // A listing that a guard ended last time (a cursor cycle, pages without new albums; the run was then recorded as
  // incomplete, so the runner reran this stage) is asked again from the page that misbehaved, once per run: the
  // pages before it are not fetched again, and after the site recovers the listing equals one that never saw the
  // fault. While the fault lasts, the same pages end it the same way.
  for (const genre of config.genres) {
    const w = walk(genre);
    const redo = pagesToAskAgain(w, config.crawl.maxEmptyPages);
    for (const c of redo) byGenre.get(genre)!.delete(c);
    if (redo.length) log.info(`genre "${genre}": the listing ended on ${w.ended} last time, after ${w.pagesUsed} page(s); asking again from the page that misbehaved (cursor ${redo[0]!.slice(0, 40)})`);
  }
  if (demand) {
    const more = config.genres.filter((g) => targetOf(g) > baseTarget).map((g) => `${g} ${targetOf(g)}`);
    if (more.length) log.info(`listing further on demand (albums per genre): ${more.join(', ')}`);
  }

  const url = `${origin}${DISCOVER_WEB_PATH}`;
  const pagesWanted = config.genres.reduce((n, g) => n + Math.ceil(targetOf(g) / config.crawl.pageSize), 0);
  const bar = ctx.progress('discover_web pages', pagesWanted);
  const item = (genre: string, cursor: string) => ({ uniqueKey: pageKey(genre, config.crawl.slice, cursor), url, method: 'POST' as const, data: { genre, cursor } });
  const initial = [];
  for (const genre of config.genres) {
    const w = walk(genre);
    bar.tick(w.pagesUsed);
    if (w.nextCursor !== null) initial.push(item(genre, w.nextCursor));
  }

  if (initial.length) {
    const { name: transportName } = chooseTransport(config, origin);
    log.info(`listing ${initial.length} genre(s) via ${url} (${transportName}, ≤${config.crawl.maxRequestsPerMinute}/min, concurrency ${config.crawl.maxConcurrency})`);
    const client = siteClient(config, { log, signal: ctx.signal });
    await runQueue<{ genre: string; cursor: string }>({
      name: `discover-${stateKey}`,
      storageDir: crawleeStorageDir(ctx.workDir),
      pending: () => config.genres.flatMap((genre) => {
        const w = walk(genre);
        return w.nextCursor === null ? [] : [item(genre, w.nextCursor)];
      }),
      maxConcurrency: config.crawl.maxConcurrency,
      log,
      signal: ctx.signal,
      async handle({ genre, cursor }, enqueue, signal) {
        // Crawlee's queue can hand out a request that a killed run fetched and recorded but never marked handled:
        // our progress file is the truth, so a recorded page is not fetched again. Nor is a page the walk no longer
        // leads to (a cycle or a limit found meanwhile).
        if (byGenre.get(genre)!.has(cursor) || walk(genre).nextCursor !== cursor) return;
        let res;
        try {
          res = await client.request({
            url,
            json: discoverPayload(config, genre, cursor),
            headers: { origin, referer: `${origin}/discover/${encodeURIComponent(genre)}`, 'x-requested-with': 'XMLHttpRequest' },
            blockCheck: jsonBlockCheck,
            signal,
            maxBytes: config.crawl.maxListingBytes,
          });
        } catch (e) {
          if (e instanceof BodyTooLargeError) {
            throw new UserError(`discover_web answered genre "${genre}" (cursor ${cursor}) with more than crawl.maxListingBytes=${config.crawl.maxListingBytes} bytes; that is not a listing page (check bandcamp.origin, or raise crawl.maxListingBytes)`);
          }
          throw e;
        }
        if (res.status !== 200) throw new RequestFailedError(url, `HTTP ${res.status} for genre "${genre}" (cursor ${cursor})`, 1);
        let parsed;
        try {
          parsed = parseDiscoverWebResponse(JSON.parse(res.body.toString('utf8')));
        } catch (e) {
          throw new UserError(`discover_web answered genre "${genre}" (cursor ${cursor}) with an unexpected response: ${(e as Error).message.slice(0, 300)}`);
        }
        const rec: PageRecord = {
          genre,
          cursor,
          next: typeof parsed.cursor === 'string' && parsed.cursor !== '' ? parsed.cursor : null,
          results: parsed.results.map((r) => ({
            item_id: r.item_id,
            art_id: r.artId,
            item_url: r.item_url,
            title: r.title,
            band_name: r.band_name,
            band_id: r.band_id,
            result_type: r.result_type,
          })),
        };
        progress.append(rec);
        byGenre.get(genre)!.set(cursor, rec);
        bar.tick();
        const w = walk(genre);
        if (w.nextCursor !== null) await enqueue(item(genre, w.nextCursor));
      },
    });
    log.info(`discover_web: ${client.stats.requests} request(s), ${client.stats.status429} × 429, ${client.stats.retries} retries, ${client.stats.blocked} block page(s)`);
  }
  bar.stop();

  const rows: CandidateRow[] = [];
  const listing: Record<string, ListingInfo> = {};
  const guarded: string[] = [];
  for (const genre of config.genres) {
    const target = targetOf(genre);
    const w = walk(genre);
    const first = walk(genre, baseTarget);
    const resumeAt = pagesToAskAgain(w, config.crawl.maxEmptyPages)[0];
    listing[genre] = {
      albums: w.albums.length,
      pages: w.pagesUsed,
      firstRoundPages: first.pagesUsed,
      firstRoundAlbums: first.albums.length,
      extraRounds: demand?.rounds[genre] ?? 0,
      ended: w.ended,
      ...(resumeAt !== undefined ? { resumeAt } : {}),
    };
    const retry = `the listing ends there for now, after ${w.albums.length} album(s) in ${w.pagesUsed} page(s); the next \`covers make\` asks again from that page (nothing before it is fetched again)`;
    if (w.ended === 'cursor-cycle') log.warn(`genre "${genre}": discover_web sent a cursor it had sent before (${w.cycleAt!.slice(0, 40)}); ${retry}`);
    else if (w.ended === 'no-new-items') log.warn(`genre "${genre}": ${config.crawl.maxEmptyPages} discover_web page(s) in a row brought no new album (crawl.maxEmptyPages); ${retry}`);
    else if (w.ended === 'page-limit') log.warn(`genre "${genre}": stopped after crawl.maxPagesPerGenre=${config.crawl.maxPagesPerGenre} pages (${w.albums.length} album(s))`);
    if (resumeAt !== undefined) guarded.push(`genre "${genre}" ended on ${w.ended} after ${w.pagesUsed} page(s), resumes at cursor ${resumeAt.slice(0, 40)}`);
    if (w.albums.length < target) log.warn(`genre "${genre}": the listing ended after ${w.albums.length} album(s) (wanted ${target})`);
    w.albums.forEach((a, i) => {
      rows.push({ genre, rank: i + 1, item_id: a.item_id, art_id: a.art_id, item_url: a.item_url, title: a.title, band_name: a.band_name, band_id: a.band_id });
    });
  }
  candidatesFormat.write(ctx.out('candidates.arrow'), rows, { listing: JSON.stringify(listing) });
  // A guard is not the site's end: the candidates are usable, but the listing is not finished.
  if (guarded.length) ctx.incomplete(`discover_web misbehaved: ${guarded.join('; ')}`);
  log.info(`candidates: ${rows.length} album(s) in ${config.genres.length} genre(s)`);
}

/** The `discover` stage. */
export const discoverStage: StageImplementation = {
  name: 'discover',
  run,
};

export default discoverStage;
