/**
 * Procedurally drawn album covers for the synthetic catalogue. Each genre has a visual style (palette hue,
 * saturation, brightness, contrast, texture kind and frequency, shapes, grain); each cover draws its parameters
 * around its genre's style with noise, and a share of covers borrow the palette or the layout of another genre, so a
 * small convnet learns the genres clearly above chance but not trivially.
 *
 * Output: raw RGB pixels `[RENDER_SIZE, RENDER_SIZE, 3] uint8, HWC`, which `simulator/images.ts` resizes and encodes.
 */
import { gauss, hash32, pick, rngFor } from './rng.ts';

/** Side of a rendered cover, in pixels (resized by sharp to each Bandcamp format). */
export const RENDER_SIZE = 224;

/** Texture kinds. */
type Texture = 'gradient' | 'stripes' | 'rings' | 'checks' | 'grain' | 'waves';
/** Shape kinds drawn over the background. */
type Shape = 'circles' | 'rects' | 'bars' | 'none' | 'triangles';

/** A genre's visual style (means; each cover adds noise). */
export interface GenreStyle {
  /** Palette hue centre, 0..1 (HSV). */
  hue: number;
  /** Hue spread within a cover, 0..1. */
  hueSpread: number;
  /** HSV saturation, 0..1. */
  sat: number;
  /** HSV value (brightness), 0..1. */
  val: number;
  /** Contrast between the two background colours, 0..1. */
  contrast: number;
  texture: Texture;
  /** Texture spatial frequency, cycles per image. */
  freq: number;
  shape: Shape;
  /** Number of shapes. */
  shapes: number;
  /** Per-pixel grain amplitude, 0..255. */
  grain: number;
}

/** Hand-set styles for the 2015 study's ten genres (clichés, on purpose: dark metal, pastel pop, …). */
const STUDY_STYLES: Record<string, GenreStyle> = {
  ambient: { hue: 0.55, hueSpread: 0.08, sat: 0.35, val: 0.7, contrast: 0.25, texture: 'gradient', freq: 1, shape: 'none', shapes: 0, grain: 6 },
  dubstep: { hue: 0.78, hueSpread: 0.2, sat: 0.85, val: 0.45, contrast: 0.7, texture: 'waves', freq: 9, shape: 'triangles', shapes: 5, grain: 10 },
  folk: { hue: 0.09, hueSpread: 0.07, sat: 0.45, val: 0.62, contrast: 0.35, texture: 'grain', freq: 3, shape: 'circles', shapes: 2, grain: 22 },
  'hip-hop-rap': { hue: 0.12, hueSpread: 0.5, sat: 0.7, val: 0.55, contrast: 0.6, texture: 'checks', freq: 4, shape: 'rects', shapes: 4, grain: 8 },
  jazz: { hue: 0.03, hueSpread: 0.12, sat: 0.6, val: 0.5, contrast: 0.55, texture: 'stripes', freq: 3, shape: 'bars', shapes: 4, grain: 8 },
  metal: { hue: 0.0, hueSpread: 0.04, sat: 0.3, val: 0.18, contrast: 0.45, texture: 'grain', freq: 12, shape: 'triangles', shapes: 3, grain: 40 },
  pop: { hue: 0.92, hueSpread: 0.3, sat: 0.45, val: 0.9, contrast: 0.3, texture: 'gradient', freq: 2, shape: 'circles', shapes: 6, grain: 3 },
  punk: { hue: 0.15, hueSpread: 0.45, sat: 0.9, val: 0.75, contrast: 0.9, texture: 'checks', freq: 6, shape: 'rects', shapes: 7, grain: 28 },
  rock: { hue: 0.02, hueSpread: 0.15, sat: 0.55, val: 0.4, contrast: 0.6, texture: 'stripes', freq: 6, shape: 'circles', shapes: 1, grain: 18 },
  soul: { hue: 0.07, hueSpread: 0.1, sat: 0.75, val: 0.6, contrast: 0.5, texture: 'rings', freq: 5, shape: 'none', shapes: 0, grain: 10 },
};

