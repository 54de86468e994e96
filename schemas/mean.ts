/**
 * The per-pixel training mean: `DATA_DIR/shards/mean.arrow` (one row, Arrow IPC stream) and `mean.json` (summary).
 * Written by `mean`, read by `train` (mean subtraction) and `report` (the mean image).
 *
 * `mean.arrow` columns:
 * - `mean`: FixedSizeList<float32>[S·S·3], the mean over the training split of each pixel and channel, `[S, S, 3]`
 *   HWC, in uint8 units (0–255), accumulated in float64;
 * - `channel_mean`, `channel_std`: FixedSizeList<float64>[3], per-channel mean and standard deviation (R, G, B) over
 *   all training pixels, in uint8 units;
 * - `count`: int64, the number of training images;
 * - `size`: int32, S.
 */
import * as arrow from 'apache-arrow';

/** `mean.json`: the summary of `mean.arrow`. */
export interface MeanSummary {
  /** `[S, S, 3]`. */
  shape: [number, number, number];
  layout: 'HWC';
  /** Training images averaged. */
  count: number;
  /** Per-channel mean, R, G, B, uint8 units. */
  channelMean: [number, number, number];
  /** Per-channel standard deviation, R, G, B, uint8 units. */
  channelStd: [number, number, number];
}

/** The Arrow schema of `mean.arrow` for S×S images. */
export function meanSchema(size: number): arrow.Schema {
  const f32 = new arrow.Field('item', new arrow.Float32(), true);
  const f64 = new arrow.Field('item', new arrow.Float64(), true);
  return new arrow.Schema([
    new arrow.Field('mean', new arrow.FixedSizeList(size * size * 3, f32), true),
    new arrow.Field('channel_mean', new arrow.FixedSizeList(3, f64), true),
    new arrow.Field('channel_std', new arrow.FixedSizeList(3, f64), true),
    new arrow.Field('count', new arrow.Int64(), true),
    new arrow.Field('size', new arrow.Int32(), true),
  ]);
}
