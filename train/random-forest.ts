/**
 * A random forest classifier for uint8 features (pixels), written for the study's baseline: 100 trees on 8,000
 * images × 2,500 grayscale pixels. It follows scikit-learn's `RandomForestClassifier` defaults, which the 2015 study
 * used (scikit-learn docs, "RandomForestClassifier" and "Decision Trees / Mathematical formulation"):
 *
 * - each tree is a CART tree grown on a bootstrap sample of size n (drawn with replacement; a sample drawn k times
 *   has weight k, as scikit-learn passes the draw counts as `sample_weight`);
 * - at each node, features are drawn without replacement until `maxFeatures` have been visited (`sqrt`: ⌊√d⌋),
 *   continuing past that only while every visited feature was constant in the node (scikit-learn's rule);
 * - the split minimises the weighted Gini impurity of the children; thresholds are midpoints between consecutive
 *   distinct values, a sample goes left when `x <= threshold`;
 * - nodes are split until pure or smaller than `minSamplesSplit` (2) distinct samples (no depth limit);
 * - leaves hold the weighted class fractions; the forest predicts the class of the highest mean probability over
 *   the trees (first class on ties), like scikit-learn's `predict`.
 *
 * Speed: features are uint8, so each node sorts a feature's values with a counting sort (256 buckets, O(m + 256))
 * instead of a comparison sort, and finds the best threshold in one pass with O(1) Gini updates per sample. The
 * training matrix is stored feature-major (`[d, n]`) so a node reads one feature's column contiguously. Trees are
 * independent and seeded per tree index ({@link treeSeed}), so a forest is identical whatever the thread count
 * (train/forest-worker.ts builds trees on worker threads).
 *
 * Random numbers: the mulberry32 generator of util/rng.ts ({@link Rng}); a forest is reproducible from its seed
 * on any machine, but does not reproduce scikit-learn's trees (different random streams).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { Rng } from '../util/rng.ts';
import { startTsWorker } from './ts-worker.ts';

/** How many features each split looks at: `sqrt` (⌊√d⌋, scikit-learn's default), `log2` (⌊log₂ d⌋), `all`, or a share in (0, 1] (⌊share·d⌋, at least 1). */
export type MaxFeatures = 'sqrt' | 'log2' | 'all' | number;

/** Parameters of {@link fitForest}; defaults are scikit-learn's `RandomForestClassifier` defaults. */
export interface ForestParams {
  /** Trees (default 100). */
  trees?: number;
  /** Features tried per split (default `sqrt`). */
  maxFeatures?: MaxFeatures;
  /** Smallest node (distinct training samples) that is split (default 2, i.e. grow until pure). */
  minSamplesSplit?: number;
  /** Deepest node (root = depth 0); null = unlimited (default). */
  maxDepth?: number | null;
  /** Draw a bootstrap sample per tree (default true); false = every tree sees every sample once. */
  bootstrap?: boolean;
  /** Bootstrap sample size; null = n (default). */
  maxSamples?: number | null;
  /** Seed of the forest (default 0). */
  seed?: number;
}

/** Training data: a row-major uint8 matrix and integer class labels. */
export interface ForestData {
  /** `[n, d]` uint8, row-major (one row per sample). */
  x: Uint8Array;
  /** Samples (rows). */
  n: number;
  /** Features (columns). */
  d: number;
  /** `[n]` class labels in `0 .. classes-1`. */
  y: ArrayLike<number>;
  /** Number of classes K. */
  classes: number;
}

/**
 * One fitted tree, in flat arrays indexed by node (root = 0). Internal nodes have `feature >= 0` and children
 * `left`/`right`; leaves have `feature === -1` and their class fractions in `value[node * K .. node * K + K)`.
 */
export interface Tree {
  feature: Int32Array;
  /** Go left when `x[feature] <= threshold` (a midpoint between two training values, e.g. 17.5). */
  threshold: Float32Array;
  left: Int32Array;
  right: Int32Array;
  /** `[nodes, K]` class fractions of leaves (zero for internal nodes). */
  value: Float32Array;
  /** Nodes in the tree. */
  nodes: number;
  /** Depth of the deepest leaf (root = 0). */
  depth: number;
}

