/**
 * Synthetic datasets for tests and benchmarks: writes tiny synthetic shards (schemas/shards/layout.ts layout) and a per-pixel mean (schemas/mean.ts), so the
 * train/evaluate/baseline tests need no real pipeline. Images are learnable: class k has its own base colour and a
 * class-dependent stripe orientation, plus seeded noise.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { meanToIPC } from '../schemas/mean.ts';
import { shardFileName, shardRecordBatch, shardSchema } from '../schemas/shards/layout.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { Rng } from '../util/rng.ts';

export interface TestShardOptions {
  /** Image side S (default 16). */
  size?: number;
  labelNames?: string[];
  /** Images per class per split. */
  perClass?: { train: number; validation: number; test: number };
  /** Shard files per split (default 2). */
  shardsPerSplit?: number;
  /** Rows per record batch (default 7, so batches straddle classes). */
  batchRows?: number;
  seed?: number;
  /** Noise amplitude, uint8 units (default 40). */
  noise?: number;
  /** Draws one `[S, S, 3]` uint8 image of class `label` (default {@link syntheticImage} with `noise`). */
  draw?: (label: number, size: number, rng: Rng) => Uint8Array;
}

const COLOURS = [[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40], [40, 200, 200], [200, 40, 200], [120, 120, 120], [240, 150, 60], [60, 150, 240], [150, 60, 240]];

/** One synthetic `[S, S, 3]` image of class `k`. */
export function syntheticImage(k: number, size: number, rng: Rng, noise: number): Uint8Array {
  const img = new Uint8Array(size * size * 3);
  const c = COLOURS[k % COLOURS.length]!;
  const vertical = k % 2 === 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const stripe = ((vertical ? x : y) >> 1) % 2 === 0 ? 40 : -40;
      for (let ch = 0; ch < 3; ch++) {
        const v = c[ch]! + stripe + (rng.next() - 0.5) * 2 * noise;
        img[(y * size + x) * 3 + ch] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return img;
}

function recordBatch(schema: arrow.Schema, size: number, labelNames: string[], rows: { img: Uint8Array; label: number }[], idBase: number): arrow.RecordBatch {
  const len = size * size * 3;
  const images = new Uint8Array(rows.length * len);
  rows.forEach((r, i) => images.set(r.img, i * len));
  return shardRecordBatch(schema, {
    images,
    labels: rows.map((r) => r.label),
    genres: rows.map((r) => labelNames[r.label]!),
    itemIds: rows.map((_, i) => idBase + i),
    artIds: rows.map((_, i) => 1000 + idBase + i),
    sha256s: rows.map((_, i) => `sha${idBase + i}`),
  });
}

/**
 * Writes `dataDir/shards/{train,validation,test}/data-*.arrow` (+ state.json, dataset_dict.json) and
 * `dataDir/shards/mean.arrow`. Records are interleaved by class. @returns the label names and size.
 */
export function writeTestShards(dataDir: string, opts: TestShardOptions = {}): { size: number; labelNames: string[] } {
  const size = opts.size ?? 16;
  const labelNames = opts.labelNames ?? ['ambient', 'metal', 'jazz'];
  const perClass = opts.perClass ?? { train: 40, validation: 10, test: 10 };
  const shardCount = opts.shardsPerSplit ?? 2;
  const batchRows = opts.batchRows ?? 7;
  const noise = opts.noise ?? 40;
  const rng = new Rng(opts.seed ?? 1);
  const draw = opts.draw ?? ((k: number, s: number, r: Rng) => syntheticImage(k, s, r, noise));
  const schema = shardSchema(size, labelNames, 'test-config-hash');
  const root = join(dataDir, 'shards');
  const meanAcc = new Float64Array(size * size * 3);
  let trainCount = 0;
  let idBase = 0;
  for (const split of SPLIT_NAMES) {
    const dir = join(root, split);
    mkdirSync(dir, { recursive: true });
    const rows: { img: Uint8Array; label: number }[] = [];
    for (let i = 0; i < perClass[split]; i++) {
      for (let k = 0; k < labelNames.length; k++) rows.push({ img: draw(k, size, rng), label: k });
    }
    if (split === 'train') {
      for (const r of rows) for (let j = 0; j < r.img.length; j++) meanAcc[j]! += r.img[j]!;
      trainCount = rows.length;
    }
    const per = Math.ceil(rows.length / shardCount);
    const files: { filename: string }[] = [];
    for (let s = 0; s < shardCount; s++) {
      const part = rows.slice(s * per, (s + 1) * per);
      const batches: arrow.RecordBatch[] = [];
      for (let b = 0; b < part.length; b += batchRows) {
        batches.push(recordBatch(schema, size, labelNames, part.slice(b, b + batchRows), idBase));
        idBase += Math.min(batchRows, part.length - b);
      }
      const name = shardFileName(s, shardCount);
      const writer = arrow.RecordBatchStreamWriter.writeAll(batches.length ? batches : [new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length: 0, nullCount: 0, children: [] }))]);
      writeFileSync(join(dir, name), writer.toUint8Array(true));
      files.push({ filename: name });
    }
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ _data_files: files, _split: split }));
  }
  writeFileSync(join(root, 'dataset_dict.json'), JSON.stringify({ splits: [...SPLIT_NAMES] }));
  const mean = new Float32Array(meanAcc.length);
  for (let j = 0; j < mean.length; j++) mean[j] = meanAcc[j]! / trainCount;
  writeFileSync(join(root, 'mean.arrow'), meanToIPC({ size, mean, channelMean: [128, 128, 128], channelStd: [60, 60, 60], count: trainCount }));
  return { size, labelNames };
}
