/**
 * Stage `download`: walks each genre's ranking (`selection.arrow`) and fetches covers from
 * `{bandcamp.imageOrigin}/img/a<art_id>_<image.format>.jpg` (docs/BANDCAMP.md#image-urls) until the genre has exactly
 * `perGenre` valid, distinct images; writes `DATA_DIR/images/<genre>/a<art_id>.jpg` (each file atomically, in place),
 * `DATA_DIR/manifest.tsv` and `DATA_DIR/rejected.tsv`.
 *
 * - Valid: at most `download.maxBytes` (a larger `Content-Length` is refused unread, a longer body is cut off:
 *   `too-large`), decodes fully with sharp within `image.maxPixels` (`limitInputPixels`, `failOn: 'warning'`).
 *   A file that ends before the image does (JPEG without EOI, PNG without IEND, "premature end") is `truncated`:
 *   a CDN object can be short for a while, so it is fetched again on the next `download.truncatedRuns − 1` runs
 *   (each after a backoff) before it counts as permanent; anything else undecodable is `corrupt` (permanent).
 *   Distinct: a new sha256; the same bytes under another album (even of another genre) are
 *   rejected as `duplicate-of:<item_id>` of the album kept first, and the next album of the ranking replaces it.
 * - Near-duplicates (unless `dedupe.near=off`): every valid cover gets a 64-bit perceptual hash (dataset/phash.ts,
 *   from the pixels the check decoded; stored in the progress file and in `manifest.tsv`). A cover within
 *   `dedupe.maxDistance` bits of a kept cover of ANOTHER genre is ambiguous: it is rejected as
 *   `near-duplicate-of:<item_id>` (the nearest kept one) and replaced like an exact duplicate, so the genres stay
 *   balanced. Within a genre, `dedupe.near=group` keeps it (`split` keeps the group in one split) and `drop` rejects
 *   it the same way. A rebuild from a manifest (`select.fromManifest`) keeps exactly the listed covers and only
 *   recomputes their hashes (the same bytes give the same hash).
 * - Transient never substitutes: a cover that fails for a transient reason (timeouts, resets, 429/5xx after the
 *   retries, truncation still to retry) keeps its place; the stage ends with "N covers could not be fetched yet"
 *   ({@link RerunLaterError}, exit code 75) and the next run tries them again. Only permanent reasons (404, corrupt,
 *   too large, duplicate, truncated for good) let the next album of the ranking in, so the manifest does not depend
 *   on what the network did.
 * - N per genre without guessing: when a genre ends short of `perGenre` while its listing goes on, the stage asks
 *   `discover` to list further ({@link MoreInputNeeded}; the runner reruns discover, label, select and download),
 *   up to `crawl.maxRounds` rounds; only a listing that ended gives the "not enough images" error.
 * - Deterministic: work goes in rounds; each round fetches every genre's shortfall concurrently, then accepts the
 *   results in genre order and rank order. The outcome depends only on what each URL serves, never on timing.
 * - The image CDN is another host than the site: its own budget (`download.concurrency` in flight, no per-minute
 *   limit), still with 429/Retry-After pauses, backoff and retries (`download.retries`, `download.timeoutMs`).
 * - Resumable: each fetch outcome (sha256, size, or a rejection such as HTTP 404, corrupt, or truncated with its
 *   tries) is appended to `.work/download/images-<hash>.jsonl` BEFORE the image file is written; a valid file on disk
 *   whose sha256 matches its record is not fetched again. Transient failures (retries spent) are not recorded, so the
 *   next run fetches them again.
 * - Rebuild (`select.fromManifest`): exactly the listed images; a download must match the listed sha256 (else the
 *   item fails naming both hashes); any permanently failed item fails the stage unless `select.allowShort`.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import sharp from 'sharp';
import { hashJson, type Config } from '../pipeline/config.ts';
import { sha256, writeFileAtomic } from '../util/fsutil.ts';
import { withOwnSharpErrors } from '../dataset/preprocess.ts';
import { hamming, phashFromHex, phashOfImage, phashOfRaw, phashToHex, type PHash } from '../dataset/phash.ts';
import { MoreInputNeeded, RerunLaterError, UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import type { Progress } from '../util/progress.ts';
import { imageUrl } from '../bandcamp/api.ts';
import { detectBlocked } from '../bandcamp/parse.ts';
import { AbortedError, BodyTooLargeError, chooseTransport, HostBudget, PoliteClient, RequestFailedError, UnsupportedUrlError, type HttpResult } from '../bandcamp/client.ts';
import { ProgressLog } from '../bandcamp/crawl.ts';
import { imageRelPath, manifestFormat, reasonKey, rejectedFormat, type ManifestRow, type RejectedRow } from '../schemas/manifest.ts';
import { readSelectionCounts, selectionFormat, type SelectCounts, type SelectionRow } from '../schemas/selection.ts';
import type { ListingDemand } from '../schemas/demand.ts';
import { endedByGuard } from '../schemas/candidates.ts';

/** One fetch outcome in the progress file, keyed by the URL's path (`/img/a<art_id>_<format>.jpg`). */
export interface FetchRecord {
  key: string;
  ok: boolean;
  sha256?: string;
  /** File size, bytes. */
  bytes?: number;
  /** Pixels. */
  width?: number;
  height?: number;
  /** For a rejection: `not-found`, `corrupt`, `truncated`, `too-large`, `sha256-mismatch` (`undecodable`: older runs). */
  reason?: string;
  detail?: string;
  /** For `truncated`: the runs that found it truncated so far. */
  tries?: number;
  /** For `truncated`: when it was last fetched, ms since the epoch. */
  at?: number;
  /** Perceptual hash, 16 hex digits (dataset/phash.ts); absent in records of runs without hashing. */
  phash?: string;
}

