/**
 * Stage `export` at the 2015 study's scale (issue 27): 10 genres × 1,000 images of 256×256 in the Arrow shard layout,
 * exported to Parquet, WebDataset and TFRecord at once with the defaults (PNG, zlib level 3, shards of 1,000 rows),
 * in this process (`runStageOnce`, as `covers make export` runs it). The rows are the real covers of `$COVERS_SHARED_DIR/covers`
 * resized to 256×256 and repeated with distinct ids (synthetic striped-noise images where the covers are absent, which
 * PNG compresses worse). Baseline in the same run, interleaved: the `mean` stage over the same shards (one read of
 * every pixel), before and after the export.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import sharp from 'sharp';
import { syntheticImage } from '../dataset/synthetic-shards.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { exportStage, meanStage } from '../stages/index.ts';
import { shardFileName, shardRecordBatch, shardSchema } from '../schemas/shards/layout.ts';
import { SPLIT_NAMES } from '../schemas/shards/names.ts';
import { createLogger } from '../util/log.ts';
import { Rng } from '../util/rng.ts';
import type { BenchModule } from './lib.ts';

const GENRES = ['ambient', 'dubstep', 'folk', 'hip-hop-rap', 'jazz', 'metal', 'pop', 'punk', 'rock', 'soul'];
const S = 256;

/** Up to `n` distinct 256×256 RGB images: the shared real covers, resized (centre crop), or null when absent. */
async function realCovers(sharedDir: string, n: number): Promise<Uint8Array[] | null> {
  let lines: string[];
  try {
    lines = readFileSync(join(sharedDir, 'covers', 'labels.tsv'), 'utf8').trim().split('\n').slice(1, n + 1);
  } catch {
    return null;
  }
  const out: Uint8Array[] = [];
  for (const l of lines) out.push(await sharp(join(sharedDir, 'covers', l.split('\t')[0]!)).resize(S, S).removeAlpha().toColourspace('srgb').raw().toBuffer());
  return out;
}

/** Writes `rows` rows per split (10 shard files each, record batches of 64) cycling through `images`. */
function writeShards(dataDir: string, images: Uint8Array[], rows: Record<string, number>): void {
  const schema = shardSchema(S, GENRES, 'bench');
  let id = 0;
  for (const split of SPLIT_NAMES) {
    const dir = join(dataDir, 'shards', split);
    mkdirSync(dir, { recursive: true });
    const n = rows[split]!;
    const files = 10;
    const per = Math.ceil(n / files);
    const names: { filename: string }[] = [];
    for (let f = 0; f < files; f++) {
      const batches: arrow.RecordBatch[] = [];
      for (let b = f * per; b < Math.min(n, (f + 1) * per); b += 64) {
        const m = Math.min(64, Math.min(n, (f + 1) * per) - b);
        const buf = new Uint8Array(m * S * S * 3);
        const ids = Array.from({ length: m }, () => ++id);
        ids.forEach((v, i) => buf.set(images[v % images.length]!, i * S * S * 3));
        batches.push(shardRecordBatch(schema, { images: buf, labels: ids.map((v) => v % 10), genres: ids.map((v) => GENRES[v % 10]!), itemIds: ids, artIds: ids.map((v) => v + 5_000_000), sha256s: ids.map((v) => String(v).padStart(64, '0')) }));
      }
      const name = shardFileName(f, files);
      writeFileSync(join(dir, name), arrow.RecordBatchStreamWriter.writeAll(batches).toUint8Array(true));
      names.push({ filename: name });
    }
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ _data_files: names, _split: split }));
  }
  writeFileSync(join(dataDir, 'shards', 'dataset_dict.json'), JSON.stringify({ splits: [...SPLIT_NAMES] }));
}

const bench: BenchModule = {
  title: "Export at the study's scale: 10 × 1,000 images to Parquet, WebDataset and TFRecord",
  async run(ctx) {
    const total = ctx.quick ? 1000 : 10_000;
    const rows = { train: total * 0.8, validation: total * 0.1, test: total * 0.1 };
    const dataDir = join(ctx.tmpDir, 'data');
    let images = await realCovers(ctx.sharedDir, 1050);
    const source = images ? `${images.length} real covers ($COVERS_SHARED_DIR/covers) resized to 256×256, repeated with distinct ids` : 'synthetic striped-noise images';
    if (!images) {
      const rng = new Rng(1);
      images = Array.from({ length: 64 }, (_, k) => syntheticImage(k % 10, S, rng, 40));
    }
    writeShards(dataDir, images, rows);
    const config = resolveConfig({ genres: GENRES, image: { size: S }, export: { formats: ['parquet', 'webdataset', 'tfrecord'] } }, 'bench');
    const log = createLogger({ level: 'quiet' });
    const time = async (f: () => Promise<void>) => {
      const t0 = performance.now();
      await f();
      return (performance.now() - t0) / 1000;
    };
    const mean1 = await time(() => runStageOnce(meanStage, { config, dataDir, log }));
    ctx.log(`mean: ${mean1.toFixed(1)} s`);
    const cpu0 = process.cpuUsage();
    const exp = await time(() => runStageOnce(exportStage, { config, dataDir, log }));
    const cpuUsed = process.cpuUsage(cpu0);
    const cpuS = (cpuUsed.user + cpuUsed.system) / 1e6;
    ctx.log(`export: ${exp.toFixed(1)} s wall, ${cpuS.toFixed(1)} s CPU (all threads)`);
    const mean2 = await time(() => runStageOnce(meanStage, { config, dataDir, log }));
    ctx.log(`mean: ${mean2.toFixed(1)} s`);
    const baseline = (mean1 + mean2) / 2;
    const { loadavg } = await import('node:os');
    return [
      {
        name: `export ${total.toLocaleString('en')} images (256×256, PNG) to the three formats`,
        value: exp,
        unit: 's',
        baseline: { name: 'mean stage over the same shards (mean of 2 runs)', value: baseline },
        target: ctx.quick ? undefined : 'under 2 minutes',
        met: ctx.quick ? undefined : exp < 120,
        notes: `${cpuS.toFixed(1)} s of CPU (this process, libuv's encode threads included; CPU/2 = ${(cpuS / 2).toFixed(0)} s, a lower bound for the wall time on 2 idle cores, not measured); ${source}; export.formats = parquet, webdataset, tfrecord, defaults otherwise; mean stage ${mean1.toFixed(1)} s before and ${mean2.toFixed(1)} s after; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(', ')}`,
      },
    ];
  },
};

export default bench;
