/**
 * Pictures of what a network learned, as 8-bit rasters (`[H, W, C]` uint8 HWC, {@link Raster}) for `inspect` to
 * encode: a grid of first-layer filters, a heat map blended over a cover, a sprite sheet of covers, and small
 * pixel vectors for an embedding of raw pixels. Pure functions on typed arrays.
 */
import type { Raster } from '../schemas/inspect.ts';

/**
 * Draws conv filters as a grid (⌈√F⌉ columns): each filter scaled to its own range (min → 0, max → 255), magnified
 * `scale` times (nearest neighbour), two white pixels between cells.
 * @param kernel tfjs conv2d kernel `[kh, kw, cin, F]` float32, row-major.
 * @param shape `[kh, kw, cin, F]`.
 * @returns RGB when cin = 3 (channel order as the input's: R, G, B), else gray (the mean over input channels) as RGB.
 */
export function filterGrid(kernel: Float32Array, shape: readonly [number, number, number, number], scale: number): Raster {
  const [kh, kw, cin, f] = shape;
  if (kernel.length !== kh * kw * cin * f) throw new Error(`filterGrid: kernel of ${kernel.length} values, shape ${shape.join('×')}`);
  const cols = Math.ceil(Math.sqrt(f));
  const rows = Math.ceil(f / cols);
  const cw = kw * scale;
  const ch = kh * scale;
  const gap = 2;
  const width = cols * (cw + gap) + gap;
  const height = rows * (ch + gap) + gap;
  const pixels = new Uint8Array(width * height * 3).fill(255);
  const at = (y: number, x: number, c: number, k: number) => kernel[((y * kw + x) * cin + c) * f + k]!;
  for (let k = 0; k < f; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let c = 0; c < cin; c++) {
      const v = at(y, x, c, k);
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span = hi - lo || 1;
    const ox = (k % cols) * (cw + gap) + gap;
    const oy = Math.floor(k / cols) * (ch + gap) + gap;
    for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
      const rgb = [0, 1, 2].map((c) => {
        if (cin === 3) return at(y, x, c, k);
        let s = 0;
        for (let i = 0; i < cin; i++) s += at(y, x, i, k);
        return s / cin;
      });
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
        const o = ((oy + y * scale + dy) * width + ox + x * scale + dx) * 3;
        for (let c = 0; c < 3; c++) pixels[o + c] = Math.round(((rgb[c]! - lo) / span) * 255);
      }
    }
  }
  return { pixels, width, height, channels: 3 };
}

/** Colour stops of the heat colour map (dark blue → purple → orange → yellow), value in [0, 1]. */
const HEAT_STOPS: [number, number, number][] = [[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]];

/** The heat colour of `v` in [0, 1] (linear between {@link HEAT_STOPS}). */
export function heatColour(v: number): [number, number, number] {
  const t = Math.max(0, Math.min(1, v)) * (HEAT_STOPS.length - 1);
  const i = Math.min(HEAT_STOPS.length - 2, Math.floor(t));
  const f = t - i;
  const a = HEAT_STOPS[i]!;
  const b = HEAT_STOPS[i + 1]!;
  return [0, 1, 2].map((c) => Math.round(a[c]! + (b[c]! - a[c]!) * f)) as [number, number, number];
}

/**
 * Bilinear resampling of a map (pixel centres aligned, edges clamped).
 * @param map `[h, w]` float32. @returns `[side, side]` float32.
 */