/** What a downloaded image is, once checked. */
export type Checked = { ok: true; sha256: string; bytes: number; width: number; height: number; phash?: string } | { ok: false; reason: string; detail: string };

/**
 * True when image bytes end before the image does: a JPEG (`FF D8`) whose last marker is not EOI (`FF D9`, trailing
 * zero padding allowed), a PNG without its `IEND` chunk at the end; for other formats, a decoder message about a
 * premature end. A JPEG or PNG that ends properly is never truncated, whatever the decoder says (a garbled header
 * makes libjpeg report a "premature end" too: that file is corrupt).
 */
export function looksTruncated(data: Buffer, decoderMessage = ''): boolean {
  if (data.length >= 2 && data[0] === 0xff && data[1] === 0xd8) {
    let end = data.length;
    while (end > 2 && data[end - 1] === 0) end--;
    return !(data[end - 2] === 0xff && data[end - 1] === 0xd9);
  }
  if (data.length >= 8 && data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return data.length < 12 || data.subarray(data.length - 8, data.length - 4).toString('latin1') !== 'IEND';
  }
  return /premature end|unexpected end|truncated|end of (file|stream|data)|not enough (image )?data/i.test(decoderMessage);
}

/**
 * Checks image bytes: fully decodes them with sharp within `maxPixels` (width × height) and hashes them (sha256; with
 * `perceptual`, also the perceptual hash of the decoded pixels, dataset/phash.ts, as `phash`). Reasons: `too-large` (over the pixel limit), `truncated` ({@link looksTruncated}), `corrupt` (anything else
 * sharp/libvips rejects). A failed check is redone alone ({@link withOwnSharpErrors}), so its `detail` is the same on
 * every run.
 */
export async function checkImage(data: Buffer, maxPixels: number, perceptual = false): Promise<Checked> {
  try {
    const { data: px, info } = await withOwnSharpErrors(() => sharp(data, { limitInputPixels: maxPixels, failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true }));
    const checked: Checked = { ok: true, sha256: sha256(data), bytes: data.length, width: info.width, height: info.height };
    if (perceptual) checked.phash = phashToHex(phashOfRaw(new Uint8Array(px.buffer, px.byteOffset, px.length), info.width, info.height, info.channels));
    return checked;
  } catch (e) {
    const msg = (e as Error).message.replace(/\s+/g, ' ').slice(0, 200);
    if (/pixel limit/i.test(msg)) return { ok: false, reason: 'too-large', detail: `more than image.maxPixels=${maxPixels} pixels (${msg})` };
    if (looksTruncated(data, msg)) return { ok: false, reason: 'truncated', detail: `${data.length} bytes end before the image does (${msg})` };
    return { ok: false, reason: 'corrupt', detail: msg };
  }
}

/** Replaces the origin of an image URL (e.g. the study's `http://f1.bcbits.com`) with `imageOrigin`. */
export function rewriteOrigin(url: string, imageOrigin: string): string {
  const u = new URL(url);
  return `${imageOrigin.replace(/\/$/, '')}${u.pathname}${u.search}`;
}

/** The URL `download` fetches for a selection row. */
export function selectionUrl(row: SelectionRow, config: Config): string {
  return row.url ? rewriteOrigin(row.url, config.bandcamp.imageOrigin) : imageUrl(config.bandcamp.imageOrigin, row.art_id!, config.image.format);
}

