/**
 * Parsers against the REAL Bandcamp captures in test/fixtures/bandcamp (docs/BANDCAMP.md: album pages, mobile API),
 * and against pages DERIVED from them by the edits each test names (markup drift: no `data-tralbum`, ld+json only,
 * `bc-page-properties` only, a duplicated location, tag groups, a new `tralbum_page_version`, band pages, redirects).
 * Expected values are the ones visible in the captured pages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectBlocked, parseAlbumPage, parseDiscoverWebResponse, parseTralbumDetails, readAlbumPage, tagNormNameFromHref, BandcampParseError, type AlbumPage } from '../bandcamp/parse.ts';
import { normNameOfTagName } from '../bandcamp/tags.ts';
import { labelRowOf, redirectedTo } from '../stages/label.ts';

const FIX = join(import.meta.dirname, 'fixtures', 'bandcamp');
const read = (f: string): string => readFileSync(join(FIX, f), 'utf8');
const norms = (tags: { normName: string }[]): string[] => tags.map((t) => t.normName);

test('2026 album page (macbenson): art_id, ids, tags and location tag', () => {
  const html = read('album_page__macbenson__coming-of-age__2026-05-25.html');
  assert.equal(detectBlocked(200, html), null);
  const p = parseAlbumPage(html);
  assert.equal(p.itemId, 2833347880);
  assert.equal(p.itemType, 'a');
  assert.equal(p.artId, 3697716070);
  assert.equal(p.hasArt, true);
  assert.equal(p.title, 'Coming of Age');
  assert.equal(p.artist, 'mac benson');
  assert.equal(p.bandId, 1196681540);
  assert.equal(p.bandLocation, 'UK');
  assert.deepEqual(norms(p.tags), ['alternative', 'ep', 'pop', 'singer', 'extended-play', 'love', 'original', 'singer-songwriter']);
  assert.deepEqual(p.locationTag, { name: 'United Kingdom', normName: 'united-kingdom' });
});

test('2025 album page (inhuman1): art_id from data-tralbum, location Costa Rica', () => {
  const html = read('album_page__inhuman1__course-of-human-destruction__2025-05-06.html');
  assert.equal(detectBlocked(200, html), null);
  const p = parseAlbumPage(html);
  assert.equal(p.itemId, 414621750);
  assert.equal(p.itemType, 'a');
  assert.equal(p.artId, 737574027);
  assert.equal(p.hasArt, true);
  assert.equal(p.bandId, 3392048410);
  assert.deepEqual(norms(p.tags), ['black-metal', 'death-metal', 'metal', 'technical-metal', 'thrash-metal', 'technical-death-metal']);
  assert.deepEqual(p.locationTag, { name: 'Costa Rica', normName: 'costa-rica' });
});

test('2026 track page (teaganbear): track type, art_id, location Victoria', () => {
  const p = parseAlbumPage(read('track_page__teaganbear__just-for-the-halibut__2026-05-25.html'));
  assert.equal(p.itemId, 3486455278);
  assert.equal(p.itemType, 't');
  assert.equal(p.artId, 76513327);
  assert.equal(p.hasArt, true);
  assert.equal(p.bandId, 3877364987);
  assert.deepEqual(norms(p.tags), ['dance', 'edm', 'electronic', 'future-bass', 'hip-hop']);
  assert.deepEqual(p.locationTag, { name: 'Victoria', normName: 'victoria' });
});

test('no-cover track page (indigochill): art_id null, hasArt false, percent-decoded location slug', () => {
  const p = parseAlbumPage(read('track_page_NO_COVER__indigochill__eon-indigo-remix__2025-05-06.html'));
  assert.equal(p.itemId, 317640038);
  assert.equal(p.artId, null);
  assert.equal(p.hasArt, false);
  assert.deepEqual(norms(p.tags), ['4-4-time', 'ambient', 'ambient-electronic-experimental', 'electronic-rock', 'remix']);
  assert.deepEqual(p.locationTag, { name: 'Reykjavík', normName: 'reykjavík' });
});

test('art_id fallbacks: ld+json albumRelease, then og:image (derived: data-tralbum removed, then ld+json removed)', () => {
  const html = read('album_page__macbenson__coming-of-age__2026-05-25.html').replace(/\sdata-tralbum="[^"]*"/, '');
  assert.equal(detectBlocked(200, html), null, 'a page without data-tralbum that still has ld+json is not blocked');
  assert.equal(parseAlbumPage(html).artId, 3697716070);
  const noLd = html.replace(/<script type="application\/ld\+json">[\s\S]*?<\/script>/, '');
  assert.equal(parseAlbumPage(noLd).artId, 3697716070); // from og:image a3697716070_5.jpg
  assert.equal(parseAlbumPage(noLd).source, 'bc-page-properties');
});

test('404 page: not-found, and parseAlbumPage refuses it with a clear error', () => {
  const html = read('album_page_404__powergameheavy__2025-05-06.html');
  assert.equal(detectBlocked(404, html), 'not-found');
  assert.equal(detectBlocked(200, html), 'not-found');
  assert.throws(() => parseAlbumPage(html, 'https://powergameheavy.bandcamp.com/album/404'), (e: unknown) => e instanceof BandcampParseError && /powergameheavy.*no item_id/.test(e.message));
});

test('detectBlocked: challenge, forbidden, pass-through of 429', () => {
  const challenge = '<!DOCTYPE html><html><head><title>Client Challenge</title><script src="/_fs-ch-1T1wmsGaOgGaSxcX/script.js"></script></head><body></body></html>';
  assert.equal(detectBlocked(200, challenge), 'challenge');
  assert.equal(detectBlocked(403, '<html><body>Error 54113 Varnish cache server</body></html>'), 'forbidden');
  assert.equal(detectBlocked(403, ''), 'forbidden');
  assert.equal(detectBlocked(429, ''), null);
});

test('tag hrefs: 2026 /discover form and the old /tag form', () => {
  assert.equal(tagNormNameFromHref('https://bandcamp.com/discover/hip-hop-rap?from=tralbum&artist=1'), 'hip-hop-rap');
  assert.equal(tagNormNameFromHref('https://bandcamp.com/tag/dark-ambient'), 'dark-ambient');
  assert.equal(tagNormNameFromHref('https://bandcamp.com/discover/reykjav%C3%ADk?from=tralbum'), 'reykjavík');
  assert.equal(tagNormNameFromHref('https://example.com/album/x'), null);
});

test('mobile tralbum_details: art_id, tags without isloc, location tag', () => {
  const d = parseTralbumDetails(JSON.parse(read('api_mobile_22_tralbum_details__track__2026-05-25.json')));
  assert.equal(d.itemId, 3486455278);
  assert.equal(d.itemType, 't');
  assert.equal(d.artId, 76513327);
  assert.equal(d.bandId, 3877364987);
  assert.deepEqual(norms(d.tags), ['dance', 'edm', 'electronic', 'future-bass', 'hip-hop']);
  assert.deepEqual(d.locationTag, { name: 'Victoria', normName: 'victoria' });
  assert.throws(() => parseTralbumDetails({ type: 'a' }));
});

test('discover_web response: from= stripped, artId from primary_image, no-art results', () => {
  // Shape of BANDCAMP.md#discover_web's example (raw field names; values from F8).
  const r = parseDiscoverWebResponse({
    results: [
      {
        item_id: 3310324, result_type: 'a', title: 'VA-11 HALL-A: 10th Memory Sound',
        item_url: 'https://garoad.bandcamp.com/album/va-11-hall-a-10th-memory-sound?from=discover_page',
        band_id: 1, band_name: 'Garoad', band_url: 'https://garoad.bandcamp.com?from=discover_page', band_genre_id: 24,
        primary_image: { image_id: 1373637698, is_art: true },
      },
      { item_id: 2, result_type: 'a', title: 'x', item_url: 'https://b.bandcamp.com/album/x?from=discover_page', band_id: 2, band_name: 'b', primary_image: { image_id: 55, is_art: false } },
      { item_id: 3, result_type: 'a', title: 'y', item_url: 'https://c.bandcamp.com/album/y', band_id: 3, band_name: 'c' },
    ],
    result_count: 809597,
    batch_result_count: 3,
    cursor: 'AoMIQSY9cXCK2bzwngMrYTE4NDk3Mjg3ODc=',
  });
  assert.equal(r.results[0]!.item_url, 'https://garoad.bandcamp.com/album/va-11-hall-a-10th-memory-sound');
  assert.equal(r.results[0]!.band_url, 'https://garoad.bandcamp.com/');
  assert.deepEqual(r.results.map((x) => x.artId), [1373637698, null, null]);
  assert.equal(r.cursor, 'AoMIQSY9cXCK2bzwngMrYTE4NDk3Mjg3ODc=');
  assert.throws(() => parseDiscoverWebResponse({ results: [{ item_id: 'x' }] }));
});

// ---- Markup drift: every real album/track capture, and pages derived from each ----

/** What each real capture shows (page text, ld+json, a.tag hrefs), as in the tests above. */
const CAPTURES: { file: string; itemId: number; itemType: 'a' | 't'; artId: number | null; title: string; artist: string; url: string; tags: string[]; location: string }[] = [
  { file: 'album_page__macbenson__coming-of-age__2026-05-25.html', itemId: 2833347880, itemType: 'a', artId: 3697716070, title: 'Coming of Age', artist: 'mac benson', url: 'https://macbenson.bandcamp.com/album/coming-of-age', tags: ['alternative', 'ep', 'pop', 'singer', 'extended-play', 'love', 'original', 'singer-songwriter'], location: 'united-kingdom' },
  { file: 'album_page__inhuman1__course-of-human-destruction__2025-05-06.html', itemId: 414621750, itemType: 'a', artId: 737574027, title: 'Course of Human Destruction', artist: 'Inhuman', url: 'https://inhuman1.bandcamp.com/album/course-of-human-destruction', tags: ['black-metal', 'death-metal', 'metal', 'technical-metal', 'thrash-metal', 'technical-death-metal'], location: 'costa-rica' },
  { file: 'track_page__teaganbear__just-for-the-halibut__2026-05-25.html', itemId: 3486455278, itemType: 't', artId: 76513327, title: 'Just for the Halibut', artist: 'Teaganbear', url: 'https://teaganbear.bandcamp.com/track/just-for-the-halibut', tags: ['dance', 'edm', 'electronic', 'future-bass', 'hip-hop'], location: 'victoria' },
  { file: 'track_page_NO_COVER__indigochill__eon-indigo-remix__2025-05-06.html', itemId: 317640038, itemType: 't', artId: null, title: 'Eon (Indigo Remix)', artist: 'Indigo', url: 'https://indigochill.bandcamp.com/track/eon-indigo-remix', tags: ['4-4-time', 'ambient', 'ambient-electronic-experimental', 'electronic-rock', 'remix'], location: 'reykjavík' },
];

