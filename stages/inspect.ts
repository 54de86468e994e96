/**
 * Stage `inspect`: what the evaluated network learned, for the report, in `DATA_DIR/eval/inspect/`
 * (schemas/inspect.ts): the first conv layer's filters beside the untrained initialisation of the same seed; per
 * genre the most confident right and wrong test covers and the covers of each confusion-matrix cell; class
 * activation maps on the last conv layer (`inspect.saliencyMethod`: HiResCAM or Grad-CAM; input-gradient saliency
 * without a conv layer) blended over a handful of covers per genre; 2-D UMAP embeddings
 * of the penultimate activations and of the raw pixels; and accuracy per `source` of the album data
 * (`labels.arrow`) and per downloaded image size (`manifest.tsv`).
 *
 * It inspects the first training seed's model (`models/<train.run>/`) and reads the predictions `evaluate` made
 * (`eval/predictions.arrow`), so the examples agree with the confusion matrix. Its cost is bounded by sampling: at
 * most `inspect.embedding` covers get a forward pass and `inspect.saliency` per genre a backward pass.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError, type StageContext, type StageImplementation } from '../pipeline/stage.ts';
import { INSPECT_DIR, writeInspectImage, writeInspection, type CoverRef, type Inspection } from '../schemas/inspect.ts';
import { labelsFormat } from '../schemas/labels.ts';
import { manifestFormat } from '../schemas/manifest.ts';
import { readMean } from '../schemas/mean.ts';
import { modelDir, readTrainRecord, type TrainRecord } from '../schemas/model.ts';
import type { ModelSpec } from '../schemas/model-params.ts';
import { PREDICTIONS_OUTPUT, readPredictions, type Prediction } from '../schemas/predictions.ts';
import { splitDir } from '../schemas/shards/names.ts';
import { readSplit, type SplitData } from '../schemas/shards/read.ts';
import { evalCrops, fillBatch, type BatchPlan } from '../train/augment.ts';
import { selectBackend } from '../train/backends.ts';
import { embed2d } from '../train/embedding.ts';
import { accuracyByGroup, pickConfusions, pickExamples, pickSaliencyRows, sampleRows, sizeClasses } from '../train/inspect-select.ts';
import { fileLoader } from '../train/model-io.ts';
import { buildModel } from '../train/models.ts';
import { firstConvKernel, penultimate, planSaliency, saliencyMaps } from '../train/saliency.ts';
import { centreCrop, filterChange, filterGrid, heatOverlay, heatRaster, shrink, spriteSheet } from '../train/visualise.ts';

/** Side of the cover thumbnails of the examples, pixels (at most the image side). */
const THUMB_SIDE = 96;
/** Side of the embedding's hover thumbnails in the sprite sheet, pixels. */
const SPRITE_SIDE = 40;
/** Side the raw pixels are shrunk to for their embedding (16×16×3 = 768 values). */
const PIXEL_SIDE = 16;
/** Smallest side of a saliency overlay, pixels (smaller crops are magnified by a whole factor). */
const OVERLAY_MIN = 128;
/** Images per forward or backward pass. */
const BATCH = 32;

/** The network inputs of `rows`: centre crops, mean-subtracted and scaled (train/augment.ts), `[rows, crop, crop, 3]`. */
function centreInputs(test: SplitData, rows: readonly number[], crop: number, mean: Float32Array | null): Float32Array {
  const [[oy, ox]] = evalCrops(test.size, crop, 1) as [[number, number, 0]];
  const plan: BatchPlan = { indices: Int32Array.from(rows), oy: new Int32Array(rows.length).fill(oy), ox: new Int32Array(rows.length).fill(ox), mirror: new Uint8Array(rows.length) };
  const x = new Float32Array(rows.length * crop * crop * 3);
  fillBatch(x, test.images, test.size, crop, plan, mean);
  return x;
}

/** The `[S, S, 3]` pixels of one test image (a view). */
function imageOf(test: SplitData, row: number): Uint8Array {
  const len = test.size * test.size * 3;
  return test.images.subarray(row * len, (row + 1) * len);
}

