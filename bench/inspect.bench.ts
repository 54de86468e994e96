/**
 * Issue 26: what `inspect` adds to `evaluate`, at the 2015 study's model and input size (AlexNet, 256-pixel images,
 * 224 crops, `eval.crops` = 10, 10 genres) on synthetic shards (dataset/synthetic-shards.ts), the two stages timed
 * in interleaved rounds on the same model. `BENCH_INSPECT_TEST`: test covers per genre, a comma list, one row each
 * (default `20,40`: the study has 100, which takes most of an hour of `evaluate` on two loaded cores, so the rows show
 * how the ratio moves towards it); `BENCH_INSPECT_ROUNDS` rounds per row (default 1). Quick mode: a small ConvNet on
 * 72-pixel images.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';
import { evaluateStage, inspectStage, trainStage } from '../stages/index.ts';
import { createLogger } from '../util/log.ts';
import { loadText, type BenchContext, type BenchModule, type BenchResult } from './lib.ts';

const GENRES = ['ambient', 'dubstep', 'folk', 'hip-hop-rap', 'jazz', 'metal', 'pop', 'punk', 'rock', 'soul'];

/** Trains a model on fresh synthetic shards with `perGenre` test covers per genre, then times evaluate and inspect. */
async function measure(ctx: BenchContext, perGenre: number): Promise<BenchResult> {
  const dir = join(ctx.tmpDir, `test-${perGenre}`);
  const size = ctx.quick ? 72 : 256;
  writeTestShards(dir, { size, labelNames: GENRES, perClass: { train: 2, validation: 1, test: perGenre }, seed: 7 });
  const config = resolveConfig({
    genres: GENRES,
    image: { size },
    train: ctx.quick
      ? { architecture: 'ConvNet', modelParams: 'num_conv_layers=2:lc0_num_filters=16:lc0_filter_size=5:lc0_mp=True:lc1_num_filters=32:lc1_mp=True:ld0_num_units=64', crop: 64, epochs: 1, batchSize: 10 }
      : { architecture: 'AlexNet', crop: 224, epochs: 1, batchSize: 10 },
    eval: { crops: 10 },
  });
  const log = createLogger({ level: 'quiet' });
  await runStageOnce(trainStage, { config, dataDir: dir, log });
  const rounds = ctx.quick ? 1 : Number(process.env.BENCH_INSPECT_ROUNDS ?? 1);
  const evaluate: number[] = [];
  const inspect: number[] = [];
  const loads: string[] = [];
  const time = async (stage: typeof evaluateStage) => {
    const t0 = performance.now();
    await runStageOnce(stage, { config, dataDir: dir, log });
    return (performance.now() - t0) / 1000;
  };
  for (let r = 0; r < rounds; r++) {
    loads.push(loadText());
    evaluate.push(await time(evaluateStage));
    inspect.push(await time(inspectStage));
    ctx.log(`${perGenre * GENRES.length} test covers, round ${r + 1}: evaluate ${evaluate.at(-1)!.toFixed(1)} s, inspect ${inspect.at(-1)!.toFixed(1)} s`);
  }
  loads.push(loadText());
  const parts = JSON.parse(readFileSync(join(dir, 'eval', 'inspect', 'inspect.json'), 'utf8')) as { seconds: Record<string, number> };
  rmSync(dir, { recursive: true, force: true });
  const best = (xs: number[]) => Math.min(...xs);
  return {
    name: `inspect vs evaluate: ${ctx.quick ? 'ConvNet 72→64' : 'AlexNet 256→224'}, ${perGenre * GENRES.length} test covers, eval.crops 10`,
    value: best(inspect), unit: 's',
    baseline: { name: 'evaluate, same model and shards, interleaved', value: best(evaluate) },
    target: 'inspect ≤ 25% of evaluate', met: best(inspect) <= 0.25 * best(evaluate),
    notes: `inspect / evaluate = ${(best(inspect) / best(evaluate) * 100).toFixed(0)}% (fastest of ${rounds} interleaved round(s): evaluate ${evaluate.map((x) => x.toFixed(1)).join(', ')} s; inspect ${inspect.map((x) => x.toFixed(1)).join(', ')} s); inspect's parts in the last round: ${Object.entries(parts.seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}; load averages (1/5/15 min): ${loads.join('; ')}`,
  };
}

const bench: BenchModule = {
  title: 'Inspect (issue 26): what the network learned, against evaluate',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const sizes = ctx.quick ? [6] : (process.env.BENCH_INSPECT_TEST ?? '20,40').split(',').map(Number);
    const out: BenchResult[] = [];
    for (const perGenre of sizes) out.push(await measure(ctx, perGenre));
    return out;
  },
};
export default bench;
