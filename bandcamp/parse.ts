/**
 * Parsers for Bandcamp album/track pages and JSON API responses (2025–2026 formats). Used by the crawler stages and
 * checked against both the real captures in `../shared/bandcamp/fixtures/` and the simulator's pages.
 *
 * Sources: `../shared/bandcamp/REFERENCE.md` §3.2 (embedded data and the recommended extraction order), §3.4
 * (track pages), §4.3 (zero-padded ids), §4.4 (no cover), §5.1 (challenge, stripped and 403 pages), §2.4
 * (`discover_web`), §2.7 (mobile `tralbum_details`).
 */
import * as cheerio from 'cheerio';
import type { CheerioAPI } from 'cheerio';
import {
  DiscoverWebResponseSchema,
  TralbumDetailsSchema,
  parseImageUrl,
  stripFromParam,
  type DiscoverResult,
  type DiscoverWebResponse,
} from './api.ts';

/** A Bandcamp tag: display `name` (as shown on the page) and `normName` (the slug used in `tag_norm_names`). */
export interface TagRef {
  name: string;
  normName: string;
}

/** Bandcamp's short item type: `a` album, `t` track (as in `bc-page-properties` and `tralbum_type`). */
export type ItemType = 'a' | 't';

/** What {@link parseAlbumPage} extracts from an album or track page. */
export interface AlbumPage {
  /** `item_id` (album or track id), from `data-tralbum.id`, `bc-page-properties` or ld+json. */
  itemId: number;
  itemType: ItemType;
  /** Cover `art_id` as an unpadded integer; null when the release has no cover (§4.4). */
  artId: number | null;
  title: string | null;
  artist: string | null;
  /** The band's id (`data-tralbum.current.band_id`, `data-band.id`), or null when absent. */
  bandId: number | null;
  /** The band's location as printed on the page (`#band-name-location .location`, ld+json `foundingLocation`). */
  bandLocation: string | null;
  /** Tags in page order, WITHOUT the location tag. */
  tags: TagRef[];
  /** The band's location tag (the last `a.tag`, §3.2), or null when the page has none. */
  locationTag: TagRef | null;
  /** True when the page shows a cover (an `art_id` and no `#missing-tralbum-art`). */
  hasArt: boolean;
}

/** Thrown when a page or response does not have the expected structure; the message names what is missing. */
export class BandcampParseError extends Error {
  constructor(message: string, readonly url?: string) {
    super(url ? `${url}: ${message}` : message);
    this.name = 'BandcampParseError';
  }
}

/** Why a fetched album page is unusable (§5.1, §3.1): null when it is a normal page. */
export type BlockKind = 'challenge' | 'stripped' | 'not-found' | 'forbidden';

