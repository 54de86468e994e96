/**
 * Genre labels → Bandcamp tag norm names. Norm names are lowercase slugs with punctuation collapsed to `-`
 * (`hip-hop/rap` → `hip-hop-rap`, `r&b/soul` → `r-b-soul`; docs/BANDCAMP.md#tag-norm-names). Labels from other datasets that
 * spell a Bandcamp genre differently map through {@link GENRE_ALIASES}.
 */

/** Labels used by other datasets for Bandcamp genres: the 2015 study's folder `hiphop_rap` is Bandcamp's `hip-hop-rap`. */
export const GENRE_ALIASES: Readonly<Record<string, string>> = { hiphop_rap: 'hip-hop-rap', 'hip-hop/rap': 'hip-hop-rap', 'r&b/soul': 'r-b-soul' };

/**
 * The Bandcamp tag norm name for a genre label: an alias when one is known, else lowercase with runs of characters
 * other than letters and digits collapsed to `-` (`Post_Rock` → `post-rock`).
 */
export function toNormName(label: string): string {
  const alias = GENRE_ALIASES[label.trim().toLowerCase()];
  if (alias) return alias;
  return label.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-|-$/g, '');
}

/** A Bandcamp tag: display `name` (as shown on the page) and `normName` (the slug used in `tag_norm_names`). */
export interface TagRef {
  name: string;
  normName: string;
}

/**
 * The norm name Bandcamp gives a tag's display name, for sources that carry names only (ld+json `keywords`):
 * lowercase, runs of characters other than letters and digits collapsed to `-` (`4/4 time` → `4-4-time`,
 * `Hip Hop` → `hip-hop`, `Reykjavík` → `reykjavík`; docs/BANDCAMP.md#tag-norm-names). Checked against the `a.tag` hrefs of every
 * real capture. Prefer a slug from an href or the API when there is one.
 */
export function normNameOfTagName(name: string): string {
  return name.normalize('NFC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-+|-+$/g, '');
}

/** Tags with each norm name once (the first occurrence and its display name win), in order. */
export function dedupeTags(tags: readonly TagRef[]): TagRef[] {
  const seen = new Set<string>();
  const out: TagRef[] = [];
  for (const t of tags) {
    if (!t.normName || seen.has(t.normName)) continue;
    seen.add(t.normName);
    out.push(t);
  }
  return out;
}

/**
 * An album's tags as Bandcamp shows them, split into its genre/descriptor tags and its location tag:
 * every copy of the location's norm name is removed (real pages list the location twice, lower-cased among the
 * first tags and in proper case at the end; the mobile API repeats tags), and the rest is deduplicated by norm name.
 * @param all every tag in page/API order, duplicates included.
 * @param location the location tag (found by Bandcamp's marker: `isloc`, or the page's last tag group), or null.
 */
export function splitLocationTag(all: readonly TagRef[], location: TagRef | null): { tags: TagRef[]; locationTag: TagRef | null } {
  const tags = dedupeTags(location ? all.filter((t) => t.normName !== location.normName) : all);
  return { tags, locationTag: location };
}
