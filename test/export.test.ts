/**
 * Stage `export` on small synthetic shards (dataset/synthetic-shards.ts), read back with our own readers
 * (schemas/export/): the same rows in the same order as the Arrow shards, every PNG decoding to exactly the shard's
 * pixels, shards cut at `export.shardSize` rows and bytes, `mean.npy` equal to `mean.arrow`; the JPEG option;
 * byte-identical reruns; a run whose writes fail after some shards (an injected ENOSPC half-way through a file; a real
 * full tmpfs where this process may mount one, else skipped) or that is SIGKILLed half-way through a file leaves no
 * half shard under a shard's name, and the rerun goes on at the next unfinished shard, giving the same bytes as an
 * unbroken run;
 * bad config is a usage error naming the key; `all` does not run `export`. The Python readers are in
 * test/export-python.test.ts. About 15 s on 2 cores.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { writeTestShards } from '../dataset/synthetic-shards.ts';
import { resolveConfig, type ConfigInput } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { closure } from '../pipeline/runner.ts';
import { lazyStage } from '../pipeline/stage.ts';
import { exportDeclaration } from '../stages/declarations.ts';
import { createExportStage } from '../stages/export.ts';
import { STAGES } from '../stages/index.ts';
import { readMeanRow } from '../schemas/mean.ts';
import { decodeNpyFloat32 } from '../schemas/export/npy.ts';
import { readParquetShard } from '../schemas/export/parquet.ts';
import { decodeExample, frameRecord, maskedCrc32c, readTFRecords } from '../schemas/export/tfrecord.ts';
import { readWebDatasetShard } from '../schemas/export/webdataset.ts';
import type { ExportDescription } from '../schemas/export/layout.ts';
import { listShardFiles, streamShardBatches } from '../schemas/shards/read.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { writeFileAtomic } from '../util/fsutil.ts';
import { memoryLogger } from '../util/log.ts';

const REPO = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'export-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const S = 24;
const LABELS = ['ambient', 'metal', 'jazz'];
/** 3 classes × (8 + 3 + 3) per split = 24 / 9 / 9 rows; shards of at most 5 rows. */
const SHARDS = { size: S, labelNames: LABELS, perClass: { train: 8, validation: 3, test: 3 }, shardsPerSplit: 2, batchRows: 4 };

function configOf(over: ConfigInput['export'] = {}) {
  return resolveConfig({ genres: LABELS, image: { size: S }, train: { crop: S }, export: { shardSize: { rows: 5 }, ...over } }, 'test');
}

function shardsDir(name: string): string {
  const dir = join(tmp, name);
  writeTestShards(dir, SHARDS);
  return dir;
}

/** sha256 of every file under `dir`, by relative path. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[relative(dir, join(e.parentPath, e.name))] = createHash('sha256').update(readFileSync(join(e.parentPath, e.name))).digest('hex');
  }
  return out;
}

/** The shards' rows: per split, item ids, labels and each image's raw pixels. */
async function shardRows(dataDir: string) {
  const out: Record<string, { ids: number[]; labels: number[]; pixels: Buffer[] }> = {};
  for (const split of SPLIT_NAMES) {
    const r = (out[split] = { ids: [] as number[], labels: [] as number[], pixels: [] as Buffer[] });
    for await (const b of streamShardBatches(listShardFiles(join(dataDir, 'shards', split)), { ids: true })) {
      for (let i = 0; i < b.rows; i++) {
        r.ids.push(b.ids!.itemIds[i]!);
        r.labels.push(b.labels[i]!);
        r.pixels.push(Buffer.from(b.images.subarray(i * S * S * 3, (i + 1) * S * S * 3)));
      }
    }
  }
  return out;
}

const rgb = async (png: Uint8Array) => sharp(png).removeAlpha().raw().toBuffer();

