/**
 * Number formats shared by training logs and the report.
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
