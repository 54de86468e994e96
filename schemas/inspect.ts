/**
 * `DATA_DIR/eval/inspect/`, written by `inspect`, read by the report: what the evaluated network learned.
 *
 * - `inspect.json`: {@link Inspection} (zod-validated), naming every image file below, relative to the directory;
 * - `filters-trained.png`, `filters-initial.png`: the first conv layer's filters as a grid (each filter scaled to its
 *   own range), after training and at the untrained initialisation of the same seed;
 * - `covers/<row>.jpg`: thumbnails of the test covers the examples refer to (`row` = index in the test split);
 * - `saliency/<row>-heat.png`: the saliency map at its own resolution (8-bit grayscale, 255 = the map's maximum);
 *   `saliency/<row>-overlay.png`: the map blended over the cover;
 * - `embedding-covers.jpg`: a sprite sheet of the embedded covers (tile `i` at column `i % columns`, row
 *   `⌊i / columns⌋`, `spriteSide` pixels square), for the scatter's hover thumbnails.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { writeFileAtomic } from '../util/fsutil.ts';

export { INSPECT_DIR } from './paths.ts';

/** The index file inside the inspect directory. */
export const INSPECT_JSON = 'inspect.json';

/** A relative path inside the inspect directory (no `..`, not absolute). */
const FileRef = z.string().min(1).refine((p) => !isAbsolute(p) && !normalize(p).startsWith('..'), 'a path inside eval/inspect/');

/** A test cover the page shows, with the model's prediction. Probabilities in [0, 1]; labels index `labels`. */
export const CoverRefSchema = z.object({
  /** Index in the test split (shard order). */
  row: z.number().int().min(0),
  itemId: z.number().int().nullable(),
  artId: z.number().int().nullable(),
  label: z.number().int().min(0),
  predicted: z.number().int().min(0),
  /** Probability of the predicted genre. */
  confidence: z.number().min(0).max(1),
  /** Probability of the true genre. */
  trueProbability: z.number().min(0).max(1),
  /** Thumbnail (JPEG). */
  file: FileRef,
});
export type CoverRef = z.infer<typeof CoverRefSchema>;

/** One group (a `source` value or an image size class) of the accuracy breakdown. */
export const GroupRowSchema = z.object({ value: z.string(), n: z.number().int().min(0), correct: z.number().int().min(0) });

/** `inspect.json`. */
export const InspectionSchema = z.object({
  /** Genre names in label order. */
  labels: z.array(z.string()),
  /** The model inspected: run, training seed (the first with `train.repeats` > 1), architecture, input sizes. */
  model: z.object({ run: z.string(), seed: z.number().int(), architecture: z.string(), crop: z.number().int(), imageSize: z.number().int(), testImages: z.number().int() }),
  /** Every cover the examples and saliency maps refer to. */
  covers: z.array(CoverRefSchema),
  /** First conv layer's filters; null when the model has no conv layer. */
  filters: z
    .object({
      layer: z.string(),
      count: z.number().int().min(1),
      /** Kernel height and width, pixels. */
      kernel: z.tuple([z.number().int(), z.number().int()]),
      /** Input channels shown: 3 as RGB, else the mean over channels as gray. */
      channels: z.number().int(),
      /** Mean over filters of ‖trained − initial‖ / ‖initial‖ (0 = unchanged by training). */
      change: z.number().min(0),
      trained: FileRef,
      initial: FileRef,
    })
    .nullable(),
  /** Per genre (label order): the most confident right and wrong test covers, rows in descending confidence. */
  examples: z.array(z.object({ label: z.number().int(), right: z.array(z.number().int()), wrong: z.array(z.number().int()) })),
  /** Off-diagonal confusion cells with covers: the most confident covers of `label` predicted as `predicted`. */
  confusions: z.array(z.object({ label: z.number().int(), predicted: z.number().int(), count: z.number().int(), rows: z.array(z.number().int()) })),
  saliency: z.object({
    /** `hires-cam` or `grad-cam` (on the last conv layer: train/saliency.ts), or `gradient` (|∂ logit / ∂ input|, max over channels: no conv layer). */
    method: z.enum(['hires-cam', 'grad-cam', 'gradient']),
    layer: z.string().nullable(),
    /** Resolution of the maps, [height, width]. */
    grid: z.tuple([z.number().int(), z.number().int()]),
    /** Each map explains the logit of the cover's predicted genre (`target`). */
    items: z.array(z.object({ row: z.number().int(), target: z.number().int(), heat: FileRef, overlay: FileRef })),
  }),
  /** Sprite sheet of the embedded covers; null when nothing was embedded. */
  sprite: z.object({ file: FileRef, side: z.number().int().min(1), columns: z.number().int().min(1) }).nullable(),
  /** 2-D embeddings of the same test covers (tile i of the sprite = point i). */
  embeddings: z.array(
    z.object({
      name: z.string(),
      title: z.string(),
      /** `umap` (umap-js, seeded). */
      method: z.string(),
      /** Dimensions of the embedded vectors. */
      inputDims: z.number().int(),
      points: z.array(z.object({ row: z.number().int(), label: z.number().int(), predicted: z.number().int(), x: z.number(), y: z.number() })),
    }),
  ),
  /** Accuracy per group: `source` of the album data (labels.arrow) and image size class (manifest.tsv). */
  groups: z.array(z.object({ by: z.enum(['source', 'size']), title: z.string(), rows: z.array(GroupRowSchema), note: z.string().nullable() })),
  /** Wall time of each part, seconds. */
  seconds: z.record(z.string(), z.number()),
});
export type Inspection = z.infer<typeof InspectionSchema>;

/** An RGB or grayscale 8-bit raster: `[height, width, channels]` uint8, HWC. */
export interface Raster {
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

/**
 * Writes one image of the inspect directory, atomically, encoded with sharp: PNG (lossless) for `.png` names, JPEG
 * (quality 85) for `.jpg`.
 * @param dir the inspect directory (absolute). @param rel a path inside it.
 */
export async function writeInspectImage(dir: string, rel: string, r: Raster): Promise<void> {
  let img = sharp(r.pixels, { raw: { width: r.width, height: r.height, channels: r.channels } });
  if (r.channels === 1) img = img.toColourspace('b-w');
  const bytes = rel.endsWith('.png') ? await img.png({ compressionLevel: 9 }).toBuffer() : await img.jpeg({ quality: 85 }).toBuffer();
  const path = join(dir, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, bytes);
}

/** Writes `inspect.json` (validated first). @throws ZodError when `data` is not an {@link Inspection}. */
export function writeInspection(dir: string, data: Inspection): void {
  writeFileAtomic(join(dir, INSPECT_JSON), `${JSON.stringify(InspectionSchema.parse(data))}\n`);
}

/**
 * Reads `inspect.json` of an inspect directory.
 * @throws Error naming the file when it is missing, not JSON or not an {@link Inspection}.
 */
export function readInspection(dir: string): Inspection {
  const path = join(dir, INSPECT_JSON);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const parsed = InspectionSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${path}: ${parsed.error.issues.slice(0, 3).map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
  return parsed.data;
}

/**
 * Reads an image file named by `inspect.json` as a `data:` URI (`image/png` or `image/jpeg` by its extension).
 * @throws Error naming the file when it cannot be read.
 */
export function inspectImageDataUri(dir: string, rel: string): string {
  const path = join(dir, rel);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  return `data:image/${rel.endsWith('.png') ? 'png' : 'jpeg'};base64,${bytes.toString('base64')}`;
}
