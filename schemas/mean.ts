/**
 * The per-pixel training mean: `DATA_DIR/shards/mean.arrow` (one row, Arrow IPC stream) and `mean.json` (summary).
 * Written by `mean` (dataset/mean.ts accumulates it), read here only: by `train` and `evaluate` (mean subtraction)
 * and the report (the mean image).
 *
 * `mean.arrow` columns:
 * - `mean`: FixedSizeList<float32>[S·S·3], the mean over the training split of each pixel and channel, `[S, S, 3]`
 *   HWC, in uint8 units (0–255), accumulated in float64;
 * - `channel_mean`, `channel_std`: FixedSizeList<float64>[3], per-channel mean and standard deviation (R, G, B) over
 *   all training pixels, in uint8 units;
 * - `count`: int64, the number of training images;
 * - `size`: int32, S.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as arrow from 'apache-arrow';
import { UserError } from '../util/errors.ts';
import { fromInt64 } from './table.ts';

/** `mean.arrow`, relative to the data directory. */
export const MEAN_ARROW = 'shards/mean.arrow';

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

/**
 * Reads the one row of `mean.arrow`.
 * @throws UserError naming the file when it is missing, has no `mean` row, or its `size` disagrees with the mean's length.
 */
export function readMeanRow(path: string): MeanRow {
  if (!existsSync(path)) throw new UserError(`mean: ${path} not found (run \`covers make mean\`, or set train.subtractMean=false)`);
  const table = arrow.tableFromIPC(readFileSync(path));
  const data = table.getChild('mean')?.data[0];
  if (!data || table.numRows < 1) throw new UserError(`mean: ${path} has no "mean" column`);
  const len = (data.type as arrow.FixedSizeList).listSize;
  const child = data.children[0]!;
  const start = data.offset * len + child.offset;
  const mean = Float32Array.from((child.values as Float32Array).subarray(start, start + len));
  const stored = table.getChild('size')?.get(0) as number | null | undefined;
  const size = stored ?? Math.round(Math.sqrt(len / 3));
  if (size * size * 3 !== len) throw new UserError(`mean: ${path} has ${len} values, expected ${size}·${size}·3`);
  const vec3 = (name: string): [number, number, number] => {
    const v = table.getChild(name)?.get(0) as arrow.Vector | null | undefined;
    const a = v ? Array.from(v.toArray() as Float64Array) : [NaN, NaN, NaN];
    return [a[0]!, a[1]!, a[2]!];
  };
  const count = table.getChild('count')?.get(0) as bigint | number | null | undefined;
  return { size, mean, channelMean: vec3('channel_mean'), channelStd: vec3('channel_std'), count: count === null || count === undefined ? 0 : fromInt64(count, `${path}: count`) };
}

/**
 * Reads the per-pixel training mean for S×S images.
 * @returns `[S, S, 3]` float32 HWC, uint8 units.
 * @throws UserError when the file is missing or its size differs from `size`.
 */
export function readMean(path: string, size: number): Float32Array {
  const row = readMeanRow(path);
  if (row.mean.length !== size * size * 3) throw new UserError(`mean: ${path} holds ${row.mean.length} values, expected ${size}×${size}×3 = ${size * size * 3}`);
  return row.mean;
}
