/**
 * A linear support vector machine, the 2015 study's second baseline (scikit-learn's `LinearSVC` on pixels scaled to
 * [0, 1]), with liblinear's algorithm and scikit-learn's defaults: L2-regularised squared-hinge loss solved in the
 * dual by coordinate descent (Hsieh et al., "A Dual Coordinate Descent Method for Large-scale Linear SVM", ICML 2008;
 * liblinear's `L2R_L2LOSS_SVC_DUAL`), `C` = 1, tolerance 1e-4 on the projected-gradient gap, at most 1,000 passes,
 * one-vs-rest over the classes, and the intercept learned as the weight of a constant feature 1 (liblinear's bias
 * term, `intercept_scaling=1`, regularised like the other weights). liblinear also shrinks the active set, which
 * only saves time; the solution is the same optimum.
 *
 * Why not a library: npm has no port of liblinear. `libsvm-js` 0.2.1 (libsvm compiled to wasm) solves a different
 * problem, libsvm's C-SVC (hinge loss, one-vs-one) by SMO over kernel rows, whose cost grows with the square of the
 * training set; `ml-svm` is a plain-JS SMO. Measured once on the real-cover run's features (728 × 2,500, one after
 * another, load average 7–17, 2026-12-01): libsvm-js with a linear kernel 38 s (16.5% test accuracy), scikit-learn's
 * LinearSVC 79 s (13.2%), this solver 121 s (14.3%; predictions agree with scikit-learn's on 94.5% of the test covers,
 * both stopping at 1,000 passes). This solver is slower than liblinear because it lacks liblinear's shrinking of the
 * active set; it is kept because it solves LinearSVC's problem, the study's baseline. bench/linear-svm.bench.ts
 * measures it against scikit-learn in the same run.
 */
import { Rng } from '../util/rng.ts';

/** Solver options (scikit-learn's `LinearSVC` defaults). */
export interface LinearSvmOptions {
  /** Inverse regularisation strength C > 0 (default 1). */
  C?: number;
  /** Stop when the projected-gradient gap of a pass is at most this (default 1e-4). */
  tol?: number;
  /** Most passes over the data per class (default 1,000). */
  maxIter?: number;
  /** Seed of the coordinate order (default 0). */
  seed?: number;
}

/** A fitted one-vs-rest linear SVM. */
export interface LinearSvm {
  classes: number;
  /** Features per sample. */
  d: number;
  /** `[classes, d + 1]` row-major: the weights of class k, then its intercept. */
  w: Float64Array;
  /** Passes the solver made, per class. */
  iterations: number[];
  /** Whether each class converged within `maxIter` (scikit-learn warns `ConvergenceWarning` otherwise). */
  converged: boolean[];
}

/**
 * Fits the SVM.
 * @param x `[n, d]` float32 row-major features (scale them first, e.g. with {@link minMaxScale}).
 * @param y `[n]` labels in `0 .. classes − 1`.
 * @throws Error when the shapes disagree, a label is out of range or C, tol, maxIter are not positive.
 */
