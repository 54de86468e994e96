/**
 * Test helper: builds a small, realistic data directory for the `report` stage, written with the real schema modules:
 * 3 genres of real covers (`test/helpers/dataset.ts`: the shared set, else the committed few, turned and mirrored
 * to make up the count) preprocessed to 32×32 (`dataset/preprocess.ts`), candidates,
 * labels, selection, manifest + rejected, splits, Arrow shards and the per-pixel mean, a training run's
 * metrics.jsonl, the convnet's and the random forest's eval metrics, the convnet's inspection (`eval/inspect/`), and a
 * pipeline lock file.
 *
 * `partial: true` writes only the manifest and the shards (+ mean), as after `covers make mean`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { resolveConfig, type Config } from '../../pipeline/config.ts';
import { sha256 } from '../../util/fsutil.ts';
import { preprocessImage } from '../../dataset/preprocess.ts';
import { candidatesFormat, type CandidateRow } from '../../schemas/candidates.ts';
import { labelsFormat, type LabelRow } from '../../schemas/labels.ts';
import { imageRelPath, manifestFormat, rejectedFormat, type ManifestRow, type RejectedRow } from '../../schemas/manifest.ts';
import { meanToIPC } from '../../schemas/mean.ts';
import { wilsonInterval, type EpochMetrics, type EvalMetrics } from '../../schemas/metrics.ts';
import { selectionFormat, type SelectionRow } from '../../schemas/selection.ts';
import { shardFileName, shardRecordBatch, shardSchema } from '../../schemas/shards/layout.ts';
import { SPLIT_NAMES, type SplitName } from '../../schemas/shards/names.ts';
import { splitsFormat, type SplitRow } from '../../schemas/splits.ts';
import sharp from 'sharp';
import { listCovers } from './dataset.ts';
import { SPLIT_AUDIT, writeSplitAudit } from '../../schemas/split-audit.ts';
import { auditSplit } from '../../dataset/leakage.ts';
import { INSPECT_DIR, writeInspectImage, writeInspection, type CoverRef } from '../../schemas/inspect.ts';
import { filterGrid, heatOverlay, heatRaster, spriteSheet } from '../../train/visualise.ts';

/** Genres of the fixture: Bandcamp norm names that are also folders of the shared covers. */
export const FIXTURE_GENRES = ['jazz', 'metal', 'pop'] as const;
/** Images per genre per split in the fixture. */
export const FIXTURE_PER_SPLIT: Record<SplitName, number> = { train: 8, validation: 2, test: 4 };
/** Side of the fixture's images, in pixels. */
export const FIXTURE_SIZE = 32;

/** What {@link writeReportFixture} built. */
export interface ReportFixture {
  dataDir: string;
  config: Config;
  genres: string[];
  /** Images in the test split (= the sum of the convnet's confusion matrix). */
  testSize: number;
  /** Rows of manifest.tsv. */
  manifestRows: number;
  /** Image rows in the shards (all splits). */
  shardRows: number;
}

/** Options of {@link writeReportFixture}. */
export interface ReportFixtureOptions {
  /** Only the manifest, the shards and the mean (as after `covers make mean`). */
  partial?: boolean;
  /** A rejection reason to put in rejected.tsv verbatim (to test escaping). */
  hostileReason?: string;
}

/**
 * `n` covers of a genre, JPEG bytes: the genre's real covers in `labels.tsv` order; when fewer are at hand (the
 * committed fixture holds 6 per genre), the rest are made from them, each turned by 90°, 180° or 270° and/or mirrored,
 * and re-encoded (quality 90), so that every image is distinct.
 * @throws Error when the genre has no cover at all.
 */
async function coversOf(genre: string, n: number): Promise<Buffer[]> {
  const real = listCovers().filter((c) => c.genre === genre).slice(0, n).map((c) => readFileSync(c.path));
  if (real.length === 0) throw new Error(`fixture: no ${genre} cover found`);
  const out = [...real];
  for (let v = 1; out.length < n; v++) {
    if (v >= 8) throw new Error(`fixture: only ${real.length} ${genre} covers, too few to make ${n}`);
    for (const bytes of real) {
      if (out.length >= n) break;
      const img = sharp(bytes).rotate(90 * (v % 4));
      out.push(await (v >= 4 ? img.flop() : img).jpeg({ quality: 90 }).toBuffer());
    }
  }
  return out;
}

interface Img {
  genre: string;
  label: number;
  itemId: number;
  artId: number;
  split: SplitName;
  pixels: Uint8Array;
  sha: string;
}

