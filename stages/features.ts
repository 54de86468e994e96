/**
 * Stage `features`: runs a pretrained network (`pretrained.model`: ONNX or tfjs model.json, model-import/) up to
 * `pretrained.layer` on every shard row — the centre crop at the network's input size, or the 10 crops averaged
 * (`pretrained.crops`), preprocessed per `pretrained.input` — and writes `DATA_DIR/features/<split>/`
 * (schemas/features.ts: the shards' Hugging Face layout, one row per shard row, same order).
 */
import { featuresSplitDir, FEATURES_DIR, FeatureSplitWriter, writeFeaturesDatasetDict } from '../schemas/features.ts';
import { SPLIT_NAMES, splitDir } from '../schemas/shards/names.ts';
import { listShardFiles, streamShardBatches } from '../schemas/shards/read.ts';
import { UserError, type StageContext, type StageImplementation } from '../pipeline/stage.ts';
import { openFeatureExtractor } from '../model-import/feature-engine.ts';
import { defaultModelCacheDir, resolveModelFile } from '../model-import/fetch.ts';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { FeatureExtractor } from '../model-import/feature-engine.ts';
import { loadPretrained } from '../model-import/load.ts';
import { truncatedModel } from '../model-import/onnx-to-tfjs.ts';
import { inputPreprocessing, type InputPreprocessing } from '../model-import/preprocess.ts';
import { evalCrops } from '../train/augment.ts';
import { selectBackend } from '../train/backends.ts';

/** The preprocessing `pretrained.*` configures: the preset with any overrides. */
export function configuredPreprocessing(c: StageContext['config']['pretrained']): InputPreprocessing {
  return inputPreprocessing(c.input, {
    channelOrder: c.channelOrder ?? undefined,
    scale: c.scale ?? undefined,
    mean: c.mean ?? undefined,
    std: c.std ?? undefined,
  });
}

/** The `features` stage: shards and a pretrained network → `features/<split>/`. */
export const featuresStage: StageImplementation = {
  name: 'features',
  async run(ctx) {
    const p = ctx.config.pretrained;
    await selectBackend(ctx.config.train.backend, (l) => ctx.log.info(l));
    const file = await resolveModelFile(p.model, { cacheDir: defaultModelCacheDir(), sha256: p.sha256, log: ctx.log, signal: ctx.signal });
    const net = await loadPretrained(file);
    const [h, w] = net.inputSize;
    if (h !== w) throw new UserError(`features: ${file} takes ${h}×${w} inputs; only square inputs are supported`);
    if (net.channels !== 3) throw new UserError(`features: ${file} takes ${net.channels} input channels, not 3`);
    const layer = p.layer || net.featureTensor;
    const model = truncatedModel(net, layer);
    const prep = configuredPreprocessing(p);
    const engine = await openFeatureExtractor({
      file, net, layer, truncated: model, engine: p.engine, threads: p.threads ?? 0, log: (l) => ctx.log.info(l),
    });
    ctx.log.info(`features of ${p.model} at '${layer}' (${h}×${w} input, ${p.input} preprocessing, ${p.crops} crop${p.crops > 1 ? 's' : ''}; ${engine.engine}: ${engine.details})`);
    try {
      await writeFeatures(ctx, engine, model, { h, layer, prep });
    } finally {
      await engine.release();
    }
  },
};

/** Runs `engine` over every split's shard rows and writes `features/<split>/` and `features/dataset_dict.json`. */
async function writeFeatures(
  ctx: StageContext, engine: FeatureExtractor, model: tfl.LayersModel, { h, layer, prep }: { h: number; layer: string; prep: InputPreprocessing },
): Promise<void> {
  const p = ctx.config.pretrained;
  const root = ctx.out(FEATURES_DIR);
  for (const split of SPLIT_NAMES) {
    const files = listShardFiles(ctx.path(splitDir(split)));
    let writer: FeatureSplitWriter | null = null;
    try {
      for await (const batch of streamShardBatches(files, { ids: true })) {
        if (ctx.signal.aborted) throw new Error('features: interrupted');
        const size = batch.meta.shape[0];
        if (size < h) throw new UserError(`features: the shards hold ${size}×${size} images, smaller than the network's ${h}×${h} input; rebuild them with image.size ≥ ${h}`);
        const crops = evalCrops(size, h, p.crops);
        for (let start = 0; start < batch.rows; start += p.batchSize) {
          const n = Math.min(p.batchSize, batch.rows - start);
          const images = batch.images.subarray(start * size * size * 3, (start + n) * size * size * 3);
          const { features, dim } = await engine.extract(images, n, size, h, crops, prep);
          writer ??= new FeatureSplitWriter({
            dir: `${root}/${split}`, split, maxShardBytes: ctx.config.shards.maxShardBytes, batchRows: 256,
            meta: { dim, labelNames: batch.meta.labelNames, model: p.model, layer, input: p.input, crops: p.crops },
          });
          for (let i = 0; i < n; i++) {
            const r = start + i;
            writer.add({
              features: features.subarray(i * dim, (i + 1) * dim), label: batch.labels[r]!, genre: batch.ids!.genres[r] ?? '',
              itemId: batch.ids!.itemIds[r] ?? 0, sha256: batch.ids!.sha256s[r] ?? '',
            });
          }
        }
      }
      // An empty split gets a file with the schema only, as the shards do.
      writer ??= new FeatureSplitWriter({
        dir: `${root}/${split}`, split, maxShardBytes: ctx.config.shards.maxShardBytes, batchRows: 256,
        meta: { dim: (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1), labelNames: [...ctx.config.genres], model: p.model, layer, input: p.input, crops: p.crops },
      });
      const rows = writer.finish();
      ctx.log.info(`${featuresSplitDir(split)}: ${rows} rows`);
    } catch (e) {
      writer?.abort();
      throw e;
    }
  }
  writeFeaturesDatasetDict(root);
}
