/**
 * Stage `shards` end to end with `shards.decoder` `fast` (the native JPEG path, dataset/native/fastjpeg.c) on a small
 * real dataset plus files that must fall back to sharp in the same run (CMYK JPEG, EXIF-rotated JPEG, PNG) and a
 * truncated JPEG: the right path for each, the right pixels either way, and the same rejection as with `sharp`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import sharp from 'sharp';
import { resolveConfig, type Config } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger, memoryLogger } from '../util/log.ts';
import { splitStage, shardsStage } from '../stages/index.ts';
import { fastJpeg, preprocessCounts, preprocessImage, resolveDecoder, type Decoder } from '../dataset/preprocess.ts';
import { rejectedFormat } from '../schemas/manifest.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { addImage, buildTestDataset, writeManifest } from './helpers/dataset.ts';

/** The production size: at tiny sizes both decoders alias (DCT scaling by 8), so their outputs are not comparable. */
const S = 256;
const genres = ['rock', 'jazz'];
let root: string;
/** item_id → source file (or bytes written for it). */
const files = new Map<number, string>();
const CMYK = 777_001, EXIF = 777_002, PNG = 777_003, TRUNC = 777_004;

/** A 40×40 JPEG/PNG, left half `left`, right half `right`. */
function halves(left: [number, number, number], right: [number, number, number]) {
  const raw = Buffer.alloc(40 * 40 * 3);
  for (let y = 0; y < 40; y++) for (let x = 0; x < 40; x++) raw.set(x < 20 ? left : right, (y * 40 + x) * 3);
  return sharp(raw, { raw: { width: 40, height: 40, channels: 3 } });
}

async function build(dir: string): Promise<void> {
  const ds = await buildTestDataset(dir, { genres, perGenre: 4, offset: 2 });
  ds.rows.forEach((r, i) => files.set(r.item_id!, ds.sources[i]!));
  const cmyk = await halves([220, 40, 40], [220, 40, 40]).toColourspace('cmyk').jpeg().toBuffer();
  // Stored upright: left red, right blue; orientation 6 ("rotate 90° clockwise to display") puts red on top.
  const rotated = await halves([250, 0, 0], [0, 0, 250]).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  const png = await halves([0, 200, 0], [0, 200, 0]).png().toBuffer();
  const whole = await halves([10, 20, 30], [200, 100, 0]).jpeg().toBuffer();
  const extra = [
    await addImage(dir, 'rock', CMYK, 977_001, cmyk),
    await addImage(dir, 'jazz', EXIF, 977_002, rotated),
    await addImage(dir, 'rock', PNG, 977_003, png),
    await addImage(dir, 'jazz', TRUNC, 977_004, whole.subarray(0, Math.floor(whole.length * 0.6))),
  ];
  for (const r of extra) files.set(r.item_id!, join(dir, `images/${r.genre}/a${r.art_id}.jpg`));
  writeManifest(dir, [...ds.rows, ...extra]);
}

interface Row { item_id: number; image: Uint8Array }
function readRows(dir: string): Row[] {
  const rows: Row[] = [];
  for (const split of SPLIT_NAMES) {
    const state = JSON.parse(readFileSync(join(dir, 'shards', split, 'state.json'), 'utf8')) as { _data_files: { filename: string }[] };
    for (const { filename } of state._data_files) {
      const t = arrow.tableFromIPC(readFileSync(join(dir, 'shards', split, filename)));
      for (let i = 0; i < t.numRows; i++) {
        rows.push({ item_id: Number(t.getChild('item_id')!.get(i)), image: (t.getChild('image')!.get(i) as arrow.Vector<arrow.Uint8>).toArray() as Uint8Array });
      }
    }
  }
  return rows;
}

const configFor = (decoder: Decoder): Config => resolveConfig({ genres, seed: 3, image: { size: S }, train: { crop: S }, shards: { decoder, concurrency: 3 } });

/** The fast run's log. */
const log = memoryLogger('normal');
const lines = log.lines;