function imageBlockCheck(res: HttpResult): string | null {
  const type = res.headers['content-type'] ?? '';
  if (!type.includes('html')) return null;
  return detectBlocked(res.status, res.body.toString('utf8')) === 'challenge' ? 'challenge' : null;
}

/** One fetch's outcome; `transient`: not fetched yet (the slot is held, the next run tries again). */
type Outcome = { row: SelectionRow; url: string; checked: Checked; transient?: boolean };

/** Backoff before the next try of a truncated cover, after `tries` runs found it truncated: `crawl.backoff`, ms. */
function truncatedBackoffMs(config: Config, tries: number): number {
  const { initialMs, maxMs, factor } = config.crawl.backoff;
  return Math.min(maxMs, initialMs * factor ** Math.max(0, tries - 1));
}

/** What one run of the stage works with: its settings, the ranking to walk, the progress file, the image client. */
interface DownloadRun {
  ctx: StageContext;
  config: Config;
  /** Rebuilding from a manifest (`select.fromManifest`): exactly the listed covers. */
  manifestMode: boolean;
  /** Perceptual hashes are computed (`dedupe.near` is not `off`). */
  hashing: boolean;
  /** Each genre's selection rows in rank order. */
  ranking: Map<string, SelectionRow[]>;
  /** Covers each genre needs: `perGenre`, or every listed one in manifest mode. */
  need: Map<string, number>;
  progress: ProgressLog<FetchRecord>;
  /** The latest record of each key (URL path) in the progress file. */
  records: Map<string, FetchRecord>;
  client: PoliteClient;
  /** The client's transport, for the log (`fetch` or `impit-firefox`). */
  transportName: string;
  /** Covers fetched this run (records appended), and valid covers found on disk. */
  fetched: number;
  reused: number;
  /** Transient failures before anything was fetched or found ({@link fetchBatch} stops on a run of them). */
  failuresBeforeFirst: number;
}

/** What the accepted outcomes built so far: the kept covers per genre, the rejections, the held covers, the dedupe keys. */
interface Acceptance {
  kept: Map<string, ManifestRow[]>;
  rejected: RejectedRow[];
  /** Covers not fetched yet (transient): each holds its genre's slot; the stage ends asking for a rerun. */
  held: Outcome[];
  heldOf: Map<string, number>;
  /** The `item_id` that kept each sha256 first. */
  shaOwner: Map<string, number>;
  /** Kept covers' perceptual hashes, in acceptance order (empty with dedupe.near=off). */
  keptHashes: KeptHash[];
}

/** Reads the selection into rank order per genre, the records of earlier runs, and sets up the image host's client. */
function openRun(ctx: StageContext): DownloadRun {
  const { config, log } = ctx;
  const manifestMode = config.select.fromManifest !== null;
  const selection = selectionFormat.read(ctx.path('selection.arrow'));
  const ranking = new Map<string, SelectionRow[]>(config.genres.map((g) => [g, []]));
  for (const r of selection) ranking.get(r.genre!)?.push(r);
  for (const rows of ranking.values()) rows.sort((a, b) => a.rank! - b.rank!);
  const need = new Map(config.genres.map((g) => [g, manifestMode ? ranking.get(g)!.length : config.perGenre]));

  const progress = new ProgressLog<FetchRecord>(join(ctx.workDir, `images-${hashJson({ maxPixels: config.image.maxPixels }).slice(0, 16)}.jsonl`));
  const records = new Map<string, FetchRecord>();
  for (const r of progress.read()) records.set(r.key, r);

  const { transport, name: transportName } = chooseTransport(config, config.bandcamp.imageOrigin);
  const client = new PoliteClient({
    transport,
    budget: new HostBudget({ maxRequestsPerMinute: Infinity, maxConcurrency: config.download.concurrency }),
    userAgent: config.bandcamp.userAgent,
    timeoutMs: config.download.timeoutMs,
    maxRetries: config.download.retries,
    maxBlockedRetries: config.crawl.maxBlockedRetries,
    backoff: config.crawl.backoff,
    log,
    signal: ctx.signal,
    what: 'image download',
    maxBytes: config.download.maxBytes,
  });
  return { ctx, config, manifestMode, hashing: config.dedupe.near !== 'off', ranking, need, progress, records, client, transportName, fetched: 0, reused: 0, failuresBeforeFirst: 0 };
}

/** Appends a record to the progress file and remembers it as its key's latest. */
function remember(dl: DownloadRun, r: FetchRecord): void {
  dl.progress.append(r);
  dl.records.set(r.key, r);
}