function shardBatch(schema: arrow.Schema, rows: readonly Img[]): arrow.RecordBatch {
  const len = FIXTURE_SIZE * FIXTURE_SIZE * 3;
  const images = new Uint8Array(rows.length * len);
  rows.forEach((r, i) => images.set(r.pixels, i * len));
  return shardRecordBatch(schema, {
    images,
    labels: rows.map((r) => r.label),
    genres: rows.map((r) => r.genre),
    itemIds: rows.map((r) => r.itemId),
    artIds: rows.map((r) => r.artId),
    sha256s: rows.map((r) => r.sha),
  });
}

function writeMean(dataDir: string, train: readonly Img[]): void {
  const S = FIXTURE_SIZE;
  const acc = new Float64Array(S * S * 3);
  for (const r of train) for (let j = 0; j < acc.length; j++) acc[j]! += r.pixels[j]!;
  const mean = Float32Array.from(acc, (v) => v / train.length);
  const chMean = [0, 1, 2].map((c) => {
    let s = 0;
    for (let j = c; j < mean.length; j += 3) s += mean[j]!;
    return s / (S * S);
  });
  const bytes = meanToIPC({ size: S, mean, channelMean: chMean as [number, number, number], channelStd: [61.5, 58.25, 60.75], count: train.length });
  writeFileSync(join(dataDir, 'shards', 'mean.arrow'), bytes);
}

/** A confusion matrix over `testPerClass` images per class whose diagonal holds `correct[k]`, the rest spread. */
function confusion(k: number, testPerClass: number, correct: readonly number[]): number[][] {
  return Array.from({ length: k }, (_, i) => {
    const row = new Array<number>(k).fill(0);
    row[i] = correct[i]!;
    let rest = testPerClass - correct[i]!;
    for (let j = 1; rest > 0; j++, rest--) row[(i + j) % k]!++;
    return row;
  });
}

function evalMetrics(model: string, labels: string[], matrix: number[][], extra: Partial<EvalMetrics>): EvalMetrics {
  const n = matrix.flat().reduce((a, b) => a + b, 0);
  const correct = matrix.reduce((a, row, i) => a + row[i]!, 0);
  return {
    model,
    split: 'test',
    n,
    accuracy: correct / n,
    accuracyInterval95: wilsonInterval(correct, n),
    chance: 1 / labels.length,
    labels,
    perClassAccuracy: matrix.map((row, i) => row[i]! / row.reduce((a, b) => a + b, 0)),
    confusionMatrix: matrix,
    crops: null,
    backend: 'cpu',
    seconds: 1.5,
    details: {},
    ...extra,
  };
}

/**
 * Writes the fixture data directory (≈ 45 real covers at 32×32; takes well under a second).
 * @param dataDir an empty directory.
 */
