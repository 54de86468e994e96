// Writes the fuzzer's seed corpus (dataset/native/fuzz/run.sh): `node --import tsx test/helpers/fuzz-seeds.ts OUT_DIR
// [COVERS_DIR] [N]`: the odd and crafted files the tests build (test/helpers/odd-jpegs.ts), and the first bytes
// (4 KiB and 16 KiB: headers, tables and the first scans) of N real covers (default 40, spread over the genres).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { oddImages } from './odd-jpegs.ts';

const [out, coversDir, nArg] = process.argv.slice(2);
if (!out) throw new Error('usage: fuzz-seeds.ts OUT_DIR [COVERS_DIR] [N]');
if (coversDir) process.env.COVERS_DIR = coversDir; // else test/helpers/dataset.ts finds the shared covers
const { listCovers } = await import('./dataset.ts'); // reads COVERS_DIR when loaded
mkdirSync(out, { recursive: true });
let count = 0;
for (const [name, bytes] of Object.entries(await oddImages())) {
  writeFileSync(join(out, `odd-${name}`), bytes);
  count++;
}
const covers = listCovers();
const n = Number(nArg ?? 40);
const step = Math.max(1, Math.floor(covers.length / n));
for (let i = 0; i < covers.length && i / step < n; i += step) {
  const bytes = readFileSync(covers[i]!.path);
  for (const k of [4096, 16384]) {
    writeFileSync(join(out, `cover-${i}-first-${k}`), bytes.subarray(0, k));
    count++;
  }
}
process.stdout.write(`fuzz-seeds: ${count} files in ${out}\n`);
