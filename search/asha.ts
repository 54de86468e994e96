/**
 * Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys
 * 2020) on the validation loss per epoch: rungs at `minEpochs · η^k` epochs (below the trial's epoch budget); a
 * trial reaching a rung goes on only if its loss there is among the best ⌊n/η⌋ of the n losses recorded at that rung
 * so far, its own included (at least the best one: Optuna's `SuccessiveHalvingPruner`,
 * optuna/pruners/_successive_halving.py `_is_trial_promotable_to_next_rung`). Asynchronous: a trial is judged
 * against whatever has reached the rung, never waits.
 */

/** ASHA settings: `search.asha` and the epochs per trial. */
export interface AshaOptions {
  /** Reduction factor η ≥ 2. */
  eta: number;
  /** Epochs of the first rung. */
  minEpochs: number;
  /** Epochs per trial (`search.epochs`); rungs lie strictly below it. */
  maxEpochs: number;
}

/** The rung epochs, ascending: minEpochs · η^k < maxEpochs. */
export function rungEpochs(o: AshaOptions): number[] {
  const out: number[] = [];
  for (let e = o.minEpochs; e < o.maxEpochs; e *= o.eta) out.push(e);
  return out;
}

/**
 * Whether a trial whose validation loss after `epoch` epochs is `loss` stops there.
 * @param others the losses other trials had at this epoch (all trials that reached it, finished or running).
 * @returns false when `epoch` is not a rung.
 */
export function ashaPrunes(o: AshaOptions, epoch: number, loss: number, others: readonly number[]): boolean {
  if (!rungEpochs(o).includes(epoch)) return false;
  const competing = [...others, loss].sort((a, b) => a - b);
  const k = Math.max(Math.floor(competing.length / o.eta) - 1, 0);
  return !(loss <= competing[k]!);
}

/** The losses recorded at `epoch` by trials that ran that many epochs (from their per-epoch validation losses). */
export function lossesAt(curves: readonly (readonly number[])[], epoch: number): number[] {
  return curves.filter((c) => c.length >= epoch).map((c) => c[epoch - 1]!);
}
