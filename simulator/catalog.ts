/**
 * The simulator's catalogue: albums (with `item_id`, `art_id`, band, tags, location) that `discover_web` lists, album
 * pages describe and the image CDN serves covers for.
 *
 * - `synthetic`: `perGenre` albums per genre, a share `overlap` also tagged with one or two other genres, location
 *   tags, some albums without art, a few merch (`result_type:"s"`) items; covers drawn by `simulator/covers.ts`.
 * - `DIR`: one album per row of `DIR/labels.tsv` (`path<TAB>genre`, with a header; an optional `band` column makes
 *   the rows with the same value releases of one artist), covers are those files.
 *
 * Metadata is built eagerly (small); cover pixels are generated lazily by `simulator/images.ts`.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { FaultPlan, type AlbumFault, type DetailsFault, type FaultName, type ImageFault, type MarkupFault, type TagFault } from './faults.ts';
import { simGenreDisplayName, simTagNormName } from './protocol.ts';
import { hash32, pick, rngFor } from './rng.ts';

/** The 2015 study's genres, the synthetic catalogue's default. */
export const DEFAULT_SIM_GENRES = ['ambient', 'dubstep', 'folk', 'hip-hop-rap', 'jazz', 'metal', 'pop', 'punk', 'rock', 'soul'];

/** A tag as Bandcamp shows it: display `name`, slug `normName`. */
export interface SimTag {
  name: string;
  normName: string;
}

/** One catalogue item (album, or merch when `resultType` is `s`). */
export interface SimAlbum {
  itemId: number;
  /** `a` album, `s` merch (listed by `discover_web` only when `include_result_types` has `s`). */
  resultType: 'a' | 's';
  /** Cover `art_id`, null for albums without art. */
  artId: number | null;
  title: string;
  slug: string;
  bandId: number;
  bandName: string;
  bandSlug: string;
  /** The catalogue genres (tag norm names) this album is tagged with; the first one is its cover's style. */
  genres: string[];
  /** Tags shown on the page, in order, WITHOUT the location tag (genre tags and other descriptors). */
  tags: SimTag[];
  /** Band location text (`#band-name-location .location`) and its tag, or null. */
  location: { text: string; tag: SimTag } | null;
  /** Bandcamp's band genre id (`band_genre_id`), null when unknown. */
  bandGenreId: number | null;
  /** Release date, seconds since the epoch. */
  releaseDate: number;
  /** DIR catalogue: absolute path of the cover file. */
  imageFile?: string;
}

/** Bandcamp genre ids (docs/BANDCAMP.md#tag-norm-names, fixture F7). */
const GENRE_IDS: Record<string, number> = {
  acoustic: 1, alternative: 2, ambient: 3, blues: 4, classical: 5, comedy: 6, country: 7, devotional: 9, electronic: 10, dubstep: 10,
  experimental: 11, folk: 12, funk: 13, 'hip-hop-rap': 14, jazz: 15, latin: 17, metal: 18, pop: 19, punk: 20, 'r-b-soul': 21, soul: 21,
  reggae: 22, rock: 23, soundtrack: 24, 'spoken-word': 25, world: 26,
};

/** Location text as on band pages, and the tag Bandcamp appends (from real pages: F1, F2, F3, F13). */
const LOCATIONS: readonly [string, string][] = [
  ['UK', 'United Kingdom'], ['Victoria, British Columbia', 'Victoria'], ['Reykjavík, Iceland', 'Reykjavík'], ['Costa Rica', 'Costa Rica'],
  ['Berlin, Germany', 'Berlin'], ['Portland, Oregon', 'Portland'], ['Tokyo, Japan', 'Tokyo'], ['Montréal, Québec', 'Montréal'],
  ['Melbourne, Australia', 'Melbourne'], ['Brooklyn, New York', 'Brooklyn'], ['Lagos, Nigeria', 'Lagos'], ['São Paulo, Brazil', 'São Paulo'],
  ['Glasgow, UK', 'Glasgow'], ['Oslo, Norway', 'Oslo'], ['Mexico City, Mexico', 'Mexico City'], ['Chicago, Illinois', 'Chicago'],
];

