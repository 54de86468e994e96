/**
 * Fault injection for the simulator: the `--faults` spec, and deterministic decisions by seed.
 *
 * Transient faults (`429`, `503`, `reset`, `slow`, `challenge`, `stripped`) depend on the request key (method, path,
 * body) AND its attempt number (how many times the same key was requested before), so a retry can succeed.
 * Content faults are fixed per item: image faults per `art_id`, `404` per album `item_id`.
 * Each group is drawn once per decision and mutually exclusive inside the group, so the rates are exact shares.
 */
import { unit } from './rng.ts';

/** Transient faults, in the order they are drawn. */
const TRANSIENT_FAULTS = ['429', '503', 'reset', 'slow', 'challenge', 'stripped'] as const;
export type TransientFault = (typeof TRANSIENT_FAULTS)[number];

/** Per-image content faults (fixed per `art_id`). */
export const IMAGE_FAULTS = ['truncated', 'corrupt', 'cmyk', 'grayscale', 'progressive', 'png-alpha', 'bomb', 'dup-album', 'dup-genre', 'near-dup-album', 'near-dup-genre'] as const;
export type ImageFault = (typeof IMAGE_FAULTS)[number];

/**
 * Per-album content faults (fixed per `item_id`): what the album's URL serves instead of its page (exclusive).
 * `redirect` and `band-page` are albums Bandcamp removed: `tralbum_details` answers 404 for them.
 */
const ALBUM_FAULTS = ['404', 'redirect', 'band-page'] as const;
export type AlbumFault = (typeof ALBUM_FAULTS)[number];

/** Per-album markup drift (fixed per `item_id`): which template the album page uses (exclusive). */
const MARKUP_FAULTS = ['no-tralbum', 'ld-only', 'props-only'] as const;
export type MarkupFault = (typeof MARKUP_FAULTS)[number];

/** Per-album tag faults (fixed per `item_id`): how the page and `tralbum_details` show the tags (exclusive). */
const TAG_FAULTS = ['dup-location', 'no-tags'] as const;
export type TagFault = (typeof TAG_FAULTS)[number];

/** Per-album API faults (fixed per `item_id`): `tralbum_details` answers 404 while the page is up. */
const DETAILS_FAULTS = ['details-404'] as const;
export type DetailsFault = (typeof DETAILS_FAULTS)[number];

/** Misbehaving listings, fixed per listing (slice, tags, result types): cursors that cycle or never end. */
const LISTING_FAULTS = ['cursor-cycle', 'cursor-endless'] as const;
type ListingFault = (typeof LISTING_FAULTS)[number];

/** Misbehaving cover bodies, fixed per `art_id`: a 2 GiB `Content-Length` (and body), or a body without end. */
const BODY_FAULTS = ['huge-body', 'endless-body'] as const;
type BodyFault = (typeof BODY_FAULTS)[number];

/** Items whose `item_url` has another scheme (`file:`, `javascript:`), fixed per `item_id`. */
const SCHEME_FAULTS = ['bad-scheme'] as const;
type SchemeFault = (typeof SCHEME_FAULTS)[number];

export type FaultName = TransientFault | ImageFault | AlbumFault | MarkupFault | TagFault | DetailsFault | ListingFault | BodyFault | SchemeFault;
const ALL_FAULTS: readonly FaultName[] = [
  ...TRANSIENT_FAULTS, ...IMAGE_FAULTS, ...ALBUM_FAULTS, ...MARKUP_FAULTS, ...TAG_FAULTS, ...DETAILS_FAULTS, ...LISTING_FAULTS, ...BODY_FAULTS, ...SCHEME_FAULTS,
];

/** Rates (0..1) per fault name; absent = 0. */
export type FaultRates = Partial<Record<FaultName, number>>;

