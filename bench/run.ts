/**
 * `npm run bench [-- --quick] [-- --only NAME…]`: runs every `bench/*.bench.ts` (see `bench/lib.ts`) and rewrites
 * `bench/RESULTS.md` with the figures, the baselines measured in the same run, the ratios, the machine and the date.
 * With `--only`, the other sections of an existing RESULTS.md are kept. `--quick` (small inputs, a smoke run) writes
 * `bench/RESULTS.quick.md` instead (not tracked), so a smoke run never replaces measured figures.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { realDataDir, type BenchModule, type BenchResult } from './lib.ts';

const here = import.meta.dirname;
const RESULTS = join(here, 'RESULTS.md');
const QUICK_RESULTS = join(here, 'RESULTS.quick.md');

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 0.1 ? v.toFixed(2) : v.toPrecision(2);
}

/** Units where smaller is better: the ratio is baseline / value, so > 1 always means "better than the baseline". */
const LOWER_IS_BETTER = /^(s|ms|µs|us|MB|MiB|GB|bytes)$/;

function ratioOf(r: BenchResult): number | undefined {
  if (r.ratio !== undefined) return r.ratio;
  if (!r.baseline || r.baseline.value === 0 || r.value === 0) return undefined;
  return LOWER_IS_BETTER.test(r.unit) ? r.baseline.value / r.value : r.value / r.baseline.value;
}

function section(title: string, file: string, results: BenchResult[] | Error, seconds: number): string {
  const lines = [`## ${title}`, '', `<!-- section: ${file} -->`, `Measured by \`bench/${file}\` in ${seconds.toFixed(0)} s.`, ''];
  if (results instanceof Error) {
    lines.push(`**Failed:** ${results.message.split('\n')[0]}`, '');
    return lines.join('\n');
  }
  lines.push('| measurement | value | baseline (same run) | ratio | target | met |', '|---|---|---|---|---|---|');
  for (const r of results) {
    const ratio = ratioOf(r);
    lines.push(
      `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${r.baseline ? `${r.baseline.name}: ${fmt(r.baseline.value)} ${r.unit}` : '—'} | ${ratio === undefined ? '—' : `${ratio.toFixed(2)}×`} | ${r.target ?? '—'} | ${r.met === undefined ? '—' : r.met ? 'yes' : '**no**'} |`,
    );
  }
  const notes = results.filter((r) => r.notes).map((r) => `- ${r.name}: ${r.notes}`);
  if (notes.length) lines.push('', ...notes);
  lines.push('');
  return lines.join('\n');
}

/** Sections of an existing results file, by bench file name. */
function oldSections(file: string): Map<string, string> {
  const m = new Map<string, string>();
  if (!existsSync(file)) return m;
  const parts = readFileSync(file, 'utf8').split(/\n(?=## )/);
  for (const p of parts) {
    const f = /<!-- section: (\S+) -->/.exec(p)?.[1];
    if (f) m.set(f, p.trimEnd() + '\n');
  }
  return m;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string', multiple: true } } });
  const files = readdirSync(here).filter((f) => f.endsWith('.bench.ts')).sort();
  const only = values.only?.map((o) => (o.endsWith('.bench.ts') ? o : `${o}.bench.ts`));
  const selected = only ? files.filter((f) => only.includes(f)) : files;
  if (only && selected.length !== only.length) throw new Error(`unknown benchmark(s): ${only.filter((o) => !files.includes(o)).join(', ')}; have ${files.join(', ')}`);
  const out = values.quick ? QUICK_RESULTS : RESULTS;
  const sections = oldSections(out);
  for (const f of files) if (!selected.includes(f) && !sections.has(f)) sections.set(f, `## ${basename(f, '.bench.ts')}\n\n<!-- section: ${f} -->\nNot run yet.\n`);
  for (const f of selected) {
    const mod = (await import(join(here, f))) as { default: BenchModule };
    const tmp = mkdtempSync(join(tmpdir(), `bench-${basename(f, '.bench.ts')}-`));
    console.log(`== ${mod.default.title} (${f})`);
    const t0 = performance.now();
    let results: BenchResult[] | Error;
    try {
      // The real-data folder is looked up when a benchmark first reads it: the ones on synthetic data run without it.
      results = await mod.default.run({ tmpDir: tmp, get sharedDir() { return realDataDir(); }, quick: values.quick, log: (m) => console.log(`   ${m}`) });
      for (const r of results) console.log(`   ${r.name}: ${fmt(r.value)} ${r.unit}${r.baseline ? ` (baseline ${fmt(r.baseline.value)})` : ''}`);
    } catch (e) {
      results = e as Error;
      console.error(`   FAILED: ${(e as Error).stack}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    sections.set(f, section(mod.default.title, f, results, (performance.now() - t0) / 1000));
  }
  const cpu = cpus();
  const header = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (`bench/run.ts`); do not edit the tables and notes by hand. Each figure is compared with a',
    'baseline measured in the same run, as a ratio (> 1× = better than the baseline), because these machines are noisy.',
    'A section may end with a hand-written reading of its run; rerunning that benchmark replaces the section, reading',
    'included.',
    '',
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory`,
    `- Node.js ${process.version}${values.quick ? ' — **quick mode** (small inputs)' : ''}`,
    '',
  ].join('\n');
  const body = files.filter((f) => sections.has(f)).map((f) => sections.get(f)!).join('\n');
  writeFileSync(out, `${header}\n${body}`);
  console.log(`wrote ${out}`);
}

await main();