let counts: { fast: number; sharp: number };
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'shards-fast-'));
  for (const d of ['fast', 'sharp']) await build(join(root, d));
  const c0 = { ...preprocessCounts };
  for (const stage of [splitStage, shardsStage]) await runStageOnce(stage, { config: configFor('fast'), dataDir: join(root, 'fast'), log });
  counts = { fast: preprocessCounts.fast - c0.fast, sharp: preprocessCounts.sharp - c0.sharp };
  for (const stage of [splitStage, shardsStage]) await runStageOnce(stage, { config: configFor('sharp'), dataDir: join(root, 'sharp'), log: createLogger({ level: 'quiet' }) });
});
after(() => rmSync(root, { recursive: true, force: true }));

test('decoder fast: plain JPEGs take the native path, CMYK / EXIF-rotated / PNG / truncated files take sharp', { skip: fastJpeg() ? false : 'fastjpeg addon not built' }, () => {
  // Images decoded (in the stage's decode workers): 8 real covers natively; CMYK, EXIF and PNG through sharp (the
  // truncated JPEG is rejected, so it counts on neither path).
  assert.equal(counts.fast, 8);
  assert.equal(counts.sharp, 3);
  assert.ok(lines.some((l) => /decoder: fast \(shards\.decoder is "fast" and the fastjpeg addon loaded/.test(l)), `logged which decoder: ${lines.join(' | ')}`);
});

test('decoder fast: every row equals preprocessImage with the fast decoder; the fallbacks have the right pixels', async () => {
  const rows = readRows(join(root, 'fast'));
  assert.deepEqual(rows.map((r) => r.item_id).sort(), [...files.keys()].filter((id) => id !== TRUNC).sort());
  const opts = { size: S, fit: 'cover' as const, maxPixels: 50_000_000, decoder: 'fast' as const };
  const at = (t: Uint8Array, x: number, y: number) => [...t.subarray((y * S + x) * 3, (y * S + x) * 3 + 3)];
  for (const r of rows) {
    assert.ok(Buffer.from(r.image).equals(await preprocessImage(files.get(r.item_id)!, opts)), `item ${r.item_id}`);
    const c = S / 2, top = S / 8, bottom = S - S / 8;
    if (r.item_id === CMYK) assert.ok(at(r.image, c, c)[0]! > 150 && at(r.image, c, c)[1]! < 100, `CMYK still red: ${at(r.image, c, c)}`);
    if (r.item_id === EXIF) {
      assert.ok(at(r.image, c, top)[0]! > 200 && at(r.image, c, top)[2]! < 50, `rotated: top is red (${at(r.image, c, top)})`);
      assert.ok(at(r.image, c, bottom)[2]! > 200 && at(r.image, c, bottom)[0]! < 50, `rotated: bottom is blue (${at(r.image, c, bottom)})`);
    }
    if (r.item_id === PNG) assert.deepEqual(at(r.image, top, top), [0, 200, 0]);
  }
});

test('decoder fast vs sharp on the same data: fallbacks byte-identical, native rows within a few levels, same rejections', async () => {
  const fast = new Map(readRows(join(root, 'fast')).map((r) => [r.item_id, r.image]));
  const viaSharp = new Map(readRows(join(root, 'sharp')).map((r) => [r.item_id, r.image]));
  assert.deepEqual([...fast.keys()].sort(), [...viaSharp.keys()].sort());
  for (const [id, a] of fast) {
    const b = viaSharp.get(id)!;
    if (id === CMYK || id === EXIF || id === PNG || !fastJpeg()) {
      assert.ok(Buffer.from(a).equals(Buffer.from(b)), `item ${id}: the same sharp path in both runs`);
    } else {
      let sum = 0;
      for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
      // worst of the 1,050 real covers: 3.6 (fine texture; mean 0.5)
      assert.ok(sum / a.length < 4, `item ${id}: mean absolute difference ${(sum / a.length).toFixed(2)}`);
    }
  }
  const rejected = (d: string) => rejectedFormat.read(join(root, d, 'shards', 'rejected.tsv')).map((r) => [r.item_id, r.reason]);
  assert.deepEqual(rejected('fast'), [[TRUNC, 'truncated']]);
  assert.deepEqual(rejected('fast'), rejected('sharp'));
});

test('decoder auto is fast exactly when the addon loads; sharp stays sharp', () => {
  assert.equal(resolveDecoder('auto').decoder, fastJpeg() ? 'fast' : 'sharp');
  assert.equal(resolveDecoder('sharp').decoder, 'sharp');
  assert.equal(resolveConfig({}).shards.decoder, 'auto');
  assert.throws(() => resolveConfig({ shards: { decoder: 'pillow' } }));
});
