/**
 * Stage `discover`: lists albums per genre through `POST {bandcamp.origin}/api/discover/1/discover_web`
 * (REFERENCE.md §2.4), paging with the opaque `cursor` until the genre has `perGenre × crawl.oversample` albums or
 * the listing ends, and writes `DATA_DIR/candidates.arrow`.
 *
 * Resumable: each finished page is appended to `.work/discover/pages-<hash>.jsonl` (the truth of what is done;
 * `<hash>` covers origin, slice and page size), and crawlee's named request queue `discover-<hash>` lives in
 * `.work/discover/crawlee/`. A killed crawl restarts at the first page its progress file lacks: finished pages are
 * never requested again. Every POST has the `uniqueKey` `<genre>|<slice>|<cursor>` (PITFALLS.md #1).
 */
import { hashJson, type Config } from '../pipeline/config.ts';
import { UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { DISCOVER_WEB_PATH } from '../bandcamp/api.ts';
import { parseDiscoverWebResponse } from '../bandcamp/parse.ts';
import { jsonBlockCheck } from '../bandcamp/block-checks.ts';
import { chooseTransport, RequestFailedError, siteClient } from '../bandcamp/client.ts';
import { crawleeStorageDir, ProgressLog, runQueue } from '../bandcamp/crawl.ts';
import { candidatesFormat, type CandidateRow } from '../schemas/candidates.ts';
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
export function listingTarget(config: Config): number {
  return Math.ceil(config.perGenre * config.crawl.oversample);
}

/** The `discover_web` request body for one page (REFERENCE.md §2.4; albums only). */
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
export function pageKey(genre: string, slice: string, cursor: string): string {
  return `${genre}|${slice}|${cursor}`;
}

/** Walks one genre's page chain from `"*"` through the recorded pages. */
export function walkGenre(pages: Map<string, PageRecord>, target: number): { albums: ListedAlbum[]; nextCursor: string | null; pagesUsed: number } {
  const albums: ListedAlbum[] = [];
  const seen = new Set<number>();
  let cursor = '*';
  let used = 0;
  for (;;) {
    const rec = pages.get(cursor);
    if (!rec) return { albums, nextCursor: cursor, pagesUsed: used };
    used++;
    for (const r of rec.results) {
      if (r.result_type !== 'a' || seen.has(r.item_id)) continue;
      seen.add(r.item_id);
      albums.push(r);
    }
    if (albums.length >= target || !rec.next || rec.results.length === 0) return { albums: albums.slice(0, target), nextCursor: null, pagesUsed: used };
    if (rec.next === cursor) return { albums, nextCursor: null, pagesUsed: used }; // a cursor that does not move ends the walk
    cursor = rec.next;
  }
}

async function run(ctx: StageContext): Promise<void> {
  const { config, log } = ctx;
  const origin = config.bandcamp.origin;
  const target = listingTarget(config);
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

  const url = `${origin}${DISCOVER_WEB_PATH}`;
  const pagesPerGenre = Math.ceil(target / config.crawl.pageSize);
  const bar = ctx.progress('discover_web pages', config.genres.length * pagesPerGenre);
  const item = (genre: string, cursor: string) => ({ uniqueKey: pageKey(genre, config.crawl.slice, cursor), url, method: 'POST' as const, data: { genre, cursor } });
  const initial = [];
  for (const genre of config.genres) {
    const w = walkGenre(byGenre.get(genre)!, target);
    bar.tick(Math.min(w.pagesUsed, pagesPerGenre));
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
        const w = walkGenre(byGenre.get(genre)!, target);
        return w.nextCursor === null ? [] : [item(genre, w.nextCursor)];
      }),
      maxConcurrency: config.crawl.maxConcurrency,
      log,
      signal: ctx.signal,
      async handle({ genre, cursor }, enqueue, signal) {
        // Crawlee's queue can hand out a request that a killed run fetched and recorded but never marked handled:
        // our progress file is the truth, so a recorded page is not fetched again.
        if (byGenre.get(genre)!.has(cursor)) return;
        const res = await client.request({
          url,
          json: discoverPayload(config, genre, cursor),
          headers: { origin, referer: `${origin}/discover/${encodeURIComponent(genre)}`, 'x-requested-with': 'XMLHttpRequest' },
          blockCheck: jsonBlockCheck,
          signal,
        });
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
        const w = walkGenre(byGenre.get(genre)!, target);
        if (w.nextCursor !== null) await enqueue(item(genre, w.nextCursor));
      },
    });
    log.info(`discover_web: ${client.stats.requests} request(s), ${client.stats.status429} × 429, ${client.stats.retries} retries, ${client.stats.blocked} block page(s)`);
  }
  bar.stop();

  const rows: CandidateRow[] = [];
  for (const genre of config.genres) {
    const { albums } = walkGenre(byGenre.get(genre)!, target);
    if (albums.length < target) log.warn(`genre "${genre}": the listing ended after ${albums.length} album(s) (wanted ${target})`);
    albums.forEach((a, i) => {
      rows.push({ genre, rank: i + 1, item_id: a.item_id, art_id: a.art_id, item_url: a.item_url, title: a.title, band_name: a.band_name, band_id: a.band_id });
    });
  }
  candidatesFormat.write(ctx.out('candidates.arrow'), rows);
  log.info(`candidates: ${rows.length} album(s) in ${config.genres.length} genre(s)`);
}

/** The `discover` stage. */
export const discoverStage: StageImplementation = {
  name: 'discover',
  run,
};

export default discoverStage;