const TEXTURES: readonly Texture[] = ['gradient', 'stripes', 'rings', 'checks', 'grain', 'waves'];
const SHAPES: readonly Shape[] = ['circles', 'rects', 'bars', 'none', 'triangles'];

/** The style of a genre: hand-set for the study genres, otherwise derived from a hash of the genre name. */
function genreStyle(genre: string): GenreStyle {
  const known = STUDY_STYLES[genre];
  if (known) return known;
  const r = rngFor('style', genre);
  return {
    hue: r(),
    hueSpread: 0.05 + r() * 0.4,
    sat: 0.25 + r() * 0.7,
    val: 0.2 + r() * 0.7,
    contrast: 0.2 + r() * 0.7,
    texture: pick(r, TEXTURES),
    freq: 1 + Math.floor(r() * 11),
    shape: pick(r, SHAPES),
    shapes: Math.floor(r() * 7),
    grain: 3 + r() * 35,
  };
}

/** 0.5 + 0.5·sin(2π·phase), phase in cycles, by table lookup (4096 steps per cycle). */
const WAVE = new Float32Array(4096).map((_, i) => 0.5 + 0.5 * Math.sin((2 * Math.PI * i) / 4096));
function wave(phase: number): number {
  return WAVE[((phase * 4096) | 0) & 4095]!;
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** HSV (all 0..1) to RGB 0..255. */
function hsv(h: number, s: number, v: number): [number, number, number] {
  h = ((h % 1) + 1) % 1;
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6]!;
  return [r! * 255, g! * 255, b! * 255];
}

/** The texture's mixing weight per pixel, `[N, N] float32` in 0..1 (one loop per kind, for speed). */
function textureField(kind: Texture, N: number, freq: number, ca: number, sa: number, cx: number, cy: number): Float32Array {
  const t = new Float32Array(N * N);
  const inv = 1 / N;
  let i = 0;
  switch (kind) {
    case 'gradient':
      for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) t[i++] = ((x * ca + y * sa) * inv) / 1.4;
      break;
    case 'stripes':
      for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) t[i++] = wave(freq * (x * ca + y * sa) * inv);
      break;
    case 'rings':
      for (let y = 0; y < N; y++) {
        const dy = y * inv - cy;
        for (let x = 0; x < N; x++) {
          const dx = x * inv - cx;
          t[i++] = wave(freq * 1.5 * Math.sqrt(dx * dx + dy * dy));
        }
      }
      break;
    case 'checks':
      for (let y = 0; y < N; y++) {
        const cyi = Math.floor(y * inv * freq);
        for (let x = 0; x < N; x++) t[i++] = (cyi + Math.floor(x * inv * freq)) & 1;
      }
      break;
    case 'waves':
      for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) t[i++] = wave(freq * y * inv + 0.48 * (wave(2 * x * inv) * 2 - 1));
      break;
    default: // grain: blotchy value noise from a few sines
      for (let y = 0; y < N; y++) {
        const wy = wave(freq * y * inv * 0.7);
        for (let x = 0; x < N; x++) t[i++] = 0.25 + 0.5 * wave(freq * x * inv + 0.2) * wy + 0.25 * wave(freq * 1.9 * (x * ca + y * sa) * inv);
      }
  }
  return t;
}

/**
 * Draws the cover of one `art_id`.
 * @param artId the cover's `art_id` (decides every random choice with `seed`).
 * @param genre the genre whose style to follow, or null for a style picked by hash among `fallbackGenres`.
 * @param seed the simulator's seed.
 * @param fallbackGenres genres to draw from when `genre` is null (art ids outside the catalogue).
 * @param confusion share of covers that borrow the palette (or, independently, the layout) of a random other genre.
 * @returns `[RENDER_SIZE, RENDER_SIZE, 3] uint8, HWC` RGB pixels.
 */
