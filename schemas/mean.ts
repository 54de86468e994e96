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

/** The one row of `mean.arrow`. */
export interface MeanRow {
  /** S. */
  size: number;
  /** `[S, S, 3]` float32, HWC, uint8 units. */
  mean: Float32Array;
  channelMean: readonly [number, number, number];
  channelStd: readonly [number, number, number];
  /** Training images averaged. */
  count: number;
}

/**
 * `mean.arrow`'s bytes: the row as an Arrow IPC stream (one record batch).
 * @throws RangeError when `mean` is not S·S·3 long or `count` is not a safe integer.
 */
export function meanToIPC(row: MeanRow): Uint8Array {
  const schema = meanSchema(row.size);
  const f = schema.fields;
  if (row.mean.length !== row.size * row.size * 3) throw new RangeError(`mean: ${row.mean.length} values for ${row.size}×${row.size}×3`);
  if (!Number.isSafeInteger(row.count)) throw new RangeError(`mean: count ${row.count} is not a safe integer`);
  const list = (i: number, child: arrow.Data) => arrow.makeData({ type: f[i]!.type as arrow.FixedSizeList, length: 1, nullCount: 0, child });
  const f64 = (values: readonly number[]) => arrow.makeData({ type: new arrow.Float64(), length: values.length, nullCount: 0, data: Float64Array.from(values) });
  const batch = new arrow.RecordBatch(
    schema,
    arrow.makeData({
      type: new arrow.Struct(f),
      length: 1,
      nullCount: 0,
      children: [
        list(0, arrow.makeData({ type: new arrow.Float32(), length: row.mean.length, nullCount: 0, data: row.mean })),
        list(1, f64(row.channelMean)),
        list(2, f64(row.channelStd)),
        arrow.makeData({ type: new arrow.Int64(), length: 1, nullCount: 0, data: BigInt64Array.of(BigInt(row.count)) }),
        arrow.makeData({ type: new arrow.Int32(), length: 1, nullCount: 0, data: Int32Array.of(row.size) }),
      ],
    }),
  );
  return arrow.RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true);
}