/** Help text of the `--faults` syntax (printed by `covers simulate --help`). */
export const FAULTS_HELP = `--faults SPEC: comma-separated NAME=RATE pairs, RATE a share in [0,1], e.g.
  --faults 429=0.05,503=0.02,reset=0.01,slow=0.05,challenge=0.02,stripped=0.02,truncated=0.01,corrupt=0.01
Transient faults (drawn per request key AND attempt number, so a retry can succeed; the rates of one
request add up, at most 1):
  429        HTTP 429 with a Retry-After header (seconds, --retry-after)       all endpoints
  503        HTTP 503 (Varnish error page)                                    all endpoints
  reset      the TCP connection is destroyed without a response               all endpoints
  slow       the response is delayed by --slow-ms milliseconds                all endpoints
  challenge  HTTP 200 "Client Challenge" page (/_fs-ch-…)                     album pages, tralbum_details
  stripped   HTTP 200 page with none of data-tralbum, ld+json,               album pages
             bc-page-properties, a.tag (what non-browser clients get)
Content faults (fixed per item, the same on every request):
  truncated  the image bytes are cut short                                    per art_id
  corrupt    the image header is garbled (undecodable)                        per art_id
  cmyk       a CMYK JPEG                                                      per art_id
  grayscale  a one-channel (greyscale) JPEG                                   per art_id
  progressive a progressive JPEG                                              per art_id
  png-alpha  a PNG with an alpha channel, served as .jpg (image/jpeg)         per art_id
  bomb       a small JPEG whose header declares 60000x60000 pixels            per art_id
  dup-album  the same image bytes as another album of the same genre          per art_id (catalogue)
  dup-genre  the same image bytes as an album of another genre                per art_id (catalogue)
  near-dup-album another album's cover of the same genre, re-encoded (JPEG     per art_id (catalogue)
             quality 65-75), cropped by 2% on each side and resized to 90%
  near-dup-genre the same, from an album of another genre                     per art_id (catalogue)
  404        the album's page, tralbum_details and cover answer 404            per item_id
  redirect   the album was removed and its URL 301s to ANOTHER album's page   per item_id
             (one of its first genre only; tralbum_details answers 404)
  band-page  the album was removed and its URL 302s to the band's /music page per item_id
             (a discography, no album data; tralbum_details answers 404)
Markup drift (fixed per item_id; exclusive):
  no-tralbum a newer template: no script[data-tralbum], tralbum_page_version 1 per item_id
  ld-only    only ld+json (@id, name, byArtist, image, keywords): no ids       per item_id
  props-only bc-page-properties + og:image + a.tag only                       per item_id
Tags (fixed per item_id; exclusive):
  dup-location the location twice (lower-cased first, proper case last) on   per item_id
             the page; tralbum_details repeats every tag
  no-tags    the page and tralbum_details show no tags but the location      per item_id
             (discover_web still lists the album under its genres)
  details-404 tralbum_details answers 404 while the page is up               per item_id
Misbehaving site (fixed per listing or item):
  cursor-cycle   discover_web's third page points back to the second (A -> B -> A)   per listing
  cursor-endless discover_web never ends: past the end, the last page again with a new cursor   per listing
  huge-body      the cover declares (and streams) 2 GiB                           per art_id
  endless-body   the cover body never ends (chunked, no Content-Length)            per art_id
  bad-scheme     the album's item_url is file:/javascript: and tralbum_details 404s   per item_id
The image faults of one art_id are exclusive (their rates add up, at most 1), and so are the faults of each
per-item_id group above, of each listing and of each cover body.`;

/**
 * Parses a `--faults` spec (`429=0.05,reset=0.01`).
 * @throws Error naming the bad pair and what was expected.
 */