export function renderCover(artId: number, genre: string | null, seed: number, fallbackGenres: readonly string[], confusion = 0.3): Buffer {
  const r = rngFor('cover', seed, artId);
  const g = genre ?? fallbackGenres[hash32(`g|${seed}|${artId}`) % fallbackGenres.length] ?? 'rock';
  const base = genreStyle(g);
  const others = fallbackGenres.filter((x) => x !== g);
  const palette = others.length > 0 && r() < confusion ? genreStyle(pick(r, others)) : base;
  const layout = others.length > 0 && r() < confusion ? genreStyle(pick(r, others)) : base;

  const N = RENDER_SIZE;
  const hue = palette.hue + gauss(r) * 0.05;
  const spread = palette.hueSpread * (0.5 + r());
  const sat = clamp01(palette.sat + gauss(r) * 0.12);
  const val = clamp01(palette.val + gauss(r) * 0.12);
  const contrast = clamp01(palette.contrast + gauss(r) * 0.12);
  const c1 = hsv(hue, sat, clamp01(val + contrast / 2));
  const c2 = hsv(hue + spread, clamp01(sat * 0.9), clamp01(val - contrast / 2));
  const c3 = hsv(hue - spread, clamp01(sat + 0.1), clamp01(val + (r() - 0.5) * contrast));
  const freq = Math.max(0.5, layout.freq * (0.7 + r() * 0.6));
  const angle = r() * Math.PI;
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  const grain = Math.max(0, layout.grain * (0.6 + r() * 0.8));
  const cx = 0.2 + r() * 0.6;
  const cy = 0.2 + r() * 0.6;

  const out = Buffer.allocUnsafe(N * N * 3);
  const t = textureField(layout.texture, N, freq, ca, sa, cx, cy);
  const c1r = c1[0], c1g = c1[1], c1b = c1[2];
  const dr = c2[0] - c1r, dg = c2[1] - c1g, db = c2[2] - c1b;
  for (let i = 0, o = 0; i < t.length; i++, o += 3) {
    const ti = t[i]!;
    out[o] = c1r + dr * ti;
    out[o + 1] = c1g + dg * ti;
    out[o + 2] = c1b + db * ti;
  }

  // shapes
  const nShapes = Math.max(0, Math.round(layout.shapes + gauss(r)));
  for (let k = 0; k < (layout.shape === 'none' ? 0 : nShapes); k++) {
    const col = k % 2 === 0 ? c3 : hsv(hue + spread * 2 * (r() - 0.5), clamp01(sat + 0.2), clamp01(1 - val * 0.5 + (r() - 0.5) * 0.3));
    const sx = r() * N;
    const sy = r() * N;
    const size = (0.08 + r() * 0.3) * N;
    const x0 = Math.max(0, Math.floor(sx - size));
    const x1 = Math.min(N, Math.ceil(sx + size));
    const y0 = Math.max(0, Math.floor(sy - size));
    const y1 = Math.min(N, Math.ceil(sy + size));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const dx = x - sx;
        const dy = y - sy;
        let inside: boolean;
        switch (layout.shape) {
          case 'circles':
            inside = dx * dx + dy * dy < size * size;
            break;
          case 'rects':
            inside = Math.abs(dx) < size && Math.abs(dy) < size * 0.6;
            break;
          case 'bars':
            inside = Math.abs(dx) < size * 0.15;
            break;
          default: // triangles
            inside = dy > -size && Math.abs(dx) < (dy + size) * 0.5;
        }
        if (!inside) continue;
        const o = (y * N + x) * 3;
        out[o] = col[0];
        out[o + 1] = col[1];
        out[o + 2] = col[2];
      }
    }
  }

  // grain (xorshift32 noise, one draw per pixel)
  if (grain > 0.5) {
    let h = hash32(`grain|${seed}|${artId}`) || 1;
    const amp = (2 * grain) / 4294967296;
    for (let i = 0; i < out.length; i += 3) {
      h ^= h << 13;
      h ^= h >>> 17;
      h ^= h << 5;
      const d = (h >>> 0) * amp - grain;
      const r0 = out[i]! + d, g0 = out[i + 1]! + d, b0 = out[i + 2]! + d;
      out[i] = r0 < 0 ? 0 : r0 > 255 ? 255 : r0;
      out[i + 1] = g0 < 0 ? 0 : g0 > 255 ? 255 : g0;
      out[i + 2] = b0 < 0 ? 0 : b0 > 255 ? 255 : b0;
    }
  }
  return out;
}