/** Derivations: each removes what a drifted or stripped page would lack. */
const dropTralbum = (h: string): string => h.replace(/\sdata-tralbum="[^"]*"/, '');
const dropLd = (h: string): string => h.replace(/<script type="application\/ld\+json">[\s\S]*?<\/script>/g, '');
const dropProps = (h: string): string => h.replace(/<meta name="bc-page-properties"[^>]*>/, '');
const dropTagLinks = (h: string): string => h.replace(/<a class="tag"[^>]*>[^<]*<\/a>/g, '');
const dropOg = (h: string): string => h.replace(/<meta property="og:[^>]*>/g, '').replace(/<link rel="image_src"[^>]*>/g, '');

function assertFields(p: AlbumPage, c: (typeof CAPTURES)[number], how: string): void {
  assert.equal(p.itemId, c.itemId, `${how}: item_id`);
  assert.equal(p.itemType, c.itemType, `${how}: item type`);
  assert.equal(p.artId, c.artId, `${how}: art_id`);
  assert.equal(p.hasArt, c.artId !== null, `${how}: hasArt`);
  assert.equal(p.title, c.title, `${how}: title`);
  assert.equal(p.artist, c.artist, `${how}: artist`);
  assert.deepEqual(norms(p.tags), c.tags, `${how}: tags`);
  assert.equal(p.locationTag?.normName, c.location, `${how}: location tag`);
}

test('every real capture: all fields from data-tralbum, canonical URL, tralbum_page_version 0, not blocked', () => {
  for (const c of CAPTURES) {
    const html = read(c.file);
    assert.equal(detectBlocked(200, html), null, c.file);
    const p = parseAlbumPage(html);
    assertFields(p, c, c.file);
    assert.deepEqual([p.source, p.tagSource, p.url, p.pageVersion], ['data-tralbum', 'a.tag', c.url, 0], c.file);
  }
});

test('derived: without data-tralbum, every capture reads the same fields from ld+json and is not blocked', () => {
  for (const c of CAPTURES) {
    const html = dropTralbum(read(c.file));
    assert.ok(!/\sdata-tralbum=/.test(html));
    assert.equal(detectBlocked(200, html), null, c.file);
    const p = parseAlbumPage(html);
    assertFields(p, c, `${c.file} without data-tralbum`);
    assert.deepEqual([p.source, p.url], ['ld+json', c.url]);
  }
});

test('derived: ld+json only (no data-tralbum, bc-page-properties, og:* or a.tag): tags from keywords, location by foundingLocation', () => {
  for (const c of CAPTURES) {
    const html = dropOg(dropTagLinks(dropProps(dropTralbum(read(c.file)))));
    assert.equal(detectBlocked(200, html), null, c.file);
    const p = parseAlbumPage(html);
    // item_id from ld+json additionalProperty (item_id, or track_id on track pages) or the page's own albumRelease.
    assertFields(p, c, `${c.file} ld+json only`);
    assert.deepEqual([p.source, p.tagSource, p.pageVersion], ['ld+json', 'keywords', null]);
  }
  // The keywords' names map to the same norm names as the a.tag hrefs of the capture (Bandcamp's slug rule).
  assert.deepEqual(['4/4 time', 'Future Bass', 'Hip Hop', 'extended play', 'Reykjavík', 'hip-hop/rap', 'r&b/soul'].map(normNameOfTagName),
    ['4-4-time', 'future-bass', 'hip-hop', 'extended-play', 'reykjavík', 'hip-hop-rap', 'r-b-soul']);
});

test('derived: bc-page-properties + og:image + a.tag only (no data-tralbum, no ld+json)', () => {
  for (const c of CAPTURES) {
    const html = dropLd(dropTralbum(read(c.file)));
    assert.equal(detectBlocked(200, html), null, c.file);
    const p = parseAlbumPage(html);
    assertFields(p, c, `${c.file} bc-page-properties only`);
    assert.equal(p.source, 'bc-page-properties');
  }
});

test('derived: a page with none of the sources is stripped (blocked); a challenge page is a challenge', () => {
  for (const c of CAPTURES) {
    const html = dropProps(dropLd(dropTralbum(read(c.file))));
    assert.equal(detectBlocked(200, html), 'stripped', c.file);
    assert.equal(readAlbumPage(html).kind, 'none');
    assert.throws(() => parseAlbumPage(html, 'https://x.bandcamp.com/album/y'), /no item_id/);
  }
  // A challenge page keeps nothing of the album; even one that kept the album's markup is a challenge first.
  assert.equal(detectBlocked(200, read(CAPTURES[0]!.file).replace('</head>', '<script src="/_fs-ch-1T1wmsGaOgGaSxcX/script.js"></script></head>')), 'challenge');
});

test('derived: the location listed twice (lower-cased first, proper case last) and repeated tags count once, never as a genre', () => {
  const c = CAPTURES[0]!;
  const html = read(c.file);
  // Derived: a lower-cased copy of the location link inserted as the FIRST tag, and every other tag link doubled.
  const first = '<a class="tag" href="https://bandcamp.com/discover/alternative?from=tralbum&artist=1196681540"';
  assert.ok(html.includes(first));
  const dup = html
    .replace(/(<a class="tag" href="https:\/\/bandcamp\.com\/discover\/(?!united-kingdom)[^"]*"\s*>[^<]*<\/a>)/g, '$1$1')
    .replace(first, `<a class="tag" href="https://bandcamp.com/discover/united-kingdom?from=tralbum&artist=1196681540">united kingdom</a>${first}`);
  assert.equal((dup.match(/discover\/united-kingdom/g) ?? []).length, 2);
  assert.equal((dup.match(/discover\/pop\?/g) ?? []).length, 2);
  const p = parseAlbumPage(dup);
  assert.deepEqual(norms(p.tags), c.tags);
  assert.deepEqual(p.locationTag, { name: 'United Kingdom', normName: 'united-kingdom' });
  // The same in ld+json keywords (derived: the lower-cased copy first, every keyword repeated), for an ld+json-only page.
  const ldOnly = dropOg(dropTagLinks(dropProps(dropTralbum(html)))).replace('"keywords":["Alternative"', '"keywords":["united kingdom","Alternative","Alternative"');
  const q = parseAlbumPage(ldOnly);
  assert.equal(q.tagSource, 'keywords');
  assert.deepEqual(norms(q.tags), c.tags);
  assert.equal(q.locationTag?.normName, 'united-kingdom');
});

test('derived: the last tag group is the location, even without a printed band location', () => {
  const c = CAPTURES[1]!; // inhuman1: location Costa Rica
  // Derived: the band location removed from #band-name-location and ld+json, and the last tag moved into a group of its own.
  const html = read(c.file)
    .replace(/<span class="location secondaryText">[^<]*<\/span>/, '<span class="location secondaryText"></span>')
    .replace(/"foundingLocation":\{[^}]*\},?/g, '')
    .replace(/(<a class="tag" href="https:\/\/bandcamp\.com\/discover\/costa-rica[^"]*"\s*>[^<]*<\/a>)/, '</div><div class="tralbum-tags tag-group-location">$1');
  const p = parseAlbumPage(html);
  assert.equal(p.bandLocation, null);
  assert.deepEqual(norms(p.tags), c.tags);
  assert.equal(p.locationTag?.normName, 'costa-rica');
  // One group, no location printed, lower-case genre tags and a proper-case last tag: the case evidence still finds it.
  const oneGroup = read(c.file).replace(/<span class="location secondaryText">[^<]*<\/span>/, '').replace(/"foundingLocation":\{[^}]*\},?/g, '');
  assert.equal(parseAlbumPage(oneGroup).locationTag?.normName, 'costa-rica');
  // A page whose tags are all lower-case genre tags and whose band has no location keeps its last tag.
  const noLoc = oneGroup.replace(/<a class="tag" href="https:\/\/bandcamp\.com\/discover\/costa-rica[^"]*"\s*>[^<]*<\/a>/, '');
  const q = parseAlbumPage(noLoc);
  assert.deepEqual([norms(q.tags), q.locationTag], [c.tags, null]);
});

test('derived: an unknown tralbum_page_version is reported; the page is still read', () => {
  const html = dropTralbum(read(CAPTURES[0]!.file)).replace('&quot;tralbum_page_version&quot;:0', '&quot;tralbum_page_version&quot;:3');
  const p = parseAlbumPage(html);
  assert.deepEqual([p.pageVersion, p.source, p.itemId], [3, 'ld+json', 2833347880]);
});

test('derived band /music page (no data-tralbum, no ld+json album, a discography grid): not-an-album, never blocked', () => {
  // Derived from the macbenson album page the way a 2025–2026 band page differs from it: og:type band, no
  // data-tralbum, no bc-page-properties, no album ld+json, and the release list in ol#music-grid.
  const album = read(CAPTURES[0]!.file);
  const band = dropProps(dropLd(dropTralbum(album)))
    .replace('<meta property="og:type" content="album">', '<meta property="og:type" content="band">')
    .replace(/<div class="trackView[\s\S]*?<div id="rightColumn"/, '<ol id="music-grid" class="music-grid"><li data-item-id="album-2833347880" class="music-grid-item"><a href="/album/coming-of-age"><p class="title">Coming of Age</p></a></li></ol>\n<div id="rightColumn"');
  assert.ok(band.includes('og:type" content="band"') && band.includes('id="music-grid"') && !band.includes('class="tag"'));
  assert.equal(detectBlocked(200, band), null);
  assert.deepEqual(readAlbumPage(band), { kind: 'not-an-album', what: 'og:type "band"' });
  assert.throws(() => parseAlbumPage(band, 'https://macbenson.bandcamp.com/music'), /macbenson.*not an album or track page \(og:type "band"\)/);
  // A label or band page that carries bc-page-properties with another item_type is not an album either.
  const props = band.replace('<meta property="og:type" content="band">', '<meta name="bc-page-properties" content="{&quot;item_type&quot;:&quot;b&quot;,&quot;item_id&quot;:1196681540}">');
  assert.deepEqual(readAlbumPage(props), { kind: 'not-an-album', what: 'bc-page-properties item_type "b"' });
  // The 404 capture stays not-found (its status and text), not "not an album".
  assert.equal(detectBlocked(200, read('album_page_404__powergameheavy__2025-05-06.html')), 'not-found');
});

test('band page in the 2026 markup (data-band and scaffolding; no album source, no og:type, no #music-grid): not-an-album, not stripped', () => {
  // Derived from the real 2026 capture album_page__macbenson__coming-of-age__2026-05-25.html the way Bandcamp's 2026
  // band pages (a band's root, /music, or a custom domain) differ from an album page: the tralbum_head script keeps
  // data-band (and data-cart, data-vars…) but loses data-tralbum; no bc-page-properties, no ld+json, no og:type
  // meta, and the album body (.trackView) is gone without a #music-grid in its place.
  const album = read(CAPTURES[0]!.file);
  const band = dropProps(dropLd(dropTralbum(album)))
    .replace(/<meta property="og:type"[^>]*>/, '')
    .replace(/<div class="trackView[\s\S]*?<div id="rightColumn"/, '<div id="rightColumn"');
  assert.ok(band.includes('data-band=') && band.includes('content="Bandcamp"'), 'the band object and the generator meta stay');
  assert.ok(!/data-tralbum=|og:type|music-grid|application\/ld\+json|bc-page-properties/.test(band), 'no album source, og:type nor grid');
  assert.equal(detectBlocked(200, band), null, 'not a block');
  assert.deepEqual(readAlbumPage(band), { kind: 'not-an-album', what: 'a band page (data-band id 1196681540)' });
  // The same page without the band object carries nothing recognisable: that is a stripped page.
  const bare = band.replace(/\sdata-band="[^"]*"/, '');
  assert.equal(detectBlocked(200, bare), 'stripped');
});

test('redirects: another album answering for the requested item_id is rejected as redirected-to:<item_id>', () => {
  const mac = parseAlbumPage(read(CAPTURES[0]!.file));
  const want = { item_id: 111, art_id: 222, item_url: 'https://someone.bandcamp.com/album/old-slug' };
  // The requested album's URL redirected to the macbenson page (derived: the capture served for another item_id).
  assert.equal(redirectedTo(mac, want, CAPTURES[0]!.url), '2833347880');
  assert.equal(redirectedTo(mac, { item_id: 2833347880, art_id: 3697716070, item_url: CAPTURES[0]!.url }, CAPTURES[0]!.url), null);
  // Same item_id behind a custom domain (item_url on bandcamp.com, page on the artist's domain): not a redirect.
  assert.equal(redirectedTo(mac, { item_id: 2833347880, art_id: 3697716070, item_url: 'https://music.macbenson.example/album/coming-of-age' }, 'https://music.macbenson.example/album/coming-of-age'), null);
  // A page naming no item_id (derived: ld+json only, item ids removed): art_id decides, else the URL path.
  const noIds = dropOg(dropTagLinks(dropProps(dropTralbum(read(CAPTURES[0]!.file))))).replace(/\{"@type":"PropertyValue","name":"item_id","value":\d+\},?/g, '');
  const p = parseAlbumPage(noIds);
  assert.equal(p.itemId, null);
  assert.equal(redirectedTo(p, { item_id: 1, art_id: 3697716070, item_url: 'https://macbenson.bandcamp.com/album/coming-of-age' }, CAPTURES[0]!.url), null);
  assert.equal(redirectedTo(p, { item_id: 1, art_id: 5, item_url: 'https://macbenson.bandcamp.com/album/coming-of-age' }, CAPTURES[0]!.url), CAPTURES[0]!.url);
  assert.equal(redirectedTo({ ...p, artId: null }, { item_id: 1, art_id: null, item_url: 'https://macbenson.bandcamp.com/album/other' }, CAPTURES[0]!.url), CAPTURES[0]!.url);
  assert.equal(redirectedTo({ ...p, artId: null }, { item_id: 1, art_id: null, item_url: 'https://custom.example/album/coming-of-age' }, CAPTURES[0]!.url), null);
  // The label row: rejected with the reason, no tags kept.
  assert.deepEqual(labelRowOf({ item_id: 111, genre: 'pop' }, { item_id: 111, outcome: 'redirected', source: 'data-tralbum', tags: [], redirected_to: '2833347880' }, ['pop', 'rock']),
    { item_id: 111, genre: 'pop', source: 'data-tralbum', tags: [], exclusive: false, reason: 'redirected-to:2833347880' });
});

test('label rows: no-tags apart from no-chosen-genre; the location never counts as a genre', () => {
  const row = (tags: string[], genre = 'pop') => labelRowOf({ item_id: 1, genre }, { item_id: 1, outcome: 'tags', source: 'tralbum_details', tags }, ['pop', 'rock', 'united-kingdom']);
  assert.equal(row([]).reason, 'no-tags');
  assert.equal(row(['jazz']).reason, 'no-chosen-genre');
  assert.deepEqual([row(['pop', 'ep']).reason, row(['pop', 'ep']).exclusive], ['exclusive', true]);
  assert.equal(row(['pop', 'rock']).reason, 'multi-genre:pop,rock');
  // macbenson's tags as parsed: united-kingdom is its location, so even a chosen genre of that name does not match.
  const mac = parseAlbumPage(read(CAPTURES[0]!.file));
  assert.equal(row(norms(mac.tags)).reason, 'exclusive');
  // Only-location album (derived: every tag link but the location removed): no-tags.
  const onlyLoc = read(CAPTURES[0]!.file).replace(/<a class="tag" href="https:\/\/bandcamp\.com\/discover\/(?!united-kingdom)[^"]*"\s*>[^<]*<\/a>/g, '');
  const p = parseAlbumPage(onlyLoc);
  assert.deepEqual([norms(p.tags), p.locationTag?.normName, row(norms(p.tags)).reason], [[], 'united-kingdom', 'no-tags']);
});

test('derived mobile tralbum_details: repeated tags and a non-isloc copy of the location count once / not at all', () => {
  const d = JSON.parse(read('api_mobile_22_tralbum_details__track__2026-05-25.json')) as { tags: { name: string; norm_name: string; isloc: boolean }[]; id: number };
  // Derived: every tag repeated, and a lower-cased copy of the location (isloc:false) put first.
  const tags = [{ ...d.tags.at(-1)!, name: 'victoria', isloc: false }, ...d.tags, ...d.tags];
  const p = parseTralbumDetails({ ...d, tags });
  assert.deepEqual(norms(p.tags), ['dance', 'edm', 'electronic', 'future-bass', 'hip-hop']);
  assert.deepEqual(p.locationTag, { name: 'Victoria', normName: 'victoria' });
  assert.equal(p.itemId, 3486455278);
});

test('every HTML capture in the fixtures folder: only the 404 page is unusable; the DERIVED extracts agree with the parse', () => {
  const pages = readdirSync(FIX).filter((f) => f.endsWith('.html') && !f.startsWith('DERIVED_'));
  assert.ok(pages.length >= 5, `captures found: ${pages.join(', ')}`);
  for (const f of pages) {
    const html = read(f);
    if (f.startsWith('album_page_404__')) {
      assert.equal(detectBlocked(404, html), 'not-found', f);
      continue;
    }
    assert.equal(detectBlocked(200, html), null, `${f} is a normal page`);
    const p = parseAlbumPage(html);
    const derived = `DERIVED_${f.replace(/\.html$/, '')}`;
    const tralbumFile = `${derived}.data-tralbum.json`;
    if (readdirSync(FIX).includes(tralbumFile)) {
      const t = JSON.parse(read(tralbumFile)) as { id: number; art_id: number | null; item_type: string; current: { title: string } };
      assert.deepEqual([p.itemId, p.artId, p.itemType, p.title], [t.id, t.art_id, t.item_type === 'track' ? 't' : 'a', t.current.title], f);
    }
    const ldFile = `${derived}.ld+json.json`;
    if (readdirSync(FIX).includes(ldFile)) {
      const ld = JSON.parse(read(ldFile)) as { keywords: string[]; '@id': string };
      // ld+json keywords are the same tags by name (some title-cased); their norm names equal the a.tag slugs.
      assert.deepEqual([...norms(p.tags), p.locationTag!.normName], ld.keywords.map(normNameOfTagName), f);
      assert.equal(p.url, ld['@id'], f);
    }
  }
});
