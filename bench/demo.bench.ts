/**
 * Issue 14: the demo (`covers demo`: simulator crawl … report, training 88% of it before) end to end, with the
 * defaults (our wasm gradient kernels, data-parallel on all threads) against today's kernels on one thread
 * (`COVERS_WASM_FAST_GRADIENTS=0 COVERS_THREADS=1`), in interleaved pairs (`BENCH_DEMO_PAIRS`, default 3; minutes each;
 * quick mode: skipped).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, loadText, type BenchContext, type BenchModule, type BenchResult } from './lib.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Wall seconds of one `covers demo` into a fresh directory with `env` added. */
function demoSeconds(dir: string, env: Record<string, string>): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'covers.js'), 'demo', '--data-dir', dir, '--quiet'], { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 3_600_000 });
  if (r.status !== 0) throw new Error(`covers demo failed (${r.status}): ${r.stderr.slice(-500)}`);
  return (performance.now() - t0) / 1000;
}

const bench: BenchModule = {
  title: 'Demo end to end (issue 14)',
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    if (ctx.quick) {
      ctx.log('quick mode: the demo takes minutes per run; skipped');
      return [];
    }
    const out: BenchResult[] = [];
    const base: number[] = [];
    const ours: number[] = [];
    const demoLoads: string[] = [];
    const pairs = Number(process.env.BENCH_DEMO_PAIRS ?? 3);
    for (let r = 0; r < pairs; r++) {
      demoLoads.push(loadText());
      base.push(demoSeconds(join(ctx.tmpDir, `demo-today-${r}`), { COVERS_WASM_FAST_GRADIENTS: '0', COVERS_THREADS: '1' }));
      ours.push(demoSeconds(join(ctx.tmpDir, `demo-ours-${r}`), {}));
      ctx.log(`demo: today ${base.at(-1)!.toFixed(0)} s, ours ${ours.at(-1)!.toFixed(0)} s`);
    }
    demoLoads.push(loadText());
    out.push({
      name: 'covers demo end to end (crawl the simulator … report), defaults vs today\'s kernels on 1 thread', value: median(ours), unit: 's',
      baseline: { name: 'COVERS_WASM_FAST_GRADIENTS=0 COVERS_THREADS=1, same run', value: median(base) }, target: '≥ 1.6× faster', met: median(base) / median(ours) >= 1.6,
      notes: `median of ${base.length} interleaved pair(s) (today's first); per pair today/ours: ${base.map((b, i) => `${b.toFixed(0)}/${ours[i]!.toFixed(0)} s`).join(', ')}; load averages (1/5/15 min): ${demoLoads.join('; ')}`,
    });
    return out;
  },
};
export default bench;
