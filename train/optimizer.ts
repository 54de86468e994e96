/**
 * The optimizers training uses (Nesterov momentum, Adam: tfjs-core 4.22's), and their update written out for
 * data-parallel training: {@link updateChunk} sums the ranks' gradients of a chunk of the parameters and applies the
 * optimizer's update to that chunk in shared memory, in one pass.
 *
 * Why: with tfjs's optimizers every replica ran the whole update itself — per variable 6 (Nesterov) to 11 (Adam)
 * tensor ops, each a pass over its parameters, plus a copy of the reduced gradient into its heap — after a separate
 * all-reduce pass. Split by chunks, each rank touches `1/T` of the parameters once, then copies the new weights in.
 * Measured on AlexNet-224 (batch 32, 2 threads, this 2-core machine): all-reduce 25–50 ms plus update 40–170 ms per
 * step before; now 34–41 ms for both (rank 0's view, including the wait for the other rank) and 5–10 ms to load.
 *
 * The arithmetic is tfjs-core 4.22's, op by op (`optimizers/momentum_optimizer.js`, `adam_optimizer.js`), each op
 * rounded to float32 with `Math.fround`: float32 +, −, ×, ÷ and √ computed in float64 and rounded once give the
 * correctly rounded float32 result (float64 has more than 2·24 + 2 bits), which is what the wasm and cpu backends'
 * float32 kernels compute. So a replica's update is bit for bit the optimizer's (test/optimizer.test.ts checks it
 * against `applyGradients` on both backends).
 */
import * as tf from '@tensorflow/tfjs-core';

/** The optimizer each replica runs (the train loop's choice and learning rate). */
export type OptimizerConfig =
  | { kind: 'nesterov'; learningRate: number; momentum: number }
  | { kind: 'adam'; learningRate: number; beta1: number; beta2: number; epsilon: number };

/** Builds the optimizer of an {@link OptimizerConfig} (Nesterov momentum or Adam, tfjs-core's). */
export function makeOptimizer(c: OptimizerConfig): tf.Optimizer {
  return c.kind === 'adam' ? tf.train.adam(c.learningRate, c.beta1, c.beta2, c.epsilon) : tf.train.momentum(c.learningRate, c.momentum, true);
}

/** Disposes an optimizer, including the learning-rate scalar that MomentumOptimizer.dispose() leaves (tfjs-core 4.22). */
export function disposeOptimizer(opt: tf.Optimizer): void {
  opt.dispose();
  const c = (opt as unknown as { c?: tf.Tensor }).c;
  if (c instanceof tf.Tensor && !c.isDisposed) c.dispose();
}

/** tfjs-core 4.22 AdamOptimizer's private running powers of β1 and β2, and Optimizer's step counter. */
interface OptimizerPrivates {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
  iterations_?: number;
}

/** Adam's running β1ᵗ and β2ᵗ (float32 values), or null for other optimizers. */
function adamPowers(opt: tf.Optimizer): [number, number] | null {
  const a = opt as unknown as OptimizerPrivates;
  if (!(a.accBeta1 instanceof tf.Variable) || !(a.accBeta2 instanceof tf.Variable)) return null;
  return [a.accBeta1.dataSync()[0]!, a.accBeta2.dataSync()[0]!];
}

/** Sets Adam's running powers (see {@link adamPowers}); no-op for other optimizers. */
function setAdamPowers(opt: tf.Optimizer, p: [number, number] | null): void {
  const a = opt as unknown as OptimizerPrivates;
  if (!p || !(a.accBeta1 instanceof tf.Variable) || !(a.accBeta2 instanceof tf.Variable)) return;
  tf.tidy(() => {
    a.accBeta1!.assign(tf.scalar(p[0]));
    a.accBeta2!.assign(tf.scalar(p[1]));
  });
}

/** Total number of elements of `vars`: P, the length of their flattened values (variables in order). */
export function paramCount(vars: readonly tf.Tensor[]): number {
  return vars.reduce((s, v) => s + v.size, 0);
}

