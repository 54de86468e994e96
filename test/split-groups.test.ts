/**
 * Grouped split (dataset/split.ts `assignGroupedSplits`, `leakGroups`) and the `split` stage's leakage audit
 * (`split/audit.json`): no artist and no near-duplicate group on both sides; fractions close to the requested ones;
 * `split.groupBy=none` with `dedupe.near=off` gives the earlier split byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assignGroupedSplits, assignSplits, leakGroups, SplitRng } from '../dataset/split.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { createLogger } from '../util/log.ts';
import { splitStage } from '../stages/index.ts';
import { splitsFormat } from '../schemas/splits.ts';
import { readSplitAudit, SPLIT_AUDIT } from '../schemas/split-audit.ts';
import type { ManifestRow } from '../schemas/manifest.ts';
import { writeManifest } from './helpers/dataset.ts';
import { phashToHex } from '../dataset/phash.ts';

const R = { train: 0.8, validation: 0.1, test: 0.1 };

test('assignGroupedSplits: one-item groups give assignSplits\'s result exactly', () => {
  const items = Array.from({ length: 157 }, (_, k) => ({ itemId: 5000 + 7 * k, label: k % 3 }));
  for (const seed of [0, 1, 9]) {
    assert.deepEqual(
      assignGroupedSplits(items.map((it, k) => ({ ...it, group: k })), R, seed).map(({ itemId, split, order }) => ({ itemId, split, order })),
      assignSplits(items, R, seed).map(({ itemId, split, order }) => ({ itemId, split, order })),
    );
  }
});

test('assignGroupedSplits: every group in one split, per-genre fractions close to the targets, stable under an addition', () => {
  const rng = new SplitRng(5, 'groups');
  // 3 genres × 400 covers; artists with 1–12 covers, some across genres.
  const items: { itemId: number; label: number; bandId: number }[] = [];
  let band = 0;
  while (items.length < 1200) {
    const size = 1 + (rng.below(4) === 0 ? rng.below(12) : 0);
    band++;
    for (let k = 0; k < size && items.length < 1200; k++) items.push({ itemId: 100_000 + items.length, label: rng.below(3), bandId: band });
  }
  const group = leakGroups(items, true, []);
  const a = assignGroupedSplits(items.map((it, k) => ({ ...it, group: group[k]! })), R, 3);
  const splitOfBand = new Map<number, string>();
  for (const x of a) {
    const s = splitOfBand.get(x.bandId);
    if (s) assert.equal(x.split, s, `band ${x.bandId} is in ${s} and ${x.split}`);
    splitOfBand.set(x.bandId, x.split);
  }
  for (let l = 0; l < 3; l++) {
    const mine = a.filter((x) => x.label === l);
    for (const s of ['train', 'validation', 'test'] as const) {
      const frac = mine.filter((x) => x.split === s).length / mine.length;
      assert.ok(Math.abs(frac - R[s]) < 0.03, `label ${l} ${s}: ${frac.toFixed(3)} vs ${R[s]}`);
    }
  }
  // One more single cover: every other cover keeps its split, or at most a handful move (the targets grew by one).
  const more = [...items, { itemId: 1, label: 0, bandId: 999_999 }];
  const g2 = leakGroups(more, true, []);
  const b = assignGroupedSplits(more.map((it, k) => ({ ...it, group: g2[k]! })), R, 3);
  const before = new Map(a.map((x) => [x.itemId, x.split]));
  const moved = b.filter((x) => before.has(x.itemId) && before.get(x.itemId) !== x.split).length;
  assert.ok(moved <= 2, `${moved} covers moved after one addition`);
});

test('leakGroups joins artists and near-duplicate groups into components', () => {
  const items = [{ bandId: 1 }, { bandId: 2 }, { bandId: 1 }, { bandId: null }, { bandId: 3 }, { bandId: null }];
  assert.deepEqual(leakGroups(items, true, [[1, 3]]), [0, 1, 0, 1, 4, 5]);
  assert.deepEqual(leakGroups(items, false, [[1, 3]]), [0, 1, 2, 1, 4, 5]);
  assert.deepEqual(leakGroups(items, true, [[3, 4], [0, 5]]), [0, 1, 0, 3, 3, 0]);
});

function rows(genres: string[], per: number): ManifestRow[] {
  return genres.flatMap((genre, g) => Array.from({ length: per }, (_, i) => ({
    item_id: 10_000 + g * 1000 + i, genre, art_id: 70_000 + g * 1000 + i, url: null, sha256: `s${g}-${i}`, bytes: 100, width: 300, height: 300,
    // every cover its own random hash, far from the others
    phash: phashToHex({ hi: new SplitRng(g * 1000 + i, 'h').nextUint32(), lo: new SplitRng(g * 1000 + i, 'l').nextUint32() }),
    band_id: 500 + g * 1000 + (i % 15), // 15 artists per genre, 4 covers each
  })));
}

test('split stage: artists and near-duplicate groups stay in one split; the audit counts them; groupBy=none + near=off is the earlier split', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'split-groups-'));
  try {
    const genres = ['rock', 'jazz', 'metal'];
    const log = createLogger({ level: 'quiet' });
    const manifest = rows(genres, 60);
    // A near-duplicate pair in jazz (2 bits apart), and one cover of a rock artist under a jazz album too.
    const j0 = manifest.find((r) => r.item_id === 11_000)!;
    const j7 = manifest.find((r) => r.item_id === 11_007)!;
    j7.phash = j0.phash!.slice(0, 15) + (parseInt(j0.phash!.slice(15), 16) ^ 3).toString(16);
    manifest.find((r) => r.item_id === 11_001)!.band_id = 500;

    writeManifest(dir, manifest);
    await runStageOnce(splitStage, { config: resolveConfig({ genres, seed: 3 }), dataDir: dir, log });
    const out = splitsFormat.read(join(dir, 'splits.arrow'));
    const splitOf = new Map(out.map((r) => [r.item_id!, r.split!]));
    const bandSplits = new Map<number, Set<string>>();
    for (const m of manifest) (bandSplits.get(m.band_id!) ?? bandSplits.set(m.band_id!, new Set()).get(m.band_id!)!).add(splitOf.get(m.item_id!)!);
    for (const [b, s] of bandSplits) assert.equal(s.size, 1, `band ${b} in ${[...s].join(', ')}`);
    assert.equal(splitOf.get(11_000), splitOf.get(11_007));
    const audit = readSplitAudit(join(dir, SPLIT_AUDIT));
    assert.equal(audit.leaks.validation.shareArtistWithTrain + audit.leaks.test.shareArtistWithTrain, 0);
    assert.equal(audit.leaks.validation.shareNearDuplicateWithTrain + audit.leaks.test.shareNearDuplicateWithTrain, 0);
    assert.equal(audit.nearDuplicateGroups.length, 1);
    assert.deepEqual(audit.nearDuplicateGroups[0]!.covers.map((c) => c.item_id), [11_000, 11_007]);
    assert.equal(audit.nearDuplicateGroups[0]!.pairs[0]!.distance, 2);
    assert.equal(audit.largestArtists[0]!.band_id, 500);
    assert.equal(audit.largestArtists[0]!.covers, 5);
    assert.deepEqual(audit.largestArtists[0]!.genres, { rock: 4, jazz: 1 });
    assert.equal(audit.multiCoverArtists, 45);
    const total = audit.fractions.achieved.train + audit.fractions.achieved.validation + audit.fractions.achieved.test;
    assert.ok(Math.abs(total - 1) < 1e-9);
    assert.ok(Math.abs(audit.fractions.achieved.train - 0.8) < 0.05, JSON.stringify(audit.fractions.achieved));

    // The defaults off: the earlier, genre-stratified split, byte for byte (same as with no phash/band_id columns).
    const off = resolveConfig({ genres, seed: 3, split: { groupBy: 'none' }, dedupe: { near: 'off' } });
    await runStageOnce(splitStage, { config: off, dataDir: dir, log });
    const offBytes = readFileSync(join(dir, 'splits.arrow'));
    writeManifest(dir, manifest.map((m) => ({ ...m, phash: null, band_id: null })));
    await runStageOnce(splitStage, { config: resolveConfig({ genres, seed: 3 }), dataDir: dir, log });
    assert.deepEqual(readFileSync(join(dir, 'splits.arrow')), offBytes, 'no groups: the same bytes as groupBy=none, near=off');
    const leaky = readSplitAudit(join(dir, SPLIT_AUDIT));
    assert.equal(leaky.withBandId, 0);
    // With groupBy=none the audit shows the artists that leak.
    writeManifest(dir, manifest);
    await runStageOnce(splitStage, { config: resolveConfig({ genres, seed: 3, split: { groupBy: 'none' } }), dataDir: dir, log });
    const none = readSplitAudit(join(dir, SPLIT_AUDIT));
    assert.ok(none.leaks.test.shareArtistWithTrain > 0, JSON.stringify(none.leaks));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
