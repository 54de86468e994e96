/** Stage `split` and its pure parts (dataset/split.ts): exact stratified counts, seeded portable order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assignSplits, rankKey, shuffleInPlace, splitCounts, SplitRng } from '../dataset/split.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { splitStage } from '../stages/index.ts';
import { splitsFormat } from '../schemas/splits.ts';
import { manifestFormat, type ManifestRow } from '../schemas/manifest.ts';
import { writeManifest } from './helpers/dataset.ts';

const R = { train: 0.8, validation: 0.1, test: 0.1 };

test('splitCounts: largest remainder gives exact totals', () => {
  assert.deepEqual(splitCounts(10, R), { train: 8, validation: 1, test: 1 });
  assert.deepEqual(splitCounts(1000, R), { train: 800, validation: 100, test: 100 });
  assert.deepEqual(splitCounts(7, R), { train: 5, validation: 1, test: 1 }); // quotas 5.6, 0.7, 0.7: the two leftovers go to .7, .7
  assert.deepEqual(splitCounts(0, R), { train: 0, validation: 0, test: 0 });
  assert.deepEqual(splitCounts(30, R), { train: 24, validation: 3, test: 3 });
  assert.deepEqual(splitCounts(100, { train: 0.42, validation: 0.29, test: 0.29 }), { train: 42, validation: 29, test: 29 });
  for (let n = 0; n < 300; n++) {
    const c = splitCounts(n, { train: 0.7, validation: 0.2, test: 0.1 });
    assert.equal(c.train + c.validation + c.test, n);
    for (const [s, r] of [['train', 0.7], ['validation', 0.2], ['test', 0.1]] as const) assert.ok(Math.abs(c[s] - n * r) < 1, `n=${n} ${s}`);
  }
});

test('SplitRng is seeded and uniform; shuffle is a permutation', () => {
  const a = new SplitRng(7), b = new SplitRng(7), c = new SplitRng(8);
  const sa = Array.from({ length: 20 }, () => a.nextUint32());
  assert.deepEqual(sa, Array.from({ length: 20 }, () => b.nextUint32()));
  assert.notDeepEqual(sa, Array.from({ length: 20 }, () => c.nextUint32()));
  const hist = new Array(10).fill(0);
  const r = new SplitRng(1);
  for (let i = 0; i < 20000; i++) hist[r.below(10)]++;
  for (const h of hist) assert.ok(h > 1800 && h < 2200, `bucket ${h}`);
  const xs = Array.from({ length: 50 }, (_, i) => i);
  const shuffled = shuffleInPlace([...xs], new SplitRng(3));
  assert.notDeepEqual(shuffled, xs);
  assert.deepEqual([...shuffled].sort((p, q) => p - q), xs);
  assert.equal(rankKey(1, 42), rankKey(1, 42));
  assert.notEqual(rankKey(1, 42), rankKey(2, 42));
});

test('assignSplits: stratified, exact per genre, independent of input order, train shuffled', () => {
  const items = [0, 1, 2].flatMap((label) => Array.from({ length: 37 + label }, (_, i) => ({ itemId: 5000 + label * 100 + i, label })));
  const a = assignSplits(items, R, 0);
  const b = assignSplits([...items].reverse(), R, 0);
  assert.deepEqual(a, b, 'input order does not matter');
  for (const label of [0, 1, 2]) {
    const n = 37 + label;
    const want = splitCounts(n, R);
    for (const s of ['train', 'validation', 'test'] as const) assert.equal(a.filter((x) => x.label === label && x.split === s).length, want[s], `label ${label} ${s}`);
  }
  assert.equal(a.length, items.length);
  assert.equal(new Set(a.map((x) => x.itemId)).size, items.length, 'every item exactly once');
  for (const s of ['train', 'validation', 'test'] as const) assert.deepEqual(a.filter((x) => x.split === s).map((x) => x.order), a.filter((x) => x.split === s).map((_, i) => i));
  const trainLabels = a.filter((x) => x.split === 'train').map((x) => x.label);
  const runs = trainLabels.filter((l, i) => i > 0 && l !== trainLabels[i - 1]).length;
  assert.ok(runs > trainLabels.length / 3, `training order is mixed (${runs} label changes in ${trainLabels.length})`);
  const v = a.filter((x) => x.split === 'validation');
  assert.deepEqual(v, [...v].sort((p, q) => p.label - q.label || p.itemId - q.itemId), 'validation sorted by label, item_id');
  const other = assignSplits(items, R, 1);
  assert.notDeepEqual(other.map((x) => x.itemId), a.map((x) => x.itemId), 'another seed, another split');
  // Adding an item to one genre leaves the other genres' assignment unchanged.
  const more = assignSplits([...items, { itemId: 9999, label: 2 }], R, 0);
  const assignment = (xs: typeof a, label: number) => xs.filter((x) => x.label === label).map((x) => `${x.itemId}:${x.split}`).sort();
  assert.deepEqual(assignment(more, 0), assignment(a, 0));
  assert.throws(() => assignSplits([{ itemId: 1, label: 0 }, { itemId: 1, label: 1 }], R, 0), /item_id 1 appears twice/);
});

function manifestRows(genres: string[], per: number): ManifestRow[] {
  return genres.flatMap((genre, g) => Array.from({ length: per }, (_, i) => ({
    item_id: 10_000 + g * 1000 + i, genre, art_id: 70_000 + g * 1000 + i, url: null, sha256: `s${g}-${i}`, bytes: 100, width: 300, height: 300, phash: null, band_id: null,
  })));
}

test('split stage writes splits.arrow; the same manifest gives the same bytes; bad genres are named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'split-'));
  try {
    const config = resolveConfig({ genres: ['rock', 'jazz', 'metal'], seed: 3 });
    const log = createLogger({ level: 'quiet' });
    const rows = manifestRows(config.genres, 20);
    writeManifest(dir, rows);
    await runStageOnce(splitStage, { config, dataDir: dir, log });
    const out = splitsFormat.read(join(dir, 'splits.arrow'));
    assert.equal(out.length, 60);
    assert.deepEqual(['train', 'validation', 'test'].map((s) => out.filter((r) => r.split === s).length), [48, 6, 6]);
    const r0 = out.find((r) => r.item_id === 11_005)!;
    assert.equal(r0.genre, 'jazz');
    assert.equal(r0.label, 1);
    assert.equal(r0.art_id, 71_005);
    assert.equal(r0.sha256, 's1-5');
    assert.equal(r0.path, 'images/jazz/a71005.jpg');
    const { readFileSync } = await import('node:fs');
    const first = readFileSync(join(dir, 'splits.arrow'));
    writeManifest(dir, [...rows].reverse());
    await runStageOnce(splitStage, { config, dataDir: dir, log });
    assert.deepEqual(readFileSync(join(dir, 'splits.arrow')), first, 'row order of the manifest does not matter');
    writeManifest(dir, [...rows, { ...rows[0]!, item_id: 1, genre: 'polka' }]);
    await assert.rejects(runStageOnce(splitStage, { config, dataDir: dir, log }), /item_id 1 has genre "polka", which is not in config genres/);
    writeManifest(dir, [...rows, rows[3]!]);
    await assert.rejects(runStageOnce(splitStage, { config, dataDir: dir, log }), /item_id 10003 appears twice/);
    assert.equal(manifestFormat.read(join(dir, 'manifest.tsv')).length, 61);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
