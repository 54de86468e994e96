/**
 * Where the project's optional shared, read-only data lives (the 1,050 real album covers, Bandcamp captures, the
 * 2015 study's links file): `$COVERS_SHARED_DIR`, else `shared/` beside the repository's folder (`../shared`, as on
 * CI). A clone has neither, and everything in the repository works without it: the tests read the covers and
 * captures committed under `test/fixtures/` instead (`test/helpers/dataset.ts`), and the tests that need the
 * larger set skip with {@link SHARED_MISSING}. Only the tests use it: the benchmarks take `$COVERS_SHARED_DIR` alone
 * (bench/lib.ts `realDataDir`), and no product code knows of this folder.
 *
 * Loading this module never throws.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The places tried, in order (`$COVERS_SHARED_DIR` first when set). */
const TRIED = [process.env.COVERS_SHARED_DIR, resolve(import.meta.dirname, '..', '..', 'shared')].filter((p): p is string => Boolean(p));

/**
 * Absolute path of the shared data folder (one holding `covers/labels.tsv`), or `undefined` when none of the places
 * tried has it.
 */
export const SHARED_DIR: string | undefined = TRIED.find((p) => existsSync(join(p, 'covers', 'labels.tsv')));

/**
 * A one-line reason naming the places tried (for the benchmarks' error, or a test's skip); `undefined` when
 * {@link SHARED_DIR} was found.
 */
export const SHARED_MISSING: string | undefined = SHARED_DIR
  ? undefined
  : `needs the real-cover set (covers/labels.tsv under ${TRIED.join(' or ')}); set COVERS_SHARED_DIR`;
