/**
 * End to end with each ecosystem's own reader: `covers make export --set export.formats=parquet,webdataset,tfrecord`
 * builds a small dataset from the bundled Bandcamp simulator (3 genres × 8 covers, 32-pixel images) and exports it;
 * then test/python/read_export.py reads the Parquet shards with `datasets.load_dataset("parquet")` (ClassLabel names
 * intact), pyarrow, polars and DuckDB, the WebDataset tars with Python's `tarfile` following the WebDataset
 * conventions into a PyTorch DataLoader (the `webdataset` package is not on our local package index), and the
 * TFRecords with TensorFlow's `tf.data.TFRecordDataset` + `tf.io.parse_single_example`; every image must decode to
 * exactly the Arrow shard's pixels, in the shards' order, and `mean.npy` must equal `mean.arrow`. Each format is its
 * own subtest, skipped with the reason when python3 or a module is missing
 * (`pip install -r test/python/requirements.txt`). About 60–90 s on 2 busy cores, most of it importing TensorFlow.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { readMeanRow } from '../schemas/mean.ts';
import { listShardFiles, streamShardBatches } from '../schemas/shards/read.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { startSimulator, type Simulator } from '../simulator/server.ts';

const REPO = resolve(import.meta.dirname, '..');
const SCRIPT = join(REPO, 'test', 'python', 'read_export.py');
const PYTHON = process.env.PYTHON ?? 'python3';
const GENRES = ['ambient', 'jazz', 'metal'];
const S = 32;

const dir = mkdtempSync(join(tmpdir(), 'export-py-'));
let sim: Simulator | undefined;
after(async () => {
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Per split, the Arrow shards' item ids, labels and sha256 of each image's raw pixels, in order; S, labels, mean. */
async function expectedOf(dataDir: string) {
  const splits: Record<string, { item_ids: number[]; labels: number[]; image_sha256: string[] }> = {};
  let labelNames: string[] = [];
  for (const split of SPLIT_NAMES) {
    const e = (splits[split] = { item_ids: [] as number[], labels: [] as number[], image_sha256: [] as string[] });
    for await (const b of streamShardBatches(listShardFiles(join(dataDir, 'shards', split)), { ids: true })) {
      labelNames = b.meta.labelNames;
      for (let i = 0; i < b.rows; i++) {
        e.item_ids.push(b.ids!.itemIds[i]!);
        e.labels.push(b.labels[i]!);
        e.image_sha256.push(createHash('sha256').update(b.images.subarray(i * S * S * 3, (i + 1) * S * S * 3)).digest('hex'));
      }
    }
  }
  const m = readMeanRow(join(dataDir, 'shards', 'mean.arrow'));
  const meanSha256 = createHash('sha256').update(new Uint8Array(m.mean.buffer, m.mean.byteOffset, m.mean.byteLength)).digest('hex');
  return { size: S, labelNames, splits, meanSha256 };
}

let made: { status: number | null; stderr: string } = { status: null, stderr: 'not run' };
before(async () => {
  sim = await startSimulator({ genres: GENRES, perGenre: 30, seed: 5 });
  const config = {
    genres: GENRES, perGenre: 8, seed: 1,
    image: { size: S }, train: { crop: S },
    bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
    crawl: { maxRequestsPerMinute: 60000, pageSize: 10, oversample: 2 },
    label: { mode: 'listing' },
    export: { shardSize: { rows: 4 } },
  };
  writeFileSync(join(dir, 'covers.config.json'), JSON.stringify(config));
  // Asynchronous: the simulator answers from this process's event loop.
  const child = spawn(process.execPath, [join(REPO, 'bin', 'covers.js'), 'make', 'export', '--config', join(dir, 'covers.config.json'), '--data-dir', join(dir, 'data'), '--set', 'export.formats=parquet,webdataset,tfrecord', '--quiet'], {
    cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 240_000,
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  const r = { status, stderr };
  made = r;
  if (r.status === 0) writeFileSync(join(dir, 'expected.json'), JSON.stringify(await expectedOf(join(dir, 'data'))));
});

test('covers make export again: every stage fresh, nothing rewritten', () => {
  assert.equal(made.status, 0, `covers make export failed:\n${made.stderr}`);
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'covers.js'), 'make', 'export', '--config', join(dir, 'covers.config.json'), '--data-dir', join(dir, 'data'), '--set', 'export.formats=parquet,webdataset,tfrecord'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /^\s*export\s+fresh\s*$/m);
});

for (const format of ['parquet', 'webdataset', 'tfrecord'] as const) {
  test(`covers make export: ${format} read by its own ecosystem's reader, every image exactly the shard's pixels`, (t) => {
    assert.equal(made.status, 0, `covers make export failed:\n${made.stderr}`);
    const run = spawnSync(PYTHON, [SCRIPT, format, join(dir, 'data', 'export'), join(dir, 'expected.json')], {
      encoding: 'utf8', timeout: 300_000,
      env: { ...process.env, HF_DATASETS_OFFLINE: '1', HF_HUB_OFFLINE: '1', TQDM_DISABLE: '1', HF_HOME: join(dir, 'hf'), TF_CPP_MIN_LOG_LEVEL: '3' },
    });
    if (run.error) return t.skip(`${PYTHON} not found: install Python 3 and pip install -r test/python/requirements.txt`);
    if (run.status === 3) return t.skip(`python module missing: ${run.stdout.trim()} (pip install -r test/python/requirements.txt)`);
    assert.equal(run.status, 0, `read_export.py ${format} failed:\n${run.stdout}\n${run.stderr}`);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as { ok: boolean; rows: Record<string, number> };
    assert.equal(result.ok, true);
    assert.equal(Object.values(result.rows).reduce((a, b) => a + b, 0), GENRES.length * 8, 'every row read');
  });
}
