/**
 * Test helper: a small downloaded dataset (what `download` leaves behind) built from real covers:
 * `DATA_DIR/manifest.tsv` (schemas/manifest.ts) and `DATA_DIR/images/<genre>/a<art_id>.jpg`. Ids are synthetic and
 * deterministic. Extra images (e.g. deliberately bad files) can be added with {@link addImage}.
 *
 * The covers come from `$COVERS_DIR`, else the shared 1,050-cover set (`test/helpers/shared-data.ts`), else the 30 covers
 * committed in `test/fixtures/covers/` (the first 6 of rock, pop, hiphop_rap, jazz and metal of the shared set, in the same
 * `labels.tsv` order, so a test reading only those gets the same files either way). Every test here asks for no more
 * than these hold (`test/helpers/report-fixture.ts` makes up larger counts by turning them).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { imageRelPath, manifestFormat, type ManifestRow } from '../../schemas/manifest.ts';
import { SHARED_DIR } from './shared-data.ts';

/** The real covers committed with the tests (a `labels.tsv` and the files it names). */
const FIXTURE_COVERS_DIR = join(import.meta.dirname, '..', 'fixtures', 'covers');

/** Where the real covers the tests read are (see the module's comment). */
export const COVERS_DIR = process.env.COVERS_DIR ?? (SHARED_DIR ? join(SHARED_DIR, 'covers') : FIXTURE_COVERS_DIR);

/** Cover folders' genre names → Bandcamp-style tag norm names (config `genres` accepts only the latter). */
const GENRE_NAMES: Record<string, string> = {
  hiphop_rap: 'hip-hop-rap', rock: 'rock', pop: 'pop', electronic: 'electronic', country: 'country', jazz: 'jazz', metal: 'metal',
};

/** The real covers, `{ path (absolute), genre (norm name) }`, in `labels.tsv` order. */
export function listCovers(): { path: string; genre: string }[] {
  const lines = readFileSync(join(COVERS_DIR, 'labels.tsv'), 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => {
    const [rel, g] = l.split('\t') as [string, string];
    return { path: join(COVERS_DIR, rel), genre: GENRE_NAMES[g] ?? g };
  });
}

/** Options of {@link buildTestDataset}. */
export interface TestDatasetOptions {
  /** Genres (norm names, from {@link listCovers}); default `['rock', 'jazz', 'metal']` (300×300 and 640×640 covers). */
  genres?: string[];
  /** Images per genre (default 5). */
  perGenre?: number;
  /** Skip this many covers of each genre first (default 0), to vary the images. */
  offset?: number;
}

/** What {@link buildTestDataset} made. */
export interface TestDataset {
  dataDir: string;
  genres: string[];
  rows: ManifestRow[];
  /** Source file of each row (same order as `rows`). */
  sources: string[];
}

/** Adds one image file and returns its manifest row (not yet written: call {@link writeManifest}). */
export async function addImage(dataDir: string, genre: string, itemId: number, artId: number, bytes: Buffer): Promise<ManifestRow> {
  const rel = imageRelPath(genre, artId);
  const dest = join(dataDir, rel);
  mkdirSync(dirname(dest), { recursive: true });
  writeFileSync(dest, bytes);
  let width: number | null = null;
  let height: number | null = null;
  try {
    const m = await sharp(bytes).metadata();
    width = m.width ?? null;
    height = m.height ?? null;
  } catch {
    // an undecodable test file: unknown dimensions
  }
  return {
    item_id: itemId, genre, art_id: artId, url: `https://f4.bcbits.com/img/a${artId}_2.jpg`,
    sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, width, height, phash: null, band_id: null,
  };
}

/** Writes `DATA_DIR/manifest.tsv`. */
export function writeManifest(dataDir: string, rows: readonly ManifestRow[]): void {
  manifestFormat.write(join(dataDir, 'manifest.tsv'), rows);
}

/**
 * Builds `dataDir/manifest.tsv` and `dataDir/images/` from the first `perGenre` real covers of each genre.
 * Item ids are `100000 + 1000·g + i` and art ids `900000 + 1000·g + i` for genre g, cover i.
 */
export async function buildTestDataset(dataDir: string, opts: TestDatasetOptions = {}): Promise<TestDataset> {
  const genres = opts.genres ?? ['rock', 'jazz', 'metal'];
  const perGenre = opts.perGenre ?? 5;
  const offset = opts.offset ?? 0;
  const covers = listCovers();
  const rows: ManifestRow[] = [];
  const sources: string[] = [];
  for (const [g, genre] of genres.entries()) {
    const mine = covers.filter((c) => c.genre === genre).slice(offset, offset + perGenre);
    if (mine.length < perGenre) throw new Error(`test dataset: only ${mine.length} covers of genre "${genre}" in ${COVERS_DIR}`);
    for (const [i, c] of mine.entries()) {
      const row = await addImage(dataDir, genre, 100000 + 1000 * g + i, 900000 + 1000 * g + i, readFileSync(c.path));
      rows.push(row);
      sources.push(c.path);
    }
  }
  writeManifest(dataDir, rows);
  return { dataDir, genres, rows, sources };
}

/** Copies a real cover to a path (for tests that need one file). */
export function copyCover(index: number, dest: string): string {
  const c = listCovers()[index]!;
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(c.path, dest);
  return c.path;
}
