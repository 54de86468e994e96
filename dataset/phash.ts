/**
 * Perceptual hash of a cover (stage `download`, for near-duplicate detection): the 64-bit DCT hash of the npm package
 * `sharp-phash` 2.2.0 (https://github.com/btd/sharp-phash, MIT; the classic pHash of Zauner 2010): the 2-D DCT-II of a
 * 32×32 grey image is taken, and bit k = 8·(u−1) + (v−1) of the hash (u, v = 1…8: the 8×8 lowest frequencies without
 * the DC row and column) is 1 when coefficient (u, v) is above the mean of those 64. Two things differ from calling
 * sharp-phash, both for speed (bench/phash.bench.ts measured it adding about three times `download`'s own CPU time):
 * - the 32×32 grey image is a box average of the pixels `download` has already decoded to check the file
 *   ({@link greySample}), not a second decode and libvips resize; EXIF orientation is not applied (as in the check);
 * - only the 64 coefficients used are computed, separably (about 9,000 multiply-adds instead of 32⁴ ≈ 1,000,000).
 * Given the same 32×32 grey image, the bits equal sharp-phash's (test/near-dup.test.ts).
 *
 * A hash is held as two unsigned 32-bit words, `hi` (bits 0–31, bit 0 the most significant) and `lo` (bits 32–63),
 * and written as 16 lower-case hex digits (`hi` then `lo`), so no BigInt is needed to store or compare hashes.
 */
import sharp from 'sharp';

/** Side of the grey image the DCT is taken of, pixels (sharp-phash's SAMPLE_SIZE). */
export const PHASH_SAMPLE = 32;
/** Side of the block of low frequencies that gives the bits (sharp-phash's LOW_SIZE). */
const LOW = 8;

/** A 64-bit perceptual hash as two unsigned 32-bit words (see the module comment for the bit order). */
export interface PHash {
  hi: number;
  lo: number;
}

/** COS[i][u] = cos((2i + 1)·u·π / 64), i = 0…31, u = 0…8 (sharp-phash's table, only the columns used). */
const COS: Float64Array[] = Array.from({ length: PHASH_SAMPLE }, (_, i) =>
  Float64Array.from({ length: LOW + 1 }, (_, u) => Math.cos(((2 * i + 1) / (2 * PHASH_SAMPLE)) * u * Math.PI)),
);

/**
 * Scratch arrays of {@link greySample}, {@link phashOfRaw} and {@link phashOfGrey32}, allocated once: both functions
 * are synchronous, so no two calls share them. Allocating them per cover (seven typed arrays, about 24 KB, each an
 * ArrayBuffer with its own backing store to free) was a measurable part of the hash's cost (bench/RESULTS.md, issue 24).
 */
const SCRATCH = {
  sums: new Float64Array(PHASH_SAMPLE * PHASH_SAMPLE),
  counts: new Uint32Array(PHASH_SAMPLE * PHASH_SAMPLE),
  first: new Int32Array(PHASH_SAMPLE),
  end: new Int32Array(PHASH_SAMPLE),
  grey: new Float64Array(PHASH_SAMPLE * PHASH_SAMPLE),
  R: new Float64Array(PHASH_SAMPLE * LOW),
  F: new Float64Array(LOW * LOW),
};

/**
 * The hash of a 32×32 grey image.
 * @param grey [32, 32] grey levels, row-major (y·32 + x): a one-channel 32×32 image from sharp's `.raw()` (uint8), or
 * {@link greySample}'s means (float64).
 * @throws RangeError when `grey` does not hold 1024 values.
 */
