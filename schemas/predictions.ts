/**
 * `DATA_DIR/eval/predictions.arrow` (Arrow IPC stream), written by `evaluate`, read by `inspect`: the convnet's
 * prediction for every test image (the first training seed's model, `eval.crops` crops averaged), in the order of
 * the test shards (`shards/test/`, as `readSplit` reads them).
 */
import { defineTable, type RowOf } from './table.ts';

export { PREDICTIONS_OUTPUT } from './paths.ts';

/**
 * Columns:
 * - `row`: index of the image in the test split (0-based, shard order);
 * - `item_id`, `art_id`: Bandcamp ids of the album and its cover (null where the shard has none);
 * - `label`, `predicted`: true and predicted genre, indices into the schema metadata's `labels` (JSON list);
 * - `confidence`: the averaged softmax probability of `predicted`, in [0, 1];
 * - `true_probability`: the averaged softmax probability of `label`, in [0, 1].
 */
export const predictionsFormat = defineTable('predictions', {
  row: 'int32',
  item_id: 'int64',
  art_id: 'int64',
  label: 'int32',
  predicted: 'int32',
  confidence: 'float64',
  true_probability: 'float64',
});
export type PredictionRow = RowOf<typeof predictionsFormat.columns>;

/** A test image's prediction with every field present (what {@link readPredictions} returns). */
export interface Prediction {
  row: number;
  itemId: number | null;
  artId: number | null;
  label: number;
  predicted: number;
  confidence: number;
  trueProbability: number;
}

/**
 * Builds the rows from the averaged softmax probabilities.
 * @param probabilities `[n, classes]` float32, row-major, each row summing to 1.
 * @param labels true label per image (n).
 * @param ids `item_id`/`art_id` per image (n), or null when unknown.
 */
export function predictionRows(probabilities: Float32Array, labels: Int32Array, ids: { itemIds: (number | null)[]; artIds: (number | null)[] } | null): PredictionRow[] {
  const n = labels.length;
  const classes = n ? probabilities.length / n : 0;
  const rows: PredictionRow[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probabilities[i * classes + c]! > probabilities[i * classes + best]!) best = c;
    rows.push({
      row: i, item_id: ids?.itemIds[i] ?? null, art_id: ids?.artIds[i] ?? null, label: labels[i]!, predicted: best,
      confidence: probabilities[i * classes + best]!, true_probability: probabilities[i * classes + labels[i]!]!,
    });
  }
  return rows;
}

/** Writes `eval/predictions.arrow` (`labels`: genre names in label order, kept as schema metadata). */
export function writePredictions(path: string, rows: readonly PredictionRow[], labels: readonly string[]): void {
  predictionsFormat.write(path, rows, { labels: JSON.stringify(labels) });
}

/**
 * Reads `eval/predictions.arrow`.
 * @returns the genre names and one {@link Prediction} per test image, in row order.
 * @throws Error naming the file and the row when a required field is null or out of range, or the labels are absent.
 */
export function readPredictions(path: string): { labels: string[]; predictions: Prediction[] } {
  const meta = predictionsFormat.readMetadata(path).get('labels');
  if (!meta) throw new Error(`${path}: no "labels" metadata (not a predictions file)`);
  const labels = JSON.parse(meta) as string[];
  const predictions = predictionsFormat.read(path).map((r, i) => {
    const { row, label, predicted, confidence, true_probability: p } = r;
    if (row === null || label === null || predicted === null || confidence === null || p === null) throw new Error(`${path}: row ${i} has a null field`);
    if (label < 0 || label >= labels.length || predicted < 0 || predicted >= labels.length) throw new Error(`${path}: row ${i}: label ${label} or prediction ${predicted} outside the ${labels.length} genres`);
    return { row, itemId: r.item_id, artId: r.art_id, label, predicted, confidence, trueProbability: p };
  });
  return { labels, predictions };
}