const DESCRIPTORS = ['lo-fi', 'instrumental', 'diy', 'indie', 'experimental', 'live', 'ep', 'remastered', 'cassette', 'underground', 'independent', 'love', 'singer-songwriter', 'electronic', 'chill', 'psychedelic', 'noise', 'dark', 'summer', 'debut'];
const WORDS = ['night', 'river', 'glass', 'echo', 'static', 'velvet', 'iron', 'paper', 'golden', 'hollow', 'neon', 'salt', 'winter', 'ghost', 'signal', 'garden', 'ember', 'lunar', 'cobalt', 'wild', 'quiet', 'burning', 'distant', 'silver', 'broken', 'electric', 'tidal', 'amber', 'crystal', 'feral'];
const NOUNS = ['waves', 'machines', 'hearts', 'tapes', 'shadows', 'lights', 'rooms', 'dreams', 'roads', 'birds', 'walls', 'tides', 'wolves', 'bells', 'fields', 'circuits'];

/** Bandcamp's tag slug rule (`simulator/protocol.ts`): lowercase, runs of other characters become `-`. */
function tagNormName(name: string): string {
  return simTagNormName(name);
}

/** The display name of a genre tag (`hip-hop-rap` → `hip-hop/rap`, `post-rock` → `post rock`). */
function genreDisplayName(genre: string): string {
  return simGenreDisplayName(genre);
}