/** In a rebuild, a valid cover whose sha256 is not the listed one becomes `sha256-mismatch`; anything else is unchanged. */
function expectListedSha(row: SelectionRow, c: Checked): Checked {
  return c.ok && row.sha256 && c.sha256 !== row.sha256 ? { ok: false, reason: 'sha256-mismatch', detail: `expected sha256 ${row.sha256}, downloaded ${c.sha256}` } : c;
}

/**
 * The outcome of a cover already on disk: its record is valid and the file's size and sha256 match it (a record of a
 * run without hashing gets its perceptual hash now, once). Null when it must be fetched or its record decides.
 */
async function reusedFromDisk(dl: DownloadRun, row: SelectionRow, url: string, key: string, file: string): Promise<Outcome | null> {
  const rec = dl.records.get(key);
  if (!(rec?.ok && existsSync(file) && statSync(file).size === rec.bytes)) return null;
  const data = readFileSync(file);
  if (sha256(data) !== rec.sha256) return null;
  dl.reused++;
  let phash = rec.phash;
  if (dl.hashing && phash === undefined) {
    phash = phashToHex(await phashOfImage(data));
    remember(dl, { ...rec, phash });
  }
  return { row, url, checked: expectListedSha(row, { ok: true, sha256: rec.sha256!, bytes: rec.bytes!, width: rec.width!, height: rec.height!, ...(dl.hashing ? { phash } : {}) }) };
}

/**
 * The outcome an earlier run's record decides without a request: a permanent rejection, or a truncated cover whose
 * backoff has not passed (transient). Null when the cover is to be fetched (no record, or a truncated one that is due).
 */
function decidedByRecord(dl: DownloadRun, row: SelectionRow, url: string, rec: FetchRecord | undefined, truncatedTries: number): Outcome | null {
  const { config } = dl;
  if (rec && !rec.ok && !(truncatedTries > 0 && truncatedTries < config.download.truncatedRuns)) {
    const detail = truncatedTries > 0 ? `${rec.detail ?? ''} (truncated in ${truncatedTries} runs)` : (rec.detail ?? '');
    return { row, url, checked: expectListedSha(row, { ok: false, reason: rec.reason!, detail }) };
  }
  if (truncatedTries > 0) {
    const due = (rec!.at ?? 0) + truncatedBackoffMs(config, truncatedTries);
    if (Date.now() < due) {
      return { row, url, checked: { ok: false, reason: 'truncated', detail: `truncated in ${truncatedTries} run(s); next try after ${new Date(due).toISOString()}` }, transient: true };
    }
  }
  return null;
}

/**
 * The outcome of a request that failed: transient (retries spent: not recorded, the next run tries again), or a
 * permanent rejection (another HTTP status, a body over `download.maxBytes`, a URL that is not http(s)), recorded.
 * @throws the error itself when it is neither (an abort, a block).
 */
function failedRequest(dl: DownloadRun, row: SelectionRow, url: string, key: string, e: unknown): Outcome {
  if (e instanceof RequestFailedError && e.transient) return { row, url, checked: { ok: false, reason: 'failed', detail: e.reason }, transient: true };
  let permanent: Checked | null = null;
  if (e instanceof RequestFailedError) permanent = { ok: false, reason: 'http-error', detail: e.reason };
  else if (e instanceof BodyTooLargeError) permanent = { ok: false, reason: 'too-large', detail: `${e.declared !== null ? `Content-Length ${e.declared}` : 'body'} over download.maxBytes=${dl.config.download.maxBytes} bytes` };
  else if (e instanceof UnsupportedUrlError) permanent = { ok: false, reason: 'unsupported-url', detail: 'not an http(s) URL' };
  if (!permanent) throw e;
  dl.fetched++;
  remember(dl, { key, ok: false, reason: permanent.ok ? '' : permanent.reason, detail: permanent.ok ? '' : permanent.detail });
  return { row, url, checked: permanent };
}

/**
 * Checks an answer (404/410: `not-found`; else {@link checkImage}), records the result BEFORE the file is written,
 * and writes the cover when it is valid (and, in a rebuild, the listed one). A truncated cover with runs left is
 * transient.
 */
