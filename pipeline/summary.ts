/** The end-of-`make` summary printed by `covers make` and `covers demo`. */
import type { StageOutcome } from './runner.ts';

function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The end-of-make summary: one line per stage (what happened, why, how long) and where outputs are. */
export function formatSummary(outcomes: readonly StageOutcome[], dataDir: string): string {
  const w = Math.max(5, ...outcomes.map((o) => o.name.length));
  const lines = ['', 'summary:'];
  for (const o of outcomes) {
    const t = o.action === 'ran' || o.action === 'failed' ? ` in ${fmtMs(o.durationMs)}` : '';
    lines.push(`  ${o.name.padEnd(w)}  ${o.action}${t}  ${o.action === 'fresh' ? '' : o.reason}`.trimEnd());
  }
  const total = outcomes.reduce((s, o) => s + o.durationMs, 0);
  lines.push(`  total ${fmtMs(total)}; outputs under ${dataDir}`);
  return lines.join('\n');
}

