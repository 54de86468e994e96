/**
 * Genre labels → Bandcamp tag norm names. Norm names are lowercase slugs with punctuation collapsed to `-`
 * (`hip-hop/rap` → `hip-hop-rap`, `r&b/soul` → `r-b-soul`; REFERENCE.md §2.6). Labels from other datasets that
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
