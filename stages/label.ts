/**
 * Stage `label`: decides for each candidate whether it belongs to exactly one chosen genre, and writes
 * `DATA_DIR/labels.arrow` (one row per `candidates.arrow` row).
 *
 * `label.mode`:
 * - `tags` (default, exact): each album's tags from `GET {origin}/api/mobile/22/tralbum_details?band_id=…&
 *   tralbum_type=a&tralbum_id=<item_id>` (docs/BANDCAMP.md#tralbum_details), falling back to the album page (BANDCAMP.md#album-page-markup) when the API
 *   answers 404 or something that is not tralbum details. The page is read from whatever it still carries
 *   (`data-tralbum`, else ld+json, else `bc-page-properties` + `og:image` + `a.tag`: `readAlbumPage`); it blocks the
 *   crawl only when it is a challenge page or carries none of these. Location tags are ignored in every copy
 *   (`isloc`, or the page's last tag group), and tags are counted once per norm name. An album tagged with two or
 *   more chosen genres is not exclusive. One request per album, through the same polite, resumable machinery as
 *   `discover`: progress in `.work/label/tags-<hash>.jsonl`, crawlee queue `label-<hash>` (uniqueKey
 *   `tralbum|<item_id>`).
 *   Rejections per item, never a stop: `not-found` (404), `not-an-album` (the URL serves a band or label page),
 *   `redirected-to:<item_id>` (the answer is another album: its `item_id`, or with no `item_id` on the page its
 *   `art_id`/URL disagree with the listing; then the page's URL is named), `no-tags` (no tags but the location).
 *   A `bc-page-properties` `tralbum_page_version` other than the known ones is warned about once per run.
 *   An album whose request spent its retries on transient failures (429, 5xx, resets, timeouts) waits for the next
 *   run: the crawl goes on with the others, and the stage then ends "rerun later" (exit 75) naming how many are left,
 *   as `download` does; the next run asks only those. Block pages still stop the crawl (`crawl.maxBlockedRetries`).
 * - `listing` (no requests): an album listed under two or more chosen genres is not exclusive.
 */
import { join } from 'node:path';
import { hashJson } from '../pipeline/config.ts';
import { RerunLaterError, type StageContext, type StageImplementation } from '../pipeline/stage.ts';
import { TRALBUM_DETAILS_PATH } from '../bandcamp/api.ts';
import { comparableUrl, detectBlocked, KNOWN_TRALBUM_PAGE_VERSIONS, parseTralbumDetails, readAlbumPage, type AlbumPage, type AlbumSource } from '../bandcamp/parse.ts';
import { BodyTooLargeError, chooseTransport, isHttpUrl, RequestFailedError, siteClient, type HttpResult } from '../bandcamp/client.ts';
import { crawleeStorageDir, ProgressLog, runQueue } from '../bandcamp/crawl.ts';
import { candidatesFormat, type CandidateRow } from '../schemas/candidates.ts';
import { labelsFormat, type LabelRow } from '../schemas/labels.ts';
import { jsonBlockCheck } from '../bandcamp/block-checks.ts';

/** Where an album's label came from (the `source` column of `labels.arrow`). */
export type LabelSource = 'tralbum_details' | AlbumSource | 'listing';

/**
 * One album's outcome in the progress file (format 2). `outcome`: `tags` (tags read; `tags` may be empty), `not-found`
 * (API and page answered 404), `not-an-album` (the URL serves another kind of page: `detail` says which),
 * `redirected` (the answer is another album: `redirected_to` is its `item_id`, or its URL when it names none).
 */
export interface TagRecord {
  item_id: number;
  outcome: 'tags' | 'not-found' | 'not-an-album' | 'redirected' | 'rejected';
  /** Where the answer came from; null for `not-found`. */
  source: LabelSource | null;
  /** Tag norm names, each once, without the location tag. */
  tags: string[];
  redirected_to?: string;
  detail?: string;
  /**
   * For `rejected`, the per-item reason: `unsupported-url` (the item_url is not http(s), never fetched) or `too-large`
   * (the album page is over `crawl.maxPageBytes`).
   */
  rejected?: 'unsupported-url' | 'too-large';
}

