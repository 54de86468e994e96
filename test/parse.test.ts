/**
 * Parsers against the REAL Bandcamp captures in ../shared/bandcamp/fixtures (REFERENCE.md §3, §4, F1–F5, F12, F13).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectBlocked, parseAlbumPage, parseDiscoverWebResponse, parseTralbumDetails, tagNormNameFromHref, BandcampParseError } from '../bandcamp/parse.ts';
import { SHARED_DIR } from '../util/shared-data.ts';

const FIX = join(SHARED_DIR, 'bandcamp', 'fixtures');
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

test('art_id fallbacks: ld+json albumRelease, then og:image (data-tralbum removed)', () => {
  const html = read('album_page__macbenson__coming-of-age__2026-05-25.html').replace(/\sdata-tralbum="[^"]*"/, '');
  assert.equal(detectBlocked(200, html), 'stripped');
  assert.equal(parseAlbumPage(html).artId, 3697716070);
  const noLd = html.replace(/<script type="application\/ld\+json">[\s\S]*?<\/script>/, '');
  assert.equal(parseAlbumPage(noLd).artId, 3697716070); // from og:image a3697716070_5.jpg
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
  // Shape of §2.4's example (raw field names; values from F8).
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