/** Slot arrays per parameter: Nesterov's accumulation (1); Adam's first and second moments (2). */
export function slotCount(kind: OptimizerConfig['kind']): number {
  return kind === 'adam' ? 2 : 1;
}

/**
 * The slot names tfjs gives the optimizer state of variable `name`, in `getWeights()` order per variable
 * (`<name>/momentum`; `<name>/m`, `<name>/v`).
 */
function slotNames(kind: OptimizerConfig['kind'], name: string): string[] {
  return kind === 'adam' ? [`${name}/m`, `${name}/v`] : [`${name}/momentum`];
}

/**
 * The state of `opt` in flat form: its step count, its slots `[S, P]` float32 (S = {@link slotCount}, slot s of
 * variable i at `s·P + offset(i)`, variables in `vars` order; zeros when the optimizer has not stepped yet) and
 * Adam's powers.
 * @throws Error when the optimizer's slots do not match `vars` (another model's optimizer).
 */
export async function readOptimizerState(
  opt: tf.Optimizer, kind: OptimizerConfig['kind'], vars: readonly tf.Variable[], slots: Float32Array,
): Promise<{ iterations: number; powers: [number, number] | null }> {
  const ws = await opt.getWeights();
  try {
    const iterations = ws[0] ? ws[0].tensor.dataSync()[0]! : 0;
    const s = slotCount(kind);
    const p = paramCount(vars);
    const state = ws.slice(1);
    if (state.length === 0) {
      slots.fill(0, 0, s * p);
    } else {
      if (state.length !== s * vars.length) throw new Error(`the optimizer holds ${state.length} slot tensors, the model needs ${s * vars.length}`);
      // getWeights() lists Adam's first moments of all variables, then the second moments.
      for (let k = 0; k < s; k++) {
        let at = k * p;
        for (let i = 0; i < vars.length; i++) {
          const t = state[k * vars.length + i]!.tensor;
          if (t.size !== vars[i]!.size) throw new Error(`optimizer slot ${state[k * vars.length + i]!.name} has ${t.size} values, variable ${vars[i]!.name} ${vars[i]!.size}`);
          slots.set(t.dataSync() as Float32Array, at);
          at += t.size;
        }
      }
    }
    return { iterations, powers: adamPowers(opt) };
  } finally {
    for (const w of ws) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
  }
}

/**
 * Puts flat state (see {@link readOptimizerState}) into `opt`, replacing its slots (the old slot variables are
 * disposed), so that `getWeights()` and later `applyGradients` continue from it.
 */
export async function writeOptimizerState(
  opt: tf.Optimizer, kind: OptimizerConfig['kind'], vars: readonly tf.Variable[], slots: Float32Array, iterations: number, powers: [number, number] | null,
): Promise<void> {
  const old = (await opt.getWeights()).map((w) => w.tensor);
  const s = slotCount(kind);
  const p = paramCount(vars);
  const fresh: { name: string; tensor: tf.Tensor }[] = [{ name: 'iter', tensor: tf.scalar(iterations, 'int32') }];
  for (let k = 0; k < s; k++) {
    let at = k * p;
    for (const v of vars) {
      fresh.push({ name: slotNames(kind, v.name)[k]!, tensor: tf.tensor(slots.subarray(at, at + v.size), v.shape, 'float32') });
      at += v.size;
    }
  }
  await opt.setWeights(fresh); // makes its own variables of the tensors
  for (const w of fresh) w.tensor.dispose();
  for (const t of old) if (!t.isDisposed) t.dispose();
  setAdamPowers(opt, powers);
}

/** Adam's powers after one more step (`accBeta ← accBeta·β` in float32); null stays null. */
export function nextPowers(c: OptimizerConfig, powers: [number, number] | null): [number, number] | null {
  if (c.kind !== 'adam' || !powers) return powers;
  const f = Math.fround;
  return [f(powers[0] * f(c.beta1)), f(powers[1] * f(c.beta2))];
}

