/**
 * Stage `inspect`: what the evaluated network learned, for the report, in `DATA_DIR/eval/inspect/`
 * (schemas/inspect.ts): the first conv layer's filters beside the untrained initialisation of the same seed; per
 * genre the most confident right and wrong test covers and the covers of each confusion-matrix cell; class
 * activation maps on the last conv layer (`inspect.saliencyMethod`: HiResCAM or Grad-CAM; input-gradient saliency
 * without a conv layer) blended over a handful of covers per genre; 2-D UMAP embeddings
 * of the penultimate activations, of the raw pixels and, with `pretrained.model` set, of the pretrained network's
 * features of the test split (`features/test`, written by the `features` stage); and accuracy per `source` of the
 * album data (`labels.arrow`) and per downloaded image size (`manifest.tsv`).
 *
 * It inspects the first training seed's model (`models/<train.run>/`) and reads the predictions `evaluate` made
 * (`eval/predictions.arrow`), so the examples agree with the confusion matrix. Its cost is bounded by sampling: at
 * most `inspect.embedding` covers get a forward pass and `inspect.saliency` per genre a backward pass.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { InterruptedError, UserError, type StageContext, type StageImplementation } from '../pipeline/stage.ts';
import type { Progress } from '../util/progress.ts';
import { INSPECT_DIR, writeInspectImage, writeInspection, type CoverRef, type Inspection } from '../schemas/inspect.ts';
import { featuresSplitDir, readFeatureSplit } from '../schemas/features.ts';
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
import { firstConvKernel, penultimate, planSaliency, saliencyMaps, type SaliencyPlan } from '../train/saliency.ts';
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

/** What the steps below share: the test split, its predictions, the model and where images go. */
interface Inspecting {
  ctx: StageContext;
  test: SplitData;
  ps: Prediction[];
  model: tfl.LayersModel;
  crop: number;
  mean: Float32Array | null;
  /** The inspect directory being written (absolute). */
  out: string;
}

/** Reads the model record, the test split and the predictions, and checks that they belong together. */
async function readInputs(ctx: StageContext): Promise<{ dir: string; rec: TrainRecord; test: SplitData; labels: string[]; ps: Prediction[] }> {
  const dir = ctx.path(modelDir(ctx.config.train.run));
  if (!existsSync(join(dir, 'config.json'))) throw new UserError(`inspect: ${join(dir, 'config.json')} not found (run \`covers make train\`)`);
  const rec = readTrainRecord(dir);
  const predPath = ctx.path(PREDICTIONS_OUTPUT);
  if (!existsSync(predPath)) throw new UserError(`inspect: ${predPath} not found (run \`covers make evaluate\`)`);
  const test = await readSplit(ctx.path(splitDir('test')));
  const { labels, predictions: ps } = readPredictions(predPath);
  if (labels.join('\n') !== test.labelNames.join('\n') || ps.length !== test.n || ps.some((p, i) => p.row !== i || p.label !== test.labels[i])) {
    throw new UserError(`inspect: ${PREDICTIONS_OUTPUT} does not match the test shards (${ps.length} predictions, ${test.n} images); rerun \`covers make evaluate\``);
  }
  if (test.size !== rec.imageSize) throw new UserError(`inspect: test images are ${test.size}×${test.size}, the model was trained on ${rec.imageSize}×${rec.imageSize}; retrain`);
  return { dir, rec, test, labels, ps };
}

/** Penultimate activations of `rows` (centre crops), `[rows, dims]`, ticking `progress` per batch. */
function activations(x: Inspecting, rows: readonly number[], progress: Progress): { features: Float32Array; dims: number } {
  let dims = 0;
  let features = new Float32Array(0);
  for (let s = 0; s < rows.length; s += BATCH) {
    const batch = rows.slice(s, s + BATCH);
    const r = penultimate(x.model, centreInputs(x.test, batch, x.crop, x.mean), batch.length, x.crop);
    if (!dims) {
      dims = r.dims;
      features = new Float32Array(rows.length * dims);
    }
    features.set(r.features, s * dims);
    progress.tick(batch.length);
    if (x.ctx.signal.aborted) throw new InterruptedError();
  }
  return { features, dims };
}