export function resizeMap(map: Float32Array, h: number, w: number, side: number): Float32Array {
  const out = new Float32Array(side * side);
  for (let y = 0; y < side; y++) {
    const sy = Math.max(0, Math.min(h - 1, ((y + 0.5) * h) / side - 0.5));
    const y0 = Math.floor(sy);
    const y1 = Math.min(h - 1, y0 + 1);
    const fy = sy - y0;
    for (let x = 0; x < side; x++) {
      const sx = Math.max(0, Math.min(w - 1, ((x + 0.5) * w) / side - 0.5));
      const x0 = Math.floor(sx);
      const x1 = Math.min(w - 1, x0 + 1);
      const fx = sx - x0;
      const top = map[y0 * w + x0]! * (1 - fx) + map[y0 * w + x1]! * fx;
      const bottom = map[y1 * w + x0]! * (1 - fx) + map[y1 * w + x1]! * fx;
      out[y * side + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/**
 * Blends a heat map over a cover: the map (values in [0, 1], 1 = the map's maximum) resampled bilinearly to `side`,
 * coloured with {@link heatColour} and laid over the cover (nearest-neighbour resampled) with opacity 0.65·value,
 * so cold regions show the cover.
 * @param cover `[s, s, 3]` uint8 HWC. @param heat `[h, w]` float32 in [0, 1].
 */
export function heatOverlay(cover: Uint8Array, s: number, heat: Float32Array, h: number, w: number, side: number): Raster {
  const up = resizeMap(heat, h, w, side);
  const pixels = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    const sy = Math.min(s - 1, Math.floor((y * s) / side));
    for (let x = 0; x < side; x++) {
      const sx = Math.min(s - 1, Math.floor((x * s) / side));
      const v = up[y * side + x]!;
      const col = heatColour(v);
      const a = 0.65 * Math.max(0, Math.min(1, v));
      for (let c = 0; c < 3; c++) pixels[(y * side + x) * 3 + c] = Math.round(cover[(sy * s + sx) * 3 + c]! * (1 - a) + col[c]! * a);
    }
  }
  return { pixels, width: side, height: side, channels: 3 };
}

/** A heat map as an 8-bit grayscale raster at its own resolution (value · 255, rounded). @param heat `[h, w]` in [0, 1]. */
export function heatRaster(heat: Float32Array, h: number, w: number): Raster {
  return { pixels: Uint8Array.from(heat, (v) => Math.round(Math.max(0, Math.min(1, v)) * 255)), width: w, height: h, channels: 1 };
}

/**
 * Shrinks an `[s, s, 3]` uint8 image to `[side, side, 3]` by box averaging (each output pixel the mean of the input
 * pixels whose centres fall in it; nearest neighbour when enlarging).
 */
export function shrink(img: Uint8Array, s: number, side: number): Uint8Array {
  const out = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    const y0 = Math.floor((y * s) / side);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * s) / side));
    for (let x = 0; x < side; x++) {
      const x0 = Math.floor((x * s) / side);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * s) / side));
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) sum += img[(yy * s + xx) * 3 + c]!;
        out[(y * side + x) * 3 + c] = Math.round(sum / ((y1 - y0) * (x1 - x0)));
      }
    }
  }
  return out;
}

/** The centre `[crop, crop, 3]` of an `[s, s, 3]` uint8 image (the evaluation's centre crop, train/augment.ts). */
export function centreCrop(img: Uint8Array, s: number, crop: number): Uint8Array {
  const o = Math.floor((s - crop) / 2);
  const out = new Uint8Array(crop * crop * 3);
  for (let y = 0; y < crop; y++) out.set(img.subarray(((o + y) * s + o) * 3, ((o + y) * s + o + crop) * 3), y * crop * 3);
  return out;
}

/**
 * Lays out `[side, side, 3]` tiles in a sprite sheet of `columns` tiles per row (tile i at column i mod columns,
 * row ⌊i / columns⌋; the rest black).
 */
export function spriteSheet(tiles: readonly Uint8Array[], side: number, columns: number): Raster {
  const rows = Math.max(1, Math.ceil(tiles.length / columns));
  const width = columns * side;
  const height = rows * side;
  const pixels = new Uint8Array(width * height * 3);
  tiles.forEach((t, i) => {
    const ox = (i % columns) * side;
    const oy = Math.floor(i / columns) * side;
    for (let y = 0; y < side; y++) pixels.set(t.subarray(y * side * 3, (y + 1) * side * 3), ((oy + y) * width + ox) * 3);
  });
  return { pixels, width, height, channels: 3 };
}

/**
 * How far training moved conv filters from their initialisation: the mean over filters of ‖w − w₀‖ / ‖w₀‖ (L2 over
 * each filter's kh·kw·cin weights; a filter whose initial norm is 0 counts its own norm).
 * @param trained, initial kernels `[kh, kw, cin, F]` float32 of the same shape.
 */
export function filterChange(trained: Float32Array, initial: Float32Array, filters: number): number {
  if (trained.length !== initial.length || trained.length % filters !== 0) throw new Error(`filterChange: kernels of ${trained.length} and ${initial.length} values for ${filters} filters`);
  let sum = 0;
  for (let k = 0; k < filters; k++) {
    let d = 0;
    let n = 0;
    for (let i = k; i < trained.length; i += filters) {
      d += (trained[i]! - initial[i]!) ** 2;
      n += initial[i]! ** 2;
    }
    sum += n > 0 ? Math.sqrt(d / n) : Math.sqrt(d);
  }
  return sum / filters;
}
