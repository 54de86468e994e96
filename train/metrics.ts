/** Classification metrics in the {@link EvalMetrics} format (schemas/metrics.ts). */
import { wilsonInterval, type EvalMetrics } from '../schemas/metrics.ts';

/**
 * Accuracy with its 95% Wilson interval, per-class accuracy (recall) and the confusion matrix
 * (`[true][predicted]`, label order) of predictions.
 * @throws Error when `predicted` and `actual` differ in length.
 */
export function classificationMetrics(
  predicted: ArrayLike<number>,
  actual: ArrayLike<number>,
  labels: readonly string[],
  rest: Pick<EvalMetrics, 'model' | 'split' | 'crops' | 'backend' | 'seconds' | 'details'>,
): EvalMetrics {
  if (predicted.length !== actual.length) throw new Error(`metrics: ${predicted.length} predictions for ${actual.length} labels`);
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < actual.length; i++) {
    confusion[actual[i]!]![predicted[i]!]! += 1;
    if (actual[i] === predicted[i]) correct++;
  }
  const n = actual.length;
  return {
    ...rest,
    n,
    accuracy: n ? correct / n : 0,
    accuracyInterval95: wilsonInterval(correct, n),
    chance: 1 / k,
    labels: [...labels],
    perClassAccuracy: confusion.map((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      return total ? row[i]! / total : null;
    }),
    confusionMatrix: confusion,
  };
}