/** A fitted forest. */
export interface Forest {
  trees: Tree[];
  /** Number of classes K. */
  classes: number;
  /** Features d the forest was fitted on. */
  features: number;
  /** Features tried per split (resolved from {@link ForestParams.maxFeatures}). */
  maxFeatures: number;
}

/** The fully resolved parameters handed to tree builders (also across worker threads). */
export interface ResolvedParams {
  trees: number;
  maxFeatures: number;
  minSamplesSplit: number;
  maxDepth: number;
  bootstrap: boolean;
  samples: number;
  seed: number;
}

/**
 * Features tried per split for `d` features (scikit-learn's `max_features` rules).
 * @throws Error on a share outside (0, 1] or an unknown name.
 */
export function resolveMaxFeatures(m: MaxFeatures, d: number): number {
  if (m === 'sqrt') return Math.max(1, Math.floor(Math.sqrt(d)));
  if (m === 'log2') return Math.max(1, Math.floor(Math.log2(d)));
  if (m === 'all') return d;
  if (typeof m === 'number' && m > 0 && m <= 1) return Math.max(1, Math.floor(m * d));
  throw new Error(`random forest: maxFeatures must be 'sqrt', 'log2', 'all' or a share in (0, 1], got ${String(m)}`);
}

/** Fills in defaults and checks the parameters against the data. @throws Error on an invalid parameter. */
function resolveParams(p: ForestParams, n: number, d: number): ResolvedParams {
  const trees = p.trees ?? 100;
  const minSamplesSplit = p.minSamplesSplit ?? 2;
  const samples = p.maxSamples ?? n;
  if (!Number.isInteger(trees) || trees < 1) throw new Error(`random forest: trees must be an integer ≥ 1, got ${trees}`);
  if (!Number.isInteger(minSamplesSplit) || minSamplesSplit < 2) throw new Error(`random forest: minSamplesSplit must be an integer ≥ 2, got ${minSamplesSplit}`);
  if (!Number.isInteger(samples) || samples < 1) throw new Error(`random forest: maxSamples must be an integer ≥ 1, got ${samples}`);
  const maxDepth = p.maxDepth ?? Number.MAX_SAFE_INTEGER;
  return { trees, maxFeatures: resolveMaxFeatures(p.maxFeatures ?? 'sqrt', d), minSamplesSplit, maxDepth, bootstrap: p.bootstrap ?? true, samples, seed: p.seed ?? 0 };
}