export function parseFaultSpec(spec: string | undefined): FaultRates {
  const rates: FaultRates = {};
  if (!spec || spec.trim() === '') return rates;
  for (const part of spec.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const m = /^([a-z0-9-]+)=([0-9]*\.?[0-9]+(?:e-?\d+)?)$/i.exec(p);
    if (!m) throw new Error(`--faults: "${p}" is not NAME=RATE (e.g. 429=0.05)`);
    const name = m[1]!.toLowerCase() as FaultName;
    if (!ALL_FAULTS.includes(name)) throw new Error(`--faults: unknown fault "${m[1]}"; known: ${ALL_FAULTS.join(', ')}`);
    const rate = Number(m[2]);
    if (!(rate >= 0 && rate <= 1)) throw new Error(`--faults: rate of "${name}" must be in [0,1], got ${m[2]}`);
    rates[name] = rate;
  }
  const sum = (names: readonly FaultName[]): number => names.reduce((s, n) => s + (rates[n] ?? 0), 0);
  if (sum(TRANSIENT_FAULTS) > 1 + 1e-9) throw new Error(`--faults: the transient fault rates add up to more than 1`);
  if (sum(IMAGE_FAULTS) > 1 + 1e-9) throw new Error(`--faults: the image fault rates add up to more than 1`);
  for (const [group, names] of [['album', ALBUM_FAULTS], ['markup', MARKUP_FAULTS], ['tag', TAG_FAULTS], ['listing', LISTING_FAULTS], ['body', BODY_FAULTS]] as const) {
    if (sum(names) > 1 + 1e-9) throw new Error(`--faults: the ${group} fault rates (${names.join(', ')}) add up to more than 1`);
  }
  return rates;
}

/** Formats rates back into a spec string. */
export function formatFaultSpec(rates: FaultRates): string {
  return ALL_FAULTS.filter((n) => (rates[n] ?? 0) > 0).map((n) => `${n}=${rates[n]}`).join(',');
}

function drawFrom<T extends FaultName>(names: readonly T[], rates: FaultRates, u: number, allowed?: (n: T) => boolean): T | null {
  let acc = 0;
  for (const n of names) {
    const r = rates[n] ?? 0;
    if (r <= 0) continue;
    acc += r;
    if (u < acc) return allowed && !allowed(n) ? null : n;
  }
  return null;
}

/** Deterministic fault decisions for one seed and one set of rates. */
export class FaultPlan {
  constructor(readonly rates: FaultRates, readonly seed: number) {}

  /**
   * The transient fault for the `attempt`-th request (0-based) of a request key, or null.
   * @param applicable which faults apply to this endpoint (others draw "no fault").
   */
  transient(key: string, attempt: number, applicable: (f: TransientFault) => boolean): TransientFault | null {
    return drawFrom(TRANSIENT_FAULTS, this.rates, unit('transient', this.seed, key, attempt), applicable);
  }

  /** The content fault of an image (`art_id`), or null. */
  image(artId: number): ImageFault | null {
    return drawFrom(IMAGE_FAULTS, this.rates, unit('image', this.seed, artId));
  }

  /** The listing fault of a listing (`slice|tags|types` key), or null. */
  listing(key: string): ListingFault | null {
    return drawFrom(LISTING_FAULTS, this.rates, unit('listing', this.seed, key));
  }

  /** The body fault of a cover (`art_id`), or null. */
  body(artId: number): BodyFault | null {
    return drawFrom(BODY_FAULTS, this.rates, unit('body', this.seed, artId));
  }

  /** The scheme fault of an album (`item_id`), or null. */
  scheme(itemId: number): SchemeFault | null {
    return drawFrom(SCHEME_FAULTS, this.rates, unit('scheme', this.seed, itemId));
  }

  /** The content fault of an album (`item_id`), or null. */
  album(itemId: number): AlbumFault | null {
    return drawFrom(ALBUM_FAULTS, this.rates, unit('album', this.seed, itemId));
  }

  /** The markup drift of an album's page (`item_id`), or null (the 2026 template of the captures). */
  markup(itemId: number): MarkupFault | null {
    return drawFrom(MARKUP_FAULTS, this.rates, unit('markup', this.seed, itemId));
  }

  /** The tag fault of an album (`item_id`), or null. */
  tags(itemId: number): TagFault | null {
    return drawFrom(TAG_FAULTS, this.rates, unit('tags', this.seed, itemId));
  }

  /** The `tralbum_details` fault of an album (`item_id`), or null. */
  details(itemId: number): DetailsFault | null {
    return drawFrom(DETAILS_FAULTS, this.rates, unit('details', this.seed, itemId));
  }
}
