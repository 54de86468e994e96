/**
 * Stage `shards`: preprocesses every image of `DATA_DIR/splits.arrow` to `[S, S, 3]` uint8 RGB (dataset/preprocess.ts)
 * and writes the Hugging Face `datasets` on-disk layout (schemas/shards/):
 *
 * ```
 * DATA_DIR/shards/dataset_dict.json
 * DATA_DIR/shards/{train,validation,test}/data-0000K-of-0000N.arrow, state.json, dataset_info.json
 * DATA_DIR/shards/rejected.tsv      images that failed preprocessing, with the reason (rejectedFormat, stage "shards")
 * ```
 *
 * The outputs are declared one by one (not the whole `shards/` directory) because `mean` writes
 * `shards/mean.arrow` and `shards/mean.json` next to them: each stage hashes only its own files.
 *
 * Images stream through `shards.concurrency` decodes at once (`shards.decoder`: the native fast JPEG path or sharp,
 * logged once per run) and are written in split order, record batch by record batch, whatever order they finish in;
 * a bad image never stops the stage, it becomes a row of `rejected.tsv`. Decoding runs in a pool of worker processes
 * (dataset/decode-pool.ts: one per core, up to `shards.concurrency`): a decoder that crashes or hangs on a file
 * (`shards.decodeTimeoutMs`) costs that file only (`decoder-crash`, `decoder-timeout`), never the stage.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { UserError, type StageImplementation } from '../pipeline/stage.ts';
import { orderedMap, PreprocessError, resolveDecoder, type PreprocessOptions } from '../dataset/preprocess.ts';
import { DecodePool } from '../dataset/decode-pool.ts';
import { SplitShardWriter, type SplitShardResult } from '../schemas/shards/write.ts';
import { rejectedFormat, type RejectedRow } from '../schemas/manifest.ts';
import { SPLIT_NAMES, type SplitName } from '../schemas/shards/names.ts';
import { shardsConfigHash } from './declarations.ts';
import { splitsFormat, type SplitRow } from '../schemas/splits.ts';

type Outcome = { row: SplitRow; image: Uint8Array; release: () => void; error?: undefined } | { row: SplitRow; image?: undefined; error: PreprocessError };

/** Options of {@link createShardsStage}. */
export interface ShardsStageOptions {
  /** The decode worker's script (default dataset/decode-worker.ts); tests pass stand-ins that crash or hang. */
  decodeWorker?: string;
}

/** The `shards` stage's work (declared in stages/declarations.ts): `splits.arrow` and the downloaded images → the shards. */
export const shardsStage: StageImplementation = createShardsStage();

/** A `shards` stage ({@link shardsStage}) whose decode workers run `options.decodeWorker`. */
export function createShardsStage(options: ShardsStageOptions = {}): StageImplementation {
  return {
    name: 'shards',
    async run(ctx) {
      const { config } = ctx;
      const splitsPath = ctx.path('splits.arrow');
      if (!existsSync(splitsPath)) throw new UserError(`shards: ${splitsPath} not found (run \`covers make split\` first)`);
      const rows = splitsFormat.read(splitsPath);
      const decoder = resolveDecoder(config.shards.decoder);
      if (config.shards.decoder === 'fast' && decoder.decoder !== 'fast') ctx.log.warn(`decoder: ${decoder.decoder} (${decoder.why})`);
      else ctx.log.info(`decoder: ${decoder.decoder} (${decoder.why})`);
      const opts: PreprocessOptions = { size: config.image.size, fit: config.image.fit, maxPixels: config.image.maxPixels, decoder: decoder.decoder };
      const configHash = shardsConfigHash(config);
      const rejected: RejectedRow[] = [];
      const results: SplitShardResult[] = [];
      const workers = Math.max(1, Math.min(availableParallelism(), config.shards.concurrency));
      const pool = new DecodePool({
        preprocess: opts,
        workers,
        inFlightPerWorker: Math.ceil(config.shards.concurrency / workers),
        timeoutMs: config.shards.decodeTimeoutMs,
        workerScript: options.decodeWorker,
        onEvent: (line) => ctx.log.warn(line),
      });
      const progress = ctx.progress('preprocess', rows.length);
      try {
        for (const split of SPLIT_NAMES) {
          const splitRows = rows.filter((r) => r.split === split).sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
          let writer: SplitShardWriter;
          try {
            writer = new SplitShardWriter({
              dir: ctx.out(`shards/${split}`),
              split: split as SplitName,
              size: opts.size,
              labelNames: config.genres,
              configHash,
              maxShardBytes: config.shards.maxShardBytes,
              recordBatchRows: config.shards.recordBatchRows,
            });
          } catch (e) {
            throw new UserError(`shards: ${(e as Error).message}`);
          }
          const work = async (row: SplitRow): Promise<Outcome> => {
            if (ctx.signal.aborted) throw new Error('shards: interrupted');
            if (row.path === null) return { row, error: new PreprocessError('missing', 'splits.arrow gives no path') };
            try {
              const d = await pool.decode(ctx.path(row.path));
            return { row, image: d.image, release: d.release };
            } catch (e) {
              if (e instanceof PreprocessError) return { row, error: e };
              throw e;
            }
          };
          try {
            for await (const out of orderedMap(splitRows, config.shards.concurrency, work)) {
              const { row } = out;
              if (out.error) {
                rejected.push({ stage: 'shards', item_id: row.item_id, genre: row.genre, art_id: row.art_id, url: row.path, reason: out.error.reason, detail: out.error.detail });
                ctx.log.warn(`item_id ${row.item_id} (${row.path}) rejected: ${out.error.message}`);
              } else {
                const label = row.genre === null ? -1 : config.genres.indexOf(row.genre);
                if (label < 0) throw new UserError(`shards: ${splitsPath}: item_id ${row.item_id} has genre "${row.genre}", not in config genres (re-run \`covers make split\`)`);
                writer.add({ image: out.image, label, genre: row.genre!, itemId: row.item_id!, artId: row.art_id!, sha256: row.sha256 ?? '' }); // copies the image
              out.release();
              }
              progress.tick();
            }
          } catch (e) {
            writer.abort();
            throw e;
          }
          results.push(writer.finish());
        }
      } finally {
        progress.stop();
        await pool.close();
      }
      rejectedFormat.write(ctx.out('shards/rejected.tsv'), rejected);
      writeFileSync(ctx.out('shards/dataset_dict.json'), `${JSON.stringify({ splits: [...SPLIT_NAMES] })}\n`);
      const summary = results.map((r) => `${r.split} ${r.rows} in ${r.files.length} shard${r.files.length === 1 ? '' : 's'}`).join(', ');
      ctx.log.info(`${summary}; ${rejected.length} rejected${rejected.length ? ' (see shards/rejected.tsv)' : ''}`);
      if (results[0]!.rows === 0) throw new UserError('shards: the training split holds no usable images (see shards/rejected.tsv)');
    },
  };
}