/** Version of {@link TagRecord}'s format, part of the progress file's name (older files are not read). */
const TAG_RECORD_FORMAT = 2;

/** The `tralbum_details` URL of an album (docs/BANDCAMP.md#tralbum_details). */
export function tralbumDetailsUrl(origin: string, bandId: number, itemId: number): string {
  return `${origin}${TRALBUM_DETAILS_PATH}?band_id=${bandId}&tralbum_type=a&tralbum_id=${itemId}`;
}

/**
 * An album page is blocked when it is a challenge page, or carries none of the album sources and is no other kind of
 * Bandcamp page ("stripped"): `detectBlocked`. A 404 page is handled by status.
 */
function pageBlockCheck(res: HttpResult): string | null {
  const kind = detectBlocked(res.status, res.body.toString('utf8'));
  return kind === 'challenge' || kind === 'stripped' ? kind : null;
}

/**
 * Is the parsed page another album than the one requested? Returns what it is instead (its `item_id`, else its URL),
 * or null when it is the requested one. Evidence, strongest first: the page's `item_id`; with none, its `art_id`
 * against the listing's; with neither, its URL path against the listing's `item_url` (a custom domain keeps the
 * path).
 */
export function redirectedTo(page: AlbumPage, want: { item_id: number; art_id: number | null; item_url: string }, finalUrl: string): string | null {
  if (page.itemId !== null) return page.itemId === want.item_id ? null : String(page.itemId);
  const there = page.url ?? finalUrl;
  if (page.artId !== null && want.art_id !== null) return page.artId === want.art_id ? null : there;
  const path = (u: string): string => comparableUrl(u).replace(/^[^/]*/, '');
  return path(there) === path(want.item_url) ? null : there;
}

/**
 * The label of one candidate row, given the chosen genres the album matches (`matched`, from its tags or from the
 * listings it appears in).
 */
export function labelFor(genre: string, matched: readonly string[]): { exclusive: boolean; reason: string } {
  if (matched.length === 1 && matched[0] === genre) return { exclusive: true, reason: 'exclusive' };
  if (matched.length >= 2) return { exclusive: false, reason: `multi-genre:${matched.join(',')}` };
  return { exclusive: false, reason: 'no-chosen-genre' };
}

/**
 * The `labels.arrow` row of a candidate from its album's {@link TagRecord}: rejections (`not-found`, `not-an-album`,
 * `redirected-to:<id>`, `no-tags`) keep no tags; otherwise {@link labelFor} over the chosen genres among its tags.
 */
export function labelRowOf(c: Pick<CandidateRow, 'item_id' | 'genre'>, rec: TagRecord, genres: readonly string[]): LabelRow {
  const base = { item_id: c.item_id, genre: c.genre, source: rec.source };
  if (rec.outcome === 'not-found') return { ...base, tags: [], exclusive: false, reason: 'not-found' };
  if (rec.outcome === 'not-an-album') return { ...base, tags: [], exclusive: false, reason: 'not-an-album' };
  if (rec.outcome === 'redirected') return { ...base, tags: [], exclusive: false, reason: `redirected-to:${rec.redirected_to}` };
  if (rec.outcome === 'rejected') return { ...base, tags: [], exclusive: false, reason: rec.rejected ?? 'rejected' };
  if (rec.tags.length === 0) return { ...base, tags: [], exclusive: false, reason: 'no-tags' };
  const matched = genres.filter((g) => rec.tags.includes(g));
  return { ...base, tags: rec.tags, ...labelFor(c.genre!, matched) };
}

