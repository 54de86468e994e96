/**
 * Untrusted bytes in the `shards` stage: crafted JPEGs (EXIF IFD0 offset near 2^32, EXIF entry count past its
 * segment, zero-length APP1, SOF 65535×65535, a marker length past the end of the file) are each rejected with a
 * reason while every other image reaches the shards; and a decoder that crashes (SIGSEGV) or hangs on a file, through
 * a stand-in decode worker injected on purpose (test/helpers/faulty-decode-worker.ts), costs that file only
 * (`decoder-crash`, `decoder-timeout`), whatever else was in flight in the same worker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { memoryLogger } from '../util/log.ts';
import { splitStage } from '../stages/index.ts';
import { createShardsStage } from '../stages/shards.ts';
import { shardsDeclaration } from '../stages/declarations.ts';
import { shardsStage } from '../stages/index.ts';
import { fastJpeg, preprocessImage, PreprocessError } from '../dataset/preprocess.ts';
import { rejectedFormat } from '../schemas/manifest.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { addImage, buildTestDataset, writeManifest } from './helpers/dataset.ts';
import { craftedJpegs } from './helpers/odd-jpegs.ts';
import type { ManifestRow } from '../schemas/manifest.ts';

const genres = ['rock', 'jazz'];
const FAULTY_WORKER = join(import.meta.dirname, 'helpers', 'faulty-decode-worker.ts');
let root: string;

/** The crafted files with the reasons accepted for each. */
async function craftedFiles(): Promise<Record<string, { bytes: Buffer; reasons: string[] }>> {
  return Object.fromEntries(Object.entries(await craftedJpegs()).map(([k, v]) => [k, { bytes: v.bytes, reasons: [v.reason] }]));
}

interface Built { dir: string; extra: Map<number, string>; all: number[] }

/** A small real dataset plus `files` (item_id 880_000 + i), split. */
async function build(dir: string, files: Record<string, Buffer>): Promise<Built> {
  const ds = await buildTestDataset(dir, { genres, perGenre: 3, offset: 3 });
  const extra = new Map<number, string>();
  const rows: ManifestRow[] = [...ds.rows];
  let i = 0;
  for (const [name, bytes] of Object.entries(files)) {
    const id = 880_000 + i;
    rows.push(await addImage(dir, genres[i % 2]!, id, 980_000 + i, bytes));
    extra.set(id, name);
    i++;
  }
  writeManifest(dir, rows);
  return { dir, extra, all: rows.map((r) => r.item_id!) };
}