/** The text Bandcamp's 404 page shows (fixture `album_page_404__powergameheavy__2025-05-06.html`; note the U+2019). */
const NOT_FOUND_RE = /Sorry, that something isn[’']t here/;

/**
 * Classifies a fetched album/track page by its HTTP status and body (REFERENCE.md §5.1, §3.1):
 * - `'forbidden'`: HTTP 403 (Varnish "Error 54113", TLS fingerprint); retry with backoff, report "HTTP 403";
 * - `'not-found'`: HTTP 404, or any page with "Sorry, that something isn't here." (permanent);
 * - `'challenge'`: a Fastly "Client Challenge" page (`<title>Client Challenge`, assets under `/_fs-ch-…/`),
 *   which Bandcamp sends with HTTP 200 (transient for our purposes);
 * - `'stripped'`: an HTTP 200 HTML page without `script[data-tralbum]` (served to non-browser requests; transient).
 * Other statuses (429, 5xx) are not classified here (null); the caller handles them by status.
 */
export function detectBlocked(status: number, html: string): BlockKind | null {
  if (status === 403) return 'forbidden';
  if (status === 404 || NOT_FOUND_RE.test(html)) return 'not-found';
  if (status < 200 || status >= 300) return null;
  if (/<title>\s*Client Challenge/i.test(html) || html.includes('/_fs-ch-')) return 'challenge';
  if (!/\sdata-tralbum\s*=/.test(html)) return 'stripped';
  return null;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonAttr($: CheerioAPI, selector: string, attr: string): Json | null {
  const raw = $(selector).first().attr(attr); // cheerio decodes the HTML entities
  if (raw === undefined) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

function ldJson($: CheerioAPI): Json | null {
  for (const el of $('script[type="application/ld+json"]').toArray()) {
    try {
      const v: unknown = JSON.parse($(el).text());
      if (isObject(v) && (v['@type'] === 'MusicAlbum' || v['@type'] === 'MusicRecording')) return v;
    } catch {
      // not JSON: ignore this script tag
    }
  }
  return null;
}

function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

/** `art_id` of ld+json `albumRelease[0].additionalProperty[name=art_id]` (also under `inAlbum` for tracks). */
function ldArtId(ld: Json): number | null {
  const holders: unknown[] = [ld, isObject(ld.inAlbum) ? ld.inAlbum : null];
  for (const h of holders) {
    if (!isObject(h) || !Array.isArray(h.albumRelease)) continue;
    const first: unknown = h.albumRelease[0];
    if (!isObject(first) || !Array.isArray(first.additionalProperty)) continue;
    for (const p of first.additionalProperty) {
      if (isObject(p) && p.name === 'art_id') return num(p.value);
    }
  }
  return null;
}

function artIdFromImage(v: unknown): number | null {
  const url = Array.isArray(v) ? v[0] : v;
  if (typeof url !== 'string') return null;
  return parseImageUrl(url)?.artId ?? null;
}

/**
 * The tag norm_name from an `a.tag` href: `https://bandcamp.com/discover/<norm_name>?from=tralbum…` (2026) or the old
 * `…/tag/<norm_name>` form; percent-decoded (`reykjav%C3%ADk` → `reykjavík`). Null for other hrefs.
 */
export function tagNormNameFromHref(href: string): string | null {
  const m = /\/(?:discover|tag)\/([^/?#]+)/.exec(href);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1]!;
  }
}

function foldText(s: string): string {
  return s.normalize('NFKC').toLowerCase().trim();
}

/**
 * Is the last tag the band's location? Bandcamp appends it as the last `a.tag` (§3.2). Evidence used:
 * the tag text equals the location or its first comma-separated part (`Victoria` ↔ `Victoria, British Columbia`),
 * (`Costa Rica`); failing that, Bandcamp prints genre tags in lower case
 * and the location tag in its proper case (`United Kingdom` for location `UK` in the 2026 fixture).
 */
function isLocationTag(tag: TagRef, location: string | null, tagCount: number, otherTagsLowercase: boolean): boolean {
  if (location) {
    const loc = foldText(location);
    const t = foldText(tag.name);
    const firstPart = foldText(location.split(',')[0]!);
    if (t === loc || t === firstPart || loc.startsWith(t + ',')) return true;
  }
  // Case evidence: genre tags are shown lower-cased; a location tag keeps capitals.
  return tag.name !== tag.name.toLowerCase() && otherTagsLowercase && (tagCount > 1 || location !== null);
}

/**
 * Parses an album or track page (2025 and 2026 markup) into its ids, cover `art_id` and tags.
 *
 * `art_id` order (§3.2): `script[data-tralbum]` → ld+json `albumRelease[0].additionalProperty[art_id]` → ld+json
 * `image` → `og:image`. No cover (§4.4): `art_id:null` everywhere and `#tralbumArt > #missing-tralbum-art`.
 * Tags come from `a.tag` hrefs; the location tag (last tag matching the band location) is returned separately.
 *
 * @param html the page's HTML (call {@link detectBlocked} first).
 * @param url the page URL, used in error messages only.
 * @throws BandcampParseError when neither `data-tralbum`, `bc-page-properties` nor ld+json give an `item_id`.
 */
export function parseAlbumPage(html: string, url?: string): AlbumPage {
  const $ = cheerio.load(html);
  const tralbum = jsonAttr($, 'script[data-tralbum]', 'data-tralbum');
  const band = jsonAttr($, 'script[data-band]', 'data-band');
  const props = (() => {
    const raw = $('meta[name="bc-page-properties"]').attr('content');
    if (!raw) return null;
    try {
      const v: unknown = JSON.parse(raw);
      return isObject(v) ? v : null;
    } catch {
      return null;
    }
  })();
  const ld = ldJson($);
  const current = tralbum && isObject(tralbum.current) ? tralbum.current : null;

  // item id and type
  let itemId = num(tralbum?.id) ?? num(props?.item_id);
  if (itemId === null && ld) {
    const rel = Array.isArray(ld.albumRelease) ? ld.albumRelease[0] : null;
    if (isObject(rel) && Array.isArray(rel.additionalProperty)) {
      for (const p of rel.additionalProperty) if (isObject(p) && p.name === 'item_id') itemId = num(p.value);
    }
  }
  if (itemId === null) throw new BandcampParseError('no item_id (no data-tralbum, bc-page-properties or ld+json): not an album/track page', url);
  const rawType = str(tralbum?.item_type) ?? str(props?.item_type) ?? (ld?.['@type'] === 'MusicRecording' ? 'track' : 'album');
  const itemType: ItemType = rawType === 't' || rawType === 'track' ? 't' : 'a';

  // art_id
  const missingArt = $('#missing-tralbum-art').length > 0;
  let artId: number | null = null;
  if (tralbum && 'art_id' in tralbum) {
    artId = num(tralbum.art_id);
  } else {
    artId = (ld ? ldArtId(ld) ?? artIdFromImage(ld.image) : null) ?? artIdFromImage($('meta[property="og:image"]').attr('content'));
  }
  if (missingArt) artId = null;

  // names and band
  const title = str(current?.title) ?? str(ld?.name) ?? str($('h2.trackTitle').first().text());
  const byArtist = ld && isObject(ld.byArtist) ? ld.byArtist : null;
  const artist = str(tralbum?.artist) ?? str(byArtist?.name) ?? str($('#name-section h3 span a').first().text());
  const bandId = num(current?.band_id) ?? num(band?.id);
  const publisher = ld && isObject(ld.publisher) ? ld.publisher : null;
  const founding = publisher && isObject(publisher.foundingLocation) ? publisher.foundingLocation : null;
  const bandLocation = str($('#band-name-location .location').first().text()) ?? str(founding?.name);

  // tags
  const all: TagRef[] = [];
  const seen = new Set<string>();
  $('a.tag').each((_, el) => {
    const href = $(el).attr('href');
    const normName = href ? tagNormNameFromHref(href) : null;
    if (!normName || seen.has(normName)) return;
    seen.add(normName);
    all.push({ name: $(el).text().trim(), normName });
  });
  let locationTag: TagRef | null = null;
  const last = all.at(-1);
  if (last) {
    const othersLower = all.slice(0, -1).every((t) => t.name === t.name.toLowerCase());
    if (isLocationTag(last, bandLocation, all.length, othersLower)) locationTag = last;
  }
  const tags = locationTag ? all.slice(0, -1) : all;

  return { itemId, itemType, artId, title, artist, bandId, bandLocation, tags, locationTag, hasArt: artId !== null && !missingArt };
}

/** What {@link parseTralbumDetails} returns. */
export interface TralbumDetailsInfo {
  itemId: number;
  itemType: string;
  bandId: number | null;
  title: string | null;
  /** Cover `art_id`, null when the release has no art. */
  artId: number | null;
  /** Tags without the location tag (`isloc:false`). */
  tags: TagRef[];
  /** The tag with `isloc:true`, or null. */
  locationTag: TagRef | null;
}

/**
 * Validates and reduces a `GET /api/mobile/22/tralbum_details` response (§2.7; fixture
 * `api_mobile_22_tralbum_details__track__2026-05-25.json`). The location tag is the one with `isloc:true`.
 * @throws z.ZodError (from zod) when the JSON does not match `TralbumDetailsSchema`.
 */
export function parseTralbumDetails(json: unknown): TralbumDetailsInfo {
  const d = TralbumDetailsSchema.parse(json);
  const tags: TagRef[] = [];
  let locationTag: TagRef | null = null;
  for (const t of d.tags) {
    const ref = { name: t.name, normName: t.norm_name };
    if (t.isloc) locationTag ??= ref;
    else tags.push(ref);
  }
  return {
    itemId: d.id,
    itemType: d.type,
    bandId: d.band?.band_id ?? null,
    title: d.title ?? null,
    artId: d.art_id ?? null,
    tags,
    locationTag,
  };
}

/** A `discover_web` result with the cover id resolved. */
export type ParsedDiscoverResult = DiscoverResult & {
  /** `primary_image.image_id`, or null when `is_art === false`, `primary_image` is missing or its id is null/0. */
  artId: number | null;
};

/** A validated `discover_web` response. */
export interface ParsedDiscoverWebResponse {
  results: ParsedDiscoverResult[];
  /** Total matches (changes while paging on the real site). */
  result_count?: DiscoverWebResponse['result_count'];
  batch_result_count?: DiscoverWebResponse['batch_result_count'];
  /** The next page's cursor; null/empty/absent on the last page. */
  cursor?: DiscoverWebResponse['cursor'];
  /** Other fields are kept. */
  [key: string]: unknown;
}

/**
 * Validates a `POST /api/discover/1/discover_web` response (§2.4): each result's `item_url` (and `band_url`) loses
 * the `?from=discover_page` parameter, and `artId` is set from `primary_image`.
 * @throws z.ZodError when the JSON does not match `DiscoverWebResponseSchema`.
 */
export function parseDiscoverWebResponse(json: unknown): ParsedDiscoverWebResponse {
  const r = DiscoverWebResponseSchema.parse(json);
  return {
    ...r,
    results: r.results.map((x) => {
      const img = x.primary_image;
      const artId = img && img.is_art !== false && img.image_id ? img.image_id : null;
      return {
        ...x,
        item_url: stripFromParam(x.item_url),
        ...(x.band_url !== undefined ? { band_url: stripFromParam(x.band_url) } : {}),
        artId,
      };
    }),
  };
}
