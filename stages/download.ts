/**
 * Stage `download`: walks each genre's ranking (`selection.arrow`) and fetches covers from
 * `{bandcamp.imageOrigin}/img/a<art_id>_<image.format>.jpg` (REFERENCE.md §4.1) until the genre has exactly
 * `perGenre` valid, distinct images; writes `DATA_DIR/images/<genre>/a<art_id>.jpg` (each file atomically, in place),
 * `DATA_DIR/manifest.tsv` and `DATA_DIR/rejected.tsv`.
 *
 * - Valid: decodes fully with sharp within `image.maxPixels` (`limitInputPixels`, `failOn: 'warning'`, so a
 *   truncated file fails). Distinct: a new sha256; the same bytes under another album (even of another genre) are
 *   rejected as `duplicate-of:<item_id>` of the album kept first, and the next album of the ranking replaces it.
 * - Deterministic: work goes in rounds; each round fetches every genre's shortfall concurrently, then accepts the
 *   results in genre order and rank order. The outcome depends only on what each URL serves, never on timing.
 * - The image CDN is another host than the site: its own budget (`download.concurrency` in flight, no per-minute
 *   limit), still with 429/Retry-After pauses, backoff and retries (`download.retries`, `download.timeoutMs`).
 * - Resumable: each fetch outcome (sha256, size, or a permanent rejection such as HTTP 404 or undecodable) is
 *   appended to `.work/download/images-<hash>.jsonl` BEFORE the image file is written; a valid file on disk whose
 *   sha256 matches its record is not fetched again. Transient failures (retries spent) are retried on the next run.
 * - Rebuild (`select.fromManifest`): exactly the listed images; a download must match the listed sha256 (else the
 *   item fails naming both hashes); any failed item fails the stage unless `select.allowShort`.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { hashJson, type Config } from '../pipeline/config.ts';
import { sha256, writeFileAtomic } from '../util/fsutil.ts';
import { withOwnSharpErrors } from '../dataset/preprocess.ts';
import { UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { imageUrl } from '../bandcamp/api.ts';
import { detectBlocked } from '../bandcamp/parse.ts';
import { AbortedError, chooseTransport, HostBudget, PoliteClient, RequestFailedError, type HttpResult } from '../bandcamp/client.ts';
import { ProgressLog } from '../bandcamp/crawl.ts';
import { imageRelPath, manifestFormat, reasonKey, rejectedFormat, type ManifestRow, type RejectedRow } from '../schemas/manifest.ts';
import { readSelectionCounts, selectionFormat, type SelectionRow } from '../schemas/selection.ts';

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
  /** For a rejection: `not-found`, `undecodable`, `too-large`, `sha256-mismatch`. */
  reason?: string;
  detail?: string;
}

/** What a downloaded image is, once checked. */
export type Checked = { ok: true; sha256: string; bytes: number; width: number; height: number } | { ok: false; reason: string; detail: string };

/**
 * Checks image bytes: fully decodes them with sharp within `maxPixels` (width × height) and hashes them.
 * Reasons: `too-large` (over the pixel limit), `undecodable` (anything sharp/libvips rejects, truncation included).
 * A failed check is redone alone ({@link withOwnSharpErrors}), so its `detail` is the same on every run.
 */