async function checkedAnswer(dl: DownloadRun, row: SelectionRow, url: string, key: string, file: string, res: HttpResult, truncatedTries: number): Promise<Outcome> {
  const { config } = dl;
  dl.fetched++;
  const checked: Checked = res.status === 404 || res.status === 410 ? { ok: false, reason: 'not-found', detail: `HTTP ${res.status}` } : await checkImage(res.body, config.image.maxPixels, dl.hashing);
  if (checked.ok) remember(dl, { key, ok: true, sha256: checked.sha256, bytes: checked.bytes, width: checked.width, height: checked.height, ...(checked.phash ? { phash: checked.phash } : {}) });
  else if (checked.reason === 'truncated') remember(dl, { key, ok: false, reason: 'truncated', detail: checked.detail, tries: truncatedTries + 1, at: Date.now() });
  else remember(dl, { key, ok: false, reason: checked.reason, detail: checked.detail });
  if (!checked.ok && checked.reason === 'truncated' && truncatedTries + 1 < config.download.truncatedRuns) {
    return { row, url, checked: { ok: false, reason: 'truncated', detail: `${checked.detail}; try ${truncatedTries + 1} of ${config.download.truncatedRuns}` }, transient: true };
  }
  const final = expectListedSha(row, checked);
  if (checked.ok && final.ok) writeFileAtomic(file, res.body);
  return { row, url, checked: final };
}

/** One cover's outcome: from disk, from its record, or fetched (with the client's retries) and checked. */
async function fetchOne(dl: DownloadRun, row: SelectionRow): Promise<Outcome> {
  const url = selectionUrl(row, dl.config);
  const key = new URL(url).pathname;
  const file = dl.ctx.path(imageRelPath(row.genre!, row.art_id!));
  const onDisk = await reusedFromDisk(dl, row, url, key, file);
  if (onDisk) return onDisk;
  const rec = dl.records.get(key);
  const truncatedTries = rec && !rec.ok && rec.reason === 'truncated' ? (rec.tries ?? 1) : 0;
  const decided = decidedByRecord(dl, row, url, rec, truncatedTries);
  if (decided) return decided;
  let res: HttpResult;
  try {
    res = await dl.client.request({ url, headers: { accept: 'image/avif,image/webp,image/*,*/*;q=0.8' }, blockCheck: imageBlockCheck });
  } catch (e) {
    return failedRequest(dl, row, url, key, e);
  }
  return checkedAnswer(dl, row, url, key, file, res, truncatedTries);
}

/** The next round's rows: each genre's shortfall (needed − kept − held), the next rows of its ranking. */
function nextBatch(dl: DownloadRun, acc: Acceptance, next: Map<string, number>): SelectionRow[] {
  const batch: SelectionRow[] = [];
  for (const g of dl.config.genres) {
    const deficit = dl.need.get(g)! - acc.kept.get(g)!.length - acc.heldOf.get(g)!;
    const rows = dl.ranking.get(g)!;
    let i = next.get(g)!;
    for (let k = 0; k < deficit && i < rows.length; k++) batch.push(rows[i++]!);
    next.set(g, i);
  }
  return batch;
}

/**
 * Fetches a round's rows concurrently (`download.concurrency`), outcomes in the rows' order. On an abort or a fatal
 * error, downloads not yet started are skipped and it rejects only after the started ones ended (allSettled, not
 * all), so nothing writes to images/ or the progress file afterwards. When nothing was fetched yet and a run of
 * transient failures comes (at least 8, or twice the concurrency), the image origin is unreachable or refusing us: it
 * stops with the reason instead of walking every genre's ranking through retries and backoff.
 * @throws {AbortedError} when the stage's signal fired; the first fatal error; a {@link UserError} when unreachable.
 */
async function fetchBatch(dl: DownloadRun, batch: readonly SelectionRow[], limit: LimitFunction): Promise<Outcome[]> {
  const { config } = dl;
  const unreachableAfter = Math.max(8, 2 * config.download.concurrency);
  let stopped = null as { error: unknown } | null; // set from the callbacks below
  const settled = await Promise.allSettled(
    batch.map((row) =>
      limit(async () => {
        if (stopped) return null;
        try {
          const o = await fetchOne(dl, row);
          if (o.transient && dl.fetched + dl.reused === 0 && ++dl.failuresBeforeFirst >= unreachableAfter) {
            stopped ??= {
              error: new UserError(
                `download: the first ${dl.failuresBeforeFirst} images could not be fetched from ${config.bandcamp.imageOrigin} (e.g. ${o.url}: ${o.checked.ok ? '' : o.checked.detail}). ` +
                  'Check bandcamp.imageOrigin and that the host is reachable; rerun the same command to resume.',
              ),
            };
          }
          return o;
        } catch (e) {
          stopped ??= { error: e };
          throw e;
        }
      }),
    ),
  );
  if (stopped) throw dl.ctx.signal.aborted ? new AbortedError() : stopped.error;
  return settled.map((r) => (r as PromiseFulfilledResult<Outcome>).value);
}

