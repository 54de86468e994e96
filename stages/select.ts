/**
 * Stage `select`: ranks each genre's eligible albums and writes `DATA_DIR/selection.arrow`; `download` walks that
 * order until each genre has `perGenre` images.
 *
 * Eligible = labelled exclusive, has art, and the first album of its genre's listing with that `art_id` (a later one
 * would share its cover; across genres, `download` keeps the first image with a given sha256). The order of a genre
 * is by listing block (`crawl.pageSize` ranks), then by `sha256("<seed>:<genre>:<item_id>")` within the block: the
 * same on any machine, and listing further only appends blocks (an incomplete last block waits until it is complete
 * or the listing ended), so the order of what was listed before never changes ({@link selectFromCandidates}).
 *
 * Rebuild mode (`select.fromManifest=PATH`; `discover` and `label` are skipped): the selection is exactly the images
 * listed in PATH, in file order, either
 * - our `manifest.tsv` (recognised by its header): `item_id`, `genre`, `art_id`, `url`, `sha256` are taken as they are,
 *   and `download` checks each image's sha256; or
 * - the 2015 study's `dataset-links.tsv` (`url<TAB>genre/a<N>.jpg`, no header): `art_id` comes from the URL, and the
 *   number N of the file name stands in for the unknown `item_id`. Genre folder names are mapped to Bandcamp norm
 *   names (`toNormName` in bandcamp/tags.ts: `hiphop_rap` → `hip-hop-rap`).
 * In this mode the file decides which images each genre gets, and its set of genres must equal `genres` (the
 * downstream stages label by `genres`); otherwise select fails naming both lists and the `--set genres=…` to use.
 */
import { toNormName } from '../bandcamp/tags.ts';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../pipeline/config.ts';
import { sha256 } from '../util/fsutil.ts';
import { UserError, type StageImplementation, type StageContext } from '../pipeline/stage.ts';
import { parseImageUrl } from '../bandcamp/api.ts';
import { candidatesFormat } from '../schemas/candidates.ts';
import { labelsFormat } from '../schemas/labels.ts';
import { manifestFormat } from '../schemas/manifest.ts';
import { parseIntCell, splitLines, stripBom } from '../schemas/tsv.ts';

/** True when `text` parses as a URL with the `http:` or `https:` scheme. */
function isHttpUrlText(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const p = new URL(text).protocol;
  return p === 'http:' || p === 'https:';
}
import { selectionFormat, type SelectCounts, type SelectionRow } from '../schemas/selection.ts';
import { readListingInfo, type ListingInfo } from '../schemas/candidates.ts';

/** The seeded sort key of an album within its genre (hex sha256). */
export function rankKey(seed: number, genre: string, itemId: number): string {
  return sha256(`${seed}:${genre}:${itemId}`);
}

/**
 * Reads a `select.fromManifest` file (our manifest.tsv or the study's links file) into selection rows, in file order.
 * @throws UserError naming the file and line for an unreadable line, a repeated image, or genres that differ from
 * `config.genres`.
 */
export function readManifestInput(path: string, config: Config): SelectionRow[] {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new UserError(`select.fromManifest: ${abs} not found`);
  const text = stripBom(readFileSync(abs, 'utf8'));
  const rows: SelectionRow[] = [];
  const rankOf = new Map<string, number>();
  const next = (g: string) => {
    const r = (rankOf.get(g) ?? 0) + 1;
    rankOf.set(g, r);
    return r;
  };
  if (manifestFormat.isHeader(text.split(/\r?\n/, 1)[0]!)) {
    let parsed;
    try {
      parsed = manifestFormat.parse(text, abs);
    } catch (e) {
      throw new UserError(`select.fromManifest: ${(e as Error).message}`);
    }
    parsed.forEach((m, i) => {
      if (m.item_id === null || m.genre === null || m.art_id === null || m.sha256 === null) {
        throw new UserError(`select.fromManifest: ${abs}: line ${i + 2}: item_id, genre, art_id and sha256 are required`);
      }
      if (m.url !== null && !isHttpUrlText(m.url)) {
        throw new UserError(`select.fromManifest: ${abs}: line ${i + 2}: column url: "${m.url.slice(0, 100)}" is not an http(s) URL; fix the line or leave the cell empty (the URL is then built from art_id)`);
      }
      rows.push({ genre: m.genre, rank: next(m.genre), item_id: m.item_id, art_id: m.art_id, url: m.url, sha256: m.sha256, band_id: m.band_id });
    });
  } else {
    splitLines(text).forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `select.fromManifest: ${abs}: line ${i + 1}`;
      const cells = line.split('\t');
      if (cells.length !== 2) throw new UserError(`${where}: expected "url<TAB>genre/a<N>.jpg" (the study's dataset-links.tsv) or our manifest.tsv header "${manifestFormat.header.replace(/\t/g, '<TAB>')}"`);
      const [url, file] = cells as [string, string];
      const img = parseImageUrl(url);
      if (!img || !isHttpUrlText(url)) throw new UserError(`${where}: "${url.slice(0, 100)}" is not a Bandcamp image URL (http(s)://…/img/a<art_id>_<format>.jpg)`);
      const artDigits = /\/img\/a(\d+)_/.exec(url)![1]!;
      const m = /^([A-Za-z0-9][A-Za-z0-9_-]*)\/a?(\d+)\.[a-z]+$/i.exec(file.trim());
      const genre = m ? toNormName(m[1]!) : '';
      if (!m || !/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(genre)) {
        throw new UserError(`${where}: "${file.slice(0, 100)}" is not of the form genre/a<N>.jpg (a genre folder name of letters, digits, "_" or "-", then the file); fix or remove the line`);
      }
      let itemId: number;
      let artId: number;
      try {
        itemId = parseIntCell(m[2]!, `${where}: N of ${file.trim()}`);
        artId = parseIntCell(artDigits, `${where}: art_id in the URL`);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      rows.push({ genre, rank: next(genre), item_id: itemId, art_id: artId, url, sha256: null, band_id: null });
    });
  }
  if (rows.length === 0) throw new UserError(`select.fromManifest: ${abs} lists no images`);
  const seenItem = new Set<number>();
  const seenArt = new Set<number>();
  for (const r of rows) {
    if (seenItem.has(r.item_id!)) throw new UserError(`select.fromManifest: ${abs}: item_id ${r.item_id} is listed twice`);
    if (seenArt.has(r.art_id!)) throw new UserError(`select.fromManifest: ${abs}: art_id ${r.art_id} is listed twice`);
    seenItem.add(r.item_id!);
    seenArt.add(r.art_id!);
  }
  const fileGenres = [...rankOf.keys()];
  const want = new Set(config.genres);
  if (fileGenres.length !== want.size || fileGenres.some((g) => !want.has(g))) {
    const ordered = config.genres.filter((g) => fileGenres.includes(g)).concat(fileGenres.filter((g) => !want.has(g)));
    throw new UserError(
      `select.fromManifest: ${abs} lists the genres ${fileGenres.join(', ')}, but the configured genres are ${config.genres.join(', ')}. ` +
        `The file decides the genres of a rebuild: run with --set genres=${ordered.join(',')}`,
    );
  }
  return rows;
}