export function phashOfGrey32(grey: ArrayLike<number>): PHash {
  const N = PHASH_SAMPLE;
  if (grey.length !== N * N) throw new RangeError(`phash: expected ${N}×${N} = ${N * N} grey levels, got ${grey.length}`);
  // sharp-phash's f[x][y] = grey[y·32 + x]; F[u][v] = ¼ Σ_x Σ_y COS[x][u]·COS[y][v]·f[x][y] for u, v ≥ 1.
  // Step 1: R[y][u] = Σ_x COS[x][u]·grey[y·32 + x], u = 1…8.
  const R = SCRATCH.R.fill(0);
  for (let y = 0; y < N; y++) {
    for (let x = 0; x < N; x++) {
      const g = grey[y * N + x]!;
      const c = COS[x]!;
      for (let u = 1; u <= LOW; u++) R[y * LOW + u - 1]! += c[u]! * g;
    }
  }
  // Step 2: F[u][v] = ¼ Σ_y COS[y][v]·R[y][u].
  const F = SCRATCH.F.fill(0);
  for (let y = 0; y < N; y++) {
    const c = COS[y]!;
    for (let u = 0; u < LOW; u++) {
      const r = R[y * LOW + u]!;
      for (let v = 1; v <= LOW; v++) F[u * LOW + v - 1]! += c[v]! * r;
    }
  }
  let sum = 0;
  for (let k = 0; k < LOW * LOW; k++) sum += F[k]! / 4;
  const mean = sum / (LOW * LOW);
  let hi = 0;
  let lo = 0;
  for (let k = 0; k < 32; k++) if (F[k]! / 4 > mean) hi |= 1 << (31 - k);
  for (let k = 32; k < 64; k++) if (F[k]! / 4 > mean) lo |= 1 << (63 - k);
  return { hi: hi >>> 0, lo: lo >>> 0 };
}

/**
 * The 32×32 grey sample a hash is taken of, from decoded pixels: grey = (299·R + 587·G + 114·B) / 1000 (ITU-R BT.601
 * luma; a one- or two-channel image is taken as grey already; alpha is ignored), then each of the 32×32 cells is the
 * mean of the pixels that fall in it (pixel (x, y) belongs to cell (⌊32x / W⌋, ⌊32y / H⌋): a box filter, so a
 * resized copy gives nearly the same cells), sampling every s-th pixel of every s-th row, s = max(1, ⌊min(W, H) /
 * 128⌋) (350×350: s = 2; at least 4×4 samples per cell), so the cost hardly grows with the image. Plain integer sums in JavaScript: the same values on every machine.
 * (sharp-phash resizes with libvips instead, which costs a second decode: bench/phash.bench.ts.)
 * @param raw [H, W, C] uint8, HWC, C = 1…4 (what sharp's `.raw()` gives).
 * @returns [32, 32] float64 grey levels 0–255, row-major (a new array).
 * @throws RangeError when `raw` does not hold W·H·C values or the image is smaller than 1×1.
 */
export function greySample(raw: Uint8Array, width: number, height: number, channels: number): Float64Array {
  return greySampleInto(raw, width, height, channels, new Float64Array(PHASH_SAMPLE * PHASH_SAMPLE));
}

