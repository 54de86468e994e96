/**
 * Progress display: a cli-progress bar (count, rate, ETA) when stderr is a terminal, and a plain log line every
 * few seconds otherwise (CI logs, files). Silent with `--quiet`.
 */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';
import type { Logger } from './log.ts';

// cli-progress is loaded at the first bar, not at start-up: `covers --help` and `covers status` draw none.
const require = createRequire(import.meta.url);
let cliProgress: typeof CliProgress | undefined;

/** A running progress display. */
export interface Progress {
  /** Adds `n` finished items (default 1). */
  tick(n?: number): void;
  /** Sets the number of finished items. */
  update(done: number): void;
  /** Changes the total (e.g. when a crawl learns how many pages there are). */
  setTotal(total: number): void;
  /** Stops the display and prints a final line. */
  stop(): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Draw a bar (default: when stderr is a TTY). */
  tty?: boolean;
  /** Seconds between plain log lines when not a TTY (default 10). */
  intervalS?: number;
}

/** `42s`, `3m05s`, `2h07m` (rounded to whole seconds or minutes before splitting, so never `1m60s`). */
export function fmtSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Starts a progress display of `total` items labelled `label`. */
export function createProgress(label: string, total: number, log: Logger, opts: ProgressOptions = {}): Progress {
  const start = Date.now();
  let done = 0;
  let tot = total;
  const quiet = log.level === 'quiet';
  const tty = !quiet && (opts.tty ?? Boolean(process.stderr.isTTY));
  const line = () => {
    const el = (Date.now() - start) / 1000;
    const rate = el > 0 ? done / el : 0;
    const eta = rate > 0 && tot > done ? (tot - done) / rate : done >= tot ? 0 : Infinity;
    return `${label}: ${done}/${tot} (${rate.toFixed(1)}/s, elapsed ${fmtSeconds(el)}, ETA ${fmtSeconds(eta)})`;
  };
  let bar: CliProgress.SingleBar | null = null;
  let timer: NodeJS.Timeout | null = null;
  if (tty) {
    cliProgress ??= require('cli-progress') as typeof CliProgress;
    bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% | {rate}/s | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(tot, 0, { rate: '0.0' });
  } else if (!quiet) {
    timer = setInterval(() => log.info(line()), (opts.intervalS ?? 10) * 1000);
    timer.unref();
  }
  const redraw = () => {
    const el = (Date.now() - start) / 1000;
    bar?.update(done, { rate: (el > 0 ? done / el : 0).toFixed(1) });
  };
  return {
    tick(n = 1) { done += n; redraw(); },
    update(d) { done = d; redraw(); },
    setTotal(t) { tot = t; bar?.setTotal(t); },
    stop() {
      if (timer) clearInterval(timer);
      if (bar) bar.stop();
      if (!quiet) log.info(line());
    },
  };
}
