/**
 * Stages `split` → `shards` → `mean` on a small real dataset (test/helpers/dataset.ts) plus deliberately bad files:
 * the Hugging Face layout, pixel-exact images (against preprocessImage, the stage's own path; and close to a direct sharp
 * decode), labels and counts per split, rejected items, nodejs-polars reading,
 * byte-identical reruns whatever the concurrency, shard rollover, and that `mean` does not make `shards` stale.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import pl from 'nodejs-polars';
import sharp from 'sharp';
import { resolveConfig, type Config } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import type { Stage } from '../pipeline/stage.ts';
import { splitStage, shardsStage, meanStage } from '../stages/index.ts';
import { rejectedFormat } from '../schemas/manifest.ts';
import { readLayoutMeta } from '../schemas/shards/layout.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { splitsFormat } from '../schemas/splits.ts';
import { SplitShardWriter } from '../schemas/shards/write.ts';
import { MeanAccumulator } from '../dataset/mean.ts';
import { fastJpeg, preprocessCounts, preprocessImage, resolveDecoder, RESIZE_KERNEL, type PreprocessOptions } from '../dataset/preprocess.ts';
import { addImage, buildTestDataset, writeManifest, type TestDataset } from './helpers/dataset.ts';

const S = 32;
const log = createLogger({ level: 'quiet' });
let root: string;
let ds: TestDataset;
let config: Config;
/** item_id → source file of the good images. */
const sources = new Map<number, string>();

function configFor(over: Record<string, unknown> = {}): Config {
  return resolveConfig({ genres: ds.genres, seed: 5, image: { size: S }, train: { crop: S }, ...over });
}

async function buildData(dir: string): Promise<void> {
  const built = await buildTestDataset(dir, { genres: ['rock', 'jazz', 'metal'], perGenre: 6 });
  const jpeg = readFileSync(built.sources[0]!);
  const bad = [
    await addImage(dir, 'rock', 555_001, 955_001, jpeg.subarray(0, Math.floor(jpeg.length / 2))),
    await addImage(dir, 'jazz', 555_002, 955_002, Buffer.from('<html>not an image</html>')),
  ];
  writeManifest(dir, [...built.rows, ...bad]);
  ds = built;
}

async function runAll(dir: string, cfg: Config): Promise<void> {
  for (const stage of [splitStage, shardsStage, meanStage]) await runStageOnce(stage, { config: cfg, dataDir: dir, log });
}

interface Row { item_id: number; label: number; genre: string; image: Uint8Array }
function readSplitRows(dir: string, split: string): { rows: Row[]; files: string[] } {
  const state = JSON.parse(readFileSync(join(dir, 'shards', split, 'state.json'), 'utf8')) as { _data_files: { filename: string }[] };
  const rows: Row[] = [];
  const files = state._data_files.map((f) => f.filename);
  for (const f of files) {
    const table = arrow.tableFromIPC(readFileSync(join(dir, 'shards', split, f)));
    const meta = readLayoutMeta(table.schema);
    assert.deepEqual(meta.shape, [S, S, 3]);
    for (let i = 0; i < table.numRows; i++) {
      rows.push({
        item_id: Number(table.getChild('item_id')!.get(i)),
        label: Number(table.getChild('label')!.get(i)),
        genre: table.getChild('genre')!.get(i) as string,
        image: (table.getChild('image')!.get(i) as arrow.Vector<arrow.Uint8>).toArray() as Uint8Array,
      });
    }
  }
  return { rows, files };
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'shards-'));
  await buildData(join(root, 'a'));
  ds.rows.forEach((r, i) => sources.set(r.item_id!, ds.sources[i]!));
  config = configFor();
  await runAll(join(root, 'a'), config);
});
after(() => rmSync(root, { recursive: true, force: true }));

