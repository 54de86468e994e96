/** The end-of-`make` summary printed by `covers make` and `covers demo`. */
import type { StageOutcome } from './runner.ts';

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
    const t = o.action === 'ran' || o.action === 'failed' ? ` in ${fmtMs(o.durationMs)}` : '';
    lines.push(`  ${o.name.padEnd(w)}  ${o.action}${t}  ${o.action === 'fresh' ? '' : o.reason}`.trimEnd());
  }
  const total = outcomes.reduce((s, o) => s + o.durationMs, 0);
  lines.push(`  total ${fmtMs(total)}; outputs under ${dataDir}`);
  return lines.join('\n');
}