test('export writes the three formats with the shards’ rows, order and exact pixels, cut at shardSize', async () => {
  const dir = shardsDir('full');
  await runStageOnce(lazyStage(exportDeclaration, async () => createExportStage()), { config: configOf(), dataDir: dir, log: memoryLogger() });
  const want = await shardRows(dir);
  const mean = readMeanRow(join(dir, 'shards', 'mean.arrow'));
  for (const format of ['parquet', 'webdataset', 'tfrecord'] as const) {
    const root = join(dir, 'export', format);
    const desc = JSON.parse(readFileSync(join(root, 'dataset.json'), 'utf8')) as ExportDescription;
    assert.deepEqual(desc.labelNames, LABELS);
    assert.match(readFileSync(join(root, 'README.md'), 'utf8'), /Load it/);
    assert.ok(Object.keys(desc.fields).includes({ parquet: 'image', webdataset: 'png', tfrecord: 'image/encoded' }[format]), `${format}: dataset.json names the image field`);
    const npy = decodeNpyFloat32(readFileSync(join(root, 'mean.npy')));
    assert.deepEqual(npy.shape, [S, S, 3]);
    assert.deepEqual(npy.data, mean.mean);
    for (const split of SPLIT_NAMES) {
      const { files, rows } = desc.splits[split]!;
      assert.deepEqual(rows, split === 'train' ? [5, 5, 5, 5, 4] : [5, 4], `${format} ${split} rows per shard`);
      assert.deepEqual(files, rows.map((_, i) => `${split}/${split}-${String(i).padStart(6, '0')}.${{ parquet: 'parquet', webdataset: 'tar', tfrecord: 'tfrecord' }[format]}`));
      const got = { ids: [] as number[], labels: [] as number[], pixels: [] as Buffer[] };
      for (const [k, f] of files.entries()) {
        const bytes = readFileSync(join(root, f));
        if (format === 'parquet') {
          const t = readParquetShard(bytes);
          assert.equal(t.numRows, rows[k]);
          assert.deepEqual(JSON.parse(t.schema.metadata.get('huggingface')!).info.features.label, { names: LABELS, _type: 'ClassLabel' });
          for (let i = 0; i < t.numRows; i++) {
            got.ids.push(Number(t.getChild('item_id')!.get(i)));
            got.labels.push(Number(t.getChild('label')!.get(i)));
            got.pixels.push(await rgb((t.getChild('image')!.get(i) as { bytes: Uint8Array }).bytes));
          }
        } else if (format === 'webdataset') {
          for (const s of await readWebDatasetShard(bytes)) {
            assert.deepEqual(Object.keys(s.files).sort(), ['cls', 'json', 'png']);
            const meta = JSON.parse(Buffer.from(s.files.json!).toString()) as { label: number; genre: string; item_id: number };
            assert.equal(s.__key__, String(meta.item_id));
            assert.equal(meta.genre, LABELS[meta.label]);
            got.ids.push(meta.item_id);
            got.labels.push(Number(Buffer.from(s.files.cls!).toString()));
            got.pixels.push(await rgb(s.files.png!));
          }
        } else {
          for (const rec of readTFRecords(bytes, f)) {
            const ex = decodeExample(rec);
            assert.deepEqual(ex['image/format'], { bytes: [Buffer.from('png')] });
            assert.deepEqual(ex['image/height'], { int64: [S] });
            got.ids.push((ex['bandcamp/item_id'] as { int64: number[] }).int64[0]!);
            got.labels.push((ex['image/class/label'] as { int64: number[] }).int64[0]!);
            got.pixels.push(await rgb((ex['image/encoded'] as { bytes: Uint8Array[] }).bytes[0]!));
          }
        }
      }
      assert.deepEqual(got.ids, want[split]!.ids, `${format} ${split}: item ids in shard order`);
      assert.deepEqual(got.labels, want[split]!.labels, `${format} ${split}: labels`);
      assert.ok(got.pixels.every((p, i) => p.equals(want[split]!.pixels[i]!)), `${format} ${split}: every image decodes to the shard's pixels`);
    }
  }
  // A byte limit below two images' size gives one image per shard.
  const tiny = shardsDir('bytes');
  await runStageOnce(lazyStage(exportDeclaration, async () => createExportStage()), { config: configOf({ formats: ['tfrecord'], shardSize: { rows: 100, bytes: 1 } }), dataDir: tiny, log: memoryLogger() });
  const desc = JSON.parse(readFileSync(join(tiny, 'export', 'tfrecord', 'dataset.json'), 'utf8')) as ExportDescription;
  assert.deepEqual(desc.splits.validation!.rows, Array(9).fill(1));
  assert.ok(!existsSync(join(tiny, 'export', 'parquet')), 'only the configured formats');
});

