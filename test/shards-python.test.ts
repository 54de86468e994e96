/**
 * Python interop: the shards load with `datasets.load_from_disk`, `pyarrow.ipc.open_stream` and a PyTorch DataLoader,
 * and hold the same rows and pixels as Node wrote (test/python/read_shards.py). Skipped, with the reason, when
 * python3 or one of its modules is missing; install them with
 * `pip install -r test/python/requirements.txt`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as arrow from 'apache-arrow';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { splitStage, shardsStage, meanStage } from '../stages/index.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { buildTestDataset } from './helpers/dataset.ts';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'python', 'read_shards.py');
const PYTHON = process.env.PYTHON ?? 'python3';

test('Python reads the shards: datasets.load_from_disk, pyarrow.ipc.open_stream, torch DataLoader, mean', async (t) => {
  const probe = spawnSync(PYTHON, ['-c', 'import numpy, pyarrow, datasets, torch'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const missing = probe.error ? `${PYTHON} not found` : (probe.stderr.match(/No module named '([^']+)'/)?.[1] ?? probe.stderr.trim().split('\n').pop());
    t.skip(`python modules missing (${missing}): pip install -r test/python/requirements.txt`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'shards-py-'));
  try {
    const ds = await buildTestDataset(dir, { genres: ['pop', 'metal', 'jazz'], perGenre: 5 });
    const S = 24;
    // recordBatchRows 3 and small shards: several record batches per file, the DataLoader's batches straddle them.
    const config = resolveConfig({ genres: ds.genres, image: { size: S }, train: { crop: S }, shards: { recordBatchRows: 3 } });
    const log = createLogger({ level: 'quiet' });
    for (const stage of [splitStage, shardsStage, meanStage]) await runStageOnce(stage, { config, dataDir: dir, log });
    const expected: { size: number; labelNames: string[]; splits: Record<string, { item_ids: number[]; labels: number[]; image_sha256: string[] }> } = {
      size: S, labelNames: ds.genres, splits: {},
    };
    for (const split of SPLIT_NAMES) {
      const state = JSON.parse(readFileSync(join(dir, 'shards', split, 'state.json'), 'utf8')) as { _data_files: { filename: string }[] };
      const e = { item_ids: [] as number[], labels: [] as number[], image_sha256: [] as string[] };
      for (const { filename } of state._data_files) {
        const table = arrow.tableFromIPC(readFileSync(join(dir, 'shards', split, filename)));
        for (let i = 0; i < table.numRows; i++) {
          e.item_ids.push(Number(table.getChild('item_id')!.get(i)));
          e.labels.push(Number(table.getChild('label')!.get(i)));
          const img = (table.getChild('image')!.get(i) as arrow.Vector<arrow.Uint8>).toArray() as Uint8Array;
          e.image_sha256.push(createHash('sha256').update(img).digest('hex'));
        }
      }
      expected.splits[split] = e;
    }
    assert.equal(Object.values(expected.splits).reduce((n, s) => n + s.item_ids.length, 0), 15);
    writeFileSync(join(dir, 'expected.json'), JSON.stringify(expected));
    const run = spawnSync(PYTHON, [SCRIPT, join(dir, 'shards'), join(dir, 'expected.json')], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, HF_DATASETS_OFFLINE: '1', HF_HUB_OFFLINE: '1', TQDM_DISABLE: '1', HF_HOME: join(dir, 'hf') },
    });
    if (run.status === 3) {
      t.skip(`python module missing: ${run.stdout.trim()}`);
      return;
    }
    assert.equal(run.status, 0, `read_shards.py failed:\n${run.stdout}\n${run.stderr}`);
    assert.equal((JSON.parse(run.stdout.trim().split('\n').pop()!) as { ok: boolean }).ok, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