/** The seed of tree `t` of a forest seeded `seed` (murmur3's 32-bit finaliser over both), independent of threads. */
function treeSeed(seed: number, t: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(t + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * `[n, d]` row-major → `[d, n]` feature-major, into `out` (which may be backed by a SharedArrayBuffer).
 * @throws Error when `x` does not hold n × d values.
 */
export function transpose(x: Uint8Array, n: number, d: number, out: Uint8Array = new Uint8Array(n * d)): Uint8Array {
  if (x.length !== n * d) throw new Error(`random forest: x has ${x.length} values, expected n × d = ${n} × ${d}`);
  // Blocks of 64 rows keep both sides in cache.
  for (let r0 = 0; r0 < n; r0 += 64) {
    const r1 = Math.min(n, r0 + 64);
    for (let f = 0; f < d; f++) {
      const o = f * n;
      for (let r = r0; r < r1; r++) out[o + r] = x[r * d + f]!;
    }
  }
  return out;
}

/** Node sizes at or below which a feature's values are insertion-sorted instead of counting-sorted. */
const SMALL_NODE = 24;

/**
 * Grows CART trees on one training set, reusing its scratch buffers from tree to tree (no allocation per node).
 * `xt` is the `[d, n]` feature-major matrix ({@link transpose}).
 */
export class TreeBuilder {
  private readonly samples: Int32Array;
  private readonly weight: Float64Array;
  private readonly vals: Uint8Array;
  private readonly sortV: Uint8Array;
  private readonly sortC: Int32Array;
  private readonly sortW: Float64Array;
  private readonly bucket = new Int32Array(257);
  private readonly classL: Float64Array;
  private readonly classR: Float64Array;
  private readonly nodeCounts: Float64Array;
  private readonly featureOrder: Int32Array;
  private readonly labels: Int32Array;
  // Tree under construction (capacity 2n - 1 nodes: a binary tree with at most n leaves).
  private readonly tFeature: Int32Array;
  private readonly tThreshold: Float32Array;
  private readonly tLeft: Int32Array;
  private readonly tRight: Int32Array;
  private readonly tValue: Float32Array;

  constructor(readonly xt: Uint8Array, readonly n: number, readonly d: number, y: ArrayLike<number>, readonly classes: number) {
    if (xt.length !== n * d) throw new Error(`random forest: xt has ${xt.length} values, expected ${n} × ${d}`);
    if (y.length !== n) throw new Error(`random forest: ${y.length} labels for ${n} samples`);
    if (n < 1 || d < 1) throw new Error(`random forest: empty training set (${n} samples × ${d} features)`);
    this.labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = y[i]!;
      if (!Number.isInteger(c) || c < 0 || c >= classes) throw new Error(`random forest: label ${c} of sample ${i} is not in 0..${classes - 1}`);
      this.labels[i] = c;
    }
    this.samples = new Int32Array(n);
    this.weight = new Float64Array(n);
    this.vals = new Uint8Array(n);
    this.sortV = new Uint8Array(n);
    this.sortC = new Int32Array(n);
    this.sortW = new Float64Array(n);
    this.classL = new Float64Array(classes);
    this.classR = new Float64Array(classes);
    this.nodeCounts = new Float64Array(classes);
    this.featureOrder = new Int32Array(d);
    for (let f = 0; f < d; f++) this.featureOrder[f] = f;
    const cap = 2 * n;
    this.tFeature = new Int32Array(cap);
    this.tThreshold = new Float32Array(cap);
    this.tLeft = new Int32Array(cap);
    this.tRight = new Int32Array(cap);
    this.tValue = new Float32Array(cap * classes);
  }

  /** Grows tree number `t` of a forest with parameters `p` (seeded by {@link treeSeed}). */
  build(p: ResolvedParams, t: number): Tree {
    const rng = new Rng(treeSeed(p.seed, t));
    const { n, classes: K, samples, weight, labels } = this;
    weight.fill(0);
    if (p.bootstrap) for (let i = 0; i < p.samples; i++) weight[rng.int(n)]! += 1;
    else weight.fill(1);
    let m0 = 0;
    for (let i = 0; i < n; i++) if (weight[i]! > 0) samples[m0++] = i;
    // The feature draws depend only on this tree's seed, not on the trees this builder grew before.
    for (let f = 0; f < this.d; f++) this.featureOrder[f] = f;

    const tValue = this.tValue;
    tValue.fill(0, 0, Math.min(tValue.length, (2 * m0) * K));
    let nodes = 0;
    let maxDepth = 0;
    // Depth-first stack of [start, end, depth, parent, isLeft]; left children are grown first.
    const stack: number[] = [0, m0, 0, -1, 0];
    const counts = this.nodeCounts;
    while (stack.length) {
      const isLeft = stack.pop()!;
      const parent = stack.pop()!;
      const depth = stack.pop()!;
      const end = stack.pop()!;
      const start = stack.pop()!;
      const id = nodes++;
      if (parent >= 0) {
        if (isLeft) this.tLeft[parent] = id;
        else this.tRight[parent] = id;
      }
      if (depth > maxDepth) maxDepth = depth;
      counts.fill(0);
      let wTot = 0;
      for (let j = start; j < end; j++) {
        const s = samples[j]!;
        const w = weight[s]!;
        counts[labels[s]!]! += w;
        wTot += w;
      }
      let present = 0;
      for (let c = 0; c < K; c++) if (counts[c]! > 0) present++;
      let split = -1;
      if (present > 1 && end - start >= p.minSamplesSplit && depth < p.maxDepth) split = this.bestSplit(start, end, wTot, p.maxFeatures, rng);
      if (split < 0) {
        this.tFeature[id] = -1;
        this.tThreshold[id] = 0;
        this.tLeft[id] = -1;
        this.tRight[id] = -1;
        const o = id * K;
        for (let c = 0; c < K; c++) tValue[o + c] = counts[c]! / wTot;
        continue;
      }
      const f = this.bestFeature;
      const thr = this.bestThreshold;
      this.tFeature[id] = f;
      this.tThreshold[id] = thr;
      // Partition samples[start, end) so that x[f] <= thr comes first.
      const xt = this.xt;
      const off = f * n;
      let i = start;
      let k = end - 1;
      while (i <= k) {
        const s = samples[i]!;
        if (xt[off + s]! <= thr) i++;
        else {
          samples[i] = samples[k]!;
          samples[k] = s;
          k--;
        }
      }
      stack.push(i, end, depth + 1, id, 0);
      stack.push(start, i, depth + 1, id, 1);
    }
    return {
      feature: this.tFeature.slice(0, nodes),
      threshold: this.tThreshold.slice(0, nodes),
      left: this.tLeft.slice(0, nodes),
      right: this.tRight.slice(0, nodes),
      value: tValue.slice(0, nodes * K),
      nodes,
      depth: maxDepth,
    };
  }

  private bestFeature = -1;
  private bestThreshold = 0;

  /**
   * Finds the best Gini split of samples[start, end) over the features drawn for this node; stores it in
   * `bestFeature`/`bestThreshold`. Returns the feature, or -1 when every feature is constant in the node.
   */
  private bestSplit(start: number, end: number, wTot: number, maxFeatures: number, rng: Rng): number {
    const { xt, n, d, samples, weight, labels, vals, sortV, sortC, sortW, bucket, classL, classR, nodeCounts, featureOrder } = this;
    const K = this.classes;
    const m = end - start;
    let nodeSq = 0;
    for (let c = 0; c < K; c++) nodeSq += nodeCounts[c]! * nodeCounts[c]!;
    let best = -Infinity;
    let bestF = -1;
    let bestThr = 0;
    let visited = 0;
    let constant = 0;
    // scikit-learn: visit max_features features, and more only while all visited ones were constant.
    for (let i = 0; i < d && (visited < maxFeatures || visited <= constant); i++) {
      const j = i + rng.int(d - i);
      const f = featureOrder[j]!;
      featureOrder[j] = featureOrder[i]!;
      featureOrder[i] = f;
      visited++;
      const off = f * n;
      let lo = 255;
      let hi = 0;
      for (let q = start; q < end; q++) {
        const v = xt[off + samples[q]!]!;
        vals[q] = v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (lo === hi) {
        constant++;
        continue;
      }
      // Sort (value, class, weight) by value into sortV/sortC/sortW[0, m).
      if (m <= SMALL_NODE) {
        for (let q = 0; q < m; q++) {
          const s = samples[start + q]!;
          const v = vals[start + q]!;
          const c = labels[s]!;
          const w = weight[s]!;
          let r = q - 1;
          while (r >= 0 && sortV[r]! > v) {
            sortV[r + 1] = sortV[r]!;
            sortC[r + 1] = sortC[r]!;
            sortW[r + 1] = sortW[r]!;
            r--;
          }
          sortV[r + 1] = v;
          sortC[r + 1] = c;
          sortW[r + 1] = w;
        }
      } else {
        const range = hi - lo + 1;
        bucket.fill(0, 0, range + 1);
        for (let q = start; q < end; q++) bucket[vals[q]! - lo + 1]!++;
        for (let b = 1; b <= range; b++) bucket[b]! += bucket[b - 1]!;
        for (let q = start; q < end; q++) {
          const v = vals[q]!;
          const pos = bucket[v - lo]!++;
          const s = samples[q]!;
          sortV[pos] = v;
          sortC[pos] = labels[s]!;
          sortW[pos] = weight[s]!;
        }
      }
      // One pass: move samples left in value order; the Gini proxy Σ L_c²/W_L + Σ R_c²/W_R is maximal at the best split.
      classL.fill(0);
      classR.set(nodeCounts);
      let sqL = 0;
      let sqR = nodeSq;
      let wL = 0;
      let wR = wTot;
      for (let q = 0; q < m - 1; q++) {
        const c = sortC[q]!;
        const w = sortW[q]!;
        const lc = classL[c]!;
        sqL += w * (2 * lc + w);
        classL[c] = lc + w;
        const rc = classR[c]!;
        sqR -= w * (2 * rc - w);
        classR[c] = rc - w;
        wL += w;
        wR -= w;
        const v = sortV[q]!;
        const next = sortV[q + 1]!;
        if (next !== v) {
          const proxy = sqL / wL + sqR / wR;
          if (proxy > best) {
            best = proxy;
            bestF = f;
            bestThr = (v + next) / 2;
          }
        }
      }
    }
    this.bestFeature = bestF;
    this.bestThreshold = bestThr;
    return bestF;
  }
}

/** Checks `data` and returns its labels' class count. @throws Error on a shape mismatch. */
function checkData(data: ForestData): void {
  if (data.x.length !== data.n * data.d) throw new Error(`random forest: x has ${data.x.length} values, expected n × d = ${data.n} × ${data.d}`);
  if (data.y.length !== data.n) throw new Error(`random forest: ${data.y.length} labels for ${data.n} samples`);
  if (!Number.isInteger(data.classes) || data.classes < 1) throw new Error(`random forest: classes must be ≥ 1, got ${data.classes}`);
}

/** Fits a forest on the calling thread. @throws Error on invalid data or parameters. */
export function fitForestSync(data: ForestData, params: ForestParams = {}): Forest {
  checkData(data);
  const p = resolveParams(params, data.n, data.d);
  const builder = new TreeBuilder(transpose(data.x, data.n, data.d), data.n, data.d, data.y, data.classes);
  const trees: Tree[] = [];
  for (let t = 0; t < p.trees; t++) trees.push(builder.build(p, t));
  return { trees, classes: data.classes, features: data.d, maxFeatures: p.maxFeatures };
}

/** Options of {@link fitForest}. */
export interface FitOptions {
  /** Worker threads building trees (default: the machine's available parallelism); 1 = the calling thread. */
  threads?: number;
  /** Called after each tree, with the number built so far. */
  onTree?: (built: number) => void;
  /** Stops the fit (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** Messages from train/forest-worker.ts. */
export type WorkerReply = { t: number; tree: Tree } | { error: string };

/**
 * Fits a forest, building trees on `threads` worker threads (train/forest-worker.ts), which share the feature-major
 * matrix through a SharedArrayBuffer. The forest is the same as {@link fitForestSync}'s for any thread count.
 * When a worker cannot start or fails, the whole forest is grown on the calling thread instead, and `fallback`
 * says why (the trees are the same).
 * @throws Error on invalid data or parameters (before any worker starts), or the signal's reason when aborted.
 */
export async function fitForest(data: ForestData, params: ForestParams = {}, opts: FitOptions = {}): Promise<Forest & { threads: number; fallback?: string }> {
  checkData(data);
  const p = resolveParams(params, data.n, data.d);
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), p.trees));
  opts.signal?.throwIfAborted();
  if (threads === 1) {
    const builder = new TreeBuilder(transpose(data.x, data.n, data.d), data.n, data.d, data.y, data.classes);
    const trees: Tree[] = [];
    for (let t = 0; t < p.trees; t++) {
      opts.signal?.throwIfAborted();
      trees.push(builder.build(p, t));
      opts.onTree?.(t + 1);
      if (t % 4 === 3) await new Promise<void>((r) => setImmediate(r)); // let the event loop breathe (progress, signals)
    }
    return { trees, classes: data.classes, features: data.d, maxFeatures: p.maxFeatures, threads: 1 };
  }
  const xt = transpose(data.x, data.n, data.d, new Uint8Array(new SharedArrayBuffer(data.n * data.d)));
  const y = new Int32Array(new SharedArrayBuffer(data.n * 4));
  for (let i = 0; i < data.n; i++) y[i] = data.y[i]!;
  const trees: (Tree | undefined)[] = new Array(p.trees);
  const workers: Worker[] = [];
  try {
    for (let w = 0; w < threads; w++) workers.push(startTsWorker(new URL('./forest-worker.ts', import.meta.url), { xt, y, n: data.n, d: data.d, classes: data.classes }));
  } catch (e) {
    for (const w of workers) void w.terminate();
    return { ...(await fitForest(data, params, { ...opts, threads: 1 })), fallback: (e as Error).message };
  }
  let next = 0;
  let built = 0;
  const failure: { error?: unknown } = {};
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error('random forest: aborted'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const give = (w: Worker) => {
        if (next < p.trees) w.postMessage({ p, t: next++ });
      };
      for (const w of workers) {
        w.on('message', (msg: WorkerReply) => {
          if ('error' in msg) return reject((failure.error = new Error(`random forest worker: ${msg.error}`)));
          trees[msg.t] = msg.tree;
          built++;
          opts.onTree?.(built);
          if (built === p.trees) {
            opts.signal?.removeEventListener('abort', onAbort);
            resolve();
          } else give(w);
        });
        w.on('error', (e) => reject((failure.error = e)));
        w.on('exit', (code) => { if (built < p.trees) reject((failure.error = new Error(`random forest worker exited with code ${code}`))); });
        give(w);
      }
    });
  } catch (e) {
    await Promise.all(workers.map((w) => w.terminate()));
    // A worker that cannot run (e.g. tsx not reachable from worker threads) loses nothing: the same trees are grown
    // here. Aborts are passed on.
    if (e !== failure.error || opts.signal?.aborted) throw e;
    return { ...(await fitForest(data, params, { ...opts, threads: 1 })), fallback: (e as Error).message };
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return { trees: trees as Tree[], classes: data.classes, features: data.d, maxFeatures: p.maxFeatures, threads };
}

