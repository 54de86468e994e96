/**
 * The split names of the shards (`DATA_DIR/shards/<split>/`, `dataset_dict.json`'s `splits`), apart from the Arrow
 * layout (layout.ts) so that light modules (the stage registry, the split assignment) can name them without loading
 * apache-arrow.
 */

/** Split names, in `dataset_dict.json` order. */
export const SPLIT_NAMES = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

/** A split's directory, relative to the data directory: `shards/<split>`. */
export function splitDir(split: SplitName): string {
  return `shards/${split}`;
}