/**
 * Sums the `threads` gradients of elements `[from, to)` and applies one optimizer step to them, in place:
 * `g = Σ_r grads[r·P + i]` (rank order, in float64, rounded once to float32: the all-reduce), then tfjs-core 4.22's
 * update of `weights[i]` and its slots (see the module comment).
 * @param grads `[threads, P]` float32, each rank's gradient; `weights` `[P]`; `slots` `[S, P]` ({@link slotCount}).
 * @param powers Adam's β1ᵗ, β2ᵗ before this step (`null` for Nesterov); advance them with {@link nextPowers}.
 */
export function updateChunk(
  c: OptimizerConfig, powers: [number, number] | null, grads: Float32Array, threads: number, weights: Float32Array, slots: Float32Array,
  from: number, to: number,
): void {
  const f = Math.fround;
  const p = weights.length;
  // Two ranks (2 cores) get loops of their own: summing through the general loop costs ~35% more here.
  if (c.kind === 'nesterov') {
    const m = f(c.momentum);
    const neg = f(-c.learningRate);
    if (threads === 2) for (let i = from; i < to; i++) nesterovAt(weights, slots, i, f(grads[i]! + grads[p + i]!), m, neg);
    else for (let i = from; i < to; i++) nesterovAt(weights, slots, i, sumAt(grads, p, threads, i), m, neg);
    return;
  }
  if (!powers) throw new Error('Adam needs its running powers of β1 and β2');
  const k = Float32Array.of(c.beta1, c.beta2, 1 - c.beta1, 1 - c.beta2, c.epsilon, -c.learningRate, f(1 - powers[0]), f(1 - powers[1]));
  if (threads === 2) for (let i = from; i < to; i++) adamAt(weights, slots, p, i, f(grads[i]! + grads[p + i]!), k);
  else for (let i = from; i < to; i++) adamAt(weights, slots, p, i, sumAt(grads, p, threads, i), k);
}

/** Σ_r grads[r·p + i] over `threads` regions, in rank order, in float64, rounded once to float32. */
function sumAt(grads: Float32Array, p: number, threads: number, i: number): number {
  let g = grads[i]!;
  for (let r = 1; r < threads; r++) g += grads[r * p + i]!;
  return Math.fround(g);
}

/**
 * Nesterov momentum (tfjs MomentumOptimizer, useNesterov) for element `i` with gradient `g`, `m` the momentum and
 * `neg` −lr (float32): newAccumulation = m·acc + g; value = −lr·(g + newAccumulation·m) + value.
 */
function nesterovAt(weights: Float32Array, slots: Float32Array, i: number, g: number, m: number, neg: number): void {
  const f = Math.fround;
  const acc = f(f(m * slots[i]!) + g);
  slots[i] = acc;
  weights[i] = f(f(neg * f(g + f(acc * m))) + weights[i]!);
}

/**
 * Adam (tfjs AdamOptimizer) for element `i` with gradient `g`, `k` = [β1, β2, 1−β1, 1−β2, ε, −lr, 1−β1ᵗ, 1−β2ᵗ]
 * (float32): m ← m·β1 + g·(1−β1); v ← v·β2 + g²·(1−β2); value = (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε) · (−lr) + value.
 * The first moments are slots `[0, p)`, the second `[p, 2p)`.
 */
function adamAt(weights: Float32Array, slots: Float32Array, p: number, i: number, g: number, k: Float32Array): void {
  const f = Math.fround;
  const m1 = f(f(slots[i]! * k[0]!) + f(g * k[2]!));
  const m2 = f(f(slots[p + i]! * k[1]!) + f(f(g * g) * k[3]!));
  slots[i] = m1;
  slots[p + i] = m2;
  const step = f(f(m1 / k[6]!) / f(f(Math.sqrt(f(m2 / k[7]!))) + k[4]!));
  weights[i] = f(f(step * k[5]!) + weights[i]!);
}
