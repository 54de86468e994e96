/**
 * Issue 24's "done when", end to end on a simulator catalogue with planted leaks: bands with releases in several
 * genres (the DIR catalogue's `band` column) and covers re-listed under other albums, re-encoded, resized and cropped
 * (`near-dup-album`, `near-dup-genre`), built to shards with the defaults. No band and no planted near-duplicate group
 * spans two splits, every cross-genre planted pair is rejected with its reason, the audit counts every planted group;
 * with `split.groupBy=none` and `dedupe.near=off` the split is the earlier, genre-stratified one.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { resolveConfig, type ConfigInput } from '../pipeline/config.ts';
import { memoryLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import { startSimulator } from '../simulator/server.ts';
import { discoverStage, downloadStage, labelStage, selectStage, shardsStage, splitStage } from '../stages/index.ts';
import { manifestFormat, rejectedFormat } from '../schemas/manifest.ts';
import { splitsFormat } from '../schemas/splits.ts';
import { readSplitAudit, SPLIT_AUDIT } from '../schemas/split-audit.ts';
import { assignSplits, SplitRng } from '../dataset/split.ts';

const tmp = mkdtempSync(join(tmpdir(), 'leakage-e2e-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const GENRES = ['jazz', 'metal', 'rock'];
const PER_GENRE = 36;

/** A DIR catalogue: 36 distinct covers per genre; bands of 1–4 releases, a third of them across genres. */
async function writeCatalogue(dir: string): Promise<void> {
  const rng = new SplitRng(24, 'catalogue');
  const lines = ['path\tgenre\tband'];
  let n = 0;
  for (const genre of GENRES) {
    mkdirSync(join(dir, genre), { recursive: true });
    for (let i = 0; i < PER_GENRE; i++, n++) {
      const grid = Buffer.alloc(10 * 10 * 3);
      for (let k = 0; k < grid.length; k++) grid[k] = rng.below(256);
      const file = `${genre}/c${i}.jpg`;
      writeFileSync(join(dir, file), await sharp(grid, { raw: { width: 10, height: 10, channels: 3 } }).resize(400, 400, { kernel: 'cubic' }).jpeg({ quality: 88 }).toBuffer());
      // band k of genre g: 12 bands per genre of 3 covers; bands 0–3 are shared by all genres ("crossover" bands)
      const b = i % 12;
      lines.push(`${file}\t${genre}\t${b < 4 ? `crossover ${b}` : `${genre} band ${b}`}`);
    }
  }
  writeFileSync(join(dir, 'labels.tsv'), `${lines.join('\n')}\n`);
}

