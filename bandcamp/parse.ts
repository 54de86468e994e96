/**
 * Parsers for Bandcamp album/track pages and JSON API responses (2025–2026 formats). Used by the crawler stages and
 * checked against both the real captures in `test/fixtures/bandcamp/` and the simulator's pages.
 *
 * Sources: `docs/BANDCAMP.md`: #album-page-markup (embedded data and the extraction order), #track-pages,
 * #band-pages, #image-urls (zero-padded ids), #no-cover, #blocking (challenge, stripped and 403 pages),
 * #discover_web, #tralbum_details (mobile API).
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
import { normNameOfTagName, splitLocationTag, type TagRef } from './tags.ts';

export type { TagRef } from './tags.ts';

/** Bandcamp's short item type: `a` album, `t` track (as in `bc-page-properties` and `tralbum_type`). */
export type ItemType = 'a' | 't';

/**
 * Where an album page's fields came from, in the order they are tried (docs/BANDCAMP.md#album-page-markup):
 * `data-tralbum` (the `script[data-tralbum]` JSON), `ld+json` (`script[type="application/ld+json"]`, schema.org
 * `MusicAlbum`/`MusicRecording`), `bc-page-properties` (`meta[name=bc-page-properties]` with `og:image` and `a.tag`).
 */
export type AlbumSource = 'data-tralbum' | 'ld+json' | 'bc-page-properties';

/**
 * The `tralbum_page_version`s of `bc-page-properties` seen on real album/track pages (0 in every capture,
 * 2025-05 to 2026-05: fixtures F1, F2, F3, F13). Another value means Bandcamp changed the template.
 */
export const KNOWN_TRALBUM_PAGE_VERSIONS: readonly number[] = [0];

/** What {@link parseAlbumPage} extracts from an album or track page. */
export interface AlbumPage {
  /**
   * `item_id` (album or track id), from `data-tralbum.id`, `bc-page-properties`, or ld+json (`additionalProperty`
   * `item_id`/`track_id`, or the page's own `albumRelease`); null only when the page names none (an ld+json-only
   * page without them): then {@link AlbumPage.url} and {@link AlbumPage.artId} identify it.
   */
  itemId: number | null;
  itemType: ItemType;
  /** Cover `art_id` as an unpadded integer; null when the release has no cover (BANDCAMP.md#no-cover). */
  artId: number | null;
  title: string | null;
  artist: string | null;
  /** The band's id (`data-tralbum.current.band_id`, `data-band.id`), or null when absent. */
  bandId: number | null;
  /** The band's location as printed on the page (`#band-name-location .location`, ld+json `foundingLocation`). */
  bandLocation: string | null;
  /** The page's own canonical URL (`data-tralbum.url`, ld+json `@id`, `og:url`), or null. */
  url: string | null;
  /** Tags in page order, each norm name once, WITHOUT the location tag (in any of its copies). */
  tags: TagRef[];
  /** The band's location tag (the page's last tag group, BANDCAMP.md#album-page-markup), or null when the page has none. */
  locationTag: TagRef | null;
  /** True when the page shows a cover (an `art_id` and no `#missing-tralbum-art`). */
  hasArt: boolean;
  /** Which source the ids, cover and names came from (the first one present, see {@link AlbumSource}). */
  source: AlbumSource;
  /** Where the tags came from: the `a.tag` links (norm names from their hrefs), or ld+json `keywords` (names). */
  tagSource: 'a.tag' | 'keywords' | 'none';
  /** `bc-page-properties` `tralbum_page_version`, or null when the page has none (see {@link KNOWN_TRALBUM_PAGE_VERSIONS}). */
  pageVersion: number | null;
}

/** Thrown when a page or response does not have the expected structure; the message names what is missing. */
export class BandcampParseError extends Error {
  constructor(message: string, readonly url?: string) {
    super(url ? `${url}: ${message}` : message);
    this.name = 'BandcampParseError';
  }
}

/**
 * Why a fetched album page is unusable (BANDCAMP.md#blocking, BANDCAMP.md#album-urls-and-404s): null when it is a normal page (an album or track page, or a
 * page of another kind, which {@link readAlbumPage} reports as `not-an-album`).
 */