export async function writeReportFixture(dataDir: string, opts: ReportFixtureOptions = {}): Promise<ReportFixture> {
  const genres = [...FIXTURE_GENRES];
  const config = resolveConfig({ genres, perGenre: 14, image: { size: FIXTURE_SIZE }, train: { crop: 28, epochs: 8, run: 'fixture' }, report: { contactSheet: 12 } }, 'fixture');
  const perGenre = SPLIT_NAMES.reduce((a, s) => a + FIXTURE_PER_SPLIT[s], 0);
  mkdirSync(dataDir, { recursive: true });

  // Real covers → [32, 32, 3] uint8, one per (genre, index); item ids are made up but unique.
  const imgs: Img[] = [];
  for (const [label, genre] of genres.entries()) {
    const covers = await coversOf(genre, perGenre);
    for (const [i, bytes] of covers.entries()) {
      const split: SplitName = i < FIXTURE_PER_SPLIT.train ? 'train' : i < FIXTURE_PER_SPLIT.train + FIXTURE_PER_SPLIT.validation ? 'validation' : 'test';
      const pixels = new Uint8Array(await preprocessImage(bytes, { size: FIXTURE_SIZE, fit: 'cover', maxPixels: 50_000_000 }));
      imgs.push({ genre, label, itemId: 1_000_000 * (label + 1) + i, artId: 3_000_000_000 + 1000 * label + i, split, pixels, sha: sha256(bytes) });
    }
  }

  // The manifest: every image kept by download (one of them later fails preprocessing in `shards`).
  const manifest: ManifestRow[] = imgs.map((m) => ({
    item_id: m.itemId, genre: m.genre, art_id: m.artId, url: `https://f4.bcbits.com/img/a${m.artId}_2.jpg`, sha256: m.sha, bytes: 20_000, width: 350, height: 350, phash: null, band_id: null,
  }));
  manifestFormat.write(join(dataDir, 'manifest.tsv'), manifest);

  // Shards: one image of metal's training split is rejected by `shards` (kept in the manifest, absent from shards).
  const shardRejectedImg = imgs.find((m) => m.genre === 'metal' && m.split === 'train')!;
  const inShards = imgs.filter((m) => m !== shardRejectedImg);
  const schema = shardSchema(FIXTURE_SIZE, genres, 'fixture-config-hash');
  for (const split of SPLIT_NAMES) {
    const dir = join(dataDir, 'shards', split);
    mkdirSync(dir, { recursive: true });
    // Interleave genres, as a shuffled split would; 2 files of record batches of 5 rows.
    const rows = inShards.filter((m) => m.split === split).sort((a, b) => (a.itemId % 1_000_000) - (b.itemId % 1_000_000) || a.label - b.label);
    const half = Math.ceil(rows.length / 2);
    const files = [rows.slice(0, half), rows.slice(half)];
    files.forEach((part, fi) => {
      const batches: arrow.RecordBatch[] = [];
      for (let b = 0; b < part.length; b += 5) batches.push(shardBatch(schema, part.slice(b, b + 5)));
      writeFileSync(join(dir, shardFileName(fi, files.length)), arrow.RecordBatchStreamWriter.writeAll(batches).toUint8Array(true));
    });
  }
  writeFileSync(join(dataDir, 'shards', 'dataset_dict.json'), JSON.stringify({ splits: [...SPLIT_NAMES] }));
  rejectedFormat.write(join(dataDir, 'shards', 'rejected.tsv'), [
    { stage: 'shards', item_id: shardRejectedImg.itemId, genre: 'metal', art_id: shardRejectedImg.artId, url: null, reason: 'truncated', detail: 'VipsJpeg: premature end of JPEG image' },
  ]);
  writeMean(dataDir, inShards.filter((m) => m.split === 'train'));
  const shardRows = inShards.length;

  if (opts.partial) {
    return { dataDir, config, genres, testSize: inShards.filter((m) => m.split === 'test').length, manifestRows: manifest.length, shardRows };
  }

  // discover → label → select: more candidates than exclusive albums, more selected than downloaded.
  const candidates: CandidateRow[] = [];
  const labels: LabelRow[] = [];
  const selection: SelectionRow[] = [];
  const rejected: RejectedRow[] = [];
  for (const [gi, genre] of genres.entries()) {
    const extra = [4, 6, 3][gi]!;
    const ours = imgs.filter((m) => m.genre === genre);
    const all = [...ours.map((m) => ({ itemId: m.itemId, artId: m.artId })), ...Array.from({ length: extra + 3 }, (_, j) => ({ itemId: 9_000_000 + 100 * gi + j, artId: 4_000_000_000 + 100 * gi + j }))];
    all.forEach((a, rank) => {
      candidates.push({ genre, rank: rank + 1, item_id: a.itemId, art_id: a.artId, item_url: `https://artist${gi}.bandcamp.com/album/a${a.itemId}`, title: `Album ${a.itemId}`, band_name: `Band ${gi}`, band_id: 500 + gi });
      const exclusive = rank < all.length - extra;
      // The last candidate has no tags (labels.arrow reason no-tags); the other non-exclusive ones are multi-genre.
      const noTags = rank === all.length - 1;
      labels.push({
        item_id: a.itemId,
        genre,
        tags: exclusive ? [genre, 'experimental'] : noTags ? [] : [genre, genres[(gi + 1) % 3]!],
        exclusive,
        reason: exclusive ? 'exclusive' : noTags ? 'no-tags' : `multi-genre:${genre},${genres[(gi + 1) % 3]}`,
        source: 'tralbum_details',
      });
      if (exclusive) selection.push({ genre, rank: rank + 1, item_id: a.itemId, art_id: a.artId, url: null, sha256: null, band_id: null });
    });
    // The 3 exclusive extras were tried by download and rejected.
    for (const [j, reason] of ['http-404', 'duplicate-of:1000001', opts.hostileReason ?? 'not-an-image'].entries()) {
      rejected.push({ stage: 'download', item_id: 9_000_000 + 100 * gi + j, genre, art_id: 4_000_000_000 + 100 * gi + j, url: `https://f4.bcbits.com/img/a${4_000_000_000 + 100 * gi + j}_2.jpg`, reason: gi === 0 || j === 0 ? reason : 'http-404', detail: '' });
    }
  }
  candidatesFormat.write(join(dataDir, 'candidates.arrow'), candidates);
  labelsFormat.write(join(dataDir, 'labels.arrow'), labels);
  selectionFormat.write(join(dataDir, 'selection.arrow'), selection, { mode: 'crawl' });
  rejectedFormat.write(join(dataDir, 'rejected.tsv'), rejected);
  const splitRows: SplitRow[] = SPLIT_NAMES.flatMap((split) =>
    imgs.filter((m) => m.split === split).map((m, order) => ({ item_id: m.itemId, genre: m.genre, label: m.label, art_id: m.artId, split, order, sha256: m.sha, path: imageRelPath(m.genre, m.artId) })),
  );
  splitsFormat.write(join(dataDir, 'splits.arrow'), splitRows, { seed: '0', ratios: JSON.stringify(config.splits), genres: JSON.stringify(genres) });
  // The leakage audit: the first two training covers form a near-duplicate group; every cover its own artist but two.
  const auditCovers = splitRows.map((r, k) => ({ item_id: r.item_id!, genre: r.genre!, art_id: r.art_id!, split: r.split as SplitName, path: r.path!, phash: null, band_id: k < 2 ? 1 : 100 + k }));
  writeSplitAudit(
    join(dataDir, SPLIT_AUDIT),
    auditSplit(auditCovers, [[0, 1]], [{ i: 0, j: 1, distance: 3 }], { groupBy: 'artist', near: 'group', maxDistance: 10, requested: config.splits }),
  );
  const testSize = imgs.filter((m) => m.split === 'test').length;

  // A training run of 8 epochs with one learning-rate drop.
  const epochs: EpochMetrics[] = Array.from({ length: 8 }, (_, i) => ({
    epoch: i + 1,
    trainLoss: 1.1 * Math.exp(-0.18 * i) + 0.05,
    trainAccuracy: Math.min(1, 0.34 + 0.08 * i),
    validationLoss: 1.1 - 0.04 * i + (i > 5 ? 0.05 : 0),
    validationAccuracy: [0.33, 0.33, 0.5, 0.5, 0.67, 0.5, 0.67, 0.67][i]!,
    learningRate: i < 5 ? 0.01 : 0.001,
    seconds: 2 + i * 0.1,
    imagesPerSecond: 12 + i,
  }));
  mkdirSync(join(dataDir, 'models', 'fixture'), { recursive: true });
  writeFileSync(join(dataDir, 'models', 'fixture', 'metrics.jsonl'), epochs.map((e) => JSON.stringify(e)).join('\n') + '\n');

  mkdirSync(join(dataDir, 'eval'), { recursive: true });
  const testPer = FIXTURE_PER_SPLIT.test;
  writeFileSync(join(dataDir, 'eval', 'metrics.json'), JSON.stringify(evalMetrics('convnet', genres, confusion(3, testPer, [3, 2, 1]), { crops: 10, backend: 'wasm', details: { run: 'fixture' } }), null, 2));
  writeFileSync(join(dataDir, 'eval', 'baseline.json'), JSON.stringify(evalMetrics('random-forest', genres, confusion(3, testPer, [2, 1, 1]), { backend: 'ml-random-forest' }), null, 2));

  await writeInspectFixture(dataDir, genres, imgs.filter((m) => m.split === 'test'), [3, 2, 1]);

  // The runner's lock file (only the fields the report reads matter).
  const stages = ['discover', 'label', 'select', 'download', 'split', 'shards', 'mean', 'train', 'evaluate', 'baseline'];
  const t0 = Date.parse('2026-05-25T10:00:00Z');
  let t = t0;
  const entries = Object.fromEntries(stages.map((s, i) => {
    const durationMs = [42_000, 9_500, 120, 310_000, 80, 12_300, 900, 3_725_000, 61_000, 8_400][i]!;
    const startedAt = new Date(t).toISOString();
    t += durationMs;
    return [s, { version: 1, params: {}, paramsHash: 'x', deps: {}, extraInputs: {}, outputs: {}, outputsHash: 'y', startedAt, finishedAt: new Date(t).toISOString(), durationMs }];
  }));
  writeFileSync(join(dataDir, 'pipeline.lock.json'), JSON.stringify({ lockVersion: 1, stages: entries }, null, 2));

  return { dataDir, config, genres, testSize, manifestRows: manifest.length, shardRows };
}