/**
 * Accepts one outcome, in genre and rank order: a transient one holds its slot; a valid cover is kept unless its
 * sha256 was kept before (`duplicate-of`) or it is a near-duplicate to reject (`near-duplicate-of`); anything else is
 * rejected with its reason. A rejected row's slot goes to the next row of its ranking in the next round.
 */
function accept(dl: DownloadRun, acc: Acceptance, o: Outcome, bar: Progress): void {
  const { config, ctx } = dl;
  const { row, url, checked } = o;
  const rel = imageRelPath(row.genre!, row.art_id!);
  if (o.transient) {
    acc.held.push(o);
    acc.heldOf.set(row.genre!, acc.heldOf.get(row.genre!)! + 1);
    ctx.log.warn(`${rel}: not fetched yet (${checked.ok ? '' : `${checked.reason}: ${checked.detail}`}); it keeps its place, the next run tries again`);
    return;
  }
  if (!checked.ok) {
    acc.rejected.push({ stage: 'download', item_id: row.item_id, genre: row.genre, art_id: row.art_id, url, reason: checked.reason, detail: checked.detail });
    if (checked.reason === 'sha256-mismatch') ctx.log.warn(`${rel}: ${checked.reason} (${checked.detail})`);
    return;
  }
  const owner = acc.shaOwner.get(checked.sha256);
  if (owner !== undefined) {
    acc.rejected.push({ stage: 'download', item_id: row.item_id, genre: row.genre, art_id: row.art_id, url, reason: `duplicate-of:${owner}`, detail: `sha256 ${checked.sha256}` });
    return;
  }
  const phash = checked.phash !== undefined ? phashFromHex(checked.phash) : null;
  const near = phash && !dl.manifestMode ? nearDuplicateOf(phash, row.genre!, acc.keptHashes, config.dedupe.maxDistance, config.dedupe.near === 'drop') : null;
  if (near) {
    acc.rejected.push({
      stage: 'download', item_id: row.item_id, genre: row.genre, art_id: row.art_id, url, reason: `near-duplicate-of:${near.itemId}`,
      detail: `perceptual hash ${checked.phash} within ${near.distance} bit(s) of item ${near.itemId} (${near.genre}; dedupe.maxDistance=${config.dedupe.maxDistance})`,
    });
    return;
  }
  acc.shaOwner.set(checked.sha256, row.item_id!);
  if (phash) acc.keptHashes.push({ itemId: row.item_id!, genre: row.genre!, phash });
  acc.kept.get(row.genre!)!.push({
    item_id: row.item_id, genre: row.genre, art_id: row.art_id, url, sha256: checked.sha256, bytes: checked.bytes, width: checked.width, height: checked.height,
    phash: checked.phash ?? null, band_id: row.band_id ?? null,
  });
  bar.tick();
}

/** @throws {RerunLaterError} when covers are held (transient): they keep their places, the next run tries them again. */
function throwIfHeld(held: readonly Outcome[]): void {
  if (!held.length) return;
  const eg = held.slice(0, 3).map((o) => `${o.url} (${o.checked.ok ? '' : `${o.checked.reason}: ${o.checked.detail}`})`);
  throw new RerunLaterError(
    `download: ${held.length} cover${held.length === 1 ? '' : 's'} could not be fetched yet (e.g. ${eg.join('; ')}). ` +
      'They keep their places (no other album replaces them), and everything fetched is kept: rerun the same command later to continue.',
  );
}

/**
 * One line per genre short of its need: kept against wanted, the funnel from the selection counts, the rejections
 * by reason with examples. Also the short genres whose listing a guard ended (a misbehaving discover_web).
 */