/** {@link greySample} written into `out` ([32, 32] float64), which it returns. @throws RangeError as greySample. */
function greySampleInto(raw: Uint8Array, width: number, height: number, channels: number, out: Float64Array): Float64Array {
  const N = PHASH_SAMPLE;
  if (!(width >= 1 && height >= 1 && channels >= 1 && channels <= 4) || raw.length !== width * height * channels) {
    throw new RangeError(`phash: ${raw.length} bytes are not a ${width}×${height}×${channels} image`);
  }
  const sums = SCRATCH.sums.fill(0);
  const counts = SCRATCH.counts.fill(0);
  // Every `step`-th pixel of every `step`-th row: at least 128 samples per side (at least 4×4 per cell), so the cost
  // stays about the same for any image size.
  const step = Math.max(1, Math.floor(Math.min(width, height) / 128));
  // Cell c holds the sampled columns x = first, first + step, … below end (pixel x is in cell ⌊32x / W⌋), kept here
  // as byte offsets within a row.
  const first = SCRATCH.first;
  const end = SCRATCH.end;
  for (let c = 0; c < N; c++) {
    const from = Math.ceil((c * width) / N);
    first[c] = Math.ceil(from / step) * step * channels;
    end[c] = Math.ceil(((c + 1) * width) / N) * channels;
  }
  const stride = step * channels;
  const rgb = channels >= 3;
  for (let y = 0; y < height; y += step) {
    const row = Math.floor((y * N) / height) * N;
    const base = y * width * channels;
    for (let c = 0; c < N; c++) {
      // Per channel sums, weighted once per cell and row: the same integer as weighting every pixel.
      let r = 0;
      let g = 0;
      let b = 0;
      let n = 0;
      const stop = base + end[c]!;
      let at = base + first[c]!;
      if (rgb) {
        for (; at < stop; at += stride, n++) {
          r += raw[at]!;
          g += raw[at + 1]!;
          b += raw[at + 2]!;
        }
        sums[row + c]! += 299 * r + 587 * g + 114 * b;
      } else {
        for (; at < stop; at += stride, n++) r += raw[at]!;
        sums[row + c]! += 1000 * r;
      }
      counts[row + c]! += n;
    }
  }
  for (let k = 0; k < N * N; k++) out[k] = counts[k]! ? sums[k]! / (1000 * counts[k]!) : 0;
  // An image narrower or lower than 32 pixels leaves cells empty: they take the value of the nearest filled cell.
  if (width < N || height < N) {
    for (let y = 0; y < N; y++) {
      for (let x = 0; x < N; x++) {
        const sy = Math.min(height - 1, Math.floor((y * height) / N));
        const sx = Math.min(width - 1, Math.floor((x * width) / N));
        const from = Math.floor((sy * N) / height) * N + Math.floor((sx * N) / width);
        if (!counts[y * N + x]) out[y * N + x] = out[from]!;
      }
    }
  }
  return out;
}

/**
 * The perceptual hash of encoded image bytes: decoded with sharp (no EXIF rotation, as `download` decodes), then
 * {@link greySample} and {@link phashOfGrey32}.
 * @throws the sharp error for bytes it cannot decode.
 */
export async function phashOfImage(image: Buffer): Promise<PHash> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  return phashOfRaw(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, info.channels);
}

/** The perceptual hash of decoded pixels ([H, W, C] uint8, HWC). @throws RangeError as {@link greySample}. */
export function phashOfRaw(raw: Uint8Array, width: number, height: number, channels: number): PHash {
  return phashOfGrey32(greySampleInto(raw, width, height, channels, SCRATCH.grey));
}

/** 16 lower-case hex digits, `hi` then `lo` (the form stored in `manifest.tsv`). */
export function phashToHex(h: PHash): string {
  return h.hi.toString(16).padStart(8, '0') + h.lo.toString(16).padStart(8, '0');
}

/** Parses 16 hex digits ({@link phashToHex}). @throws Error for anything else. */
export function phashFromHex(hex: string): PHash {
  if (!/^[0-9a-f]{16}$/i.test(hex)) throw new Error(`"${hex.slice(0, 40)}" is not a perceptual hash (16 hex digits)`);
  return { hi: parseInt(hex.slice(0, 8), 16) >>> 0, lo: parseInt(hex.slice(8), 16) >>> 0 };
}

/** The hash as sharp-phash writes it: 64 characters `0`/`1`, bit 0 first. */
export function phashToBits(h: PHash): string {
  return h.hi.toString(2).padStart(32, '0') + h.lo.toString(2).padStart(32, '0');
}

/** Set bits of a 32-bit word (SWAR popcount, no BigInt). */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Hamming distance of two hashes, 0…64 bits. */
export function hamming(a: PHash, b: PHash): number {
  return popcount32(a.hi ^ b.hi) + popcount32(a.lo ^ b.lo);
}