function shardItemIds(dir: string): number[] {
  const ids: number[] = [];
  for (const split of SPLIT_NAMES) {
    const state = JSON.parse(readFileSync(join(dir, 'shards', split, 'state.json'), 'utf8')) as { _data_files: { filename: string }[] };
    for (const { filename } of state._data_files) {
      const t = arrow.tableFromIPC(readFileSync(join(dir, 'shards', split, filename)));
      for (let r = 0; r < t.numRows; r++) ids.push(Number(t.getChild('item_id')!.get(r)));
    }
  }
  return ids.sort((a, b) => a - b);
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'shards-untrusted-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

test('crafted JPEGs (EXIF offsets and counts, zero-length APP1, 65535×65535 SOF, marker length past the end): each rejected with a reason, the stage completes with every other image', { skip: fastJpeg() ? false : 'fastjpeg addon not built' }, async () => {
  const crafted = await craftedFiles();
  const b = await build(join(root, 'crafted'), Object.fromEntries(Object.entries(crafted).map(([k, v]) => [k, v.bytes])));
  const config = resolveConfig({ genres, seed: 3, image: { size: 32 }, train: { crop: 32 }, shards: { decoder: 'fast', concurrency: 4 } });
  const log = memoryLogger('normal');
  for (const stage of [splitStage, shardsStage]) await runStageOnce(stage, { config, dataDir: b.dir, log });
  const rejected = rejectedFormat.read(join(b.dir, 'shards', 'rejected.tsv'));
  const byName = new Map(rejected.map((r) => [b.extra.get(r.item_id!), r]));
  for (const [name, { reasons }] of Object.entries(crafted)) {
    const r = byName.get(name);
    assert.ok(r, `${name}: rejected (${JSON.stringify(rejected)})`);
    assert.ok(reasons.includes(r.reason!), `${name}: reason ${r.reason} (${r.detail}), expected one of ${reasons.join(', ')}`);
    assert.ok(r.detail && r.detail.length > 0, `${name}: a detail`);
  }
  assert.match(byName.get('exif-ifd-offset-near-2^32')!.detail!, /IFD0 offset 4294967294 is outside the 26-byte TIFF structure/);
  assert.match(byName.get('exif-ifd-count-past-segment')!.detail!, /IFD0 declares 65535 entries, its segment holds 1/);
  assert.match(byName.get('zero-length-app1')!.detail!, /JPEG marker 0xFFE1 at byte 2 declares a length of 0 \(at least 2\)/);
  assert.match(byName.get('marker-length-past-end')!.detail!, /JPEG marker 0xFFE1 at byte 2 declares 65535 bytes, the file has \d+ left/);
  assert.match(byName.get('sof-65535x65535')!.detail!, /65535x65535 = 4294836225 pixels, over image\.maxPixels=/);
  assert.equal(rejected.length, Object.keys(crafted).length, 'nothing else rejected');
  assert.deepEqual(shardItemIds(b.dir), b.all.filter((id) => !b.extra.has(id)).sort((x, y) => x - y), 'every other image is in the shards');
});

test('the same crafted files through preprocessImage directly: a PreprocessError each, never a crash', { skip: fastJpeg() ? false : 'fastjpeg addon not built' }, async () => {
  for (const [name, { bytes, reasons }] of Object.entries(await craftedFiles())) {
    await assert.rejects(preprocessImage(bytes, { size: 32, fit: 'cover', maxPixels: 50_000_000, decoder: 'fast' }), (e: unknown) => e instanceof PreprocessError && reasons.includes(e.reason), name);
  }
});

test('a decoder that crashes (SIGSEGV) or hangs on a file: the stage completes, that file is rejected as decoder-crash / decoder-timeout, the rest are in the shards', async () => {
  const b = await build(join(root, 'faulty'), { crash: Buffer.from('CRASH, a stand-in for a file that segfaults the decoder'), hang: Buffer.from('HANG, a stand-in for a file that never finishes decoding') });
  const config = resolveConfig({ genres, seed: 3, image: { size: 32 }, train: { crop: 32 }, shards: { concurrency: 4, decodeTimeoutMs: 1500 } });
  const log = memoryLogger('normal');
  const stage = { ...shardsDeclaration, ...createShardsStage({ decodeWorker: FAULTY_WORKER }) };
  for (const s of [splitStage, stage]) await runStageOnce(s, { config, dataDir: b.dir, log });
  const rejected = rejectedFormat.read(join(b.dir, 'shards', 'rejected.tsv'));
  const reasons = Object.fromEntries(rejected.map((r) => [b.extra.get(r.item_id!) ?? r.item_id, [r.reason, r.detail]]));
  assert.deepEqual(Object.keys(reasons).sort(), ['crash', 'hang'], `only the two faulty files are rejected: ${JSON.stringify(reasons)}`);
  assert.equal(reasons.crash![0], 'decoder-crash');
  assert.match(reasons.crash![1]!, /killed by SIGSEGV/);
  assert.equal(reasons.hang![0], 'decoder-timeout');
  assert.match(reasons.hang![1]!, /1500 ms/);
  assert.deepEqual(shardItemIds(b.dir), b.all.filter((id) => !b.extra.has(id)).sort((x, y) => x - y), 'every other image is in the shards');
  assert.ok(log.lines.some((l) => /decode worker pid \d+ killed by SIGSEGV/.test(l)), `the crash is logged: ${log.lines.join(' | ')}`);
});