test('export.image.format=jpeg: .jpg members, image/format jpeg, pixels within JPEG q95 4:4:4 error', async () => {
  const dir = shardsDir('jpeg');
  await runStageOnce(lazyStage(exportDeclaration, async () => createExportStage()), { config: configOf({ formats: ['webdataset', 'tfrecord'], image: { format: 'jpeg' } }), dataDir: dir, log: memoryLogger() });
  const want = (await shardRows(dir)).test!;
  const tar = await readWebDatasetShard(readFileSync(join(dir, 'export', 'webdataset', 'test', 'test-000000.tar')));
  assert.deepEqual(Object.keys(tar[0]!.files).sort(), ['cls', 'jpg', 'json']);
  const ex = decodeExample(readTFRecords(readFileSync(join(dir, 'export', 'tfrecord', 'test', 'test-000000.tfrecord')))[0]!);
  assert.deepEqual(ex['image/format'], { bytes: [Buffer.from('jpeg')] });
  for (const [i, s] of tar.entries()) {
    const got = await rgb(s.files.jpg!);
    let sum = 0;
    for (let j = 0; j < got.length; j++) sum += Math.abs(got[j]! - want.pixels[i]![j]!);
    // Striped noise (±40 levels per pixel) is JPEG's worst case; real covers come out closer.
    assert.ok(sum / got.length < 6, `mean absolute error ${(sum / got.length).toFixed(2)} levels`);
  }
});

