/**
 * Number and duration formats shared by the logs, the end-of-make summary and the report.
 */

/**
 * Formats a learning rate with at most 3 significant digits and no float noise: `0.01`, `0.000001`, `1e-8`,
 * `0.00123` (never `1.0000000000000002e-8`). Uses JavaScript's shortest number text of the rounded value, so small
 * rates (below 1e-6) appear in exponent form.
 */
export function fmtLearningRate(lr: number): string {
  if (!Number.isFinite(lr)) return String(lr);
  return String(Number(lr.toPrecision(3)));
}

/**
 * Formats a duration in ms: `850 ms`, `12.3 s`, `4 min 05 s`, `1 h 02 min`. The duration is rounded to the shown
 * unit first, so the parts never overflow (`119.7 s` → `2 min 00 s`, not `1 min 60 s`; `999.6 ms` → `1.0 s`).
 */
export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
  const minutes = Math.round(ms / 60_000);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}
