/** The end-of-`make` summary, and `make` run under SIGINT/SIGTERM handling, as `covers make` and `covers demo` do. */
import type { Logger } from '../util/log.ts';
import { make, type MakeOptions, type StageOutcome } from './runner.ts';
import { InterruptedError } from '../util/errors.ts';
import { fmtDuration } from '../util/format.ts';

/** The end-of-make summary: one line per stage (what happened, why, how long) and where outputs are. */
function formatSummary(outcomes: readonly StageOutcome[], dataDir: string): string {
  const w = Math.max(5, ...outcomes.map((o) => o.name.length));
  const lines = ['', 'summary:'];
  for (const o of outcomes) {
    const t = o.action === 'ran' || o.action === 'failed' || o.action === 'paused' || o.action === 'interrupted' || o.action === 'round' ? ` in ${fmtDuration(o.durationMs)}` : '';
    const incomplete = o.incomplete ? `; incomplete (${o.incomplete}): the next make continues it` : '';
    lines.push(`  ${o.name.padEnd(w)}  ${o.action}${t}  ${o.action === 'fresh' ? '' : o.reason}${incomplete}`.trimEnd());
  }
  const total = outcomes.reduce((s, o) => s + o.durationMs, 0);
  lines.push(`  total ${fmtDuration(total)}; outputs under ${dataDir}`);
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
    if (outcomes.length && (!opts.quiet || outcomes.some((x) => x.action === 'failed' || x.action === 'paused'))) process.stderr.write(`${formatSummary(outcomes, opts.dataDir)}\n`);
  }
}
