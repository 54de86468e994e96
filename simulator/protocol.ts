/**
 * The simulator's own reading of Bandcamp's request formats, written from `docs/BANDCAMP.md` and
 * NOT from the crawler's code (the simulator imports nothing from `bandcamp/` or the stages it is a witness for:
 * a mistake in the crawler's idea of the protocol must show up as a rejected request, not be mirrored).
 *
 * - Paths: docs/BANDCAMP.md#discover_web (`discover_web`), BANDCAMP.md#tralbum_details (mobile `tralbum_details`).
 * - The `discover_web` request body: BANDCAMP.md#discover_web, exactly the keys bandcamp-fetch 3.2.1 sends (`getDiscoverRequestPayload`,
 *   2026-06-25) and RSS-Bridge sends (2026-08-01), plus the Ruby client's `followed_bands`; values as the site's own
 *   option lists give them (fixture F7: `category_id` 0–5, `time_facet_id` null = fresh or 0–7, slices
 *   `top`/`new`/`rand`; `rec` "does not answer"); `size` up to 500 (the largest measured).
 * - Tag norm names: BANDCAMP.md#tag-norm-names (lowercase slugs, punctuation collapsed to `-`: `hip-hop/rap` → `hip-hop-rap`).
 */
import { z } from 'zod';

/** `POST https://bandcamp.com/api/discover/1/discover_web` (docs/BANDCAMP.md#discover_web). */
export const SIM_DISCOVER_WEB_PATH = '/api/discover/1/discover_web';
/** `GET https://bandcamp.com/api/mobile/22/tralbum_details?band_id&tralbum_type&tralbum_id` (docs/BANDCAMP.md#tralbum_details). */
export const SIM_TRALBUM_DETAILS_PATH = '/api/mobile/22/tralbum_details';

/**
 * A `discover_web` request body as real clients send it (docs/BANDCAMP.md#discover_web):
 * `{"category_id":0,"tag_norm_names":["ambient"],"geoname_id":0,"slice":"top","time_facet_id":null,"cursor":"*",
 * "size":60,"include_result_types":["a","s"]}`. Every key is required (no client omits one), unknown keys are
 * rejected (a misspelt key would be ignored by the site and silently change the listing), `followed_bands` is
 * optional.
 */
export const SimDiscoverWebRequestSchema = z.strictObject({
  category_id: z.number().int().min(0).max(5),
  tag_norm_names: z.array(z.string().min(1)),
  geoname_id: z.number().int().min(0),
  slice: z.enum(['top', 'new', 'rand']),
  time_facet_id: z.number().int().min(0).max(7).nullable(),
  cursor: z.string().min(1),
  size: z.number().int().min(1).max(500),
  include_result_types: z.array(z.enum(['a', 's', 't'])).min(1),
  followed_bands: z.boolean().optional(),
});
export type SimDiscoverWebRequest = z.infer<typeof SimDiscoverWebRequestSchema>;

/** Bandcamp's slug rule for a tag's display name (docs/BANDCAMP.md#tag-norm-names): `Hip-Hop/Rap` → `hip-hop-rap`, `São Paulo` → `são-paulo`. */
export function simTagNormName(name: string): string {
  return name.normalize('NFC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-+|-+$/g, '');
}

/**
 * Display names of the genre tags Bandcamp spells with punctuation (docs/BANDCAMP.md#tag-norm-names, fixture F7), and of the 2015
 * study's folder names (`hiphop_rap` is Bandcamp's `hip-hop/rap`).
 */
const DISPLAY: Readonly<Record<string, string>> = {
  'hip-hop-rap': 'hip-hop/rap',
  'r-b-soul': 'r&b/soul',
  hiphop_rap: 'hip-hop/rap',
  'hip-hop/rap': 'hip-hop/rap',
  'r&b/soul': 'r&b/soul',
};

/** The display name Bandcamp shows for a genre given as a norm name or a dataset label (`hiphop_rap` → `hip-hop/rap`). */
export function simGenreDisplayName(genre: string): string {
  const g = genre.trim();
  return DISPLAY[g.toLowerCase()] ?? g.replace(/[-_]+/g, ' ');
}
