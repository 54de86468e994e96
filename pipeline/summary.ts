/** The end-of-`make` summary, and `make` run under SIGINT/SIGTERM handling, as `covers make` and `covers demo` do. */
import type { Logger } from '../util/log.ts';
import { make, type MakeOptions, type StageOutcome } from './runner.ts';
import { InterruptedError } from '../util/errors.ts';

/** A duration for people: `850 ms`, `12.3 s`, `2 min 05 s` (whole seconds, rounded before splitting). */
export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** The end-of-make summary: one line per stage (what happened, why, how long) and where outputs are. */
export function formatSummary(outcomes: readonly StageOutcome[], dataDir: string): string {
  const w = Math.max(5, ...outcomes.map((o) => o.name.length));
  const lines = ['', 'summary:'];
  for (const o of outcomes) {
    const t = o.action === 'ran' || o.action === 'failed' || o.action === 'interrupted' ? ` in ${fmtMs(o.durationMs)}` : '';
    lines.push(`  ${o.name.padEnd(w)}  ${o.action}${t}  ${o.action === 'fresh' ? '' : o.reason}`.trimEnd());
  }
  const total = outcomes.reduce((s, o) => s + o.durationMs, 0);
  lines.push(`  total ${fmtMs(total)}; outputs under ${dataDir}`);
  return lines.join('\n');
}


/**
 * Runs {@link make} as the CLI does: the first SIGINT/SIGTERM asks the running stage to stop (a second one exits at
 * once with code 130), and the end-of-make summary goes to stderr (with `quiet`, only when a stage failed).
 * @returns the outcomes.
 * @throws InterruptedError when a signal stopped the run; otherwise the failing stage's error.
 */
export async function makeWithSignals(opts: Omit<MakeOptions, 'signal' | 'dryRun'> & { log: Logger; quiet?: boolean }): Promise<StageOutcome[]> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    opts.log.warn(`${sig}: stopping after the current step (again to quit at once); finished work is kept and a rerun resumes`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const outcomes: StageOutcome[] = [];
  try {
    await make({ ...opts, signal: controller.signal, onOutcome: (x) => outcomes.push(x) });
    if (controller.signal.aborted) throw new InterruptedError();
    return outcomes;
  } catch (e) {
    throw controller.signal.aborted ? new InterruptedError() : e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (outcomes.length && (!opts.quiet || outcomes.some((x) => x.action === 'failed'))) process.stderr.write(`${formatSummary(outcomes, opts.dataDir)}\n`);
  }
}
