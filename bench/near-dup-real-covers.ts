/**
 * The measurement behind `dedupe.maxDistance`'s default (docs/RESULTS.md, "Near-duplicates among the real covers"):
 * hashes the real covers of `$COVERS_SHARED_DIR/covers` (bench/lib.ts) as `download` would see them (350×350 JPEG, Bandcamp's format 2),
 * prints how many pairs lie within each distance, how far re-listed copies move (cropped 0–5% per side, resized to
 * 90%, JPEG quality 70), and writes a contact sheet of every pair within 16 bits (`--sheet FILE`, default
 * `near-duplicates.jpg`) to look at.
 *
 * `node --import tsx bench/near-dup-real-covers.ts [--sheet FILE]`
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp, { type OverlayOptions } from 'sharp';
import { hamming, phashOfImage, type PHash } from '../dataset/phash.ts';
import { nearPairs, packHashes } from '../dataset/near-dup.ts';
import { realDataDir } from './lib.ts';

const { values } = parseArgs({ options: { sheet: { type: 'string', default: 'near-duplicates.jpg' } } });
const root = join(realDataDir(), 'covers');
const files = readFileSync(join(root, 'labels.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t') as [string, string]);
const served = (path: string) => sharp(join(root, path)).resize(350, 350, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer();
const hashes: PHash[] = [];
for (const [path] of files) hashes.push(await phashOfImage(await served(path)));
const pairs = nearPairs(packHashes(hashes), 20);
let cumulative = 0;
console.log('pairs within d bits:', Array.from({ length: 21 }, (_, d) => `${d}:${(cumulative += pairs.filter((p) => p.distance === d).length)}`).join(' '));
for (const crop of [0, 0.01, 0.02, 0.03, 0.05]) {
  const ds: number[] = [];
  for (let k = 0; k < files.length; k += 7) {
    const src = await served(files[k]![0]);
    const dx = Math.floor(350 * crop);
    const copy = await sharp(src).extract({ left: dx, top: dx, width: 350 - 2 * dx, height: 350 - 2 * dx }).resize(315, 315, { fit: 'fill' }).jpeg({ quality: 70 }).toBuffer();
    ds.push(hamming(await phashOfImage(src), await phashOfImage(copy)));
  }
  ds.sort((a, b) => a - b);
  const share = (d: number) => (ds.filter((x) => x <= d).length / ds.length).toFixed(2);
  console.log(`copy cropped ${crop * 100}%/side, 90%, q70: n=${ds.length} median ${ds[ds.length >> 1]} max ${ds[ds.length - 1]}; within 8: ${share(8)}, 10: ${share(10)}, 12: ${share(12)}`);
}
const shown = pairs.filter((p) => p.distance <= 16).sort((a, b) => a.distance - b.distance || a.i - b.i);
const T = 96;
const cols = 4;
const comps: OverlayOptions[] = [];
for (const [k, p] of shown.entries()) {
  const x = (k % cols) * (2 * T + 40);
  const y = Math.floor(k / cols) * (T + 18);
  for (const [j, idx] of [p.i, p.j].entries()) comps.push({ input: await sharp(join(root, files[idx]![0])).resize(T, T, { fit: 'cover' }).toBuffer(), left: x + j * T, top: y });
  const label = `#${k} d=${p.distance} ${files[p.i]![1].slice(0, 6)}/${files[p.j]![1].slice(0, 6)}`;
  comps.push({ input: Buffer.from(`<svg width="${2 * T + 40}" height="18"><text x="2" y="13" font-size="12" font-family="sans-serif">${label}</text></svg>`), left: x, top: y + T });
  console.log(`#${k}\td=${p.distance}\t${files[p.i]![0]}\t${files[p.j]![0]}`);
}
const width = cols * (2 * T + 40);
const height = Math.max(1, Math.ceil(shown.length / cols)) * (T + 18);
await sharp({ create: { width, height, channels: 3, background: 'white' } }).composite(comps).jpeg({ quality: 85 }).toFile(values.sheet!);
console.log(`contact sheet: ${values.sheet}`);
