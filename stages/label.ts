/**
 * Stage `label`: decides for each candidate whether it belongs to exactly one chosen genre, and writes
 * `DATA_DIR/labels.arrow` (one row per `candidates.arrow` row).
 *
 * `label.mode`:
 * - `tags` (default, exact): each album's tags from `GET {origin}/api/mobile/22/tralbum_details?band_id=…&
 *   tralbum_type=a&tralbum_id=<item_id>` (REFERENCE.md §2.7), falling back to the album page's `a.tag` links (§3.2)
 *   when the API answers 404 or something that is not tralbum details. Location tags are ignored (`isloc`, or the
 *   page's last tag when it is the band's location: `bandcamp/parse.ts`). An album tagged with two or more chosen
 *   genres is not exclusive. One request per album, through the same polite, resumable machinery as `discover`:
 *   progress in `.work/label/tags-<hash>.jsonl`, crawlee queue `label-<hash>` (uniqueKey `tralbum|<item_id>`).
 * - `listing` (no requests): an album listed under two or more chosen genres is not exclusive.
 */
import { join } from 'node:path';
import { hashJson } from '../pipeline/config.ts';
import type { StageContext, StageImplementation } from '../pipeline/stage.ts';
import { TRALBUM_DETAILS_PATH } from '../bandcamp/api.ts';
import { detectBlocked, parseAlbumPage, parseTralbumDetails } from '../bandcamp/parse.ts';
import { chooseTransport, siteClient, type HttpResult } from '../bandcamp/client.ts';
import { crawleeStorageDir, ProgressLog, runQueue } from '../bandcamp/crawl.ts';
import { candidatesFormat, type CandidateRow } from '../schemas/candidates.ts';
import { labelsFormat, type LabelRow } from '../schemas/labels.ts';
import { jsonBlockCheck } from '../bandcamp/block-checks.ts';

/** One album's tags in the progress file. `source`: where they came from; `not-found` when both answered 404. */
export interface TagRecord {
  item_id: number;
  source: 'api' | 'page' | 'not-found';
  /** Tag norm names without the location tag. */
  tags: string[];
}

/** The `tralbum_details` URL of an album (REFERENCE.md §2.7). */
export function tralbumDetailsUrl(origin: string, bandId: number, itemId: number): string {
  return `${origin}${TRALBUM_DETAILS_PATH}?band_id=${bandId}&tralbum_type=a&tralbum_id=${itemId}`;
}

/** An album page is blocked when it is a challenge or stripped page (a 404 page is handled by status). */
function pageBlockCheck(res: HttpResult): string | null {
  const kind = detectBlocked(res.status, res.body.toString('utf8'));
  return kind === 'challenge' || kind === 'stripped' ? kind : null;
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

async function fetchTags(ctx: StageContext, candidates: CandidateRow[]): Promise<Map<number, TagRecord>> {
  const { config, log } = ctx;
  const origin = config.bandcamp.origin;
  const stateKey = hashJson({ origin }).slice(0, 16);
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
  type Data = { item_id: number; band_id: number; item_url: string };
  await runQueue<Data>({
    name: `label-${stateKey}`,
    storageDir: crawleeStorageDir(ctx.workDir),
    maxConcurrency: config.crawl.maxConcurrency,
    log,
    signal: ctx.signal,
    pending: () =>
      [...albums.values()]
        .filter((c) => !done.has(c.item_id!))
        .map((c) => {
          const url = tralbumDetailsUrl(origin, c.band_id!, c.item_id!);
          return { uniqueKey: `tralbum|${c.item_id}`, url, data: { item_id: c.item_id!, band_id: c.band_id!, item_url: c.item_url! } };
        }),
    async handle({ item_id, band_id, item_url }, _enqueue, signal) {
      // A request a killed run recorded but crawlee never marked handled: our progress file is the truth.
      if (done.has(item_id)) return;
      let rec: TagRecord | null = null;
      const res = await client.request({ url: tralbumDetailsUrl(origin, band_id, item_id), blockCheck: jsonBlockCheck, signal });
      if (res.status === 200) {
        try {
          const d = parseTralbumDetails(JSON.parse(res.body.toString('utf8')));
          rec = { item_id, source: 'api', tags: d.tags.map((t) => t.normName) };
        } catch (e) {
          log.debug(`tralbum_details of ${item_id}: ${(e as Error).message.slice(0, 200)}; falling back to the album page`);
        }
      }
      if (!rec) {
        const page = await client.request({ url: item_url, blockCheck: pageBlockCheck, signal });
        const html = page.body.toString('utf8');
        if (page.status === 200 && detectBlocked(page.status, html) !== 'not-found') {
          const p = parseAlbumPage(html, item_url);
          rec = { item_id, source: 'page', tags: p.tags.map((t) => t.normName) };
        } else {
          rec = { item_id, source: 'not-found', tags: [] };
        }
      }
      progress.append(rec);
      done.set(item_id, rec);
      bar.tick();
    },
  });
  bar.stop();
  log.info(`tralbum_details: ${client.stats.requests} request(s), ${client.stats.status429} × 429, ${client.stats.retries} retries, ${client.stats.blocked} block page(s)`);
  return done;
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
      rows.push({ item_id: c.item_id, genre: c.genre, tags: matched, ...labelFor(c.genre!, matched) });
    }
  } else {
    const tags = await fetchTags(ctx, candidates);
    for (const c of candidates) {
      const rec = tags.get(c.item_id!)!;
      if (rec.source === 'not-found') {
        rows.push({ item_id: c.item_id, genre: c.genre, tags: [], exclusive: false, reason: 'not-found' });
        continue;
      }
      const matched = config.genres.filter((g) => rec.tags.includes(g));
      rows.push({ item_id: c.item_id, genre: c.genre, tags: rec.tags, ...labelFor(c.genre!, matched) });
    }
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
