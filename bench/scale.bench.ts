/**
 * The 2015 study's scale (issue 8): import `$COVERS_SHARED_DIR/seed/dataset-links.tsv` (10 genres × 1,000 Bandcamp image URLs)
 * as a manifest with `select.fromManifest`, with its image origin rewritten to the simulator, and build the shards and
 * the mean for all 10,000 images. Each stage runs as its own `covers make <stage>` child process, so its wall time and
 * peak RSS are its own. (The simulator draws covers for ids outside its catalogue by hash, so these images carry no
 * genre signal: this measures the data path, not a model.)
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLock } from '../pipeline/lock.ts';
import { startSimulator } from '../simulator/server.ts';
import type { BenchModule, BenchResult } from './lib.ts';

const STAGES = ['select', 'download', 'split', 'shards', 'mean'] as const;
const REPO = join(import.meta.dirname, '..');

/** Runs `covers make <target> …` in a child process; resolves with its peak RSS in MB. */
function makeChild(args: string[]): Promise<{ code: number; maxRssMB: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench', 'measure-make.ts'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      const m = /maxRssKB=(\d+)/.exec(out);
      resolve({ code: code ?? 1, maxRssMB: m ? Number(m[1]) / 1024 : NaN, stderr: err });
    });
  });
}

const bench: BenchModule = {
  title: "The 2015 study's scale: 10 genres × 1,000 covers to shards and mean",
  async run(ctx) {
    const links = join(ctx.sharedDir, 'seed', 'dataset-links.tsv');
    if (!existsSync(links)) throw new Error(`${links} not found`);
    const perGenre = ctx.quick ? 50 : 1000;
    let manifest = links;
    if (ctx.quick) {
      // Quick mode: the first 50 links of each genre.
      const rows = readFileSync(links, 'utf8').split('\n').filter(Boolean);
      const byGenre = new Map<string, string[]>();
      for (const r of rows) {
        const g = r.split('\t')[1]!.split('/')[0]!;
        const list = byGenre.get(g) ?? [];
        if (list.length < perGenre) list.push(r);
        byGenre.set(g, list);
      }
      manifest = join(ctx.tmpDir, 'links-quick.tsv');
      (await import('node:fs')).writeFileSync(manifest, `${[...byGenre.values()].flat().join('\n')}\n`);
    }
    const sim = await startSimulator({ catalog: 'synthetic', perGenre: 10, seed: 0, keepLog: false });
    const dataDir = join(ctx.tmpDir, 'data');
    const common = ['--data-dir', dataDir, '--quiet', '--set', `perGenre=${perGenre}`, '--set', `select.fromManifest=${manifest}`, '--set', `bandcamp.imageOrigin=${sim.imageOrigin}`];
    const results: BenchResult[] = [];
    const rss: Record<string, number> = {};
    try {
      for (const stage of STAGES) {
        const t0 = performance.now();
        const r = await makeChild(['make', stage, ...common]);
        if (r.code !== 0) throw new Error(`covers make ${stage} failed (${r.code}): ${r.stderr.slice(-2000)}`);
        rss[stage] = r.maxRssMB;
        ctx.log(`${stage}: ${((performance.now() - t0) / 1000).toFixed(1)} s wall (process), peak RSS ${r.maxRssMB.toFixed(0)} MB`);
      }
    } finally {
      await sim.close();
    }
    const lock = readLock(dataDir);
    const images = perGenre * 10;
    let total = 0;
    for (const stage of STAGES) {
      const e = lock.stages[stage];
      if (!e) throw new Error(`no lock entry for ${stage}`);
      total += e.durationMs / 1000;
      results.push({ name: `${stage}: wall time (${images.toLocaleString('en')} images)`, value: e.durationMs / 1000, unit: 's', notes: `peak RSS of \`covers make ${stage}\`: ${rss[stage]!.toFixed(0)} MB` });
    }
    for (const stage of STAGES) {
      results.push({ name: `${stage}: peak RSS`, value: rss[stage]!, unit: 'MB', ...(stage === 'shards' ? { target: '< 600 MB', met: rss[stage]! < 600 } : {}) });
    }
    const shardBytes = Object.entries(lock.stages.shards!.outputs).reduce((s, [, o]) => s + o.bytes, 0);
    results.push({ name: 'all five stages: wall time', value: total, unit: 's', notes: `shards on disk: ${(shardBytes / 2 ** 30).toFixed(2)} GiB; images from the simulator over loopback (synthetic covers, 350×350 JPEG)` });
    return results;
  },
};
export default bench;