/**
 * Writes `eval/inspect/` (schemas/inspect.ts) as `inspect` would for the fixture's convnet: predictions that match
 * its confusion matrix (genre i's first `correct[i]` test covers right, the others predicted as the next genres),
 * made-up 5×5 filters, one saliency map per genre, an embedding of every test cover and one source and size.
 */
async function writeInspectFixture(dataDir: string, genres: string[], test: readonly Img[], correct: readonly number[]): Promise<void> {
  const out = join(dataDir, INSPECT_DIR);
  const k = genres.length;
  const S = FIXTURE_SIZE;
  const covers: CoverRef[] = [];
  for (const [row, m] of test.entries()) {
    const i = test.filter((x, j) => j < row && x.label === m.label).length;
    const predicted = i < correct[m.label]! ? m.label : (m.label + 1 + i - correct[m.label]!) % k;
    const file = `covers/${row}.jpg`;
    await writeInspectImage(out, file, { pixels: m.pixels, width: S, height: S, channels: 3 });
    covers.push({ row, itemId: m.itemId, artId: m.artId, label: m.label, predicted, confidence: 0.5 + 0.04 * (row % 5), trueProbability: predicted === m.label ? 0.5 + 0.04 * (row % 5) : 0.2, file });
  }
  const kernel = Float32Array.from({ length: 5 * 5 * 3 * 6 }, (_, i) => Math.sin(i * 0.37));
  await writeInspectImage(out, 'filters-trained.png', filterGrid(kernel, [5, 5, 3, 6], 16));
  await writeInspectImage(out, 'filters-initial.png', filterGrid(kernel.map((v, i) => Math.cos(v * i)), [5, 5, 3, 6], 16));
  const heat = Float32Array.from({ length: 16 }, (_, i) => (i % 5) / 4);
  const saliency = [];
  for (let g = 0; g < k; g++) {
    const c = covers.find((x) => x.label === g)!;
    const item = { row: c.row, target: c.predicted, heat: `saliency/${c.row}-heat.png`, overlay: `saliency/${c.row}-overlay.png` };
    await writeInspectImage(out, item.heat, heatRaster(heat, 4, 4));
    await writeInspectImage(out, item.overlay, heatOverlay(test[c.row]!.pixels, S, heat, 4, 4, 128));
    saliency.push(item);
  }
  await writeInspectImage(out, 'embedding-covers.jpg', spriteSheet(test.map((m) => m.pixels), S, 6));
  const wrong = covers.filter((c) => c.label !== c.predicted);
  const cells = new Map<string, CoverRef[]>();
  for (const c of wrong) cells.set(`${c.label},${c.predicted}`, [...(cells.get(`${c.label},${c.predicted}`) ?? []), c]);
  const point = (c: CoverRef, t: number) => ({ row: c.row, label: c.label, predicted: c.predicted, x: ((c.row * 7 + t) % 12) / 11, y: ((c.row * 5 + 3 * t) % 12) / 11 });
  writeInspection(out, {
    labels: genres,
    model: { run: 'fixture', seed: 0, architecture: 'ConvNet', crop: 28, imageSize: S, testImages: test.length },
    covers,
    filters: { layer: 'conv0', count: 6, kernel: [5, 5], channels: 3, change: 0.4, trained: 'filters-trained.png', initial: 'filters-initial.png' },
    examples: genres.map((_, g) => ({ label: g, right: covers.filter((c) => c.label === g && c.predicted === g).map((c) => c.row), wrong: covers.filter((c) => c.label === g && c.predicted !== g).map((c) => c.row) })),
    confusions: [...cells.values()].map((cs) => ({ label: cs[0]!.label, predicted: cs[0]!.predicted, count: cs.length, rows: cs.map((c) => c.row) })),
    saliency: { method: 'hires-cam', layer: 'conv1', grid: [4, 4], items: saliency },
    sprite: { file: 'embedding-covers.jpg', side: S, columns: 6 },
    embeddings: [
      { name: 'penultimate', title: 'Penultimate-layer activations (64 values per cover)', method: 'umap', inputDims: 64, points: covers.map((c) => point(c, 0)) },
      { name: 'pixels', title: 'Raw pixels, shrunk to 16×16 RGB (768 values per cover)', method: 'umap', inputDims: 768, points: covers.map((c) => point(c, 1)) },
    ],
    groups: [
      { by: 'source', title: 'Source of the album data (labels.arrow)', rows: [{ value: 'tralbum_details', n: covers.length, correct: covers.length - wrong.length }], note: 'Every test album came from one source.' },
      { by: 'size', title: 'Size of the downloaded image (manifest.tsv)', rows: [{ value: '350×350', n: covers.length, correct: covers.length - wrong.length }], note: 'Every test image was downloaded at one size.' },
    ],
    seconds: { load: 0.1 },
  });
}