test('the Hugging Face datasets layout: dataset_dict.json, state.json with all seven keys, dataset_info.json', () => {
  const dir = join(root, 'a', 'shards');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'dataset_dict.json'), 'utf8')), { splits: ['train', 'validation', 'test'] });
  for (const split of SPLIT_NAMES) {
    const state = JSON.parse(readFileSync(join(dir, split, 'state.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(state), ['_data_files', '_fingerprint', '_format_columns', '_format_kwargs', '_format_type', '_output_all_columns', '_split']);
    assert.equal(state._split, split);
    assert.match(state._fingerprint as string, /^[0-9a-f]{16}$/);
    const files = (state._data_files as { filename: string }[]).map((f) => f.filename);
    assert.deepEqual(readdirSync(join(dir, split)).filter((f) => f.endsWith('.arrow')).sort(), files);
    assert.match(files[0]!, /^data-00000-of-0000\d\.arrow$/);
    const info = JSON.parse(readFileSync(join(dir, split, 'dataset_info.json'), 'utf8')) as { features: Record<string, { _type: string; names?: string[]; length?: number }> };
    assert.deepEqual(info.features.label, { names: ds.genres, _type: 'ClassLabel' });
    assert.equal(info.features.image!.length, S * S * 3);
    // An IPC *stream*: starts with a continuation token, not the "ARROW1" magic of the file format.
    const head = readFileSync(join(dir, split, files[0]!)).subarray(0, 6);
    assert.notEqual(head.toString('latin1'), 'ARROW1');
    assert.deepEqual([...head.subarray(0, 4)], [0xff, 0xff, 0xff, 0xff]);
  }
});

test('every good image is in exactly one split, pixel-exact against preprocessImage (the stage\'s path), with its label', async () => {
  const splits = splitsFormat.read(join(root, 'a', 'splits.arrow'));
  assert.equal(config.shards.decoder, 'auto', 'the default decoder');
  // The options the stage gives preprocessImage for this config.
  const opts: PreprocessOptions = { size: S, fit: config.image.fit, maxPixels: config.image.maxPixels, decoder: resolveDecoder(config.shards.decoder).decoder };
  const seen = new Set<number>();
  for (const split of SPLIT_NAMES) {
    const { rows } = readSplitRows(join(root, 'a'), split);
    const expectedOrder = splits.filter((r) => r.split === split && sources.has(r.item_id!)).map((r) => r.item_id);
    assert.deepEqual(rows.map((r) => r.item_id), expectedOrder, `${split}: rows in splits.arrow order, bad items left out`);
    for (const r of rows) {
      assert.ok(!seen.has(r.item_id));
      seen.add(r.item_id);
      assert.equal(r.genre, ds.genres[r.label]);
      const expected = await preprocessImage(sources.get(r.item_id)!, opts);
      assert.ok(Buffer.from(r.image).equals(expected), `item ${r.item_id}: pixels equal preprocessImage's`);
    }
  }
  assert.equal(seen.size, ds.rows.length);
  // 6 good + (rock: 1 bad, jazz: 1 bad) per genre; 7 items → 5/1/1 and 6 items → 5/1/0 (largest remainder: 4.8, 0.6, 0.6).
  const counts = SPLIT_NAMES.map((s) => splits.filter((r) => r.split === s).length);
  assert.deepEqual(counts, [5 + 5 + 5, 1 + 1 + 1, 1 + 1 + 0]);
});

test('the fast path\'s output is close to a direct sharp decode (mean absolute difference < 3 levels at 256×256)', async () => {
  // At the fixture's S = 32 both decoders shrink 300×300 covers by 8 in the DCT and alias differently, so compare at
  // the production size (bench/preprocess.bench.ts: mean 0.5 over the 1,050 real covers, worst 3.6).
  const size = 256;
  const fastLoaded = fastJpeg() !== null;
  for (const src of sources.values()) {
    const before = preprocessCounts.fast;
    const fast = await preprocessImage(src, { size, fit: 'cover', maxPixels: config.image.maxPixels, decoder: 'fast' });
    assert.equal(preprocessCounts.fast - before, fastLoaded ? 1 : 0, `${src}: ${fastLoaded ? 'fast path' : 'no addon: sharp'}`);
    const direct = await sharp(src).resize(size, size, { fit: 'cover', kernel: RESIZE_KERNEL }).raw().toBuffer();
    assert.equal(direct.length, fast.length);
    let sum = 0;
    for (let i = 0; i < direct.length; i++) sum += Math.abs(direct[i]! - fast[i]!);
    const mad = sum / direct.length;
    assert.ok(mad < 3, `${src}: mean absolute difference to sharp ${mad.toFixed(2)}`);
    if (!fastLoaded) assert.equal(mad, 0, 'without the addon, fast is sharp');
  }
});

test('bad images are rejected with their reason in shards/rejected.tsv and do not stop the stage', () => {
  const rejected = rejectedFormat.read(join(root, 'a', 'shards', 'rejected.tsv'));
  const byId = new Map(rejected.map((r) => [r.item_id, r]));
  assert.equal(rejected.length, 2);
  assert.equal(byId.get(555_001)?.reason, 'truncated');
  assert.equal(byId.get(555_002)?.reason, 'unsupported-format');
  assert.equal(byId.get(555_001)?.stage, 'shards');
  assert.equal(byId.get(555_001)?.genre, 'rock');
  assert.equal(byId.get(555_001)?.art_id, 955_001);
  assert.ok(byId.get(555_002)!.detail!.length > 0);
});

test('the per-pixel mean equals a direct computation over the training shards', () => {
  const { rows } = readSplitRows(join(root, 'a'), 'train');
  const direct = new Float64Array(S * S * 3);
  for (const r of rows) for (let j = 0; j < direct.length; j++) direct[j]! += r.image[j]!;
  const table = arrow.tableFromIPC(readFileSync(join(root, 'a', 'shards', 'mean.arrow')));
  const mean = (table.getChild('mean')!.get(0) as arrow.Vector<arrow.Float32>).toArray() as Float32Array;
  assert.equal(mean.length, S * S * 3);
  for (let j = 0; j < mean.length; j++) assert.ok(Math.abs(mean[j]! - direct[j]! / rows.length) < 1e-3, `mean[${j}]`);
  assert.equal(Number(table.getChild('count')!.get(0)), rows.length);
  assert.equal(table.getChild('size')!.get(0), S);
  const summary = JSON.parse(readFileSync(join(root, 'a', 'shards', 'mean.json'), 'utf8'));
  let n = 0;
  const sum = [0, 0, 0], sq = [0, 0, 0];
  for (const r of rows) for (let j = 0; j < r.image.length; j++) { sum[j % 3]! += r.image[j]!; sq[j % 3]! += r.image[j]! ** 2; if (j % 3 === 0) n++; }
  for (let c = 0; c < 3; c++) {
    const m = sum[c]! / n;
    assert.ok(Math.abs(summary.channelMean[c] - m) < 1e-9);
    assert.ok(Math.abs(summary.channelStd[c] - Math.sqrt(sq[c]! / n - m * m)) < 1e-6);
  }
  assert.deepEqual(summary.shape, [S, S, 3]);
  assert.equal(summary.count, rows.length);
});

test('nodejs-polars reads the shards (IPC stream) with the same rows', () => {
  for (const split of SPLIT_NAMES) {
    const { rows, files } = readSplitRows(join(root, 'a'), split);
    // nodejs-polars 0.26 fails on a *path* to any IPC stream file (even pyarrow's: "Unable to get root as message"),
    // but reads the same bytes from a Buffer.
    const frames = files.map((f) => pl.readIPCStream(readFileSync(join(root, 'a', 'shards', split, f))));
    const df = frames.length === 1 ? frames[0]! : pl.concat(frames);
    assert.deepEqual(df.columns, ['image', 'label', 'genre', 'item_id', 'art_id', 'sha256']);
    assert.equal(df.height, rows.length);
    assert.deepEqual(df.getColumn('item_id').toArray().map(Number), rows.map((r) => r.item_id));
    assert.deepEqual(df.getColumn('label').toArray().map(Number), rows.map((r) => r.label));
    assert.deepEqual(df.getColumn('genre').toArray(), rows.map((r) => r.genre));
    if (rows.length) {
      const first = df.getColumn('image').toArray()[0] as unknown;
      const values = Array.from((first as { toArray?: () => ArrayLike<number> }).toArray?.() ?? (first as ArrayLike<number>));
      assert.deepEqual(values, Array.from(rows[0]!.image));
    }
  }
});

test('two runs on the same input give byte-identical shards, whatever shards.concurrency', async () => {
  const dirB = join(root, 'b');
  await buildData(dirB);
  await runAll(dirB, configFor({ shards: { concurrency: 1 } }));
  for (const split of SPLIT_NAMES) {
    for (const f of readdirSync(join(root, 'a', 'shards', split))) {
      assert.ok(readFileSync(join(root, 'a', 'shards', split, f)).equals(readFileSync(join(dirB, 'shards', split, f))), `${split}/${f} identical`);
    }
  }
  for (const f of ['dataset_dict.json', 'rejected.tsv', 'mean.arrow', 'mean.json']) {
    assert.ok(readFileSync(join(root, 'a', 'shards', f)).equals(readFileSync(join(dirB, 'shards', f))), `${f} identical`);
  }
});

test('the writer rolls over to a new shard before exceeding maxShardBytes, batch by batch', () => {
  const dir = join(root, 'roll');
  const size = 64;
  const len = size * size * 3;
  const w = new SplitShardWriter({ dir, split: 'train', size, labelNames: ['a', 'b'], configHash: 'h', maxShardBytes: 1024 * 1024, recordBatchRows: 8 });
  for (let i = 0; i < 150; i++) w.add({ image: new Uint8Array(len).fill(i % 251), label: i % 2, genre: i % 2 ? 'b' : 'a', itemId: i, artId: 10_000 + i, sha256: `x${i}` });
  const res = w.finish();
  assert.equal(res.rows, 150);
  assert.ok(res.files.length >= 2, `${res.files.length} shards`);
  let at = 0;
  res.files.forEach((f, k) => {
    assert.equal(f, `data-${String(k).padStart(5, '0')}-of-${String(res.files.length).padStart(5, '0')}.arrow`);
    const bytes = readFileSync(join(dir, f));
    assert.ok(bytes.length <= 1024 * 1024, `${f}: ${bytes.length} bytes`);
    const table = arrow.tableFromIPC(bytes);
    for (const b of table.batches) assert.ok(b.numRows <= 8);
    for (let i = 0; i < table.numRows; i++, at++) {
      assert.equal(Number(table.getChild('item_id')!.get(i)), at);
      assert.equal((table.getChild('image')!.get(i) as arrow.Vector).get(len - 1), at % 251);
    }
  });
  assert.equal(at, 150);
  assert.ok(!readdirSync(dir).some((f) => f.startsWith('.part-')), 'no temporary files left');
  // A shard too small for one image is a clear error.
  assert.throws(() => new SplitShardWriter({ dir, split: 'test', size: 1024, labelNames: ['a'], configHash: 'h', maxShardBytes: 1024 * 1024, recordBatchRows: 8 }), /cannot hold one 1024×1024×3 image/);
});

test('the stage honours shards.maxShardBytes and shards.recordBatchRows', async () => {
  const dir = join(root, 'a');
  const cfg = configFor({ image: { size: 192 }, train: { crop: 192 }, shards: { maxShardBytes: 1024 * 1024, recordBatchRows: 4 } });
  await runStageOnce(shardsStage, { config: cfg, dataDir: dir, log });
  const trainDir = join(dir, 'shards', 'train');
  const files = readdirSync(trainDir).filter((f) => f.endsWith('.arrow'));
  assert.ok(files.length >= 2, `the training images of 108 KiB roll over 1 MiB: ${files.length} shards`);
  let rows = 0;
  for (const f of files) {
    assert.ok(statSync(join(trainDir, f)).size <= 1024 * 1024);
    const t = arrow.tableFromIPC(readFileSync(join(trainDir, f)));
    for (const b of t.batches) assert.ok(b.numRows <= 4);
    rows += t.numRows;
  }
  const goodTrain = splitsFormat.read(join(dir, 'splits.arrow')).filter((r) => r.split === 'train' && sources.has(r.item_id!)).length;
  assert.equal(rows, goodTrain);
  await runStageOnce(shardsStage, { config, dataDir: dir, log }); // back to the shared fixture's settings
});

test('with the runner, mean writing shards/mean.* does not make shards stale', async () => {
  const dir = join(root, 'a');
  // The real download stage needs the Bandcamp simulator; this one only declares download's outputs.
  const download: Stage = { name: 'download', description: 'test stand-in', deps: [], inputs: [], params: [], outputs: [], inPlaceOutputs: ['manifest.tsv', 'images'], version: 1, run: async () => {} };
  const stages = [download, splitStage, shardsStage, meanStage];
  const first = await make({ targets: ['mean'], config, dataDir: dir, stages, log });
  assert.deepEqual(first.map((o) => o.action), ['ran', 'ran', 'ran', 'ran']);
  const second = await make({ targets: ['mean'], config, dataDir: dir, stages, log });
  assert.deepEqual(second.map((o) => `${o.name}:${o.action}`), ['download:fresh', 'split:fresh', 'shards:fresh', 'mean:fresh']);
  assert.ok(existsSync(join(dir, 'shards', 'mean.arrow')));
});