function shortGenres(dl: DownloadRun, acc: Acceptance, counts: Record<string, SelectCounts> | null): { short: string[]; guardEnded: string[] } {
  const short: string[] = [];
  const guardEnded: string[] = [];
  for (const g of dl.config.genres) {
    const have = acc.kept.get(g)!.length;
    const want = dl.need.get(g)!;
    if (have >= want && !(dl.manifestMode && have < dl.ranking.get(g)!.length)) continue;
    const byReason = new Map<string, number>();
    for (const r of acc.rejected) if (r.genre === g) {
      const rk = reasonKey(r.reason);
      const k = rk === 'duplicate-of' ? 'duplicate' : rk === 'near-duplicate-of' ? 'near-duplicate' : r.reason!;
      byReason.set(k, (byReason.get(k) ?? 0) + 1);
    }
    const rej = [...byReason].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
    if (dl.manifestMode) {
      const failed = acc.rejected.filter((r) => r.genre === g).slice(0, 5).map((r) => `${r.url} (${r.reason}: ${r.detail})`);
      short.push(`genre "${g}": ${have} of ${want} listed images downloaded; rejected: ${rej}; e.g. ${failed.join('; ')}`);
    } else {
      const k = counts?.[g];
      if (k?.listing && endedByGuard(k.listing.ended)) guardEnded.push(`"${g}" (${k.listing.ended})`);
      const listed = k?.listing ? `; listing ${k.listing.ended ? `ended (${k.listing.ended})` : 'not ended'} after ${k.listing.pages} page(s), ${k.listing.extraRounds} extra round(s)` : '';
      const steps = k ? `${k.candidates} candidates, ${k.exclusive} exclusive, ${k.withArt} with art, ${k.eligible} eligible${listed}` : `${dl.ranking.get(g)!.length} eligible`;
      const eg = acc.rejected.filter((r) => r.genre === g && reasonKey(r.reason) !== 'duplicate-of' && reasonKey(r.reason) !== 'near-duplicate-of').slice(0, 2).map((r) => `${r.url} (${r.reason}: ${r.detail})`);
      short.push(`genre "${g}": ${have} of ${want} images (${steps}, ${have} downloaded; rejected: ${rej})${eg.length ? `; e.g. ${eg.join('; ')}` : ''}`);
    }
  }
  return { short, guardEnded };
}

/**
 * Ends a run with short genres: "rerun later" when a guard cut a listing, "not enough images" otherwise, or (with
 * `select.allowShort`) a warning per genre.
 * @throws {RerunLaterError} when a misbehaving discover_web ended a short genre's listing early.
 * @throws {UserError} when genres are short and `select.allowShort` is false.
 */
function handleShortGenres(dl: DownloadRun, short: readonly string[], guardEnded: readonly string[]): void {
  if (!short.length) return;
  const { config, log } = dl.ctx;
  const hint = dl.manifestMode
    ? 'Rerun later if the failures are transient, or set select.allowShort=true to build what could be downloaded.'
    : 'Every short genre\'s listing ended or crawl.maxRounds was reached: lower perGenre, raise crawl.maxRounds, or set select.allowShort=true to accept fewer.';
  if (!config.select.allowShort && guardEnded.length) {
    // Not the site's end: discover is recorded as incomplete, and the next make asks the listing again.
    throw new RerunLaterError(
      `download: not enough images.\n  ${short.join('\n  ')}\n` +
        `discover_web misbehaved and ended the listing of ${guardEnded.join(', ')} early; the next \`covers make\` asks it again from where it stopped. ` +
        'Downloaded images are kept: rerun the same command later to continue (or set select.allowShort=true to accept fewer).',
    );
  }
  if (!config.select.allowShort) throw new UserError(`download: not enough images.\n  ${short.join('\n  ')}\n${hint} Downloaded images are kept.`);
  for (const s of short) log.warn(`short (select.allowShort): ${s}`);
}

/** Writes `manifest.tsv` (genre order, then acceptance order) and `rejected.tsv`, and removes every file of images/ not in the manifest. */
function writeOutputs(ctx: StageContext, kept: Map<string, ManifestRow[]>, rejected: readonly RejectedRow[]): void {
  const manifest = ctx.config.genres.flatMap((g) => kept.get(g)!);
  manifestFormat.write(ctx.out('manifest.tsv'), manifest);
  rejectedFormat.write(ctx.out('rejected.tsv'), rejected);
  // images/ holds exactly the manifest's files: remove duplicates' and earlier runs' leftovers.
  const keep = new Set(manifest.map((m) => imageRelPath(m.genre!, m.art_id!)));
  const root = ctx.path('images');
  if (existsSync(root)) {
    for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const abs = join(entry.parentPath, entry.name);
      if (!keep.has(`images/${relative(root, abs).split('\\').join('/')}`)) rmSync(abs, { force: true });
    }
  }
  ctx.log.info(`manifest: ${manifest.length} image(s); rejected: ${rejected.length}`);
}

/**
 * The stage: rounds of {@link nextBatch} → {@link fetchBatch} → {@link accept} until no genre has a shortfall its
 * ranking can fill; then "rerun later" for held covers, a request to list further, or the short genres; then the outputs.
 */
