/**
 * Encodes a shard's `[S, S, 3]` uint8 RGB image for the export (stage `export`): PNG, lossless (every pixel as in the
 * shards), or JPEG at a chosen quality with 4:4:4 chroma. Both through sharp (libvips + libpng/zlib, libjpeg-turbo),
 * which runs the encode on libuv's thread pool, so several images encode at once. The same pixels and options give
 * the same bytes with the same libvips build (byte-stable reruns).
 */
import sharp from 'sharp';
import type { ExportImageFormat } from '../schemas/export/layout.ts';

/** How images are encoded (config `export.image`). */
export interface ExportImageOptions {
  format: ExportImageFormat;
  /** zlib level 0–9 (PNG only). */
  pngCompression: number;
  /** 1–100 (JPEG only). */
  jpegQuality: number;
}

/**
 * Encodes one image.
 * @param pixels `[S, S, 3]` uint8 RGB, HWC, row-major (`S·S·3` bytes).
 * @param size S, pixels.
 * @returns the PNG or JPEG bytes.
 * @throws RangeError when `pixels` is not `S·S·3` bytes long; sharp's error when encoding fails.
 */
export async function encodeImage(pixels: Uint8Array, size: number, opts: ExportImageOptions): Promise<Buffer> {
  if (pixels.length !== size * size * 3) throw new RangeError(`export: ${pixels.length} bytes for a ${size}×${size}×3 image`);
  const img = sharp(pixels, { raw: { width: size, height: size, channels: 3 } });
  return opts.format === 'png'
    ? img.png({ compressionLevel: opts.pngCompression, adaptiveFiltering: false, palette: false }).toBuffer()
    : img.jpeg({ quality: opts.jpegQuality, chromaSubsampling: '4:4:4' }).toBuffer();
}
