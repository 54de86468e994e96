/**
 * Bandcamp's JSON APIs and URL formats as of 2026, declared once (zod) for the crawler (`stages/`). The simulator
 * keeps its own reading of them (`simulator/protocol.ts`), so that one does not mirror a mistake here.
 * Sources: `docs/BANDCAMP.md`: #discover_web, #tralbum_details (mobile API), #image-urls.
 */
import { z } from 'zod';

/** Path of the listing API: `POST {origin}/api/discover/1/discover_web` (docs/BANDCAMP.md#discover_web). */
export const DISCOVER_WEB_PATH = '/api/discover/1/discover_web';
/** Path of the album details API: `GET {origin}/api/mobile/22/tralbum_details?band_id&tralbum_type&tralbum_id` (BANDCAMP.md#tralbum_details). */
export const TRALBUM_DETAILS_PATH = '/api/mobile/22/tralbum_details';

/** `discover_web` request body, as bandcamp-fetch 3.2.1 sends it (BANDCAMP.md#discover_web). `tag_norm_names` are ANDed. */
export const DiscoverWebRequestSchema = z.object({
  category_id: z.number().int().default(0),
  tag_norm_names: z.array(z.string()).default([]),
  geoname_id: z.number().int().default(0),
  slice: z.enum(['top', 'new', 'rand']).default('top'),
  time_facet_id: z.number().int().nullable().default(null),
  /** `"*"` for the first page, then the previous response's opaque `cursor`. */
  cursor: z.string().default('*'),
  size: z.number().int().min(1).max(500).default(60),
  include_result_types: z.array(z.string()).default(['a', 's']),
});
export type DiscoverWebRequest = z.output<typeof DiscoverWebRequestSchema>;

/** `primary_image` of a result: `is_art:false` (or no `primary_image`) means no album art. */
export const PrimaryImageSchema = z.object({ image_id: z.number().int().nullable(), is_art: z.boolean().optional() });

/** One `discover_web` result (2026 field names; unknown fields are kept). */
export const DiscoverResultSchema = z.looseObject({
  item_id: z.number().int(),
  result_type: z.string(),
  title: z.string(),
  item_url: z.string(),
  band_id: z.number().int(),
  band_name: z.string(),
  band_url: z.string().optional(),
  band_genre_id: z.number().int().nullable().optional(),
  primary_image: PrimaryImageSchema.nullable().optional(),
});
export type DiscoverResult = z.infer<typeof DiscoverResultSchema>;

/** `discover_web` response; the last page has an empty/null `cursor` or no results. */
export const DiscoverWebResponseSchema = z.looseObject({
  results: z.array(DiscoverResultSchema),
  result_count: z.number().int().optional(),
  batch_result_count: z.number().int().optional(),
  cursor: z.string().nullable().optional(),
});
export type DiscoverWebResponse = z.infer<typeof DiscoverWebResponseSchema>;

/** A tag of the mobile API: `isloc` marks the band's location tag. */
export const MobileTagSchema = z.looseObject({ name: z.string(), norm_name: z.string(), isloc: z.boolean().optional(), url: z.string().optional() });

/** `GET /api/mobile/22/tralbum_details` response (the fields we use; fixture `api_mobile_22_tralbum_details__track__2026-05-25.json`). */
export const TralbumDetailsSchema = z.looseObject({
  id: z.number().int(),
  type: z.string(),
  title: z.string().optional(),
  art_id: z.number().int().nullable().optional(),
  bandcamp_url: z.string().optional(),
  band: z.looseObject({ band_id: z.number().int(), name: z.string().optional(), location: z.string().nullable().optional() }).optional(),
  tags: z.array(MobileTagSchema).default([]),
});
export type TralbumDetails = z.infer<typeof TralbumDetailsSchema>;

/**
 * URL of album art: `{imageOrigin}/img/a<art_id>_<format>.jpg` (BANDCAMP.md#image-urls). `art_id` is used unpadded (pages print it
 * padded to 10 digits; both forms are served, BANDCAMP.md#image-urls).
 */
export function imageUrl(imageOrigin: string, artId: number, format: number): string {
  return `${imageOrigin.replace(/\/$/, '')}/img/a${artId}_${format}.jpg`;
}

/** Parses an album-art URL (`…/img/a0114903541_10.jpg`) into its `art_id` (integer) and format id, or null. */
export function parseImageUrl(url: string): { artId: number; format: number } | null {
  const m = /\/img\/a(\d+)_(\d+)\.(?:jpg|jpeg|png|webp)(?:$|\?)/.exec(url);
  return m ? { artId: Number(m[1]), format: Number(m[2]) } : null;
}

/** Removes Bandcamp's tracking `from` query parameter (`?from=discover_page`) from a URL (BANDCAMP.md#discover_web). */
export function stripFromParam(url: string): string {
  try {
    const u = new URL(url);
    u.searchParams.delete('from');
    const s = u.toString();
    return u.search === '' ? s.replace(/\?$/, '') : s;
  } catch {
    return url.replace(/[?&]from=[^&#]*/, '').replace(/\?$/, '');
  }
}
