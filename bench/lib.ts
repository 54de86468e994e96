import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';

/**
 * The benchmark contract. Each `bench/*.bench.ts` module exports `run(ctx)` returning {@link BenchResult}s;
 * `bench/run.ts` (`npm run bench`) runs them all and rewrites `bench/RESULTS.md`. Figures are compared with a
 * baseline measured in the same run, as a ratio (these machines are noisy), never in unit tests.
 */

/** One measured figure. */
export interface BenchResult {
  /** What was measured, e.g. "preprocess 1,050 real covers to 256×256". */
  name: string;
  /** The figure. */
  value: number;
  /** Its unit, e.g. "images/s", "MB", "s". */
  unit: string;
  /** The baseline measured in the same run, in the same unit, and what it is. */
  baseline?: { name: string; value: number };
  /** value / baseline (or baseline / value for lower-is-better units); computed by the harness when omitted. */
  ratio?: number;
  /** The issue's target, in words, e.g. "≥ 1.5× Pillow". */
  target?: string;
  /** Whether the target was met (omit when there is no target). */
  met?: boolean;
  /** How it was measured (inputs, processes, threads). */
  notes?: string;
}

/** What a benchmark module receives. */
export interface BenchContext {
  /** A scratch directory for this benchmark, removed afterwards. */
  tmpDir: string;
  /**
   * The real-data folder ({@link realDataDir}: `covers/labels.tsv`, `seed/dataset-links.tsv`), resolved when read: a
   * benchmark that reads it fails there, naming `COVERS_SHARED_DIR`, when it is missing; one on synthetic data runs without it.
   */
  sharedDir: string;
  /** Quick mode (`npm run bench -- --quick`): smaller inputs, for a smoke test. */
  quick: boolean;
  log(message: string): void;
}

/** A benchmark module. */
export interface BenchModule {
  /** Section title in RESULTS.md. */
  title: string;
  run(ctx: BenchContext): Promise<BenchResult[]>;
}

/**
 * This process's peak resident set size, in KiB: `VmHWM` from `/proc/self/status` (Linux), which starts afresh at
 * `exec`. `process.resourceUsage().maxRSS` (getrusage) is not used for child processes because Linux carries it over
 * from the parent across fork and exec, so a child of a large benchmark process would report the parent's peak.
 * Falls back to `maxRSS` where `/proc` is absent.
 */
export function peakRssKB(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS;
}

/**
 * The folder of real data the benchmarks read: `$COVERS_SHARED_DIR`, which must hold `covers/labels.tsv` (the real
 * covers, `path<TAB>genre`) and, for the scale benchmark, `seed/dataset-links.tsv` (the 2015 study's links file).
 * The repository does not carry these (1,050 covers); point the variable at your own copy.
 * @throws Error naming the variable and the file expected when it is unset or lacks `covers/labels.tsv`.
 */
export function realDataDir(): string {
  const dir = process.env.COVERS_SHARED_DIR;
  if (!dir || !existsSync(join(dir, 'covers', 'labels.tsv'))) {
    throw new Error(`the benchmarks need real data: set COVERS_SHARED_DIR to a folder holding covers/labels.tsv (now ${dir ? `${dir}, which has none` : 'unset'})`);
  }
  return dir;
}

/** Median of a non-empty list (the mean of the middle two for an even length). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The machine's load averages (1, 5, 15 min) as text for a benchmark's notes, e.g. `0.4 / 2.8 / 7.1`. */
export function loadText(): string {
  return loadavg().map((l) => l.toFixed(1)).join(' / ');
}