/** Saliency maps of `rows` for the logit of each one's predicted genre, written as heat maps and overlays. */
async function writeSaliency(x: Inspecting, rows: readonly number[], plan: SaliencyPlan, progress: Progress): Promise<Inspection['saliency']['items']> {
  const side = x.crop >= OVERLAY_MIN ? x.crop : x.crop * Math.ceil(OVERLAY_MIN / x.crop);
  const [gh, gw] = plan.grid;
  const items: Inspection['saliency']['items'] = [];
  for (let s = 0; s < rows.length; s += BATCH / 2) {
    const batch = rows.slice(s, s + BATCH / 2);
    const maps = saliencyMaps(x.model, plan, centreInputs(x.test, batch, x.crop, x.mean), batch.length, x.crop, batch.map((r) => x.ps[r]!.predicted));
    for (const [i, row] of batch.entries()) {
      const heat = maps.subarray(i * gh * gw, (i + 1) * gh * gw);
      const item = { row, target: x.ps[row]!.predicted, heat: `saliency/${row}-heat.png`, overlay: `saliency/${row}-overlay.png` };
      await writeInspectImage(x.out, item.heat, heatRaster(heat, gh, gw));
      await writeInspectImage(x.out, item.overlay, heatOverlay(centreCrop(imageOf(x.test, row), x.test.size, x.crop), x.crop, heat, gh, gw, side));
      items.push(item);
    }
    progress.tick(batch.length);
    if (x.ctx.signal.aborted) throw new InterruptedError();
  }
  return items;
}

/** Vectors of the sampled test covers to embed: `[rows, dims]` float32, row-major. */
interface VectorSet {
  name: string;
  title: string;
  vectors: Float32Array;
  dims: number;
}

/**
 * The pretrained network's features of `rows` of the test split, from `features/test` (schemas/features.ts: one row
 * per test shard row, in shard order), or null when `pretrained.model` is not set.
 * @throws UserError naming the directory when the features are missing, come from another `pretrained.model`, or do
 *   not line up with the test shards row by row (count, genre, item id).
 */
function pretrainedFeatures(ctx: StageContext, ps: readonly Prediction[], rows: readonly number[]): VectorSet | null {
  const model = ctx.config.pretrained.model;
  if (!model) return null;
  const dir = ctx.path(featuresSplitDir('test'));
  const rerun = 'rerun `covers make features`';
  if (!existsSync(dir)) throw new UserError(`inspect: pretrained.model is set but ${dir} is not built; ${rerun}`);
  const f = readFeatureSplit(dir);
  if (f.meta.model !== model) throw new UserError(`inspect: ${dir} holds the features of ${f.meta.model}, not of pretrained.model (${model}); ${rerun}`);
  if (f.rows !== ps.length) throw new UserError(`inspect: ${dir} has ${f.rows} rows, the test shards ${ps.length} images; ${rerun}`);
  const bad = ps.findIndex((p, i) => f.labels[i] !== p.label || f.itemIds[i] !== (p.itemId ?? 0));
  if (bad >= 0) throw new UserError(`inspect: row ${bad} of ${dir} (item_id ${f.itemIds[bad]}) is not test image ${bad} (item_id ${ps[bad]!.itemId}); ${rerun}`);
  const d = f.meta.dim;
  const vectors = new Float32Array(rows.length * d);
  rows.forEach((row, i) => vectors.set(f.features.subarray(row * d, (row + 1) * d), i * d));
  const name = model.split(/[\\/]/).pop() || model;
  return { name: 'pretrained', title: `Pretrained features: ${name} at ${f.meta.layer} (${d} values per cover)`, vectors, dims: d };
}

/**
 * UMAP embeddings of the penultimate activations, of `extra` (the pretrained features, when configured) and of the
 * raw pixels (shrunk) of `rows`, and their sprite sheet.
 */
async function writeEmbeddings(x: Inspecting, rows: readonly number[], act: { features: Float32Array; dims: number }, extra: VectorSet | null): Promise<{ embeddings: Inspection['embeddings']; sprite: Inspection['sprite'] }> {
  if (!rows.length) return { embeddings: [], sprite: null };
  const { test, ps, ctx } = x;
  const px = PIXEL_SIDE * PIXEL_SIDE * 3;
  const pixels = new Float32Array(rows.length * px);
  rows.forEach((row, i) => pixels.set(shrink(imageOf(test, row), test.size, PIXEL_SIDE), i * px));
  const sets: VectorSet[] = [
    { name: 'penultimate', title: `Penultimate-layer activations (${act.dims} values per cover)`, vectors: act.features, dims: act.dims },
    ...(extra ? [extra] : []),
    { name: 'pixels', title: `Raw pixels, shrunk to ${PIXEL_SIDE}×${PIXEL_SIDE} RGB (${px} values per cover)`, vectors: pixels, dims: px },
  ];
  const embeddings: Inspection['embeddings'] = [];
  for (const set of sets) {
    const bar = ctx.progress(`inspect: UMAP of ${set.name}`, 1);
    const xy = await embed2d(set.vectors, rows.length, set.dims, { seed: ctx.config.seed, onEpoch: (done, total) => { bar.setTotal(total); bar.update(done); } });
    bar.stop();
    embeddings.push({
      name: set.name, title: set.title, method: 'umap', inputDims: set.dims,
      points: rows.map((row, i) => ({ row, label: ps[row]!.label, predicted: ps[row]!.predicted, x: xy[i * 2]!, y: xy[i * 2 + 1]! })),
    });
    if (ctx.signal.aborted) throw new InterruptedError();
  }
  const side = Math.min(SPRITE_SIDE, test.size);
  const columns = Math.min(rows.length, 50);
  await writeInspectImage(x.out, 'embedding-covers.jpg', spriteSheet(rows.map((row) => shrink(imageOf(test, row), test.size, side)), side, columns));
  return { embeddings, sprite: { file: 'embedding-covers.jpg', side, columns } };
}