export async function checkImage(data: Buffer, maxPixels: number): Promise<Checked> {
  try {
    const { info } = await withOwnSharpErrors(() => sharp(data, { limitInputPixels: maxPixels, failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true }));
    return { ok: true, sha256: sha256(data), bytes: data.length, width: info.width, height: info.height };
  } catch (e) {
    const msg = (e as Error).message.replace(/\s+/g, ' ').slice(0, 200);
    return /pixel limit/i.test(msg) ? { ok: false, reason: 'too-large', detail: `more than image.maxPixels=${maxPixels} pixels (${msg})` } : { ok: false, reason: 'undecodable', detail: msg };
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

type Outcome = { row: SelectionRow; url: string; checked: Checked; transient?: boolean };

async function run(ctx: StageContext): Promise<void> {
  const { config, log } = ctx;
  const manifestMode = config.select.fromManifest !== null;
  const selPath = ctx.path('selection.arrow');
  const selection = selectionFormat.read(selPath);
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
  });
  const limit = pLimit(config.download.concurrency);
  let reused = 0;
  let fetched = 0;

  const fetchOne = async (row: SelectionRow): Promise<Outcome> => {
    const url = selectionUrl(row, config);
    const key = new URL(url).pathname;
    const file = ctx.path(imageRelPath(row.genre!, row.art_id!));
    const rec = records.get(key);
    const expect = (c: Checked): Checked =>
      c.ok && row.sha256 && c.sha256 !== row.sha256 ? { ok: false, reason: 'sha256-mismatch', detail: `expected sha256 ${row.sha256}, downloaded ${c.sha256}` } : c;
    if (rec?.ok && existsSync(file) && statSync(file).size === rec.bytes) {
      const data = readFileSync(file);
      if (sha256(data) === rec.sha256) {
        reused++;
        return { row, url, checked: expect({ ok: true, sha256: rec.sha256!, bytes: rec.bytes!, width: rec.width!, height: rec.height! }) };
      }
    }
    if (rec && !rec.ok) return { row, url, checked: expect({ ok: false, reason: rec.reason!, detail: rec.detail ?? '' }) };
    let res: HttpResult;
    try {
      res = await client.request({ url, headers: { accept: 'image/avif,image/webp,image/*,*/*;q=0.8' }, blockCheck: imageBlockCheck });
    } catch (e) {
      if (e instanceof RequestFailedError) return { row, url, checked: { ok: false, reason: 'failed', detail: e.reason }, transient: true };
      throw e;
    }
    fetched++;
    let checked: Checked;
    if (res.status === 404 || res.status === 410) checked = { ok: false, reason: 'not-found', detail: `HTTP ${res.status}` };
    else checked = await checkImage(res.body, config.image.maxPixels);
    const newRec: FetchRecord = checked.ok ? { key, ok: true, sha256: checked.sha256, bytes: checked.bytes, width: checked.width, height: checked.height } : { key, ok: false, reason: checked.reason, detail: checked.detail };
    progress.append(newRec);
    records.set(key, newRec);
    const final = expect(checked);
    if (checked.ok && final.ok) writeFileAtomic(file, res.body);
    return { row, url, checked: final };
  };

  const total = [...need.values()].reduce((a, b) => a + b, 0);
  const bar = ctx.progress('images', total);
  log.info(`downloading ${total} image(s) from ${config.bandcamp.imageOrigin} (${transportName}, concurrency ${config.download.concurrency})`);
  const next = new Map(config.genres.map((g) => [g, 0]));
  const kept = new Map<string, ManifestRow[]>(config.genres.map((g) => [g, []]));
  const rejected: RejectedRow[] = [];
  const shaOwner = new Map<string, number>();
  let failuresBeforeFirst = 0;
  const unreachableAfter = Math.max(8, 2 * config.download.concurrency);
  for (;;) {
    const batch: SelectionRow[] = [];
    for (const g of config.genres) {
      const deficit = need.get(g)! - kept.get(g)!.length;
      const rows = ranking.get(g)!;
      let i = next.get(g)!;
      for (let k = 0; k < deficit && i < rows.length; k++) batch.push(rows[i++]!);
      next.set(g, i);
    }
    if (batch.length === 0) break;
    // On an abort or a fatal error, downloads not yet started are skipped and the stage rejects only after the
    // started ones ended (allSettled, not all), so nothing writes to images/ or the progress file afterwards.
    let stopped = null as { error: unknown } | null; // set from the callbacks below
    const settled = await Promise.allSettled(
      batch.map((row) =>
        limit(async () => {
          if (stopped) return null;
          try {
            const o = await fetchOne(row);
            // Nothing fetched yet and a run of transient failures: the image origin is unreachable or refusing us.
            // Stop with the reason instead of walking every genre's ranking through retries and backoff.
            if (o.transient && fetched + reused === 0 && ++failuresBeforeFirst >= unreachableAfter) {
              stopped ??= {
                error: new UserError(
                  `download: the first ${failuresBeforeFirst} images could not be fetched from ${config.bandcamp.imageOrigin} (e.g. ${o.url}: ${o.checked.ok ? '' : o.checked.detail}). ` +
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
    if (stopped) throw ctx.signal.aborted ? new AbortedError() : stopped.error;
    const outcomes = settled.map((r) => (r as PromiseFulfilledResult<Outcome>).value);
    for (const o of outcomes) {
      const { row, url, checked } = o;
      const rel = imageRelPath(row.genre!, row.art_id!);
      if (checked.ok) {
        const owner = shaOwner.get(checked.sha256);
        if (owner === undefined) {
          shaOwner.set(checked.sha256, row.item_id!);
          kept.get(row.genre!)!.push({ item_id: row.item_id, genre: row.genre, art_id: row.art_id, url, sha256: checked.sha256, bytes: checked.bytes, width: checked.width, height: checked.height });
          bar.tick();
          continue;
        }
        rejected.push({ stage: 'download', item_id: row.item_id, genre: row.genre, art_id: row.art_id, url, reason: `duplicate-of:${owner}`, detail: `sha256 ${checked.sha256}` });
      } else {
        rejected.push({ stage: 'download', item_id: row.item_id, genre: row.genre, art_id: row.art_id, url, reason: checked.reason, detail: checked.detail });
        if (checked.reason === 'sha256-mismatch' || o.transient) log.warn(`${rel}: ${checked.reason} (${checked.detail})`);
      }
    }
  }
  bar.stop();
  log.info(`images: ${fetched} fetched, ${reused} already on disk; ${client.stats.requests} request(s), ${client.stats.status429} × 429, ${client.stats.retries} retries`);

  const counts = manifestMode ? null : readSelectionCounts(selPath);
  const short: string[] = [];
  for (const g of config.genres) {
    const have = kept.get(g)!.length;
    const want = need.get(g)!;
    if (have >= want && !(manifestMode && have < ranking.get(g)!.length)) continue;
    const byReason = new Map<string, number>();
    for (const r of rejected) if (r.genre === g) {
      const k = reasonKey(r.reason) === 'duplicate-of' ? 'duplicate' : r.reason!;
      byReason.set(k, (byReason.get(k) ?? 0) + 1);
    }
    const rej = [...byReason].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
    if (manifestMode) {
      const failed = rejected.filter((r) => r.genre === g).slice(0, 5).map((r) => `${r.url} (${r.reason}: ${r.detail})`);
      short.push(`genre "${g}": ${have} of ${want} listed images downloaded; rejected: ${rej}; e.g. ${failed.join('; ')}`);
    } else {
      const k = counts?.[g];
      const steps = k ? `${k.candidates} candidates, ${k.exclusive} exclusive, ${k.withArt} with art, ${k.eligible} eligible` : `${ranking.get(g)!.length} eligible`;
      const eg = rejected.filter((r) => r.genre === g && reasonKey(r.reason) !== 'duplicate-of').slice(0, 2).map((r) => `${r.url} (${r.reason}: ${r.detail})`);
      short.push(`genre "${g}": ${have} of ${want} images (${steps}, ${have} downloaded; rejected: ${rej})${eg.length ? `; e.g. ${eg.join('; ')}` : ''}`);
    }
  }
  if (short.length) {
    const hint = manifestMode
      ? 'Rerun later if the failures are transient, or set select.allowShort=true to build what could be downloaded.'
      : 'List more albums (raise crawl.oversample), lower perGenre, or set select.allowShort=true to accept fewer.';
    if (!config.select.allowShort) throw new UserError(`download: not enough images.\n  ${short.join('\n  ')}\n${hint} Downloaded images are kept.`);
    for (const s of short) log.warn(`short (select.allowShort): ${s}`);
  }

  const manifest = config.genres.flatMap((g) => kept.get(g)!);
  manifestFormat.write(ctx.out('manifest.tsv'), manifest);
  rejectedFormat.write(ctx.out('rejected.tsv'), rejected);
  // images/ holds exactly the manifest's files: remove duplicates' and earlier runs' leftovers.
  const keep = new Set(manifest.map((m) => imageRelPath(m.genre!, m.art_id!)));
  const root = ctx.path('images');
  if (existsSync(root)) {
    for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const abs = join(entry.parentPath, entry.name);
      if (!keep.has(relative(ctx.dataDir, abs).split('\\').join('/'))) rmSync(abs, { force: true });
    }
  }
  log.info(`manifest: ${manifest.length} image(s); rejected: ${rejected.length}`);
}

/** The `download` stage. */
export const downloadStage: StageImplementation = {
  name: 'download',
  run,
};

export default downloadStage;