/** The resolved architecture recorded in `config.json` (`train` writes the {@link ModelSpec}'s fields). */
function specOf(rec: TrainRecord): ModelSpec | null {
  const a = rec.architecture as Record<string, unknown>;
  if (!Array.isArray(a.convs) || !Array.isArray(a.denses)) return null;
  return { architecture: a.name, convs: a.convs, denses: a.denses, params: a.params ?? {} } as ModelSpec;
}

/** The first conv layer's filters, trained and at the same seed's initialisation, as PNG grids. */
async function writeFilters(out: string, model: tfl.LayersModel, rec: TrainRecord, seed: number): Promise<Inspection['filters']> {
  const trained = firstConvKernel(model);
  const spec = specOf(rec);
  if (!trained || !spec) return null;
  const built = buildModel(spec, rec.crop, rec.labelNames.length, seed);
  const initial = firstConvKernel(built.model)!;
  built.model.dispose();
  const [kh, kw, cin, count] = trained.shape;
  // Cells of at least 40 px and a grid of at least 240 px across.
  const scale = Math.max(2, Math.ceil(40 / Math.max(kh, kw)), Math.ceil(240 / (Math.ceil(Math.sqrt(count)) * kw)));
  await writeInspectImage(out, 'filters-trained.png', filterGrid(trained.kernel, trained.shape, scale));
  await writeInspectImage(out, 'filters-initial.png', filterGrid(initial.kernel, initial.shape, scale));
  const change = filterChange(trained.kernel, initial.kernel, count);
  return { layer: trained.layer, count, kernel: [kh, kw], channels: cin, change, trained: 'filters-trained.png', initial: 'filters-initial.png' };
}

/** `source` per `item_id` from labels.arrow (the exclusive row's, else any), or null when the file is absent. */
function sourcesByItem(path: string | null): Map<number, string> | null {
  if (!path || !existsSync(path)) return null;
  const out = new Map<number, string>();
  for (const r of labelsFormat.read(path)) {
    if (r.item_id === null || r.source === null) continue;
    if (r.exclusive === true || !out.has(r.item_id)) out.set(r.item_id, r.source);
  }
  return out;
}

/** Accuracy per `source` and per downloaded image size class. */
function groups(ps: readonly Prediction[], labelsPath: string | null, manifestPath: string): Inspection['groups'] {
  const out: Inspection['groups'] = [];
  const sources = sourcesByItem(labelsPath);
  if (sources) {
    const rows = accuracyByGroup(ps, (p) => (p.itemId === null ? null : sources.get(p.itemId) ?? null));
    out.push({ by: 'source', title: 'Source of the album data (labels.arrow)', rows, note: rows.length <= 1 ? 'Every test album came from one source.' : null });
  } else out.push({ by: 'source', title: 'Source of the album data (labels.arrow)', rows: [], note: 'labels.arrow is not built (select.fromManifest rebuilds the dataset without labelling).' });
  const sizes = new Map<number, { width: number | null; height: number | null }>();
  if (existsSync(manifestPath)) for (const r of manifestFormat.read(manifestPath)) if (r.item_id !== null) sizes.set(r.item_id, { width: r.width, height: r.height });
  const classes = sizeClasses(sizes);
  const rows = accuracyByGroup(ps, (p) => (p.itemId === null ? null : classes.get(p.itemId) ?? null));
  out.push({ by: 'size', title: 'Size of the downloaded image (manifest.tsv)', rows, note: rows.length <= 1 ? 'Every test image was downloaded at one size.' : null });
  return out;
}