test('export is byte-stable, and a run whose writes fail resumes at the next unfinished shard with the same bytes', async () => {
  const clean = shardsDir('clean');
  const config = configOf();
  const stage = (writeFile = writeFileAtomic) => lazyStage(exportDeclaration, async () => createExportStage({ writeFile }));
  await runStageOnce(stage(), { config, dataDir: clean, log: memoryLogger() });
  const first = tree(join(clean, 'export'));
  await runStageOnce(stage(), { config, dataDir: clean, log: memoryLogger() });
  assert.deepEqual(tree(join(clean, 'export')), first, 'a rerun writes the same bytes');

  // The same shards copied elsewhere (other mtimes, other paths) export to the same bytes too.
  const broken = join(tmp, 'broken');
  cpSync(join(clean, 'shards'), join(broken, 'shards'), { recursive: true });
  // Fail (as a full disk does) on the 8th shard file: shards 0 and 1 of train are done in all three formats, shard 2
  // has its Parquet file only; the write is atomic, so the failing file leaves nothing behind.
  let writes = 0;
  const failing = (path: string, data: Uint8Array | string) => {
    if (/\d{6}\.\w+$/.test(path) && ++writes === 8) {
      // Half the bytes reach the disk, then it is full.
      writeFileAtomic(path, data, (fd, buf, off, len) => {
        if (off === 0) return writeSync(fd, buf, off, Math.floor(len / 2));
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      });
    }
    writeFileAtomic(path, data);
  };
  await assert.rejects(runStageOnce(stage(failing), { config, dataDir: broken, log: memoryLogger() }), (e: NodeJS.ErrnoException) => e.code === 'ENOSPC' && /train-000002\.tar$/.test(e.path ?? ''));
  const work = join(broken, '.work', 'export');
  const progress = JSON.parse(readFileSync(join(work, 'progress.json'), 'utf8')) as { splits: Record<string, unknown[]> };
  assert.equal(progress.splits.train!.length, 2, 'two finished shards recorded');
  const left = readdirSync(join(work, 'out'), { recursive: true }).map(String).filter((f) => /\.(parquet|tar|tfrecord)$|tmp/.test(f)).sort();
  assert.deepEqual(left, ['parquet/train/train-000000.parquet', 'parquet/train/train-000001.parquet', 'parquet/train/train-000002.parquet', 'tfrecord/train/train-000000.tfrecord', 'tfrecord/train/train-000001.tfrecord', 'webdataset/train/train-000000.tar', 'webdataset/train/train-000001.tar']);
  assert.ok(!existsSync(join(broken, 'export')), 'no output committed');
  const before = statSync(join(work, 'out', 'parquet', 'train', 'train-000000.parquet')).mtimeMs;

  const written: string[] = [];
  const log = memoryLogger();
  await runStageOnce(stage((p, d) => (written.push(relative(work, p)), writeFileAtomic(p, d))), { config, dataDir: broken, log });
  assert.ok(log.lines.some((l) => /resuming: 2 shard\(s\), 10 rows already exported/.test(l)), log.lines.join('\n'));
  assert.ok(!written.some((p) => /train-00000[01]/.test(p)), `finished shards are not written again: ${written.join(', ')}`);
  assert.ok(written.includes(join('out', 'parquet', 'train', 'train-000002.parquet')), 'the unfinished shard is rewritten');
  assert.equal(statSync(join(broken, 'export', 'parquet', 'train', 'train-000000.parquet')).mtimeMs, before, 'finished shards kept');
  assert.deepEqual(tree(join(broken, 'export')), first, 'the resumed export equals the unbroken one byte for byte');
  assert.ok(!existsSync(join(work, 'progress.json')), 'the progress record is gone once the export is complete');

  // Killed (SIGKILL) half-way through writing a shard file: the half file is a temporary one, removed by the rerun.
  const killed = join(tmp, 'killed');
  cpSync(join(clean, 'shards'), join(killed, 'shards'), { recursive: true });
  const child = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'test', 'helpers', 'export-kill.ts'), killed], { cwd: REPO, encoding: 'utf8' });
  assert.equal(child.signal, 'SIGKILL', child.stderr);
  const kWork = join(killed, '.work', 'export');
  const half = readdirSync(join(kWork, 'out'), { recursive: true }).map(String).filter((f) => f.includes('.tmp-'));
  assert.equal(half.length, 1, `one half-written temporary file: ${half.join(', ')}`);
  assert.match(half[0]!, /webdataset\/train\/\.train-000001\.tar\.tmp-/);
  assert.equal((JSON.parse(readFileSync(join(kWork, 'progress.json'), 'utf8')) as { splits: Record<string, unknown[]> }).splits.train!.length, 1);
  await runStageOnce(stage(), { config, dataDir: killed, log: memoryLogger() });
  assert.deepEqual(tree(join(killed, 'export')), first, 'the export resumed after a kill equals the unbroken one');
  assert.ok(!existsSync(join(kWork, 'out')), 'nothing left in the work directory');
});

