/**
 * The per-pixel training mean (stage `mean`, schemas/mean.ts): streamed over the training shards record batch by
 * record batch, accumulated in float64, stored as float32.
 */
import { meanToIPC, type MeanSummary } from '../schemas/mean.ts';

/** Accumulates `[S, S, 3]` uint8 HWC images: per-pixel sums and per-channel sums and sums of squares (float64). */
export class MeanAccumulator {
  /** Per-pixel, per-channel sums, `[S, S, 3]` HWC. */
  readonly sum: Float64Array;
  private readonly channelSum = new Float64Array(3);
  private readonly channelSumSq = new Float64Array(3);
  /** Images added. */
  count = 0;

  /** @param size S, in pixels. */
  constructor(readonly size: number) {
    this.sum = new Float64Array(size * size * 3);
  }

  /**
   * Adds `rows` consecutive images.
   * @param images `[rows, S, S, 3]` uint8 HWC, row-major.
   * @throws RangeError when `images` does not hold exactly `rows` images.
   */
  add(images: Uint8Array, rows: number): void {
    const len = this.sum.length;
    if (images.length !== rows * len) throw new RangeError(`mean: ${images.length} bytes is not ${rows} images of ${len} bytes`);
    const sum = this.sum;
    for (let r = 0; r < rows; r++) {
      const base = r * len;
      // Per image, channel sums stay exact integers in uint32 range of a double (≤ S²·255² < 2^53).
      let s0 = 0, s1 = 0, s2 = 0, q0 = 0, q1 = 0, q2 = 0;
      for (let j = 0; j < len; j += 3) {
        const a = images[base + j]!, b = images[base + j + 1]!, c = images[base + j + 2]!;
        sum[j]! += a;
        sum[j + 1]! += b;
        sum[j + 2]! += c;
        s0 += a; s1 += b; s2 += c;
        q0 += a * a; q1 += b * b; q2 += c * c;
      }
      this.channelSum[0]! += s0; this.channelSum[1]! += s1; this.channelSum[2]! += s2;
      this.channelSumSq[0]! += q0; this.channelSumSq[1]! += q1; this.channelSumSq[2]! += q2;
    }
    this.count += rows;
  }

  /** The per-pixel mean, `[S, S, 3]` float32 HWC, uint8 units. @throws Error when no image was added. */
  mean(): Float32Array {
    if (this.count === 0) throw new Error('mean: no images');
    const out = new Float32Array(this.sum.length);
    for (let j = 0; j < out.length; j++) out[j] = this.sum[j]! / this.count;
    return out;
  }

  /** Per-channel mean and population standard deviation over all pixels of all images, R, G, B, uint8 units. */
  channelStats(): { mean: [number, number, number]; std: [number, number, number] } {
    if (this.count === 0) throw new Error('mean: no images');
    const n = this.count * this.size * this.size;
    const mean = [0, 1, 2].map((c) => this.channelSum[c]! / n) as [number, number, number];
    const std = [0, 1, 2].map((c) => Math.sqrt(Math.max(0, this.channelSumSq[c]! / n - mean[c]! ** 2))) as [number, number, number];
    return { mean, std };
  }

  /** The `mean.json` summary. */
  summary(): MeanSummary {
    const { mean, std } = this.channelStats();
    return { shape: [this.size, this.size, 3], layout: 'HWC', count: this.count, channelMean: mean, channelStd: std };
  }

  /** `mean.arrow`'s bytes: one row of schemas/mean.ts as an Arrow IPC stream. */
  toArrowStream(): Uint8Array {
    const { mean, std } = this.channelStats();
    return meanToIPC({ size: this.size, mean: this.mean(), channelMean: mean, channelStd: std, count: this.count });
  }
}