export type BlockKind = 'challenge' | 'stripped' | 'not-found' | 'forbidden';

/** The text Bandcamp's 404 page shows (fixture `album_page_404__powergameheavy__2025-05-06.html`; note the U+2019). */
const NOT_FOUND_RE = /Sorry, that something isn[’']t here/;

/** A Fastly "Client Challenge" page (BANDCAMP.md#blocking): `<title>Client Challenge`, or assets under `/_fs-ch-…/`. */
function isChallenge(html: string): boolean {
  return /<title>\s*Client Challenge/i.test(html) || html.includes('/_fs-ch-');
}

/**
 * Classifies a fetched album/track page by its HTTP status and body (docs/BANDCAMP.md#blocking, BANDCAMP.md#album-urls-and-404s):
 * - `'forbidden'`: HTTP 403 (Varnish "Error 54113", TLS fingerprint); retry with backoff, report "HTTP 403";
 * - `'not-found'`: HTTP 404, or any page with "Sorry, that something isn't here." (permanent);
 * - `'challenge'`: a Fastly "Client Challenge" page (`<title>Client Challenge`, assets under `/_fs-ch-…/`),
 *   which Bandcamp sends with HTTP 200 (transient for our purposes);
 * - `'stripped'`: an HTTP 200 page that carries none of the album sources ({@link AlbumSource}) and is not
 *   recognisably another kind of Bandcamp page (a band's `/music` page, a label page): served to non-browser
 *   requests, transient. A page without `data-tralbum` that still has ld+json or `bc-page-properties` is NOT
 *   stripped: {@link readAlbumPage} parses it from those.
 * Other statuses (429, 5xx) are not classified here (null); the caller handles them by status.
 */
export function detectBlocked(status: number, html: string): BlockKind | null {
  if (status === 403) return 'forbidden';
  if (status === 404 || NOT_FOUND_RE.test(html)) return 'not-found';
  if (status < 200 || status >= 300) return null;
  if (isChallenge(html)) return 'challenge';
  if (readAlbumPage(html).kind === 'none') return 'stripped';
  return null;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJsonObject(raw: string | undefined): Json | null {
  if (raw === undefined) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

function jsonAttr($: CheerioAPI, selector: string, attr: string): Json | null {
  return parseJsonObject($(selector).first().attr(attr)); // cheerio decodes the HTML entities
}

/** The ld+json objects of a page (arrays and `@graph` flattened). */
function ldObjects($: CheerioAPI): Json[] {
  const out: Json[] = [];
  for (const el of $('script[type="application/ld+json"]').toArray()) {
    let v: unknown;
    try {
      v = JSON.parse($(el).text());
    } catch {
      continue; // not JSON: ignore this script tag
    }
    const list = Array.isArray(v) ? v : isObject(v) && Array.isArray(v['@graph']) ? v['@graph'] : [v];
    for (const x of list) if (isObject(x)) out.push(x);
  }
  return out;
}

function ldTypes(o: Json): string[] {
  const t = o['@type'];
  return Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : typeof t === 'string' ? [t] : [];
}

function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

/** `additionalProperty[name=<name>].value` of an ld+json object. */
function ldProp(o: Json | null, name: string): unknown {
  if (!o || !Array.isArray(o.additionalProperty)) return undefined;
  for (const p of o.additionalProperty) if (isObject(p) && p.name === name) return p.value;
  return undefined;
}

/** A URL without fragment, query and trailing slash, host lower-cased: for comparing page URLs. */
export function comparableUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host.toLowerCase()}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return url.replace(/[?#].*$/, '').replace(/\/+$/, '');
  }
}

/**
 * The ld+json release of the page itself: among `albumRelease[]` (top level, or under `inAlbum` on track pages), the
 * one whose `@id` is the page's `@id` and whose `item_type` is `a` or `t`; else the first with such an `item_type`.
 * (Track pages also list bundle releases, `item_type: "b"`, with other ids: fixture F2.)
 */
function ldOwnRelease(ld: Json): Json | null {
  const lists = [ld.albumRelease, isObject(ld.inAlbum) ? ld.inAlbum.albumRelease : undefined];
  const releases = lists.flatMap((l) => (Array.isArray(l) ? l.filter(isObject) : []));
  const own = typeof ld['@id'] === 'string' ? comparableUrl(ld['@id']) : null;
  const typed = releases.filter((r) => ['a', 't'].includes(String(ldProp(r, 'item_type'))));
  return typed.find((r) => typeof r['@id'] === 'string' && comparableUrl(r['@id']) === own) ?? typed[0] ?? null;
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

/** Does a tag's text name the band's location (`Victoria` ↔ `Victoria, British Columbia`, `Costa Rica`)? */
function namesLocation(tag: TagRef, location: string): boolean {
  const loc = foldText(location);
  const t = foldText(tag.name);
  return t === loc || t === foldText(location.split(',')[0]!) || loc.startsWith(t + ',');
}

/**
 * The location tag among a page's tags, by Bandcamp's own layout (BANDCAMP.md#album-page-markup): the location is appended last, after the
 * artist's tags, whenever the band has a location.
 * - Tags in two or more groups (containers): a last group of one tag is the location.
 * - Otherwise the last tag is the location when its text names the band location, when the band has a location at
 *   all (`#band-name-location`, ld+json `foundingLocation`: Bandcamp appends it, `UK` → `United Kingdom` in F1), or,
 *   with no location printed, when it alone keeps capitals among lower-cased tags (`a.tag` texts only).
 */
function findLocationTag(groups: readonly TagRef[][], bandLocation: string | null, caseEvidence: boolean): TagRef | null {
  const nonEmpty = groups.filter((g) => g.length > 0);
  if (nonEmpty.length === 0) return null;
  if (nonEmpty.length >= 2 && nonEmpty.at(-1)!.length === 1) return nonEmpty.at(-1)![0]!;
  const all = nonEmpty.flat();
  const last = all.at(-1)!;
  if (bandLocation) return last; // Bandcamp appends the location tag whenever the band has a location
  if (!caseEvidence || all.length < 2) return null;
  const others = all.slice(0, -1).filter((t) => t.normName !== last.normName);
  return last.name !== last.name.toLowerCase() && others.every((t) => t.name === t.name.toLowerCase()) ? last : null;
}

/** What {@link readAlbumPage} makes of a page. */
export type PageRead =
  | { kind: 'album'; page: AlbumPage }
  /** A Bandcamp page of another kind (a band's `/music` page, a label page); `what` says which, for messages. */
  | { kind: 'not-an-album'; what: string }
  /** None of the album sources and nothing else recognisable (a stripped page, or not a Bandcamp page). */
  | { kind: 'none' };

/**
 * Evidence that a page is a Bandcamp page other than an album/track page, or null: another `bc-page-properties`
 * item type, another `og:type`, a discography grid, or, when `bandObject` and the page has no `og:type` at all, the
 * band object (`script[data-band]` with a numeric `id`) that a band page carries, in the 2026 markup without any of
 * the others (docs/BANDCAMP.md#band-pages). A stripped album page still says `og:type` `album` (or has lost its
 * `data-*` blobs altogether), so it stays `none`.
 */
function otherPageKind($: CheerioAPI, props: Json | null, bandObject: boolean): string | null {
  const type = str(props?.item_type);
  if (type !== null && type !== 'a' && type !== 't') return `bc-page-properties item_type "${type}"`;
  const og = str($('meta[property="og:type"]').attr('content'));
  if (og !== null && !['album', 'song', 'music.album', 'music.song'].includes(og)) return `og:type "${og}"`;
  if ($('#music-grid, ol.music-grid').length > 0) return 'a discography grid (#music-grid)';
  const band = bandObject && og === null ? jsonAttr($, 'script[data-band]', 'data-band') : null;
  if (band !== null && num(band.id) !== null) return `a band page (data-band id ${num(band.id)})`;
  return null;
}

/**
 * Reads an album or track page from whatever it still carries (docs/BANDCAMP.md#album-page-markup, in this order):
 * `script[data-tralbum]`; else ld+json `MusicAlbum`/`MusicRecording` (`@id`, `name`, `byArtist`, `image`,
 * `keywords`, `additionalProperty`, `albumRelease`); else `bc-page-properties` (`item_id`, `item_type`) with
 * `og:image` and the `a.tag` links. Any source may be missing fields the next one has (e.g. `art_id` from
 * `og:image`). Tags come from the `a.tag` hrefs, or from ld+json `keywords` when the page has no `a.tag`; the
 * location tag is found by {@link findLocationTag} and removed in every copy, the rest deduplicated by norm name.
 *
 * No cover (BANDCAMP.md#no-cover): `art_id:null` everywhere and `#tralbumArt > #missing-tralbum-art`.
 * Never throws: a page of another kind is `not-an-album`, a page with none of the sources is `none`.
 */
export function readAlbumPage(html: string): PageRead {
  const $ = cheerio.load(html);
  const tralbumRaw = jsonAttr($, 'script[data-tralbum]', 'data-tralbum');
  const tralbum = tralbumRaw && num(tralbumRaw.id) !== null ? tralbumRaw : null;
  const props = parseJsonObject($('meta[name="bc-page-properties"]').attr('content'));
  const ld = ldObjects($).find((o) => ldTypes(o).some((t) => t === 'MusicAlbum' || t === 'MusicRecording')) ?? null;
  const propsType = str(props?.item_type);
  const propsIsAlbum = props !== null && num(props.item_id) !== null && (propsType === 'a' || propsType === 't');

  if (!tralbum && !ld && !propsIsAlbum) {
    const other = otherPageKind($, props, true);
    return other ? { kind: 'not-an-album', what: other } : { kind: 'none' };
  }
  if (!tralbum && !ld) {
    // bc-page-properties says album/track; a discography grid or another og:type would contradict it.
    const other = otherPageKind($, null, false);
    if (other) return { kind: 'not-an-album', what: other };
  }
  const source: AlbumSource = tralbum ? 'data-tralbum' : ld ? 'ld+json' : 'bc-page-properties';
  const band = jsonAttr($, 'script[data-band]', 'data-band');
  const current = tralbum && isObject(tralbum.current) ? tralbum.current : null;
  const release = ld ? ldOwnRelease(ld) : null;

  // item id and type
  const ldTrack = ld !== null && ldTypes(ld).includes('MusicRecording');
  const itemId =
    num(tralbum?.id) ?? num(props?.item_id) ?? (ld ? num(ldProp(ld, 'item_id')) ?? (ldTrack ? num(ldProp(ld, 'track_id')) : null) ?? num(ldProp(release, 'item_id')) : null);
  const rawType = str(tralbum?.item_type) ?? str(props?.item_type) ?? (ldTrack ? 'track' : 'album');
  const itemType: ItemType = rawType === 't' || rawType === 'track' ? 't' : 'a';

  // art_id
  const missingArt = $('#missing-tralbum-art').length > 0;
  let artId: number | null;
  if (tralbum && 'art_id' in tralbum) {
    artId = num(tralbum.art_id);
  } else {
    const ldArt = ld ? num(ldProp(ld, 'art_id')) ?? num(ldProp(release, 'art_id')) ?? artIdFromImage(ld.image) : null;
    artId = ldArt ?? artIdFromImage($('meta[property="og:image"]').attr('content'));
  }
  if (missingArt) artId = null;

  // names, band, URL
  const ogTitle = str($('meta[property="og:title"]').attr('content'));
  const ogSplit = ogTitle ? /^(.*), by (.*)$/.exec(ogTitle) : null;
  const title = str(current?.title) ?? str(ld?.name) ?? str($('h2.trackTitle').first().text()) ?? str(ogSplit?.[1]) ?? ogTitle;
  const byArtist = ld && isObject(ld.byArtist) ? ld.byArtist : null;
  const artist = str(tralbum?.artist) ?? str(byArtist?.name) ?? str(ogSplit?.[2]) ?? str($('#name-section h3 span a').first().text());
  const bandId = num(current?.band_id) ?? num(band?.id);
  const publisher = ld && isObject(ld.publisher) ? ld.publisher : null;
  const founding = publisher && isObject(publisher.foundingLocation) ? publisher.foundingLocation : null;
  const bandLocation = str($('#band-name-location .location').first().text()) ?? str(founding?.name);
  const url = str(tralbum?.url) ?? str(ld?.['@id']) ?? str($('meta[property="og:url"]').attr('content'));

  // tags: a.tag links in their groups (the parent element of each run), else ld+json keywords
  let tagEls = $('.tralbum-tags a.tag');
  if (tagEls.length === 0) tagEls = $('a.tag');
  const groups: TagRef[][] = [];
  let lastParent: unknown = null;
  tagEls.each((_, el) => {
    const href = $(el).attr('href');
    const normName = href ? tagNormNameFromHref(href) : null;
    if (!normName) return;
    if (el.parent !== lastParent || groups.length === 0) groups.push([]);
    lastParent = el.parent;
    groups.at(-1)!.push({ name: $(el).text().trim(), normName });
  });
  let tagSource: AlbumPage['tagSource'] = 'a.tag';
  if (groups.flat().length === 0) {
    const kw = ld && Array.isArray(ld.keywords) ? ld.keywords : typeof ld?.keywords === 'string' ? ld.keywords.split(',') : [];
    const names = kw.filter((k): k is string => typeof k === 'string' && k.trim() !== '').map((k) => k.trim());
    groups.length = 0;
    groups.push(names.map((name) => ({ name, normName: normNameOfTagName(name) })).filter((t) => t.normName !== ''));
    tagSource = groups[0]!.length > 0 ? 'keywords' : 'none';
  }
  const location = findLocationTag(groups, bandLocation, tagSource === 'a.tag');
  const { tags, locationTag } = splitLocationTag(groups.flat(), location);
  const pageVersion = num(props?.tralbum_page_version);

  return {
    kind: 'album',
    page: { itemId, itemType, artId, title, artist, bandId, bandLocation, url, tags, locationTag, hasArt: artId !== null && !missingArt, source, tagSource, pageVersion },
  };
}

/**
 * Parses an album or track page (2025 and 2026 markup, and pages without `data-tralbum`) into its ids, cover
 * `art_id` and tags: {@link readAlbumPage}, for callers that expect an album page.
 *
 * @param html the page's HTML (call {@link detectBlocked} first).
 * @param url the page URL, used in error messages only.
 * @throws BandcampParseError when the page is not an album/track page (naming what it is), or carries none of
 * `data-tralbum`, ld+json and `bc-page-properties`.
 */
export function parseAlbumPage(html: string, url?: string): AlbumPage {
  const r = readAlbumPage(html);
  if (r.kind === 'album') return r.page;
  if (r.kind === 'not-an-album') throw new BandcampParseError(`not an album or track page (${r.what})`, url);
  throw new BandcampParseError('no item_id (no data-tralbum, bc-page-properties or ld+json): not an album/track page', url);
}

/** What {@link parseTralbumDetails} returns. */
export interface TralbumDetailsInfo {
  itemId: number;
  itemType: string;
  bandId: number | null;
  title: string | null;
  /** Cover `art_id`, null when the release has no art. */
  artId: number | null;
  /** Tags without the location tag (in any copy), each norm name once. */
  tags: TagRef[];
  /** The tag with `isloc:true`, or null. */
  locationTag: TagRef | null;
}

/**
 * Validates and reduces a `GET /api/mobile/22/tralbum_details` response (BANDCAMP.md#tralbum_details; fixture
 * `api_mobile_22_tralbum_details__track__2026-05-25.json`). The location tag is the one Bandcamp marks `isloc:true`;
 * every copy of its norm name is dropped from `tags`, and the API's repeated tags are deduplicated by norm name.
 * @throws z.ZodError (from zod) when the JSON does not match `TralbumDetailsSchema`.
 */
export function parseTralbumDetails(json: unknown): TralbumDetailsInfo {
  const d = TralbumDetailsSchema.parse(json);
  const all: TagRef[] = d.tags.map((t) => ({ name: t.name, normName: t.norm_name }));
  const loc = d.tags.find((t) => t.isloc === true);
  const { tags, locationTag } = splitLocationTag(all, loc ? { name: loc.name, normName: loc.norm_name } : null);
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
 * Validates a `POST /api/discover/1/discover_web` response (BANDCAMP.md#discover_web): each result's `item_url` (and `band_url`) loses
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