test('a full disk (a small tmpfs) leaves no half shard, and the rerun with room finishes the same export', async (t) => {
  const mnt = join(tmp, 'tmpfs');
  mkdirSync(mnt);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (mount.status !== 0) {
    t.skip(`cannot mount a tmpfs here (${(mount.error?.message ?? mount.stderr).trim()}); the injected ENOSPC test covers the failure path`);
    return;
  }
  try {
    const dir = join(mnt, 'data');
    writeTestShards(dir, { ...SHARDS, size: 64, noise: 120 });
    const config = resolveConfig({ genres: LABELS, image: { size: 64 }, train: { crop: 64 }, export: { shardSize: { rows: 5 }, image: { pngCompression: 0 } } }, 'test');
    // Room for a few shards only: shards of 5 uncompressed 64×64 PNGs are ~62 KB per format.
    const used = Number(spawnSync('du', ['-sk', mnt], { encoding: 'utf8' }).stdout.split('\t')[0]);
    assert.equal(spawnSync('mount', ['-o', `remount,size=${used + 400}k`, mnt]).status, 0);
    const stage = lazyStage(exportDeclaration, async () => createExportStage());
    await assert.rejects(runStageOnce(stage, { config, dataDir: dir, log: memoryLogger() }), (e: NodeJS.ErrnoException) => e.code === 'ENOSPC');
    const work = join(dir, '.work', 'export');
    const progress = JSON.parse(readFileSync(join(work, 'progress.json'), 'utf8')) as { splits: Record<string, { files: Record<string, { name: string; size: number }> }[]> };
    const recorded = Object.entries(progress.splits).flatMap(([split, shards]) => shards.flatMap((s) => Object.entries(s.files).map(([f, x]) => `${f}/${split}/${x.name}:${x.size}`)));
    assert.ok(recorded.length >= 3, `some shards finished before the disk filled (${recorded.length} files)`);
    const files = readdirSync(join(work, 'out'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    const onDisk = files.map((p) => `${relative(join(work, 'out'), p)}:${statSync(p).size}`);
    assert.ok(recorded.every((r) => onDisk.includes(r)), 'every recorded shard file is on disk at its size');
    assert.deepEqual(files.filter((p) => !/\d{6}\.(parquet|tar|tfrecord)$/.test(p)), [], 'no temporary file left');
    // Files of the unfinished shard (formats written before the disk filled) are whole: each parses to 5 samples.
    for (const p of files) {
      const bytes = readFileSync(p);
      const n = p.endsWith('.parquet') ? readParquetShard(bytes).numRows : p.endsWith('.tar') ? (await readWebDatasetShard(bytes)).length : readTFRecords(bytes, p).length;
      assert.equal(n, 5, `${p} is a whole shard`);
    }
    assert.equal(spawnSync('mount', ['-o', 'remount,size=64m', mnt]).status, 0);
    await runStageOnce(stage, { config, dataDir: dir, log: memoryLogger() });
    const again = join(tmp, 'tmpfs-clean');
    cpSync(join(dir, 'shards'), join(again, 'shards'), { recursive: true });
    await runStageOnce(stage, { config, dataDir: again, log: memoryLogger() });
    assert.deepEqual(tree(join(dir, 'export')), tree(join(again, 'export')));
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('bad export config is a usage error naming the key; `all` does not run export', () => {
  for (const [over, key] of [
    [{ shardSize: { bytes: 0 } }, 'export.shardSize.bytes'],
    [{ image: { format: 'webp' } }, 'export.image.format'],
    [{ formats: [] }, 'export.formats'],
    [{ formats: ['tfrecord', 'tfrecord'] }, 'export.formats'],
  ] as const) {
    assert.throws(() => resolveConfig({ export: over as ConfigInput['export'] }, 'test'), (e: Error) => e.name === 'ConfigError' && e.message.includes(key), key);
  }
  for (const [set, key] of [
    ['export.formats=parquet,zip', 'export.formats'],
    ['export.shardSize.rows=0', 'export.shardSize.rows'],
  ] as const) {
    const r = spawnSync(process.execPath, ['bin/covers.js', 'make', 'export', '--data-dir', join(tmp, 'usage'), '--set', set], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 2, `${set}: exit 2\n${r.stderr}`);
    assert.ok(r.stderr.includes(key), `${set}: the message names ${key}:\n${r.stderr}`);
  }
  assert.ok(!existsSync(join(tmp, 'usage', 'export')), 'nothing ran');
  assert.ok(!closure(STAGES, ['all'], resolveConfig({})).some((s) => s.name === 'export'));
  assert.deepEqual(closure(STAGES, ['export'], resolveConfig({})).map((s) => s.name).slice(-3), ['shards', 'mean', 'export']);
});

test('TFRecord framing: masked CRC-32C as TensorFlow computes it; a flipped byte is named', () => {
  // crc32c("123456789") = 0xe3069283 (the CRC-32C check value); masked as in tensorflow/tsl/lib/hash/crc32c.h.
  const crc = 0xe3069283;
  assert.equal(maskedCrc32c(Buffer.from('123456789')), ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0);
  const file = Buffer.concat([frameRecord(Buffer.from('first')), frameRecord(Buffer.from('second'))]);
  assert.deepEqual(readTFRecords(file).map((r) => Buffer.from(r).toString()), ['first', 'second']);
  file[12 + 5 + 4 + 12 + 2]! ^= 1;
  assert.throws(() => readTFRecords(file, 'x.tfrecord'), /x\.tfrecord: record 1 at byte 21: data CRC mismatch/);
});
