/**
 * Search throughput (issue 23): `covers make search` trials per hour with `search.parallel` 1 (one trial at a time on
 * every core, data-parallel) against 2 (two trials at once, one thread each), on the same synthetic shards, the same
 * trials (random search, same seed, no pruning), runs interleaved (1, 2, 1, 2) so machine load hits both alike.
 */
import { cpSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import type { BenchModule, BenchResult } from './lib.ts';
import { resolveConfig } from '../pipeline/config.ts';
import { runStageOnce } from '../pipeline/context.ts';
import { memoryLogger } from '../util/log.ts';
import { searchStage } from '../stages/index.ts';
import { writeTestShards } from '../dataset/synthetic-shards.ts';

const SPACE = 'train.learningRate=loguniform(1e-3,0.1); train.modelParams.ld0_num_units=qloguniform(16,64,16); train.mirror=choice(false,true)';

const bench: BenchModule = {
  title: 'Search throughput: search.parallel 2 vs 1 (issue 23)',
  async run(ctx) {
    const trials = ctx.quick ? 2 : 6;
    const rounds = ctx.quick ? 1 : 2;
    const template = join(ctx.tmpDir, 'template');
    writeTestShards(template, { size: 32, perClass: { train: 60, validation: 20, test: 2 }, seed: 3 });
    const once = async (parallel: number, round: number): Promise<number> => {
      const dir = mkdtempSync(join(ctx.tmpDir, `p${parallel}-${round}-`));
      cpSync(template, dir, { recursive: true });
      const config = resolveConfig({
        image: { size: 32 },
        train: {
          backend: 'wasm', architecture: 'ConvNet', modelParams: 'num_conv_layers=2:lc0_num_filters=8:lc0_mp=True:lc1_num_filters=16:lc1_mp=True:ld0_num_units=32',
          crop: 28, batchSize: 30, threads: parallel === 1 ? 2 : 1, schedule: 'constant',
        },
        search: { trials, epochs: 3, seed: 1, space: SPACE, algorithm: 'random', pruner: 'none', parallel },
      });
      const t0 = performance.now();
      await runStageOnce(searchStage, { config, dataDir: dir, log: memoryLogger('normal') });
      const s = (performance.now() - t0) / 1000;
      ctx.log(`parallel ${parallel}, round ${round + 1}: ${trials} trials in ${s.toFixed(1)} s (load ${loadavg()[0]!.toFixed(1)})`);
      return s;
    };
    const times: Record<1 | 2, number[]> = { 1: [], 2: [] };
    const load = [loadavg()[0]!];
    for (let r = 0; r < rounds; r++) {
      times[1].push(await once(1, r));
      times[2].push(await once(2, r));
      load.push(loadavg()[0]!);
    }
    const perHour = (ts: number[]) => (trials * ts.length * 3600) / ts.reduce((a, b) => a + b, 0);
    const results: BenchResult[] = [{
      name: `search throughput, ${trials} trials × 3 epochs (ConvNet, 120 training and 60 validation 32-px images, 28-px crops), search.parallel 2 × 1 thread`,
      value: perHour(times[2]), unit: 'trials/h',
      baseline: { name: 'search.parallel 1 × 2 threads (data-parallel)', value: perHour(times[1]) },
      target: 'parallel 2 faster than 1 on 2 cores',
      met: perHour(times[2]) > perHour(times[1]),
      notes: `${rounds} interleaved rounds each; seconds parallel 1: ${times[1].map((t) => t.toFixed(1)).join(', ')}; parallel 2: ${times[2].map((t) => t.toFixed(1)).join(', ')}; 1-minute load average at the start and after each round: ${load.map((l) => l.toFixed(1)).join(', ')} (the machine is shared with other work)`,
    }];
    return results;
  },
};
export default bench;