async function fetchTags(ctx: StageContext, candidates: CandidateRow[]): Promise<Map<number, TagRecord>> {
  const { config, log } = ctx;
  const origin = config.bandcamp.origin;
  const stateKey = hashJson({ origin, format: TAG_RECORD_FORMAT }).slice(0, 16);
  const progress = new ProgressLog<TagRecord>(join(ctx.workDir, `tags-${stateKey}.jsonl`));
  const done = new Map<number, TagRecord>();
  for (const r of progress.read()) done.set(r.item_id, r);
  const albums = new Map<number, CandidateRow>();
  for (const c of candidates) if (!albums.has(c.item_id!)) albums.set(c.item_id!, c);
  const todo = [...albums.values()].filter((c) => !done.has(c.item_id!));
  const doneHere = albums.size - todo.length;
  if (doneHere) log.info(`resuming: tags of ${doneHere} album(s) already fetched`);
  if (todo.length === 0) return done;

  const { name: transportName } = chooseTransport(config, origin);
  log.info(`fetching tags of ${todo.length} album(s) via ${origin}${TRALBUM_DETAILS_PATH} (${transportName}, ≤${config.crawl.maxRequestsPerMinute}/min)`);
  const bar = ctx.progress('tralbum_details', albums.size);
  bar.tick(doneHere);
  const client = siteClient(config, { log, signal: ctx.signal });
  type Data = { item_id: number; band_id: number; item_url: string; art_id: number | null };
  const warnedVersions = new Set<number>();
  const pageSources = new Map<string, number>();
  /** Albums whose request spent its retries this run (item_id → the failure): asked again by the next run. */
  const deferred = new Map<number, RequestFailedError>();
  await runQueue<Data>({
    name: `label-${stateKey}`,
    storageDir: crawleeStorageDir(ctx.workDir),
    maxConcurrency: config.crawl.maxConcurrency,
    log,
    signal: ctx.signal,
    pending: () =>
      [...albums.values()]
        .filter((c) => !done.has(c.item_id!) && !deferred.has(c.item_id!))
        .map((c) => {
          const url = tralbumDetailsUrl(origin, c.band_id!, c.item_id!);
          return { uniqueKey: `tralbum|${c.item_id}`, url, data: { item_id: c.item_id!, band_id: c.band_id!, item_url: c.item_url!, art_id: c.art_id } };
        }),
    async handle(data, _enqueue, signal) {
      // A request a killed run recorded but crawlee never marked handled: our progress file is the truth.
      if (done.has(data.item_id)) return;
      let rec: TagRecord;
      try {
        rec = await tagRecordOf(data, signal);
      } catch (e) {
        if (!(e instanceof RequestFailedError && e.transient)) throw e;
        deferred.set(data.item_id, e);
        log.debug(`${e.url} (item ${data.item_id}): ${e.reason} after ${e.attempts} attempts; asked again next run`);
        return;
      }
      if (rec.outcome === 'redirected') log.debug(`${data.item_url} (item ${data.item_id}): answered by another album, ${rec.redirected_to}`);
      if (rec.outcome === 'not-an-album') log.debug(`${data.item_url} (item ${data.item_id}): not an album page (${rec.detail})`);
      progress.append(rec);
      done.set(data.item_id, rec);
      bar.tick();
    },
  });
  bar.stop();
  const sources = [...pageSources].map(([k, n]) => `${k} ${n}`).join(', ');
  log.info(`tralbum_details: ${client.stats.requests} request(s), ${client.stats.status429} × 429, ${client.stats.retries} retries, ${client.stats.blocked} block page(s)${sources ? `; album pages read from ${sources}` : ''}`);
  if (deferred.size > 0) {
    const eg = [...deferred.values()].slice(0, 3).map((e) => `${e.url}: ${e.reason}`);
    throw new RerunLaterError(
      `label: ${deferred.size} album${deferred.size === 1 ? '' : 's'} could not be asked yet (their requests spent ${config.crawl.maxRetries + 1} attempts each; e.g. ${eg.join('; ')}); ` +
        `the tags of the other ${done.size} are recorded: rerun the same command later to continue with these only.`,
    );
  }
  return done;

  /** Asks for one album's tags (API, else its page) and says what came back. @throws RequestFailedError, BlockedError. */
  async function tagRecordOf({ item_id, band_id, item_url, art_id }: Data, signal: AbortSignal): Promise<TagRecord> {
    let rec: TagRecord | null = null;
    // An answer over crawl.maxPageBytes is not tralbum details: fall back to the album page, like a 404.
    const res = await client.request({ url: tralbumDetailsUrl(origin, band_id, item_id), blockCheck: jsonBlockCheck, signal }).catch((e: unknown) => {
      if (e instanceof BodyTooLargeError) return null;
      throw e;
    });
    if (res?.status === 200) {
      try {
        const d = parseTralbumDetails(JSON.parse(res.body.toString('utf8')));
        rec =
          d.itemId !== item_id
            ? { item_id, outcome: 'redirected', source: 'tralbum_details', tags: [], redirected_to: String(d.itemId) }
            : { item_id, outcome: 'tags', source: 'tralbum_details', tags: d.tags.map((t) => t.normName) };
      } catch (e) {
        log.debug(`tralbum_details of ${item_id}: ${(e as Error).message.slice(0, 200)}; falling back to the album page`);
      }
    }
    // Only http(s) URLs are fetched: another scheme (file:, javascript:) is this item's rejection.
    if (!rec && !isHttpUrl(item_url)) rec = { item_id, outcome: 'rejected', source: null, tags: [], rejected: 'unsupported-url' };
    if (!rec) {
      const page = await client.request({ url: item_url, blockCheck: pageBlockCheck, signal }).catch((e: unknown) => {
        if (e instanceof BodyTooLargeError) return null;
        throw e;
      });
      const html = page?.body.toString('utf8') ?? '';
      const read = page && page.status === 200 && detectBlocked(page.status, html) !== 'not-found' ? readAlbumPage(html) : null;
      if (page === null) {
        rec = { item_id, outcome: 'rejected', source: null, tags: [], rejected: 'too-large' };
      } else if (read === null) {
        rec = { item_id, outcome: 'not-found', source: null, tags: [] };
      } else if (read.kind === 'album') {
        const p = read.page;
        pageSources.set(p.source, (pageSources.get(p.source) ?? 0) + 1);
        if (p.pageVersion !== null && !KNOWN_TRALBUM_PAGE_VERSIONS.includes(p.pageVersion) && !warnedVersions.has(p.pageVersion)) {
          warnedVersions.add(p.pageVersion);
          log.warn(`album pages carry an unknown tralbum_page_version ${p.pageVersion} (known: ${KNOWN_TRALBUM_PAGE_VERSIONS.join(', ')}; first at ${page.url}): Bandcamp may have changed its album template; read from ${p.source}`);
        }
        const other = redirectedTo(p, { item_id, art_id, item_url }, page.url);
        rec = other !== null
          ? { item_id, outcome: 'redirected', source: p.source, tags: [], redirected_to: other }
          : { item_id, outcome: 'tags', source: p.source, tags: p.tags.map((t) => t.normName) };
      } else {
        // pageBlockCheck lets no 'none' page through; a page of another kind is this item's rejection.
        const what = read.kind === 'not-an-album' ? read.what : 'no album data';
        rec = { item_id, outcome: 'not-an-album', source: null, tags: [], detail: `${page.url}: ${what}` };
      }
    }
    return rec;
  }
}

