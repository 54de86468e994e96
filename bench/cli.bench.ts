/**
 * CLI start-up: `covers --help` and `covers status` on a built data directory, against the floor of any Node.js CLI
 * that reads the lock — `node -e` reading and parsing `pipeline.lock.json` (which costs `node -e 0` plus the read).
 * Interleaved (baseline, --help, status, baseline, …) so drift in the machine's speed hits all three alike; medians.
 *
 * The built data directory is synthetic: every declared output of every stage exists (small files), and each lock
 * entry is what the runner would record for them, so `status` does its full work (hashing every output and input,
 * judging every stage fresh) on a directory that is cheap to make. `bin/covers.js` is timed as an installed package
 * runs it, from the compiled JavaScript (`COVERS_DIST=1`; run `npm run build` first), else through tsx as a source
 * checkout does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../pipeline/config-core.ts';
import { LOCK_FILE, readLock } from '../pipeline/lock.ts';
import { STAGES } from '../stages/index.ts';
import { recordFresh } from './fresh-lock.ts';
import type { BenchModule, BenchResult } from './lib.ts';

const REPO = join(import.meta.dirname, '..');

/** Writes a small file at every declared output of every stage and the lock entries the runner would record. */
async function buildSyntheticDataDir(dir: string): Promise<void> {
  const config = defaultConfig();
  await recordFresh(dir, config, STAGES, ['all'], [], (rel) => !/\.[a-z]+$/.test(rel) || rel === 'shards/train' || rel.startsWith('models/'));
}

function timeOnce(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(0, 400)}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const bench: BenchModule = {
  title: 'CLI start-up: covers --help and covers status against node reading the lock',
  async run(ctx) {
    const dataDir = join(ctx.tmpDir, 'data');
    await buildSyntheticDataDir(dataDir);
    if (Object.keys(readLock(dataDir).stages).length !== STAGES.length) throw new Error('lock incomplete');
    const bin = join(REPO, 'bin', 'covers.js');
    const built = existsSync(join(REPO, 'dist', 'cli', 'covers.js'));
    const mode = built ? 'compiled JavaScript (dist/)' : 'TypeScript through tsx (no dist/: run npm run build)';
    const env = { ...process.env, COVERS_DIST: built ? '1' : '0' };
    const baselineArgs = ['-e', `JSON.parse(require('node:fs').readFileSync(${JSON.stringify(join(dataDir, LOCK_FILE))}, 'utf8'))`];
    const runs = ctx.quick ? 3 : 11;
    const load = [loadavg()[0]!];
    const base: number[] = [];
    const help: number[] = [];
    const status: number[] = [];
    const withFile: number[] = [];
    // A config file that restates a default (so every stage stays fresh): zod loads to validate it.
    const configFile = join(ctx.tmpDir, 'covers.config.json');
    writeFileSync(configFile, JSON.stringify({ seed: defaultConfig().seed }));
    timeOnce([bin, '--help'], REPO, env); // warm the file cache
    for (let i = 0; i < runs; i++) {
      base.push(timeOnce(baselineArgs, REPO));
      help.push(timeOnce([bin, '--help'], REPO, env));
      status.push(timeOnce([bin, 'status', '--data-dir', dataDir], REPO, env));
      withFile.push(timeOnce([bin, 'status', '--data-dir', dataDir, '--config', configFile], REPO, env));
    }
    load.push(loadavg()[0]!);
    const b = median(base) / 1000;
    ctx.log(`baseline ${b.toFixed(3)} s, --help ${(median(help) / 1000).toFixed(3)} s, status ${(median(status) / 1000).toFixed(3)} s (${mode})`);
    const row = (name: string, xs: number[], targeted = true): BenchResult => {
      const v = median(xs) / 1000;
      return {
        name, value: v, unit: 's', baseline: { name: 'node -e reading pipeline.lock.json', value: b }, ratio: b / v,
        ...(targeted ? { target: '≤ 2× the baseline (ratio ≥ 0.5×)', met: v <= 2 * b } : {}),
        notes: `median of ${runs} interleaved runs, ${mode}; ratio = baseline / value; 1-minute load average ${load.map((l) => l.toFixed(1)).join(' → ')} (start → end) on ${cpus().length} cores${targeted ? '' : '; for reference (the target is for the commands without a config file): a config file or --set loads the config schema (zod) to validate it'}`,
      };
    };
    return [
      row('covers --help', help),
      row(`covers status (${STAGES.length} stages, all fresh)`, status),
      row(`covers status --config covers.config.json (${STAGES.length} stages, all fresh)`, withFile, false),
    ];
  },
};

export default bench;