/**
 * Ranks the eligible candidates of each genre; returns the rows and the per-genre counts.
 *
 * The order is by block, then by {@link rankKey}: block `k` holds the candidates of listing ranks
 * `k·B + 1 … (k+1)·B` (`B` = `crawl.pageSize`), and only complete blocks are ranked (all of them once the listing
 * ended). So listing further (another round) appends blocks after the ranked ones and never reorders them: the same
 * seed and listing give the same ranking prefix, whether the listing was fetched in one round or in several.
 * Eligible = labelled exclusive, with art, the first of its genre's listing with that `art_id` (a later album with
 * the same cover is dropped; across genres, `download` keeps the first image with a given sha256).
 */
export function selectFromCandidates(
  config: Config,
  candidates: ReturnType<typeof candidatesFormat.read>,
  labels: ReturnType<typeof labelsFormat.read>,
  listing: Record<string, ListingInfo> | null = null,
): { rows: SelectionRow[]; counts: Record<string, SelectCounts> } {
  const label = new Map<string, boolean>();
  for (const l of labels) label.set(`${l.genre}|${l.item_id}`, l.exclusive === true);
  const B = config.crawl.pageSize;
  const counts: Record<string, SelectCounts> = {};
  for (const g of config.genres) {
    counts[g] = { candidates: 0, exclusive: 0, withArt: 0, sharedArt: 0, eligible: 0, pendingBlock: 0 };
    if (listing?.[g]) counts[g].listing = listing[g];
  }
  const rows: SelectionRow[] = [];
  for (const genre of config.genres) {
    const k = counts[genre]!;
    const mine = candidates.filter((c) => c.genre === genre).sort((a, b) => a.rank! - b.rank!);
    k.candidates = mine.length;
    // Without listing info (an older candidates.arrow) every block counts as complete.
    const ended = !listing?.[genre] || listing[genre].ended !== null;
    const complete = ended ? Infinity : Math.floor(mine.length / B);
    const seenArt = new Set<number>();
    const keyed: { c: (typeof mine)[number]; block: number; key: string }[] = [];
    for (const c of mine) {
      if (!label.get(`${c.genre}|${c.item_id}`)) continue;
      k.exclusive++;
      if (c.art_id === null) continue;
      k.withArt++;
      if (seenArt.has(c.art_id)) {
        k.sharedArt++;
        continue;
      }
      seenArt.add(c.art_id);
      const block = Math.floor((c.rank! - 1) / B);
      if (block >= complete) {
        k.pendingBlock!++;
        continue;
      }
      keyed.push({ c, block, key: rankKey(config.seed, genre, c.item_id!) });
    }
    keyed.sort((a, b) => a.block - b.block || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    k.eligible = keyed.length;
    keyed.forEach(({ c }, i) => rows.push({ genre, rank: i + 1, item_id: c.item_id, art_id: c.art_id, url: null, sha256: null, band_id: c.band_id }));
  }
  return { rows, counts };
}

async function run(ctx: StageContext): Promise<void> {
  const { config, log } = ctx;
  if (config.select.fromManifest) {
    const rows = readManifestInput(config.select.fromManifest, config);
    selectionFormat.write(ctx.out('selection.arrow'), rows, { mode: 'manifest', source: resolve(config.select.fromManifest) });
    log.info(`selection: ${rows.length} image(s) from ${config.select.fromManifest} (rebuild: exactly these images)`);
    return;
  }
  const candidates = candidatesFormat.read(ctx.path('candidates.arrow'));
  const labels = labelsFormat.read(ctx.path('labels.arrow'));
  const { rows, counts } = selectFromCandidates(config, candidates, labels, readListingInfo(ctx.path('candidates.arrow')));
  selectionFormat.write(ctx.out('selection.arrow'), rows, { mode: 'crawl', counts: JSON.stringify(counts) });
  for (const g of config.genres) {
    const k = counts[g]!;
    log.info(`${g}: ${k.candidates} candidates, ${k.exclusive} exclusive, ${k.withArt} with art, ${k.eligible} eligible (need ${config.perGenre})`);
  }
}

/** The `select` stage. */
export const selectStage: StageImplementation = {
  name: 'select',
  run,
};

export default selectStage;