function slugify(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

/** Options of the synthetic catalogue. */
export interface SyntheticOptions {
  genres: string[];
  perGenre: number;
  /** Share of albums tagged with two or more catalogue genres (0..1). */
  overlap: number;
  /** Share of albums without cover art (0..1). */
  noArt: number;
  /** Merch items per genre, as a share of `perGenre`. */
  merch: number;
  seed: number;
}

/** What the catalogue answers; built by {@link syntheticCatalog} or {@link dirCatalog}. */
export class Catalog {
  readonly byItemId = new Map<number, SimAlbum>();
  readonly byArtId = new Map<number, SimAlbum>();
  readonly byPath = new Map<string, SimAlbum>();
  private readonly dupSource = new Map<number, number>();

  /**
   * @param kind `synthetic` (covers drawn; any `art_id` gets an image) or `dir` (covers are files).
   * @param genres the catalogue's genre tags (norm names), in order.
   * @param albums every item.
   * @param faults the fault plan (content faults are fixed per item).
   */
  constructor(readonly kind: 'synthetic' | 'dir', readonly genres: string[], readonly albums: SimAlbum[], readonly faults: FaultPlan) {
    for (const a of albums) {
      this.byItemId.set(a.itemId, a);
      if (a.artId !== null) this.byArtId.set(a.artId, a);
      this.byPath.set(albumPath(a), a);
    }
    // Sources of duplicated images, chosen deterministically among albums with art.
    const withArt = albums.filter((a) => a.artId !== null && a.resultType === 'a');
    for (const a of withArt) {
      const f = faults.image(a.artId!);
      if (f !== 'dup-album' && f !== 'dup-genre' && f !== 'near-dup-album' && f !== 'near-dup-genre') continue;
      const sameGenre = f === 'dup-album' || f === 'near-dup-album';
      const want = (b: SimAlbum): boolean =>
        b !== a && faults.image(b.artId!) === null && (sameGenre ? b.genres[0] === a.genres[0] : !b.genres.some((g) => a.genres.includes(g)));
      const start = hash32(`dup|${faults.seed}|${a.artId}`) % withArt.length;
      for (let k = 0; k < withArt.length; k++) {
        const b = withArt[(start + k) % withArt.length]!;
        if (want(b)) {
          this.dupSource.set(a.artId!, b.artId!);
          break;
        }
      }
    }
  }

  /** The album of an `item_url` path (`/album/<band>-<slug>`), if any. */
  albumAt(path: string): SimAlbum | undefined {
    return this.byPath.get(path);
  }

  /** Content faults of an `art_id` (image) — empty when it has none. A dup fault without a source is dropped. */
  faultsOf(artId: number): ImageFault[] {
    const f = this.faults.image(artId);
    if (f === null) return [];
    if ((f === 'dup-album' || f === 'dup-genre' || f === 'near-dup-album' || f === 'near-dup-genre') && !this.dupSource.has(artId)) return [];
    return [f];
  }

  /** Album-level faults of an `item_id` (`404`, `redirect`, `band-page`); a redirect without a target is dropped. */
  albumFaultsOf(itemId: number): AlbumFault[] {
    const f = this.faults.album(itemId);
    if (f === 'redirect' && this.redirectTarget(itemId) === undefined) return [];
    return f ? [f] : [];
  }

  /** The markup drift of an album's page (`no-tralbum`, `ld-only`, `props-only`), or null. */
  markupOf(itemId: number): MarkupFault | null {
    return this.faults.markup(itemId);
  }

  /** The tag fault of an album (`dup-location`, `no-tags`), or null. */
  tagFaultOf(itemId: number): TagFault | null {
    return this.faults.tags(itemId);
  }

  /** The `tralbum_details` fault of an album (`details-404`), or null. */
  detailsFaultOf(itemId: number): DetailsFault | null {
    return this.faults.details(itemId);
  }

  /**
   * Where a `redirect` album's URL points: another album (not merch, itself without an album fault) tagged with the
   * removed album's first genre only, when there is one (the plausible case: the other album's tags fit the listing,
   * so only the item_id tells them apart; a multi-genre album would pass as exclusive), chosen by hash; undefined
   * when the catalogue has none.
   */
  redirectTarget(itemId: number): SimAlbum | undefined {
    const a = this.byItemId.get(itemId);
    if (!a) return undefined;
    const ok = (b: SimAlbum): boolean => b !== a && b.resultType === 'a' && this.faults.album(b.itemId) === null;
    const pool = this.albums.filter((b) => ok(b) && b.genres.length === 1 && b.genres[0] === a.genres[0]);
    const from = pool.length ? pool : this.albums.filter(ok);
    return from.length ? from[hash32(`redirect|${this.faults.seed}|${itemId}`) % from.length] : undefined;
  }

  /** Every content fault in the catalogue, by `art_id` / `item_id` (for tests and `--log`). */
  contentFaults(): { itemId: number; artId: number | null; faults: FaultName[] }[] {
    const out: { itemId: number; artId: number | null; faults: FaultName[] }[] = [];
    for (const a of this.albums) {
      const more = [this.markupOf(a.itemId), this.tagFaultOf(a.itemId), this.detailsFaultOf(a.itemId)].filter((f): f is MarkupFault | TagFault | DetailsFault => f !== null);
      const faults: FaultName[] = [...this.albumFaultsOf(a.itemId), ...more, ...(a.artId !== null ? this.faultsOf(a.artId) : [])];
      if (faults.length > 0) out.push({ itemId: a.itemId, artId: a.artId, faults });
    }
    return out;
  }

  /** The `art_id` whose picture an image shows (itself, or the source of a `dup-*` or `near-dup-*` fault). */
  imageSourceOf(artId: number): number {
    return this.dupSource.get(artId) ?? artId;
  }
}

/** The path of an item's page on the simulator: `/album/<band-slug>-<album-slug>` (or `/merch/…`). */
export function albumPath(a: SimAlbum): string {
  return `/${a.resultType === 's' ? 'merch' : 'album'}/${a.bandSlug}-${a.slug}`;
}

class IdMaker {
  private readonly used = new Set<number>();
  constructor(private readonly seed: number) {}
  /** A unique id in [1e8, 4.29e9), a pure function of the key while it does not collide. */
  make(key: string): number {
    for (let k = 0; ; k++) {
      const id = 100_000_000 + (hash32(`${this.seed}|${key}|${k}`) % 4_000_000_000);
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
  }
}

function makeLocation(r: () => number): SimAlbum['location'] {
  if (r() < 0.05) return null;
  const [text, tag] = pick(r, LOCATIONS);
  return { text, tag: { name: tag, normName: tagNormName(tag) } };
}

const RELEASE_FROM = Date.UTC(2008, 8, 1) / 1000;
const RELEASE_SPAN = 17 * 365 * 86400;

/** Builds the synthetic catalogue (deterministic in `seed`). */
export function syntheticCatalog(o: SyntheticOptions, faults: FaultPlan): Catalog {
  const ids = new IdMaker(o.seed);
  const arts = new IdMaker(o.seed + 7919);
  const albums: SimAlbum[] = [];
  const descriptors = DESCRIPTORS.filter((d) => !o.genres.includes(d));
  const usedSlugs = new Set<string>();
  const make = (genre: string, i: number, resultType: 'a' | 's'): SimAlbum => {
    const key = `${resultType}|${genre}|${i}`;
    const r = rngFor('album', o.seed, key);
    const genres = [genre];
    if (resultType === 'a' && o.genres.length > 1 && r() < o.overlap) {
      const extra = r() < 0.2 ? 2 : 1;
      const others = o.genres.filter((g) => g !== genre);
      while (genres.length < 1 + Math.min(extra, others.length)) {
        const g = pick(r, others);
        if (!genres.includes(g)) genres.push(g);
      }
    }
    const bandName = `${pick(r, WORDS)} ${pick(r, NOUNS)}`.replace(/^./, (c) => c.toUpperCase());
    const title = `${pick(r, WORDS)} ${pick(r, WORDS)}`.replace(/\b./g, (c) => c.toUpperCase());
    let bandSlug = slugify(bandName).replace(/-/g, '');
    let slug = slugify(title);
    while (usedSlugs.has(`${bandSlug}-${slug}`)) slug = `${slug}-${Math.floor(r() * 1000)}`;
    usedSlugs.add(`${bandSlug}-${slug}`);
    // Genre and descriptor tags in an artist-chosen order (unsorted, as in the fixtures); the location comes last.
    const tags: SimTag[] = [];
    const nDesc = Math.floor(r() * 4);
    for (let k = 0; k < nDesc; k++) {
      const d = pick(r, descriptors);
      if (!tags.some((t) => t.normName === d)) tags.push({ name: d, normName: d });
    }
    for (const g of genres) tags.splice(Math.floor(r() * (tags.length + 1)), 0, { name: genreDisplayName(g), normName: g });
    const hasArt = resultType === 's' || r() >= o.noArt;
    bandSlug ||= 'band';
    return {
      itemId: ids.make(key),
      resultType,
      artId: hasArt ? arts.make(key) : null,
      title: resultType === 's' ? `${title} T-Shirt` : title,
      slug,
      bandId: ids.make(`band|${key}`),
      bandName,
      bandSlug,
      genres,
      tags,
      location: makeLocation(r),
      bandGenreId: GENRE_IDS[genre] ?? null,
      releaseDate: Math.floor(RELEASE_FROM + r() * RELEASE_SPAN),
    };
  };
  for (const g of o.genres) {
    for (let i = 0; i < o.perGenre; i++) albums.push(make(g, i, 'a'));
    const nMerch = Math.round(o.perGenre * o.merch);
    for (let i = 0; i < nMerch; i++) albums.push(make(g, i, 's'));
  }
  return new Catalog('synthetic', [...o.genres], albums, faults);
}

/**
 * Builds a catalogue from a folder with `labels.tsv` (`path<TAB>genre`, header line; an optional `band` column: rows
 * with the same non-empty value are albums of one band, with one `band_id`, name and URL slug): one album per row, tagged with
 * the genre as a Bandcamp tag (the simulator's own rule, `simulator/protocol.ts`: the label `hiphop_rap` is served
 * as the tag `hip-hop/rap`, norm name `hip-hop-rap`), its cover the file (served unchanged as
 * format `_0`).
 * @param limit keep only the first `limit` rows of each genre (for tests), or all when undefined.
 * @throws Error naming the file and line when `labels.tsv` is missing or malformed.
 */
export function dirCatalog(dir: string, seed: number, faults: FaultPlan, limit?: number): Catalog {
  const labels = join(dir, 'labels.tsv');
  let text: string;
  try {
    text = readFileSync(labels, 'utf8');
  } catch (e) {
    throw new Error(`catalogue ${dir}: cannot read labels.tsv (${(e as Error).message})`);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/); // a byte order mark (Excel, Notepad) is not part of the header
  const header = lines[0]?.split('\t') ?? [];
  const pathCol = header.indexOf('path');
  const genreCol = header.indexOf('genre');
  const bandCol = header.indexOf('band');
  if (pathCol < 0 || genreCol < 0) throw new Error(`${labels}: line 1 must be a header with columns "path" and "genre"`);
  const ids = new IdMaker(seed);
  const arts = new IdMaker(seed + 7919);
  const albums: SimAlbum[] = [];
  const genres: string[] = [];
  const perGenre = new Map<string, number>();
  /** `band` column value → its band id (one id per band). */
  const bandIds = new Map<string, number>();
  for (let ln = 1; ln < lines.length; ln++) {
    const line = lines[ln]!;
    if (line.trim() === '') continue;
    const cols = line.split('\t');
    const file = cols[pathCol];
    const label = cols[genreCol]?.trim();
    const display = label ? simGenreDisplayName(label) : '';
    const genre = simTagNormName(display);
    if (!file || !genre) throw new Error(`${labels}:${ln + 1}: expected path<TAB>genre, got ${JSON.stringify(line)}`);
    const n = perGenre.get(genre) ?? 0;
    if (limit !== undefined && n >= limit) continue;
    perGenre.set(genre, n + 1);
    if (!genres.includes(genre)) genres.push(genre);
    const r = rngFor('dir', seed, file);
    const base = file.replace(/^.*\//, '').replace(/\.[a-z]+$/i, '');
    const randomName = `${pick(r, WORDS)} ${pick(r, NOUNS)}`.replace(/^./, (c) => c.toUpperCase());
    const band = bandCol >= 0 ? (cols[bandCol]?.trim() ?? '') : '';
    const bandName = band || randomName;
    albums.push({
      itemId: ids.make(`dir|${file}`),
      resultType: 'a',
      artId: arts.make(`dir|${file}`),
      title: base,
      slug: band ? `${slugify(base) || 'item'}-${ln}` : slugify(base) || `item-${ln}`,
      bandId: band ? (bandIds.get(band) ?? bandIds.set(band, ids.make(`band-name|${band}`)).get(band)!) : ids.make(`band|${file}`),
      bandName,
      bandSlug: band ? slugify(band).replace(/-/g, '') || 'band' : `${slugify(randomName).replace(/-/g, '')}${ln}`,
      genres: [genre],
      tags: [{ name: display, normName: genre }],
      location: makeLocation(r),
      bandGenreId: GENRE_IDS[genre] ?? null,
      releaseDate: Math.floor(RELEASE_FROM + r() * RELEASE_SPAN),
      imageFile: isAbsolute(file) ? file : resolve(dir, file),
    });
  }
  if (albums.length === 0) throw new Error(`${labels}: no rows`);
  return new Catalog('dir', genres, albums, faults);
}