export function fitLinearSvm(x: Float32Array, y: ArrayLike<number>, n: number, d: number, classes: number, o: LinearSvmOptions = {}): LinearSvm {
  const C = o.C ?? 1;
  const tol = o.tol ?? 1e-4;
  const maxIter = o.maxIter ?? 1000;
  if (x.length !== n * d || y.length !== n) throw new Error(`linear SVM: x has ${x.length} values and y ${y.length} labels for n = ${n}, d = ${d}`);
  if (!(C > 0) || !(tol > 0) || !(maxIter >= 1)) throw new Error(`linear SVM: C (${C}), tol (${tol}) and maxIter (${maxIter}) must be positive`);
  for (let i = 0; i < n; i++) if (!(y[i]! >= 0 && y[i]! < classes)) throw new Error(`linear SVM: label ${y[i]} of sample ${i} is not in 0..${classes - 1}`);
  const rng = new Rng(o.seed ?? 0);
  const dd = d + 1;
  const w = new Float64Array(classes * dd);
  // Squared norms of the samples with the bias feature, plus the diagonal 1/(2C) of the L2-loss dual.
  const diag = 1 / (2 * C);
  const qii = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 1;
    for (let j = i * d, e = j + d; j < e; j++) s += x[j]! * x[j]!;
    qii[i] = s + diag;
  }
  const iterations: number[] = [];
  const converged: boolean[] = [];
  const alpha = new Float64Array(n);
  const order = new Int32Array(n);
  for (let k = 0; k < classes; k++) {
    const wk = w.subarray(k * dd, (k + 1) * dd);
    alpha.fill(0);
    for (let i = 0; i < n; i++) order[i] = i;
    let iter = 0;
    let done = false;
    while (iter < maxIter) {
      iter++;
      // A fresh random order every pass (liblinear).
      for (let i = n - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
      let pgMax = -Infinity;
      let pgMin = Infinity;
      for (let t = 0; t < n; t++) {
        const i = order[t]!;
        const yi = y[i] === k ? 1 : -1;
        const base = i * d;
        let dot = wk[d]!;
        for (let j = 0; j < d; j++) dot += wk[j]! * x[base + j]!;
        const g = yi * dot - 1 + diag * alpha[i]!;
        const pg = alpha[i] === 0 ? Math.min(g, 0) : g;
        if (pg > pgMax) pgMax = pg;
        if (pg < pgMin) pgMin = pg;
        if (Math.abs(pg) > 1e-12) {
          const old = alpha[i]!;
          const a = Math.max(old - g / qii[i]!, 0);
          alpha[i] = a;
          const step = (a - old) * yi;
          for (let j = 0; j < d; j++) wk[j]! += step * x[base + j]!;
          wk[d]! += step;
        }
      }
      if (pgMax - pgMin <= tol) {
        done = true;
        break;
      }
    }
    iterations.push(iter);
    converged.push(done);
  }
  return { classes, d, w, iterations, converged };
}

/**
 * Predicts the class of each row: the largest one-vs-rest decision value `w_k · x + b_k`.
 * @param x `[m, d]` float32 row-major, scaled as the training features were.
 * @returns `[m]` labels.
 */
export function predictLinearSvm(svm: LinearSvm, x: Float32Array): Int32Array {
  const { d, classes, w } = svm;
  const m = x.length / d;
  const out = new Int32Array(m);
  const dd = d + 1;
  for (let i = 0; i < m; i++) {
    let best = 0;
    let bestV = -Infinity;
    for (let k = 0; k < classes; k++) {
      let v = w[k * dd + d]!;
      for (let j = 0; j < d; j++) v += w[k * dd + j]! * x[i * d + j]!;
      if (v > bestV) {
        bestV = v;
        best = k;
      }
    }
    out[i] = best;
  }
  return out;
}

/**
 * Scales each feature to [0, 1] by its minimum and maximum over `fit` (scikit-learn's `MinMaxScaler`), and applies
 * the same map to `others` (whose values may then fall outside [0, 1]). A constant feature becomes 0.
 * @param fit `[n, d]` uint8 row-major. @returns float32 copies, `fit` first.
 */
export function minMaxScale(fit: Uint8Array, d: number, ...others: Uint8Array[]): Float32Array[] {
  const lo = new Float64Array(d).fill(Infinity);
  const hi = new Float64Array(d).fill(-Infinity);
  for (let i = 0; i < fit.length; i += d) {
    for (let j = 0; j < d; j++) {
      const v = fit[i + j]!;
      if (v < lo[j]!) lo[j] = v;
      if (v > hi[j]!) hi[j] = v;
    }
  }
  return [fit, ...others].map((a) => {
    const out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i += d) {
      for (let j = 0; j < d; j++) {
        const range = hi[j]! - lo[j]!;
        out[i + j] = range > 0 ? (a[i + j]! - lo[j]!) / range : 0;
      }
    }
    return out;
  });
}