async function run(ctx: StageContext): Promise<void> {
  const { config, log } = ctx;
  const candidates = candidatesFormat.read(ctx.path('candidates.arrow'));
  const chosen = new Set(config.genres);
  const rows: LabelRow[] = [];
  if (config.label.mode === 'listing') {
    const listedIn = new Map<number, string[]>();
    for (const c of candidates) {
      const l = listedIn.get(c.item_id!) ?? [];
      if (!l.includes(c.genre!)) l.push(c.genre!);
      listedIn.set(c.item_id!, l);
    }
    for (const c of candidates) {
      const matched = config.genres.filter((g) => listedIn.get(c.item_id!)!.includes(g));
      rows.push({ item_id: c.item_id, genre: c.genre, tags: matched, source: 'listing', ...labelFor(c.genre!, matched) });
    }
  } else {
    const tags = await fetchTags(ctx, candidates);
    for (const c of candidates) rows.push(labelRowOf(c, tags.get(c.item_id!)!, config.genres));
  }
  labelsFormat.write(ctx.out('labels.arrow'), rows);
  const byReason = new Map<string, number>();
  for (const r of rows) {
    const k = r.reason!.split(':')[0]!;
    byReason.set(k, (byReason.get(k) ?? 0) + 1);
  }
  log.info(`labels (${config.label.mode}): ${[...byReason].map(([k, n]) => `${k} ${n}`).join(', ')}; chosen genres ${[...chosen].join(', ')}`);
}

/** The `label` stage. */
export const labelStage: StageImplementation = {
  name: 'label',
  run,
};

export default labelStage;