async function run(ctx: StageContext): Promise<void> {
  const { config, log } = ctx;
  const dl = openRun(ctx);
  const total = [...dl.need.values()].reduce((a, b) => a + b, 0);
  const bar = ctx.progress('images', total);
  log.info(`downloading ${total} image(s) from ${config.bandcamp.imageOrigin} (${dl.transportName}, concurrency ${config.download.concurrency})`);
  const acc: Acceptance = {
    kept: new Map(config.genres.map((g) => [g, []])), rejected: [], held: [], heldOf: new Map(config.genres.map((g) => [g, 0])), shaOwner: new Map(), keptHashes: [],
  };
  const next = new Map(config.genres.map((g) => [g, 0]));
  const limit = pLimit(config.download.concurrency);
  for (;;) {
    const batch = nextBatch(dl, acc, next);
    if (batch.length === 0) break;
    for (const o of await fetchBatch(dl, batch, limit)) accept(dl, acc, o, bar);
  }
  bar.stop();
  log.info(`images: ${dl.fetched} fetched, ${dl.reused} already on disk; ${dl.client.stats.requests} request(s), ${dl.client.stats.status429} × 429, ${dl.client.stats.retries} retries`);
  throwIfHeld(acc.held);

  const counts = dl.manifestMode ? null : readSelectionCounts(ctx.path('selection.arrow'));
  if (counts) {
    const more = moreListingDemand(config, counts, acc.kept, dl.ranking, next);
    if (more) throw more;
    for (const g of config.genres) {
      const l = counts[g]?.listing;
      if (l && l.extraRounds > 0) {
        log.info(`genre "${g}": ${l.extraRounds} extra round(s); ${l.pages - l.firstRoundPages} extra discover_web page(s), ${l.albums - l.firstRoundAlbums} extra album(s) to label`);
      }
    }
  }
  const { short, guardEnded } = shortGenres(dl, acc, counts);
  handleShortGenres(dl, short, guardEnded);
  writeOutputs(ctx, acc.kept, acc.rejected);
}

/** A kept cover's perceptual hash. */
export interface KeptHash {
  itemId: number;
  genre: string;
  phash: PHash;
}

/**
 * The kept cover a new cover of `genre` is a near-duplicate of, if it must be rejected: the nearest kept cover within
 * `maxDistance` bits of another genre (always), or of the same genre when `sameGenreToo` (`dedupe.near=drop`); ties go
 * to the one kept first. Null when the cover may be kept.
 */
export function nearDuplicateOf(phash: PHash, genre: string, kept: readonly KeptHash[], maxDistance: number, sameGenreToo: boolean): (KeptHash & { distance: number }) | null {
  let best: (KeptHash & { distance: number }) | null = null;
  for (const k of kept) {
    if (k.genre === genre && !sameGenreToo) continue;
    const d = hamming(phash, k.phash);
    if (d <= maxDistance && (best === null || d < best.distance)) best = { ...k, distance: d };
  }
  return best;
}

/**
 * When a genre is short of `perGenre` kept images, its ranking is used up, and its listing goes on (not ended, fewer
 * than `crawl.maxRounds` rounds so far), the request to list further ({@link MoreInputNeeded} for `discover`): that
 * genre's albums grow by its shortfall over the yield so far (kept per listed album, at least 1 in 50) plus a
 * quarter, and at least one page; every other genre keeps at least what it has listed (a listing never shrinks).
 * Null when no genre can get more.
 */
export function moreListingDemand(
  config: Config,
  counts: Record<string, SelectCounts>,
  kept: Map<string, readonly unknown[]>,
  ranking: Map<string, readonly unknown[]>,
  next: Map<string, number>,
): MoreInputNeeded | null {
  const demand: ListingDemand = { albums: {}, rounds: {} };
  const asks: string[] = [];
  for (const g of config.genres) {
    const l = counts[g]?.listing;
    if (!l) return null;
    demand.albums[g] = l.albums;
    demand.rounds[g] = l.extraRounds;
    const have = kept.get(g)!.length;
    const shortBy = config.perGenre - have;
    if (shortBy <= 0 || next.get(g)! < ranking.get(g)!.length) continue;
    const listingGoesOn = l.ended === null || (counts[g]!.pendingBlock ?? 0) > 0;
    if (!listingGoesOn || l.extraRounds + 1 >= config.crawl.maxRounds) continue;
    const yieldRate = Math.max(have / Math.max(1, l.albums), 1 / 50);
    const extra = Math.max(config.crawl.pageSize, Math.ceil((shortBy / yieldRate) * 1.25));
    demand.albums[g] = l.albums + extra;
    demand.rounds[g] = l.extraRounds + 1;
    asks.push(`${g} short by ${shortBy}: list ${extra} more`);
  }
  return asks.length ? new MoreInputNeeded('discover', demand, `not enough images yet (${asks.join('; ')})`) : null;
}

/** The `download` stage. */
export const downloadStage: StageImplementation = {
  name: 'download',
  run,
};

export default downloadStage;