/** A thumbnail of each cover in `rows`, with its prediction. */
async function writeCovers(x: Inspecting, rows: Iterable<number>): Promise<CoverRef[]> {
  const thumb = Math.min(THUMB_SIDE, x.test.size);
  const covers: CoverRef[] = [];
  for (const row of [...new Set(rows)].sort((a, b) => a - b)) {
    const p = x.ps[row]!;
    const file = `covers/${row}.jpg`;
    await writeInspectImage(x.out, file, { pixels: shrink(imageOf(x.test, row), x.test.size, thumb), width: thumb, height: thumb, channels: 3 });
    covers.push({ row, itemId: p.itemId, artId: p.artId, label: p.label, predicted: p.predicted, confidence: p.confidence, trueProbability: p.trueProbability, file });
  }
  return covers;
}

/** The `inspect` stage: model, test shards, mean, predictions, labels, manifest (and `features/test`) → `eval/inspect/`. */
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
    await selectBackend(ctx.config.train.backend, (l) => ctx.log.info(l));
    const { dir, rec, test, labels, ps } = await readInputs(ctx);
    const first = rec.repeats?.[0] ?? { seed: rec.config.seed ?? 0, dir: '.' };
    const model = await tfl.loadLayersModel(fileLoader(join(dir, first.dir)));
    const x: Inspecting = { ctx, test, ps, model, crop: rec.crop, mean: rec.subtractMean ? readMean(ctx.path('shards/mean.arrow'), test.size) : null, out: ctx.out(INSPECT_DIR) };
    mkdirSync(x.out, { recursive: true });
    lap('load');

    const filters = await writeFilters(x.out, model, rec, first.seed);
    lap('filters');

    const examples = pickExamples(ps, labels.length, c.examples);
    const confusions = pickConfusions(ps, c.confusions);
    const salRows = pickSaliencyRows(ps, labels.length, c.saliency);
    const embRows = sampleRows(test.n, c.embedding, ctx.config.seed);
    // Read (and checked against the test shards) before the slow passes, so a bad features directory fails at once.
    const pretrained = pretrainedFeatures(ctx, ps, embRows);
    if (pretrained) lap('features');
    const progress = ctx.progress('inspect: forward and backward passes', embRows.length + salRows.length);
    const act = activations(x, embRows, progress);
    lap('activations');
    const plan = planSaliency(model, rec.crop, c.saliencyMethod);
    const saliencyItems = await writeSaliency(x, salRows, plan, progress);
    progress.stop();
    model.dispose();
    lap('saliency');

    const { embeddings, sprite } = await writeEmbeddings(x, embRows, act, pretrained);
    lap('embedding');
    const covers = await writeCovers(x, [...examples.flatMap((e) => [...e.right, ...e.wrong]), ...confusions.flatMap((cf) => cf.rows), ...salRows]);
    lap('thumbnails');
    const grouped = groups(ps, ctx.config.select.fromManifest ? null : ctx.path('labels.arrow'), ctx.path('manifest.tsv'));
    lap('groups');

    writeInspection(x.out, {
      labels,
      model: { run: ctx.config.train.run, seed: first.seed, architecture: rec.architecture.name, crop: rec.crop, imageSize: test.size, testImages: test.n },
      covers, filters, examples, confusions,
      saliency: { method: plan.method, layer: plan.layer, grid: plan.grid, items: saliencyItems },
      sprite, embeddings, groups: grouped, seconds,
    });
    const total = Object.values(seconds).reduce((a, b) => a + b, 0);
    ctx.log.info(`inspected the ${rec.architecture.name} model (seed ${first.seed}): ${saliencyItems.length} saliency maps (${plan.method}${plan.layer ? ` on ${plan.layer}` : ''}), ${embRows.length} covers embedded (${embeddings.map((e) => e.name).join(', ')}), ${covers.length} example covers, in ${total.toFixed(1)} s`);
  },
};
