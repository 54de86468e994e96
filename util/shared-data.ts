/**
 * Where the project's shared, read-only data lives (real album covers, Bandcamp captures, the study's links file):
 * `$COVERS_SHARED_DIR`, else `../shared` beside the repository (as on CI and in a developer's checkout), else
 * `/work/shared`.
 * @throws Error listing the places tried when none exists.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

function findShared(): string {
  const tried = [process.env.COVERS_SHARED_DIR, resolve(import.meta.dirname, '..', '..', 'shared'), '/work/shared'].filter(
    (p): p is string => Boolean(p),
  );
  const found = tried.find((p) => existsSync(join(p, 'covers', 'labels.tsv')));
  if (!found) throw new Error(`shared data not found (tried ${tried.join(', ')}); set COVERS_SHARED_DIR`);
  return found;
}

/** Absolute path of the shared data folder. */
export const SHARED_DIR = findShared();
