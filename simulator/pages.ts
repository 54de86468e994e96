/**
 * The simulator's HTML and JSON bodies, in Bandcamp's 2026 formats, modelled on the real captures in
 * `test/fixtures/bandcamp/` (docs/BANDCAMP.md#album-page-markup album page, BANDCAMP.md#album-urls-and-404s 404 page, BANDCAMP.md#blocking challenge/stripped pages, BANDCAMP.md#tralbum_details
 * `tralbum_details`, BANDCAMP.md#discover_web `discover_web` results). The same parsers (`bandcamp/parse.ts`) must read both.
 */
import { albumPath, type SimAlbum } from './catalog.ts';
import type { MarkupFault, TagFault } from './faults.ts';

/** `&`, `<`, `>`, `"` and `'` as HTML entities (attribute- and text-safe), as Bandcamp encodes `data-tralbum`. */
function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** JSON for inside a `<script>` element (no `</script>` breakout). */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

/** Bandcamp's page date format: `17 Oct 2019 15:39:15 GMT` (docs/BANDCAMP.md#dates). */
export function bandcampDate(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())} ${mon} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} GMT`;
}

/** Album-art URL as pages print it: `art_id` zero-padded to 10 digits (BANDCAMP.md#image-urls). */
export function paddedImageUrl(imageOrigin: string, artId: number, format: number): string {
  return `${imageOrigin}/img/a${String(artId).padStart(10, '0')}_${format}.jpg`;
}

/** Where the simulator's pages live. */
export interface SiteUrls {
  origin: string;
  imageOrigin: string;
}

/** The `item_url` of an item on the simulator (no `?from=`). */
function itemUrl(site: SiteUrls, a: SimAlbum): string {
  return `${site.origin}${albumPath(a)}`;
}

/** The `band_url` of an item's band on the simulator. */
function bandUrl(site: SiteUrls, a: SimAlbum): string {
  return `${site.origin}/band/${a.bandSlug}`;
}

function trackCount(a: SimAlbum): number {
  return 1 + (a.itemId % 9);
}

/** The tags an album shows (page and API), without the location: none under the `no-tags` fault. */
function shownTags(a: SimAlbum, tagFault: TagFault | null): { name: string; normName: string }[] {
  return tagFault === 'no-tags' ? [] : [...a.tags];
}

/**
 * All tags of a page in order, the location tag last (docs/BANDCAMP.md#album-page-markup). Under `dup-location` the location also
 * appears lower-cased as the first tag, as some real pages show it (`united kingdom … United Kingdom`).
 */
function pageTags(a: SimAlbum, tagFault: TagFault | null = null): { name: string; normName: string }[] {
  const tags = shownTags(a, tagFault);
  if (!a.location) return tags;
  const lead = tagFault === 'dup-location' ? [{ name: a.location.tag.name.toLowerCase(), normName: a.location.tag.normName }] : [];
  return [...lead, ...tags, a.location.tag];
}

/** How {@link albumPageHtml} varies the page (simulator faults). */
export interface PageVariant {
  /** A stripped page (transient fault): none of data-tralbum, ld+json, bc-page-properties, og:image, a.tag (BANDCAMP.md#blocking). */
  stripped?: boolean;
  /** Markup drift: `no-tralbum`, `ld-only` or `props-only` (see `simulator/faults.ts`). */
  markup?: MarkupFault | null;
  /** Tag fault: `dup-location` or `no-tags`. */
  tags?: TagFault | null;
}

/**
 * The album page at `item_url` (2026 markup, as `album_page__macbenson__coming-of-age__2026-05-25.html`):
 * `meta[name=bc-page-properties]`, `og:image` (`_5`), `link[rel=image_src]` (`_16`), ld+json `MusicAlbum`,
 * `script[data-tralbum]` (entity-encoded), `.trackView.has-art`, `#tralbumArt a.popupImage` (`_10`) with a
 * `<picture>` (`_2`), `a.tag` links, `#band-name-location`. Without art (BANDCAMP.md#no-cover): `art_id:null`, no image fields,
 * `#missing-tralbum-art`.
 * @param stripped omit `data-tralbum` (and the other `data-*` blobs), as Bandcamp's "stripped" pages do (BANDCAMP.md#blocking).
 */
export function albumPageHtml(site: SiteUrls, a: SimAlbum, variant: PageVariant = {}): string {
  const url = itemUrl(site, a);
  const band = bandUrl(site, a);
  const art = a.artId;
  const img = (f: number): string => paddedImageUrl(site.imageOrigin, art!, f);
  const tags = pageTags(a, variant.tags ?? null);
  const markup = variant.stripped ? null : (variant.markup ?? null);
  const stripped = variant.stripped === true;
  /** What this template carries. */
  const has = {
    tralbum: !stripped && markup === null,
    ld: !stripped && markup !== 'props-only',
    props: !stripped && markup !== 'ld-only',
    og: !stripped && markup !== 'ld-only',
    tagLinks: !stripped && markup !== 'ld-only',
  };
  const n = trackCount(a);
  const release = bandcampDate(a.releaseDate);
  const tracks = Array.from({ length: n }, (_, i) => ({
    id: (a.itemId + i + 1) % 4294967296,
    track_id: (a.itemId + i + 1) % 4294967296,
    title: `Track ${i + 1}`,
    title_link: `/track/track-${i + 1}`,
    track_num: i + 1,
    duration: 120 + ((a.itemId >> i) % 180),
    file: { 'mp3-128': `${site.origin}/stream_redirect?enc=mp3-128&track_id=${a.itemId + i + 1}` },
  }));
  const tralbum = {
    'for the curious': 'https://bandcamp.com/help/audio_basics#steal https://bandcamp.com/terms_of_use',
    current: {
      audit: 0, title: a.title, new_date: release, mod_date: release, publish_date: release, private: null, killed: null,
      release_date: release, artist: null, about: null, credits: null, id: a.itemId, type: 'album', art_id: art,
      band_id: a.bandId, selling_band_id: a.bandId,
    },
    preorder_count: null, hasAudio: true, art_id: art, packages: null, defaultPrice: 7.0, freeDownloadPage: null, FREE: 1, PAID: 2,
    artist: a.bandName, item_type: 'album', id: a.itemId, is_preorder: false, album_is_preorder: false, album_release_date: release,
    featured_track_id: tracks[0]!.id, initial_track_num: null, trackinfo: tracks, playing_from: 'album page', url, use_expando_lyrics: false,
  };
  const dataBand = { id: a.bandId, name: a.bandName, fan_email: null, account_id: a.bandId ^ 0x5a5a5a, facebook_like_enabled: null, has_discounts: false, image_id: null };
  const dataEmbed = {
    tralbum_param: { name: 'album', value: a.itemId }, art_id: art, artist: a.bandName, swf_base_url: 'https://bandcamp.com', show_campaign: null,
    embed_info: { public_embeddable: true, exclusive_embeddable: false, item_public: true, no_track_preorder: false }, album_title: a.title, linkback: url,
  };
  const releaseProps: { '@type': string; name: string; value: number | string }[] = [
    { '@type': 'PropertyValue', name: 'item_id', value: a.itemId },
    { '@type': 'PropertyValue', name: 'item_type', value: 'a' },
    { '@type': 'PropertyValue', name: 'selling_band_id', value: a.bandId },
    { '@type': 'PropertyValue', name: 'type_name', value: 'Digital' },
  ];
  if (art !== null) releaseProps.push({ '@type': 'PropertyValue', name: 'art_id', value: art });
  const ld: Record<string, unknown> = {
    albumReleaseType: 'AlbumRelease', '@id': url, mainEntityOfPage: url, '@type': 'MusicAlbum', name: a.title, dateModified: release,
    albumRelease: [{ '@type': ['MusicRelease', 'Product'], '@id': url, name: a.title, additionalProperty: releaseProps, ...(art !== null ? { image: [img(10)] } : {}) }],
    byArtist: { '@type': 'MusicGroup', name: a.bandName, '@id': band },
    publisher: {
      '@type': 'MusicGroup', '@id': band, name: a.bandName,
      ...(a.genres[0] ? { genre: `https://bandcamp.com/discover/${a.genres[0]}` } : {}),
      ...(a.location ? { foundingLocation: { '@type': 'Place', name: a.location.text } } : {}),
    },
    datePublished: release, numTracks: n,
    track: { '@type': 'ItemList', numberOfItems: n, itemListElement: tracks.map((t) => ({ '@type': 'ListItem', position: t.track_num, item: { '@type': 'MusicRecording', name: t.title } })) },
    keywords: tags.map((t) => t.name),
    ...(art !== null ? { image: img(10) } : {}),
    additionalProperty: art !== null ? [{ '@type': 'PropertyValue', name: 'art_id', value: art }] : [],
    '@context': 'https://schema.org',
  };
  // The ld+json of an ld-only page: the fields every version carries (@id, name, byArtist, image, keywords), no ids.
  const ldMinimal: Record<string, unknown> = {
    '@type': 'MusicAlbum', '@id': url, name: a.title, byArtist: { '@type': 'MusicGroup', name: a.bandName, '@id': band },
    publisher: ld.publisher, datePublished: release, keywords: ld.keywords, ...(art !== null ? { image: img(10) } : {}), '@context': 'https://schema.org',
  };
  const pageProps = escapeHtml(JSON.stringify({ item_type: 'a', item_id: a.itemId, tralbum_page_version: markup === 'no-tralbum' ? 1 : 0 }));
  const title = escapeHtml(a.title);
  const artist = escapeHtml(a.bandName);
  const dataAttrs = !has.tralbum
    ? ''
    : ` data-band="${escapeHtml(JSON.stringify(dataBand))}" data-embed="${escapeHtml(JSON.stringify(dataEmbed))}" data-tralbum="${escapeHtml(JSON.stringify(tralbum))}"`;
  const artHtml =
    art !== null
      ? `
            <a class="popupImage" href="${img(10)}">
                <picture>
                    <source srcset="${img(2)} 1x, ${site.imageOrigin}/img/a${art}_1x1_700.avif 2x" type="image/avif" />
                    <img src="${img(2)}">
                </picture>
            </a>`
      : `
            <div id="missing-tralbum-art"></div>`;
  const tagHtml = (has.tagLinks ? tags : [])
    .map((t) => `
            <a class="tag" href="https://bandcamp.com/discover/${encodeURIComponent(t.normName)}?from=tralbum&amp;artist=${a.bandId}"
                >${escapeHtml(t.name)}</a>`)
    .join('\n        ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <title>${title} | ${artist}</title>
    <meta name="description" content="${escapeHtml(`${a.title} by ${a.bandName}, released ${release}`)}">
        <meta name="title" content="${title}, by ${artist}">
${has.og ? `        <meta property="og:title" content="${title}, by ${artist}">
        <meta property="og:type" content="album">
        <meta property="og:site_name" content="${artist}">
        <meta property="og:description" content="${n} track album">
` : ''}
${has.props ? `        <meta name="bc-page-properties" content="${pageProps}">
` : ''}${art !== null && has.og ? `            <meta property="og:image" content="${img(5)}">
            <link rel="image_src" href="${img(16)}">
` : ''}${has.og ? `        <meta property="og:url"   content="${url}">
` : ''}            <meta name="generator"      content="Bandcamp">
${has.ld ? `    <script type="application/ld+json">
        ${scriptJson(markup === 'ld-only' ? ldMinimal : ld)}
    </script>
` : ''}
    <script type="text/javascript" src="https://s4.bcbits.com/client-bundle/1/trackpipe/tralbum_head-sim.js" crossorigin="anonymous"${dataAttrs}></script>
</head>
<body class="gecko enable-cookie-control has-menubar has-rec-footer tralbum-clearfix tralbum-page " lang="en">
<div id="pagedata" data-blob="${escapeHtml(JSON.stringify({ album_id: a.itemId, locale: 'en', templglobals: { endpoint_mobilized: true, is_phone: false } }))}"></div>
<div id="centerWrapper"><div id="propOpenWrapper">
        <div id="pgBd" class="yui-skin-sam">
<div class="trackView leftMiddleColumns${art !== null ? ' has-art' : ''}"
     data-tooltips="{&quot;tooltips&quot;:[],&quot;dash_seen&quot;:null}">
    <div id="name-section" >
        <h2 class="trackTitle">
            ${title}
        </h2>
        <h3 style="margin:0px;">by 
        <span> 
          <a href="${band}">${artist}</a>
          </span>
        </h3>
    </div>
    <div class="middleColumn">
        <div id="tralbumArt">${artHtml}
        </div>
    </div>
    <div class="tralbumData tralbum-about">${escapeHtml(`released ${release}`)}</div>
        <h3 class="tags-label">tags</h3>
        <div class="tralbumData tralbum-tags tralbum-tags-nu hidden">
            <h3><span class="tags-inline-label">Tags</span></h3>
        ${tagHtml}
        </div>
</div>
<div id="rightColumn" class="rightColumn">
    <p id="band-name-location">
        <span class="title">${artist}</span>
        <span class="location secondaryText">${a.location ? escapeHtml(a.location.text) : ''}</span>
    </p>
</div>
        </div>
</div></div>
</body>
</html>
`;
}

/** Bandcamp's 404 page (as `album_page_404__powergameheavy__2025-05-06.html`): "Sorry, that something isn’t here." */
export function notFoundHtml(site: SiteUrls): string {
  return `<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>Bandcamp</title>
    <meta name="robots" content="noindex">
</head>
<body>
<div class="content">
    <h2>Sorry, that something isn’t here.</h2>
    <p>
        Please <a href="${site.origin}">start at the beginning</a> and you’ll certainly find what you’re looking for.
    </p>
</div>
</body>
</html>
`;
}

/** A Fastly "Client Challenge" page (HTTP 200; assets under `/_fs-ch-<token>/`), docs/BANDCAMP.md#blocking. */
export function challengeHtml(token: string): string {
  return `<!DOCTYPE html>
<html lang="en-US">
<head>
    <title>Client Challenge</title>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <script src="/_fs-ch-${token}/script.js" async></script>
</head>
<body>
    <noscript>JavaScript is disabled in your browser. Please enable JavaScript to proceed.</noscript>
    <div id="loading-error" hidden>A required part of this site couldn’t load.</div>
</body>
</html>
`;
}

/** Varnish/Fastly error page body (for 503 / 403). */
export function varnishErrorHtml(status: number, message: string, code: number): string {
  return `<!DOCTYPE html>
<html><head><title>${status} ${message}</title></head>
<body><h1>Error ${status} ${message}</h1><p>${message}</p><h3>Error ${code}</h3><p>Details: cache-sim 1</p><hr><p>Varnish cache server</p></body></html>
`;
}

/** The URL of a band's discography page on the simulator (`https://<band>.bandcamp.com/music` on the real site). */
export function bandMusicUrl(site: SiteUrls, bandSlug: string): string {
  return `${site.origin}/band/${bandSlug}/music`;
}

/**
 * A band's `/music` page in the template real 2025–2026 band pages use (as a public capture of
 * `https://astropilotmusic.bandcamp.com/music`, 2025-11-30, in Otiel/BandcampDownloader's test resources shows):
 * `og:type` `band`, `data-band` on the head script but no `data-tralbum`, no `bc-page-properties`, no ld+json album,
 * a band photo as `og:image` (no `a` prefix), and the releases in `ol#music-grid` (`li[data-item-id=album-<id>]`).
 */
export function bandMusicHtml(site: SiteUrls, bandSlug: string, albums: readonly SimAlbum[]): string {
  const first = albums[0];
  const name = escapeHtml(first?.bandName ?? bandSlug);
  const dataBand = escapeHtml(JSON.stringify({ id: first?.bandId ?? 0, name: first?.bandName ?? bandSlug, subdomain: bandSlug }));
  const items = albums
    .filter((a) => a.resultType === 'a')
    .map((a) => `
    <li data-item-id="album-${a.itemId}" data-band-id="${a.bandId}" class="music-grid-item square">
        <a href="${albumPath(a)}">
            <div class="art">${a.artId !== null ? `<img src="${paddedImageUrl(site.imageOrigin, a.artId, 2)}" alt="">` : ''}</div>
            <p class="title">${escapeHtml(a.title)}</p>
        </a>
    </li>`)
    .join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
    <title>Music | ${name}</title>
        <meta name="title" content="${name}">
        <meta property="og:title" content="${name}">
        <meta property="og:type" content="band">
        <meta property="og:url" content="${bandUrl(site, first ?? ({ bandSlug } as SimAlbum))}">
        <meta property="og:image" content="${site.imageOrigin}/img/${String((first?.bandId ?? 1) % 1e9).padStart(10, '0')}_23.jpg">
    <meta name="generator" content="Bandcamp">
    <script type="text/javascript" src="https://s4.bcbits.com/client-bundle/1/trackpipe/tralbum_head-sim.js" data-band-follow-info="{&quot;tralbum_id&quot;:null,&quot;tralbum_type&quot;:null}" data-band="${dataBand}"></script>
</head>
<body class="band-page">
<div id="centerWrapper"><div id="pgBd">
<ol id="music-grid" class="editable-grid music-grid columns-4 public">${items}
</ol>
</div></div>
</body>
</html>
`;
}

/**
 * `GET /api/mobile/22/tralbum_details` body (as `api_mobile_22_tralbum_details__track__2026-05-25.json`).
 * Tag faults: `no-tags` shows only the location; `dup-location` repeats every tag, a lower-cased copy of the location
 * (`isloc:false`) first.
 */
export function tralbumDetailsJson(site: SiteUrls, a: SimAlbum, tagFault: TagFault | null = null): Record<string, unknown> {
  const n = trackCount(a);
  const tag = (t: { name: string; normName: string }, isloc: boolean): Record<string, unknown> => ({
    name: t.name, norm_name: t.normName, url: `/discover/${t.normName}`, isloc, loc_id: null, geoname: null,
  });
  return {
    id: a.itemId,
    type: 'a',
    title: a.title,
    bandcamp_url: itemUrl(site, a),
    art_id: a.artId,
    band: { band_id: a.bandId, name: a.bandName, image_id: null, bio: null, location: a.location?.text ?? null },
    tralbum_artist: a.bandName,
    package_art: [],
    featured_track_id: a.itemId + 1,
    tracks: Array.from({ length: n }, (_, i) => ({
      track_id: a.itemId + i + 1, title: `Track ${i + 1}`, track_num: i + 1, duration: 120 + i, album_title: a.title,
      band_name: a.bandName, art_id: null, album_id: a.itemId, band_id: a.bandId, is_streamable: true,
    })),
    credits: null,
    about: null,
    album_id: a.itemId,
    album_title: a.title,
    release_date: a.releaseDate,
    is_purchasable: true,
    free_download: false,
    is_preorder: false,
    tags: (() => {
      const once = [...shownTags(a, tagFault).map((t) => tag(t, false)), ...(a.location ? [tag(a.location.tag, true)] : [])];
      if (tagFault !== 'dup-location') return once;
      const lead = a.location ? [tag({ name: a.location.tag.name.toLowerCase(), normName: a.location.tag.normName }, false)] : [];
      return [...lead, ...once, ...once];
    })(),
    label: null,
    label_id: null,
  };
}

/** `discover_web` result date format: `2026-06-10 00:00:00 UTC` (docs/BANDCAMP.md#discover_web). */
function discoverDate(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** One `discover_web` result (2026 field names, BANDCAMP.md#discover_web). */
export function discoverResult(site: SiteUrls, a: SimAlbum): Record<string, unknown> {
  return {
    item_id: a.itemId,
    result_type: a.resultType,
    title: a.title,
    item_url: `${itemUrl(site, a)}?from=discover_page`,
    item_price: 7.0,
    item_currency: 'USD',
    band_id: a.bandId,
    band_name: a.bandName,
    band_url: `${bandUrl(site, a)}?from=discover_page`,
    band_location: a.location?.text ?? null,
    band_genre_id: a.bandGenreId,
    album_artist: null,
    primary_image: a.artId !== null ? { image_id: a.artId, is_art: a.resultType === 'a' } : { image_id: null, is_art: false },
    band_image: null,
    featured_track: a.resultType === 'a' ? { id: a.itemId + 1, title: 'Track 1', duration: 121, band_name: a.bandName, band_id: a.bandId, stream_url: null } : null,
    label_name: null,
    label_url: null,
    release_date: discoverDate(a.releaseDate),
    track_count: a.resultType === 'a' ? trackCount(a) : null,
    is_album_preorder: false,
    is_free_download: false,
    is_purchasable: true,
    item_tags: a.tags.map((t) => ({ name: t.name, norm_name: t.normName })),
  };
}