/** Index of the leaf that row `r` of `x` (`[rows, d]` uint8, row-major) reaches in `tree`. */
export function leafOf(tree: Tree, x: Uint8Array, d: number, r: number): number {
  const { feature, threshold, left, right } = tree;
  const o = r * d;
  let node = 0;
  let f = feature[0]!;
  while (f >= 0) {
    node = x[o + f]! <= threshold[node]! ? left[node]! : right[node]!;
    f = feature[node]!;
  }
  return node;
}

/** Adds up the class probabilities of row `r` over the trees into `acc` (`[K]`, zeroed first). */
function accumulate(forest: Forest, x: Uint8Array, r: number, acc: Float64Array): void {
  const K = forest.classes;
  acc.fill(0);
  for (const tree of forest.trees) {
    const o = leafOf(tree, x, forest.features, r) * K;
    for (let c = 0; c < K; c++) acc[c]! += tree.value[o + c]!;
  }
}

function rowsOf(forest: Forest, x: Uint8Array): number {
  if (x.length % forest.features !== 0) throw new Error(`random forest: ${x.length} values are not rows of ${forest.features} features`);
  return x.length / forest.features;
}

/**
 * Mean class probability over the trees for each row of `x`.
 * @param x `[rows, d]` uint8, row-major, with the forest's `d` features.
 * @returns `[rows, K]` float32, rows summing to 1.
 * @throws Error when `x` is not a whole number of rows of the forest's feature count.
 */
export function predictProba(forest: Forest, x: Uint8Array): Float32Array {
  const K = forest.classes;
  const rows = rowsOf(forest, x);
  const out = new Float32Array(rows * K);
  const acc = new Float64Array(K);
  for (let r = 0; r < rows; r++) {
    accumulate(forest, x, r, acc);
    for (let c = 0; c < K; c++) out[r * K + c] = acc[c]! / forest.trees.length;
  }
  return out;
}

/**
 * The predicted class of each row of `x` (`[rows, d]` uint8, row-major): the highest mean probability over the
 * trees, the first class on ties (scikit-learn's `predict`).
 * @throws Error when `x` is not a whole number of rows of the forest's feature count.
 */
export function predict(forest: Forest, x: Uint8Array): Int32Array {
  const K = forest.classes;
  const rows = rowsOf(forest, x);
  const out = new Int32Array(rows);
  const acc = new Float64Array(K);
  for (let r = 0; r < rows; r++) {
    accumulate(forest, x, r, acc);
    let best = 0;
    for (let c = 1; c < K; c++) if (acc[c]! > acc[best]!) best = c;
    out[r] = best;
  }
  return out;
}