test('planted leaks: with the defaults no band or near-duplicate group spans two splits; off/none gives the earlier split', { timeout: 240_000 }, async () => {
  const cat = join(tmp, 'catalogue');
  await writeCatalogue(cat);
  const sim = await startSimulator({ catalog: cat, seed: 5, faults: 'near-dup-album=0.1,near-dup-genre=0.1' });
  try {
    const planted = sim.catalog.contentFaults().filter((f) => f.faults.some((x) => x === 'near-dup-album' || x === 'near-dup-genre'));
    assert.ok(planted.length >= 6, `${planted.length} planted near-duplicates`);
    const itemOfArt = new Map(sim.catalog.albums.map((a) => [a.artId!, a]));
    const base = (more: ConfigInput) =>
      resolveConfig({
        ...more,
        genres: GENRES,
        perGenre: 24,
        seed: 2,
        bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
        crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 2, pageSize: 12, oversample: 1.5 },
        download: { concurrency: 8, retries: 1 },
        image: { size: 32 },
        train: { crop: 28 },
      });
    const stages = [discoverStage, labelStage, selectStage, downloadStage, splitStage, shardsStage];

    // 1. The defaults: dedupe.near=group, split.groupBy=artist.
    const dataDir = join(tmp, 'defaults');
    await make({ targets: ['shards'], config: base({}), dataDir, stages, log: memoryLogger() });
    const manifest = manifestFormat.read(join(dataDir, 'manifest.tsv'));
    const rejected = rejectedFormat.read(join(dataDir, 'rejected.tsv'));
    const splits = splitsFormat.read(join(dataDir, 'splits.arrow'));
    const splitOf = new Map(splits.map((r) => [r.item_id!, r.split!]));
    assert.equal(manifest.length, 72);
    for (const g of GENRES) assert.equal(manifest.filter((m) => m.genre === g).length, 24, `${g} keeps its balance`);
    assert.ok(manifest.every((m) => /^[0-9a-f]{16}$/.test(m.phash ?? '') && m.band_id !== null), 'every kept cover has a phash and band_id');

    // No band spans two splits.
    const bandSplits = new Map<number, Set<string>>();
    for (const m of manifest) (bandSplits.get(m.band_id!) ?? bandSplits.set(m.band_id!, new Set()).get(m.band_id!)!).add(splitOf.get(m.item_id!)!);
    assert.ok([...bandSplits.values()].some((s) => s.size === 1), 'bands present');
    for (const [b, s] of bandSplits) assert.equal(s.size, 1, `band ${b} spans ${[...s].join(', ')}`);
    const crossGenreBands = [...new Set(manifest.map((m) => m.band_id))].filter((b) => new Set(manifest.filter((m) => m.band_id === b).map((m) => m.genre)).size > 1);
    assert.ok(crossGenreBands.length >= 3, `${crossGenreBands.length} bands with releases in several genres were kept`);

    // Every planted pair whose two albums were both reached: same genre → kept together in one split; other genre → one rejected.
    const audit = readSplitAudit(join(dataDir, SPLIT_AUDIT));
    const groupOf = new Map<number, number>();
    audit.nearDuplicateGroups.forEach((g, gi) => g.covers.forEach((c) => groupOf.set(c.item_id, gi)));
    const fate = (itemId: number) => (splitOf.has(itemId) ? 'kept' : rejected.find((r) => r.item_id === itemId)?.reason ?? 'not reached');
    let sameChecked = 0;
    let crossChecked = 0;
    for (const p of planted) {
      const copy = p.itemId;
      const source = itemOfArt.get(sim.catalog.imageSourceOf(p.artId!))!.itemId;
      const [a, b] = [fate(copy), fate(source)];
      if (a === 'not reached' || b === 'not reached') continue;
      if (p.faults.includes('near-dup-album')) {
        assert.equal(a, 'kept', `same-genre copy ${copy} of ${source} kept (dedupe.near=group)`);
        assert.equal(b, 'kept');
        assert.equal(splitOf.get(copy), splitOf.get(source), `near-duplicates ${copy} and ${source} in one split`);
        assert.ok(groupOf.has(copy) && groupOf.get(copy) === groupOf.get(source), `the audit groups ${copy} with ${source}`);
        sameChecked++;
      } else {
        const reasons = [a, b].filter((x) => x !== 'kept');
        assert.equal(reasons.length, 1, `cross-genre pair ${copy}/${source}: exactly one rejected (${a}, ${b})`);
        assert.match(reasons[0]!, new RegExp(`^near-duplicate-of:(${copy}|${source})$`));
        crossChecked++;
      }
    }
    assert.ok(sameChecked >= 2 && crossChecked >= 2, `planted pairs checked: ${sameChecked} same-genre, ${crossChecked} cross-genre`);
    assert.equal(audit.leaks.validation.shareArtistWithTrain + audit.leaks.test.shareArtistWithTrain, 0);
    assert.equal(audit.leaks.validation.shareNearDuplicateWithTrain + audit.leaks.test.shareNearDuplicateWithTrain, 0);
    for (const g of audit.nearDuplicateGroups) assert.equal(g.splits.length, 1);

    // A rebuild from the manifest (the dataset's lock file) reproduces the same covers, hashes and artists.
    const rebuildDir = join(tmp, 'rebuild');
    await make({ targets: ['download'], config: base({ select: { fromManifest: join(dataDir, 'manifest.tsv') } }), dataDir: rebuildDir, stages, log: memoryLogger() });
    const rebuilt = manifestFormat.read(join(rebuildDir, 'manifest.tsv'));
    const key = (m: (typeof manifest)[number]) => `${m.item_id} ${m.sha256} ${m.phash} ${m.band_id}`;
    assert.deepEqual(rebuilt.map(key).sort(), manifest.map(key).sort());

    // 2. Both defaults off: the near-duplicates are kept and the split is the genre-stratified one of earlier versions.
    const offDir = join(tmp, 'off');
    await make({ targets: ['split'], config: base({ dedupe: { near: 'off' }, split: { groupBy: 'none' } }), dataDir: offDir, stages, log: memoryLogger() });
    const offManifest = manifestFormat.read(join(offDir, 'manifest.tsv'));
    assert.ok(offManifest.every((m) => m.phash === null), 'no hashing with dedupe.near=off');
    assert.ok(!rejectedFormat.read(join(offDir, 'rejected.tsv')).some((r) => r.reason?.startsWith('near-duplicate-of:')));
    const earlier = assignSplits(offManifest.map((m) => ({ itemId: m.item_id!, label: GENRES.indexOf(m.genre!) })), { train: 0.8, validation: 0.1, test: 0.1 }, 2);
    const offSplits = splitsFormat.read(join(offDir, 'splits.arrow'));
    assert.deepEqual(offSplits.map((r) => [r.item_id, r.split, r.order]), earlier.map((e) => [e.itemId, e.split, e.order]));
    const offAudit = readSplitAudit(join(offDir, SPLIT_AUDIT));
    assert.ok(offAudit.leaks.test.shareArtistWithTrain + offAudit.leaks.validation.shareArtistWithTrain > 0, 'the audit shows the artist leak of the earlier split');
  } finally {
    await sim.close();
  }
});