/** The `inspect` stage: model, test shards, mean, predictions, labels and manifest → `eval/inspect/`. */
export const inspectStage: StageImplementation = {
  name: 'inspect',
  async run(ctx: StageContext) {
    const c = ctx.config.inspect;
    const seconds: Record<string, number> = {};
    let t = performance.now();
    const lap = (part: string) => {
      const now = performance.now();
      seconds[part] = (now - t) / 1000;
      t = now;
    };
    const dir = ctx.path(modelDir(ctx.config.train.run));
    if (!existsSync(join(dir, 'config.json'))) throw new UserError(`inspect: ${join(dir, 'config.json')} not found (run \`covers make train\`)`);
    const rec = readTrainRecord(dir);
    const predPath = ctx.path(PREDICTIONS_OUTPUT);
    if (!existsSync(predPath)) throw new UserError(`inspect: ${predPath} not found (run \`covers make evaluate\`)`);
    await selectBackend(ctx.config.train.backend, (l) => ctx.log.info(l));
    const test = await readSplit(ctx.path(splitDir('test')));
    const { labels, predictions: ps } = readPredictions(predPath);
    if (labels.join('\n') !== test.labelNames.join('\n') || ps.length !== test.n || ps.some((p, i) => p.row !== i || p.label !== test.labels[i])) {
      throw new UserError(`inspect: ${PREDICTIONS_OUTPUT} does not match the test shards (${ps.length} predictions, ${test.n} images); rerun \`covers make evaluate\``);
    }
    if (test.size !== rec.imageSize) throw new UserError(`inspect: test images are ${test.size}×${test.size}, the model was trained on ${rec.imageSize}×${rec.imageSize}; retrain`);
    const mean = rec.subtractMean ? readMean(ctx.path('shards/mean.arrow'), test.size) : null;
    const first = rec.repeats?.[0] ?? { seed: rec.config.seed ?? 0, dir: '.' };
    const model = await tfl.loadLayersModel(fileLoader(join(dir, first.dir)));
    const crop = rec.crop;
    const classes = labels.length;
    const out = ctx.out(INSPECT_DIR);
    mkdirSync(out, { recursive: true });
    lap('load');

    const filters = await writeFilters(out, model, rec, first.seed);
    lap('filters');

    const examples = pickExamples(ps, classes, c.examples);
    const confusions = pickConfusions(ps, c.confusions);
    const salRows = pickSaliencyRows(ps, classes, c.saliency);
    const embRows = sampleRows(test.n, c.embedding, ctx.config.seed);
    const progress = ctx.progress('inspect: forward and backward passes', embRows.length + salRows.length);

    // Penultimate activations of the sampled covers (centre crops), and their raw pixels shrunk to 16×16.
    let dims = 0;
    let features = new Float32Array(0);
    for (let s = 0; s < embRows.length; s += BATCH) {
      const rows = embRows.slice(s, s + BATCH);
      const r = penultimate(model, centreInputs(test, rows, crop, mean), rows.length, crop);
      if (!dims) {
        dims = r.dims;
        features = new Float32Array(embRows.length * dims);
      }
      features.set(r.features, s * dims);
      progress.tick(rows.length);
      if (ctx.signal.aborted) throw ctx.signal.reason;
    }
    lap('activations');

    // Saliency of each picked cover, for the logit of its predicted genre.
    const plan = planSaliency(model, crop, c.saliencyMethod);
    const side = crop >= OVERLAY_MIN ? crop : crop * Math.ceil(OVERLAY_MIN / crop);
    const [gh, gw] = plan.grid;
    const saliencyItems: Inspection['saliency']['items'] = [];
    for (let s = 0; s < salRows.length; s += BATCH / 2) {
      const rows = salRows.slice(s, s + BATCH / 2);
      const maps = saliencyMaps(model, plan, centreInputs(test, rows, crop, mean), rows.length, crop, rows.map((r) => ps[r]!.predicted));
      for (const [i, row] of rows.entries()) {
        const heat = maps.subarray(i * gh * gw, (i + 1) * gh * gw);
        const item = { row, target: ps[row]!.predicted, heat: `saliency/${row}-heat.png`, overlay: `saliency/${row}-overlay.png` };
        await writeInspectImage(out, item.heat, heatRaster(heat, gh, gw));
        await writeInspectImage(out, item.overlay, heatOverlay(centreCrop(imageOf(test, row), test.size, crop), crop, heat, gh, gw, side));
        saliencyItems.push(item);
      }
      progress.tick(rows.length);
      if (ctx.signal.aborted) throw ctx.signal.reason;
    }
    progress.stop();
    model.dispose();
    lap('saliency');

    // Embeddings: penultimate activations and raw pixels of the same covers, and their hover thumbnails.
    const embeddings: Inspection['embeddings'] = [];
    let sprite: Inspection['sprite'] = null;
    if (embRows.length) {
      const pixels = new Float32Array(embRows.length * PIXEL_SIDE * PIXEL_SIDE * 3);
      embRows.forEach((row, i) => pixels.set(shrink(imageOf(test, row), test.size, PIXEL_SIDE), i * PIXEL_SIDE * PIXEL_SIDE * 3));
      const sets = [
        { name: 'penultimate', title: `Penultimate-layer activations (${dims} values per cover)`, vectors: features, dims },
        { name: 'pixels', title: `Raw pixels, shrunk to ${PIXEL_SIDE}×${PIXEL_SIDE} RGB (${PIXEL_SIDE * PIXEL_SIDE * 3} values per cover)`, vectors: pixels, dims: PIXEL_SIDE * PIXEL_SIDE * 3 },
      ];
      for (const set of sets) {
        const bar = ctx.progress(`inspect: UMAP of ${set.name}`, 1);
        const xy = await embed2d(set.vectors, embRows.length, set.dims, { seed: ctx.config.seed, onEpoch: (done, total) => { bar.setTotal(total); bar.update(done); } });
        bar.stop();
        embeddings.push({
          name: set.name, title: set.title, method: 'umap', inputDims: set.dims,
          points: embRows.map((row, i) => ({ row, label: ps[row]!.label, predicted: ps[row]!.predicted, x: xy[i * 2]!, y: xy[i * 2 + 1]! })),
        });
        if (ctx.signal.aborted) throw ctx.signal.reason;
      }
      const spriteSide = Math.min(SPRITE_SIDE, test.size);
      const columns = Math.min(embRows.length, 50);
      await writeInspectImage(out, 'embedding-covers.jpg', spriteSheet(embRows.map((row) => shrink(imageOf(test, row), test.size, spriteSide)), spriteSide, columns));
      sprite = { file: 'embedding-covers.jpg', side: spriteSide, columns };
    }
    lap('embedding');

    // Thumbnails of every cover the examples and saliency maps refer to.
    const referenced = new Set<number>([...examples.flatMap((e) => [...e.right, ...e.wrong]), ...confusions.flatMap((x) => x.rows), ...salRows]);
    const thumb = Math.min(THUMB_SIDE, test.size);
    const covers: CoverRef[] = [];
    for (const row of [...referenced].sort((a, b) => a - b)) {
      const p = ps[row]!;
      const file = `covers/${row}.jpg`;
      await writeInspectImage(out, file, { pixels: shrink(imageOf(test, row), test.size, thumb), width: thumb, height: thumb, channels: 3 });
      covers.push({ row, itemId: p.itemId, artId: p.artId, label: p.label, predicted: p.predicted, confidence: p.confidence, trueProbability: p.trueProbability, file });
    }
    lap('thumbnails');

    const labelsRel = ctx.config.select.fromManifest ? null : ctx.path('labels.arrow');
    const grouped = groups(ps, labelsRel, ctx.path('manifest.tsv'));
    lap('groups');

    writeInspection(out, {
      labels,
      model: { run: ctx.config.train.run, seed: first.seed, architecture: rec.architecture.name, crop, imageSize: test.size, testImages: test.n },
      covers, filters, examples, confusions,
      saliency: { method: plan.method, layer: plan.layer, grid: plan.grid, items: saliencyItems },
      sprite, embeddings, groups: grouped, seconds,
    });
    const total = Object.values(seconds).reduce((a, b) => a + b, 0);
    ctx.log.info(`inspected the ${rec.architecture.name} model (seed ${first.seed}): ${saliencyItems.length} saliency maps (${plan.method}${plan.layer ? ` on ${plan.layer}` : ''}), ${embRows.length} covers embedded, ${covers.length} example covers, in ${total.toFixed(1)} s`);
  },
};
